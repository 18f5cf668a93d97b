"""Wire codec benchmark: parse and build rates of one Ethernet + IPv4 + TCP frame
(MSS, SACK-permitted, timestamps and window scale options, 100 bytes of payload),
netemu against scapy, measured in the same run with interleaved rounds; and the same
segment in an Ethernet + IPv6 frame (``parse_ratio_v6``, ``build_ratio_v6``, issue 20),
against scapy's IPv6, in the same rounds.

netemu parse = ``parse_frame`` with both checksums verified and every option
decoded into records; netemu build = ``build_tcp_frame`` from records, both
checksums computed. scapy parse = ``Ether(bytes)`` (a full dissection); scapy
build = ``raw(Ether()/IP()/TCP(options=...)/payload)``.
"""

from __future__ import annotations

from collections.abc import Callable

from .common import interleaved_best

PARSE_TARGET = 50.0
BUILD_TARGET = 100.0

SRC_MAC, DST_MAC = "02:00:00:00:00:01", "02:00:00:00:00:02"
SRC_IP, DST_IP = "198.18.0.1", "198.18.0.2"
SRC_IP6, DST_IP6 = "2001:2::1", "2001:2::2"
SPORT, DPORT = 40000, 8080
SEQ, ACK_NO = 0x12345678, 0x9ABCDEF0
WINDOW = 64240
MSS, WSCALE, TSVAL, TSECR = 1460, 7, 1_000_000, 2_000_000
PAYLOAD = bytes(range(100))
IP_ID = 4242


# (build a frame, parse the frame, the frame's bytes)
Ops = tuple[Callable[[], bytes], Callable[[], object], bytes]


def _netemu_ops(six: bool = False) -> Ops:
    from netemu.wire import (
        ACK,
        NOP,
        PSH,
        SACK_PERMITTED,
        IPv4Packet,
        IPv6Packet,
        MssOption,
        TcpSegment,
        TimestampOption,
        WindowScaleOption,
        build_tcp_frame,
        parse_frame,
    )

    def build() -> bytes:
        ip = (
            IPv6Packet(SRC_IP6, DST_IP6, 6)
            if six
            else IPv4Packet(SRC_IP, DST_IP, 6, identification=IP_ID)
        )
        tcp = TcpSegment(
            SPORT,
            DPORT,
            SEQ,
            ACK_NO,
            ACK | PSH,
            WINDOW,
            PAYLOAD,
            (
                MssOption(MSS),
                SACK_PERMITTED,
                TimestampOption(TSVAL, TSECR),
                NOP,
                WindowScaleOption(WSCALE),
            ),
        )
        return build_tcp_frame(SRC_MAC, DST_MAC, ip, tcp)

    frame = build()

    def parse() -> object:
        return parse_frame(frame, True)

    return build, parse, frame


def _scapy_ops(six: bool = False) -> Ops:
    from scapy.compat import raw
    from scapy.layers.inet import IP, TCP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    opts = [
        ("MSS", MSS),
        ("SAckOK", b""),
        ("Timestamp", (TSVAL, TSECR)),
        ("NOP", None),
        ("WScale", WSCALE),
    ]

    def build() -> bytes:
        ip = (
            IPv6(src=SRC_IP6, dst=DST_IP6)
            if six
            else IP(src=SRC_IP, dst=DST_IP, id=IP_ID, flags="DF")
        )
        return raw(
            Ether(src=SRC_MAC, dst=DST_MAC)
            / ip
            / TCP(
                sport=SPORT,
                dport=DPORT,
                seq=SEQ,
                ack=ACK_NO,
                flags="PA",
                window=WINDOW,
                options=opts,
            )
            / PAYLOAD
        )

    frame = build()

    def parse() -> object:
        return Ether(frame)

    return build, parse, frame


