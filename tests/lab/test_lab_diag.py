"""Peer TCP state through sock_diag, checked against pyroute2's DiagSocket."""

from __future__ import annotations

import socket
import struct
import time

import pytest

from netemu.lab import KernelAgent, Lab
from netemu.lab.diag import SockState, decode_tcp_info
from netemu.sockopts import TCP_STATES as STATE_NAMES


def test_tcp_info_bitfields() -> None:
    """``__u8 tcpi_snd_wscale : 4, tcpi_rcv_wscale : 4`` (little-endian bit order): snd is
    the low nibble, rcv the high one (pyroute2 0.9.7 reports the low nibble for both)."""
    raw = bytearray(104)
    raw[0] = 1
    raw[6] = 0x7A  # rcv 7, snd 10
    raw[7] = 0b101  # app_limited 1, fastopen_client_fail 2
    struct.pack_into("=I", raw, 80, 42)  # snd_cwnd
    info = decode_tcp_info(bytes(raw))
    assert (info["snd_wscale"], info["rcv_wscale"]) == (10, 7)
    assert (info["delivery_rate_app_limited"], info["fastopen_client_fail"]) == (1, 2)
    assert info["snd_cwnd"] == 42 and info["total_retrans"] == 0
    assert "pacing_rate" not in info  # only what the kernel filled


def test_state_names_are_rfc_names() -> None:
    assert set(STATE_NAMES.values()) == {
        "ESTABLISHED",
        "SYN-SENT",
        "SYN-RECEIVED",
        "FIN-WAIT-1",
        "FIN-WAIT-2",
        "TIME-WAIT",
        "CLOSED",
        "CLOSE-WAIT",
        "LAST-ACK",
        "LISTEN",
        "CLOSING",
    }


def wait_states(
    lab: Lab, port: int, want: dict[tuple[int, int], str], timeout: float = 2.0
) -> dict[tuple[int, int], SockState]:
    deadline = time.monotonic() + timeout
    while True:
        socks = {(s.local[1], s.remote[1]): s for s in lab.peer_sockets(port=port)}
        if {k: s.state for k, s in socks.items()} == want or time.monotonic() > deadline:
            assert {k: s.state for k, s in socks.items()} == want
            return socks
        time.sleep(0.01)


@pytest.mark.root
def test_listen_established_close_wait_fin_wait_2(lab: Lab, agent: KernelAgent) -> None:
    ls = agent.listen(9000)
    wait_states(lab, 9000, {(9000, 0): "LISTEN"})
    c = agent.connect(lab.peer_ip, 9000)
    acc = agent.accept(ls.sock)
    cport = c.local[1]
    agent.send(c.sock, b"x" * 1000)
    socks = wait_states(
        lab, 9000, {(9000, 0): "LISTEN", (cport, 9000): "ESTABLISHED", (9000, cport): "ESTABLISHED"}
    )
    server = socks[(9000, cport)]
    assert server.rqueue == 1000  # unread
    assert server.local == (lab.peer_ip, 9000) and server.remote == (lab.peer_ip, cport)
    assert server.family == 4 and server.cwnd >= 10 and server.rtt_us is not None
    assert server.cc == lab.peer_cc and server.inode > 0
    agent.close(c.sock)  # client: FIN-WAIT-2 once acked; server: CLOSE-WAIT
    socks = wait_states(
        lab, 9000, {(9000, 0): "LISTEN", (cport, 9000): "FIN-WAIT-2", (9000, cport): "CLOSE-WAIT"}
    )
    assert socks[(9000, cport)].shutdown == 1  # the peer's FIN: read side done
    assert len(agent.recv(acc.sock, exact=1001)) == 1000  # all of it, then EOF
    agent.close(acc.sock)  # (closing with unread data would send RST instead of FIN)
    socks = wait_states(lab, 9000, {(9000, 0): "LISTEN", (cport, 9000): "TIME-WAIT"})
    assert socks[(cport, 9000)].tcp_info == {}  # TIME-WAIT sockets have no tcp_info


