"""Captures built with scapy, packet by packet, for the tests that read them as a real
capture (`netemu show`, tshark): ``Cap``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scapy.all import IP, TCP, Ether, Packet, Raw, wrpcap

C, S = ("10.0.0.1", 40000), ("10.0.0.2", 80)


class Cap:
    """Packets with times: ``c.at(dt, C, "PA", seq, ack, n=100)`` sends n bytes from C,
    ``dt`` seconds after the previous packet; seq and ack are relative to each side's
    ISN (``isn``: C's 1000, S's 5000; give another endpoint its own before it sends)."""

    def __init__(self) -> None:
        self.t = 1_700_000_000.0
        self.pkts: list[Packet] = []
        self.isn: dict[tuple[str, int], int] = {C: 1000, S: 5000}

    def at(
        self,
        dt: float,
        src: tuple[str, int],
        flags: str,
        seq: int,
        ack: int = 0,
        n: int = 0,
        dst: tuple[str, int] | None = None,
        win: int = 502,
        opts: list[Any] | None = None,
    ) -> None:
        dst = dst or (S if src == C else C)
        tcp = TCP(
            sport=src[1],
            dport=dst[1],
            flags=flags,
            seq=self.isn[src] + seq,
            ack=self.isn[dst] + ack if "A" in flags else 0,
            window=win,
            options=opts or [],
        )
        p = Ether() / IP(src=src[0], dst=dst[0]) / tcp
        if n:
            p = p / Raw(b"x" * n)
        self.t += dt
        p.time = self.t
        self.pkts.append(p)

    def write(self, tmp: Path, name: str = "cap.pcap") -> Path:
        path = tmp / name
        wrpcap(str(path), self.pkts)
        return path