def _check(netemu_frame: bytes, scapy_frame: bytes) -> None:
    """Both sides work on the same bytes, and parse them to the same fields."""
    from scapy.layers.inet import TCP
    from scapy.layers.l2 import Ether

    from netemu.wire import parse_frame

    if netemu_frame != scapy_frame:
        raise AssertionError("netemu and scapy build different frames for the benchmark")
    tcp = parse_frame(netemu_frame).tcp
    t = Ether(scapy_frame)[TCP]
    if tcp is None or tcp.timestamp is None:
        raise AssertionError("netemu parses no TCP timestamp in the benchmark frame")
    if (tcp.mss, tcp.wscale, tcp.timestamp.tsval, len(tcp.payload)) != (
        MSS,
        t.options[4][1],
        dict(t.options)["Timestamp"][0],
        len(t.payload),
    ):
        raise AssertionError("netemu and scapy disagree on the benchmark frame")


def run(quick: bool = False) -> dict:
    ops: dict[str, Callable[[], object]] = {}
    for six, tail in ((False, ""), (True, "_v6")):
        n_build, n_parse, n_frame = _netemu_ops(six)
        s_build, s_parse, s_frame = _scapy_ops(six)
        _check(n_frame, s_frame)
        ops |= {
            f"scapy_parse_ops{tail}": s_parse,
            f"parse_ops{tail}": n_parse,
            f"scapy_build_ops{tail}": s_build,
            f"build_ops{tail}": n_build,
        }
    seconds, rounds = (0.05, 5) if quick else (0.08, 20)
    best = interleaved_best(ops, seconds, rounds)
    parse_ratio = best["parse_ops"] / best["scapy_parse_ops"]
    build_ratio = best["build_ops"] / best["scapy_build_ops"]
    v6 = {
        **{f"{k}_v6": round(best[f"{k}_v6"]) for k in ("parse_ops", "build_ops")},
        **{f"scapy_{k}_v6": round(best[f"scapy_{k}_v6"]) for k in ("parse_ops", "build_ops")},
        "parse_ratio_v6": round(best["parse_ops_v6"] / best["scapy_parse_ops_v6"], 1),
        "build_ratio_v6": round(best["build_ops_v6"] / best["scapy_build_ops_v6"], 1),
    }
    return {
        **v6,
        "parse_ops": round(best["parse_ops"]),
        "build_ops": round(best["build_ops"]),
        "scapy_parse_ops": round(best["scapy_parse_ops"]),
        "scapy_build_ops": round(best["scapy_build_ops"]),
        "parse_ratio": round(parse_ratio, 1),
        "build_ratio": round(build_ratio, 1),
        "parse_target": PARSE_TARGET,
        "build_target": BUILD_TARGET,
        "meets_targets": parse_ratio >= PARSE_TARGET and build_ratio >= BUILD_TARGET,
    }


def render(result: dict) -> str:
    rows = [
        (
            "parse",
            result["parse_ops"],
            result["scapy_parse_ops"],
            result["parse_ratio"],
            result["parse_target"],
        ),
        (
            "build",
            result["build_ops"],
            result["scapy_build_ops"],
            result["build_ratio"],
            result["build_target"],
        ),
    ]
    lines = [
        "wire codec: one Eth+IPv4+TCP frame (MSS, SACK-perm, TS, WS options, 100 B payload),",
        "and the same segment in an Eth+IPv6 frame (v6);",
        "best of interleaved rounds, netemu and scapy alike",
        f"{'':8} {'netemu ops/s':>13} {'scapy ops/s':>12} {'ratio':>8} {'target':>7}",
    ]
    if "parse_ratio_v6" in result:
        rows += [
            (
                f"{op} v6",
                result[f"{op}_ops_v6"],
                result[f"scapy_{op}_ops_v6"],
                result[f"{op}_ratio_v6"],
                result[f"{op}_target"],
            )
            for op in ("parse", "build")
        ]
    for name, ours, theirs, ratio, target in rows:
        mark = "ok" if ratio >= target else "BELOW"
        lines.append(f"{name:8} {ours:>13,} {theirs:>12,} {ratio:>7.1f}x {target:>6.0f}x  {mark}")
    lines.append("meets targets: " + ("yes" if result["meets_targets"] else "no"))
    return "\n".join(lines)