@pytest.mark.root
def test_agrees_with_pyroute2_diagsocket(lab: Lab, agent: KernelAgent) -> None:
    ls = agent.listen(9001)
    # A small locked receive buffer on one side: its rcv_wscale is 0 and differs from the
    # other side's, so a swapped nibble decode would show.
    c = agent.connect(lab.peer_ip, 9001, opts={"SO_RCVBUF": 4096})
    acc = agent.accept(ls.sock)
    agent.send(acc.sock, b"y" * 500)
    time.sleep(0.05)
    ours = {(s.local[1], s.remote[1]): s for s in lab.peer_sockets(port=9001)}

    def oracle() -> list[dict[str, object]]:
        from pyroute2 import DiagSocket
        from pyroute2.netlink.diag import SS_ALL

        with DiagSocket() as ds:
            ds.bind()
            out = []
            for fam in (socket.AF_INET, socket.AF_INET6):
                for m in ds.get_sock_stats(
                    family=fam, states=SS_ALL, extensions=(1 << 1) | (1 << 3)
                ):
                    info = m.get_attr("INET_DIAG_INFO")
                    out.append(
                        {
                            "ports": (m["idiag_sport"], m["idiag_dport"]),
                            "state": m["idiag_state"],
                            "rq": m["idiag_rqueue"],
                            "wq": m["idiag_wqueue"],
                            "cong": m.get_attr("INET_DIAG_CONG"),
                            "cwnd": info["tcpi_snd_cwnd"] if info else None,
                            "snd_wscale": info["tcpi_snd_wscale"] if info else None,
                            "mss": info["tcpi_snd_mss"] if info else None,
                        }
                    )
            return out

    theirs = {o["ports"]: o for o in lab.run_in_peer(oracle) if 9001 in o["ports"]}  # type: ignore[operator]
    assert set(theirs) == set(ours)
    for ports, o in theirs.items():
        s = ours[ports]
        assert s.state == STATE_NAMES[o["state"]]  # type: ignore[index]
        assert (s.rqueue, s.wqueue, s.cc) == (o["rq"], o["wq"], o["cong"])
        assert (s.cwnd, s.snd_wscale, s.tcp_info.get("snd_mss")) == (
            o["cwnd"],
            o["snd_wscale"],
            o["mss"],
        )
    client, server = ours[(c.local[1], 9001)], ours[(9001, c.local[1])]
    assert client.rcv_wscale == 0 and server.rcv_wscale > 0
    assert client.snd_wscale == server.rcv_wscale and server.snd_wscale == client.rcv_wscale
    assert client.rqueue == 500
    # ... and with the agent's own getsockopt(TCP_INFO).
    info = agent.info(c.sock)
    assert (info["rcv_wscale"], info["snd_wscale"]) == (client.rcv_wscale, client.snd_wscale)


@pytest.mark.root
def test_destroy_all_ends_what_the_peer_left() -> None:
    """A lab going down aborts its peer's sockets (SOCK_DESTROY), so an orphan does not
    outlive it; timewait sockets, which send nothing, are left to expire; and a
    socket its program closed (an orphan in FIN-WAIT) goes too."""
    from netemu.linux import run_in_netns

    with Lab() as lab:

        def work() -> tuple[socket.socket, socket.socket, socket.socket]:
            lst = socket.socket()
            lst.bind(("198.18.0.2", 8080))
            lst.listen()
            cli = socket.create_connection(("198.18.0.2", 8080))
            srv, _ = lst.accept()
            pending = socket.socket()
            pending.setblocking(False)
            pending.connect_ex(("198.18.0.1", 9))  # SYN-SENT to nobody
            srv.close()  # an orphan: FIN-WAIT-1, then a timewait socket in FIN-WAIT-2
            return lst, cli, pending

        held = run_in_netns(lab.peer_ns.fd, work)
        time.sleep(0.05)
        before = {s.state for s in lab.peer_sockets()}
        assert {"LISTEN", "SYN-SENT", "CLOSE-WAIT"} <= before, before
        # listener, SYN-SENT, CLOSE-WAIT, and the orphan while still a full socket
        assert lab._probe().destroy_all() >= 3
        after = [s for s in lab.peer_sockets() if s.state not in ("CLOSED", "FIN-WAIT-2")]
        assert after == [], after
        for s in held:
            s.close()
