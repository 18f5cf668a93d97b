"""The packet lines of packetdrill's language: ``< S 0:0(0) win 32792 <mss 1000>``,
their IP fields (``[ect0]``), flags, sequence numbers, TCP options, and the ICMP and
UDP lines (parser.y's tcp/icmp/udp packet rules, re-implemented).

Layer rule: builds on ``lexer``; ``parser`` (events, system calls, expressions)
builds on it.
"""

from __future__ import annotations

import re

from .lexer import Cursor, PktError, Tok
from .model import Direction, Ecn, IcmpSpec, IpSpec, PacketSpec, TcpOptionSpec

# Flag letters (packetdrill's, tcpdump's): '.' is ACK, '-' none, 'A' AccECN's AE bit
# (the 9th flag bit, once NS). A digit 0-7 is AccECN's ACE counter: E, W, A from its bits.
FLAG_BITS = {
    "F": 0x01,
    "S": 0x02,
    "R": 0x04,
    "P": 0x08,
    ".": 0x10,
    "U": 0x20,
    "E": 0x40,
    "W": 0x80,
    "A": 0x100,
}
_ACE_BITS = (FLAG_BITS["E"], FLAG_BITS["W"], FLAG_BITS["A"])

_ECN_WORDS: tuple[Ecn, ...] = ("noecn", "ect0", "ect1", "ce", "ect01")
_MAX_OPTION_BYTES = 40  # TCP header's 60 bytes less its 20 fixed ones
_U32 = 0xFFFFFFFF


class PacketParser(Cursor):
    # -- packets
    def packet(self) -> PacketSpec:
        d = self.next()
        direction: Direction = "<" if d.text == "<" else ">"  # the event saw one of them
        t = self.tok
        if self.is_word("ipv4", "ipv6", "gre", "GREv0", "mpls"):
            what = {
                "ipv4": "an outer IPv4 header ('ipv4 A > B:')",
                "ipv6": "an outer IPv6 header ('ipv6 A > B:')",
                "mpls": "MPLS",
            }.get(t.text, "GRE")
            raise self.error(f"packet encapsulation is not supported ({what})")
        ip = self.ip_info(direction)
        t = self.tok
        if self.is_word("udp"):
            return self.udp_packet(direction, ip)
        if self.is_word("icmp"):
            return self.icmp_packet(direction, ip)
        psp_spi = self.encap()
        src_port, dst_port = self.ports()
        t = self.tok
        flags_text, flags, ace = self.flags()
        start, end, length = self.seq()
        if length < 0 or (end - start) & _U32 != length:
            raise PktError(
                self.file,
                t.line,
                t.col,
                f"inconsistent sequence range {start}:{end}({length}): "
                f"end - start must equal the length",
            )
        pkt = PacketSpec(
            direction,
            flags,
            flags_text,
            start,
            end,
            length,
            ip=ip,
            ace=ace,
            src_port=src_port,
            dst_port=dst_port,
            psp_spi=psp_spi,
        )
        self.tcp_fields(pkt)
        if self.is_punct("<"):
            self.option_list(pkt, direction)
        if self.tok.kind == "word" or self.is_punct("["):
            raise self.error(f"unexpected {self.describe()} after the packet")
        return pkt

    def encap(self) -> int | None:
        """``encap psp spi N`` before the ports: the SPI, or None when there is none."""
        if not self.is_word("encap"):
            return None
        self.next()
        self.expect_word("psp", " after 'encap' (encap psp spi N)")
        self.expect_word("spi", " in 'encap psp spi N'")
        return self.expect_int("the SPI after 'spi'", 0, _U32, "spi")

    def tcp_fields(self, pkt: PacketSpec) -> None:
        """``ack N``, ``win N``, ``urg N`` after the sequence numbers, into ``pkt``."""
        while self.tok.kind == "word":
            w = self.tok
            if w.text == "ack":
                self.next()
                pkt.ack = self.expect_int("the acknowledgment number after 'ack'", 0, _U32, "ack")
            elif w.text == "win":
                self.next()
                pkt.win = self.expect_int("the window after 'win'")
                if not 0 <= pkt.win <= 65535:
                    raise self.error(f"window {pkt.win} is out of range (0-65535)", w)
            elif w.text == "urg":
                self.next()
                pkt.urg = self.expect_int(
                    "the urgent pointer after 'urg'", 0, 0xFFFF, "urgent pointer"
                )
            else:
                raise self.error(
                    f"unexpected '{w.text}' in a packet (after the sequence "
                    "numbers: 'ack N', 'win N', 'urg N', then '<options>')"
                )

    def option_list(self, pkt: PacketSpec, direction: Direction) -> None:
        """``<options>`` or ``<...>`` (any options, outbound only), into ``pkt``."""
        self.next()
        if self.tok.kind == "ellipsis":
            dots = self.next()
            pkt.options_any = True
            if direction == "<":
                raise self.error(
                    "'<...>' (any options) only makes sense on an outbound ('>') packet", dots
                )
        else:
            pkt.options = self.options()
        self.expect_punct(">", " to close the TCP option list")

    def ports(self) -> tuple[int | None, int | None]:
        if self.tok.kind != "int" or not self.is_punct(">", self.peek()):
            return None, None
        src = self.expect_int("the source port", 0, 0xFFFF, "source port")
        self.next()
        dst = self.expect_int("the destination port after '>'", 0, 0xFFFF, "destination port")
        return src, dst

    def seq(self) -> tuple[int, int, int]:
        start = self.expect_int(
            "the sequence number ('start:end(len)')", 0, _U32, "sequence number"
        )
        self.expect_punct(":", " in 'start:end(len)'")
        end = self.expect_int(
            "the end sequence number ('start:end(len)')", 0, _U32, "end sequence number"
        )
        self.expect_punct("(", " in 'start:end(len)'")
        length = self.expect_int(
            "the payload length ('start:end(len)')", 0, 0xFFFF, "payload length"
        )
        self.expect_punct(")", " after the payload length")
        return start, end, length

    def ip_info(self, direction: Direction) -> IpSpec | None:
        if not (self.is_punct("[") or self.is_punct("(")):
            return None
        open_tok = self.next()
        close = "]" if open_tok.text == "[" else ")"
        ip = IpSpec()
        while True:
            t = self.tok
            if t.kind != "word":
                raise self.error(
                    f"expected an IP header field (noecn, ect0, ect1, ce, ect01, "
                    f"tos 0x.., flowlabel 0x.., ttl N), found {self.describe()}"
                )
            self.next()
            w = t.text
            if w in _ECN_WORDS or w == "tos":
                if ip.ecn is not None or ip.tos is not None:
                    raise self.error("only one of noecn, ect0, ect1, ce, ect01 and tos", t)
                if w == "tos":
                    ip.tos = self.expect_int("the TOS byte after 'tos' (0x..)", 0, 0xFF, "tos")
                else:
                    ip.ecn = next(e for e in _ECN_WORDS if e == w)
            elif w == "flowlabel":
                if ip.flowlabel is not None:
                    raise self.error("flowlabel given twice", t)
                ip.flowlabel = self.expect_int(
                    "the flow label after 'flowlabel' (0x..)", 0, 0xFFFFF, "flowlabel"
                )
            elif w == "ttl":
                if ip.ttl is not None:
                    raise self.error("ttl given twice", t)
                ip.ttl = self.expect_int("the TTL after 'ttl'", 0, 255, "ttl")
            else:
                raise self.error(
                    f"unknown IP header field '{w}' (noecn, ect0, ect1, ce, "
                    "ect01, tos 0x.., flowlabel 0x.., ttl N)",
                    t,
                )
            if self.is_punct(","):
                self.next()
                continue
            if not self.is_punct(close):
                raise self.error(
                    f"expected ',' or '{close}' in the IP header fields, found {self.describe()}"
                )
            self.next()
            break
        ip.text = self.src[open_tok.pos : self.prev_end()]
        if ip.ecn == "ect01" and direction != ">":
            raise self.error("[ect01] can only be used with outbound packets", open_tok)
        return ip

    def udp_packet(self, direction: Direction, ip: IpSpec | None) -> PacketSpec:
        t = self.next()
        if ip is not None and ip.ecn is not None:
            raise self.error("ECN can only be used with TCP packets", t)
        src_port, dst_port = self.ports()
        self.expect_punct("(", " before the UDP payload length ('udp (N)')")
        length = self.expect_int("the UDP payload length", 0, 0xFFFF, "UDP payload length")
        self.expect_punct(")", " after the UDP payload length")
        if self.tok.kind == "word" or self.is_punct("<") or self.is_punct("["):
            raise self.error(f"unexpected {self.describe()} after a UDP packet")
        return PacketSpec(
            direction, 0, "", 0, 0, length, ip=ip, proto="udp", src_port=src_port, dst_port=dst_port
        )

    def icmp_packet(self, direction: Direction, ip: IpSpec | None) -> PacketSpec:
        first = self.next()
        t = self.tok
        if t.kind != "word" or t.text in ("mtu", "id"):
            raise self.error(
                f"expected the ICMP type (unreachable, packet_too_big, "
                f"time_exceeded, echo_request, type_N...), found {self.describe()}"
            )
        icmp = IcmpSpec(self.next().text)
        if self.tok.kind == "word" and self.tok.text not in ("mtu", "id"):
            icmp.code = self.next().text
        if self.is_word("mtu"):
            self.next()
            icmp.mtu = self.expect_int("the MTU after 'mtu'", 0, _U32, "mtu")
        if self.is_word("id"):
            self.next()
            icmp.echo_id = self.expect_int("the echo id after 'id'", 0, 0xFFFF, "echo id")
        if self.is_punct("["):
            self.next()
            if self.is_word("udp", "raw"):
                icmp.echoed = "udp" if self.next().text == "udp" else "raw"
                self.expect_punct("(", f" in '[{icmp.echoed} (N)]'")
                icmp.length = self.expect_int("a length", 0, 0xFFFF, "length")
                self.expect_punct(")", f" in '[{icmp.echoed} (N)]'")
            else:
                seq_tok = self.tok
                icmp.echoed = "tcp"
                icmp.start, icmp.end, icmp.length = self.seq()
                if (icmp.end - icmp.start) & _U32 != icmp.length:
                    raise PktError(
                        self.file,
                        seq_tok.line,
                        seq_tok.col,
                        f"inconsistent sequence range {icmp.start}:{icmp.end}"
                        f"({icmp.length}): end - start must equal the length",
                    )
            self.expect_punct("]", " to close the packet the ICMP message quotes")
        icmp.text = self.src[first.pos : self.prev_end()]
        if self.tok.kind == "word" or self.is_punct("<") or self.is_punct("["):
            raise self.error(
                f"unexpected {self.describe()} in an ICMP packet (icmp TYPE [CODE] "
                "[mtu N] [id N] [[start:end(len)]])"
            )
        return PacketSpec(direction, 0, "", 0, 0, 0, ip=ip, proto="icmp", icmp=icmp)

    def flags(self) -> tuple[str, int, int | None]:
        t = self.tok
        if self.is_punct("-"):
            self.next()
            return "-", 0, None
        text = ""
        if t.kind == "word":
            text = t.text
            self.next()
            if self.is_punct("."):
                text += "."
                self.next()
            elif self.tok.kind == "float":
                text += self.next().text
        elif t.kind == "float":  # ".5": ACK with an ACE counter of 5
            text = self.next().text
        elif self.is_punct("."):
            text = "."
            self.next()
        else:
            raise self.error(
                f"expected TCP flags (S, S., ., P., F., R, ...), found {self.describe()}"
            )
        bits = 0
        ace: int | None = None
        ecn = False
        for i, ch in enumerate(text):
            if ch in FLAG_BITS:
                if ch in "EWA":
                    if ace is not None:
                        raise PktError(
                            self.file,
                            t.line,
                            t.col + i,
                            f"conflicting TCP flag '{ch}' in '{text}' (an ACE "
                            "counter digit sets E, W and A)",
                        )
                    ecn = True
                bits |= FLAG_BITS[ch]
            elif "0" <= ch <= "7":
                if ace is not None or ecn:
                    raise PktError(
                        self.file,
                        t.line,
                        t.col + i,
                        f"conflicting TCP flag '{ch}' in '{text}' (one ACE counter "
                        "digit, and not with E, W or A)",
                    )
                ace = int(ch)
            else:
                raise PktError(
                    self.file,
                    t.line,
                    t.col + i,
                    f"unknown TCP flag '{ch}' in '{text}' (flags: F S R P . U E W "
                    "A, or an ACE digit 0-7)",
                )
        if ace is not None:
            for k, bit in enumerate(_ACE_BITS):
                if ace >> k & 1:
                    bits |= bit
        return text, bits, ace

    def _blob(self, name: str, max_bytes: int) -> tuple[bytes | str | None, str]:
        """The hex blob after FO/FOEXP/md5: bytes, or the word as written (a symbol)."""
        t = self.tok
        if t.kind not in ("word", "int") or t.text.startswith("-"):
            return None, ""
        self.next()
        text = t.text
        if not re.fullmatch(r"[0-9a-fA-F]*", text):
            if t.kind == "word" and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text):
                return text, text  # a name, for packetdrill's --define
            raise self.error(f"{name}: '{text}' is not a hex string", t)
        if len(text) % 2:
            raise self.error(f"{name}: '{text}' has an odd number of hex digits", t)
        if len(text) // 2 > max_bytes:
            raise self.error(
                f"{name}: {len(text) // 2} bytes is more than the {max_bytes} that fit", t
            )
        return bytes.fromhex(text), text

    def options(self) -> list[TcpOptionSpec]:
        out: list[TcpOptionSpec] = []
        while True:
            t = self.tok
            if t.kind != "word":
                raise self.error(
                    f"expected a TCP option (mss, wscale, sackOK, sack, TS, nop, "
                    f"eol, FO, FOEXP, md5, ECN), found {self.describe()}"
                )
            self.next()
            out.append(self._tcp_option(t))
            if self.is_punct(","):
                self.next()
                continue
            return out

    def _tcp_option(self, t: Tok) -> TcpOptionSpec:
        """One TCP option, its name ``t`` already read."""
        name = t.text
        if name in ("nop", "eol", "sackOK"):
            return TcpOptionSpec(name, None, t.line, t.col)
        if name == "mss":
            v = self.expect_int("the MSS after 'mss'")
            if not 0 <= v <= 65535:
                raise self.error(f"mss {v} is out of range (0-65535)", t)
            return TcpOptionSpec("mss", v, t.line, t.col)
        if name == "wscale":
            v = self.expect_int("the shift after 'wscale'")
            if not 0 <= v <= 255:
                raise self.error(f"wscale {v} is out of range (0-255)", t)
            return TcpOptionSpec("wscale", v, t.line, t.col)
        if name == "sack":
            return self._sack_option(t)
        if name == "TS":
            return self._ts_option(t)
        if name in ("FO", "FOEXP"):
            blob, raw = self._blob(f"{name} cookie", _MAX_OPTION_BYTES - (2 if name == "FO" else 4))
            return TcpOptionSpec(name, blob, t.line, t.col, raw)
        if name == "md5":
            blob, raw = self._blob("md5 digest", 16)
            if not raw:
                raise self.error(f"expected the digest (hex) after 'md5', found {self.describe()}")
            return TcpOptionSpec(name, blob, t.line, t.col, raw)
        if name == "ECN":
            return TcpOptionSpec(
                "ECN",
                self._accecn(),
                t.line,
                t.col,
                self.src[t.end : self.prev_end()].strip(),
            )
        if name in (
            "exp",
            "mpcapable",
            "dss",
            "mp_join",
            "mpjoin",
            "add_address",
            "tfo",
            "sack_perm",
            "mptcp",
        ):
            raise self.error(
                f"TCP option '{name}' is not in packetdrill's language "
                "(packetdrill knows: mss, wscale, sackOK, sack, TS, nop, "
                "eol, FO, FOEXP, md5, ECN)",
                t,
            )
        raise self.error(
            f"unknown TCP option '{name}' (packetdrill's options: mss, "
            "wscale, sackOK, sack, TS val N ecr N, nop, eol, FO, FOEXP, "
            "md5, ECN)",
            t,
        )

    def _sack_option(self, t: Tok) -> TcpOptionSpec:
        """``sack L:R ...``: one to four blocks."""
        blocks = []
        while self.tok.kind == "int":
            a = self.expect_int("a SACK block's left edge", 0, _U32, "SACK left edge")
            self.expect_punct(":", " in a SACK block 'left:right'")
            b = self.expect_int("a SACK block's right edge", 0, _U32, "SACK right edge")
            blocks.append((a, b))
        if not blocks:
            raise self.error(
                f"expected SACK blocks 'left:right' after 'sack', found {self.describe()}"
            )
        if len(blocks) > 4:
            raise self.error("at most 4 SACK blocks fit in a TCP header", t)
        return TcpOptionSpec("sack", tuple(blocks), t.line, t.col)

    def _ts_option(self, t: Tok) -> TcpOptionSpec:
        """``TS val N ecr N``: both kept to 32 bits."""
        if not self.is_word("val"):
            raise self.error(f"expected 'TS val N ecr N', found {self.describe()}")
        self.next()
        val = self.expect_int("the TS value after 'val'")
        if not self.is_word("ecr"):
            raise self.error(f"expected 'ecr N' after the TS value, found {self.describe()}")
        self.next()
        ecr = self.expect_int("the TS echo reply after 'ecr'")
        return TcpOptionSpec("TS", (val & _U32, ecr & _U32), t.line, t.col)

    def _accecn(self) -> tuple[tuple[str, int], ...]:
        """``e0b N [ceb N [e1b N]]`` or ``e1b N [ceb N [e0b N]]``."""
        t = self.tok
        if not self.is_word("e0b", "e1b"):
            raise self.error(f"expected 'e0b N' or 'e1b N' after 'ECN', found {self.describe()}")
        first = t.text
        order = (first, "ceb", "e1b" if first == "e0b" else "e0b")
        fields = []
        for k, name in enumerate(order):
            if k and not self.is_word(name):
                break
            self.next()
            fields.append(
                (
                    name,
                    self.expect_int(
                        f"the AccECN counter after '{name}'", 0, 0xFFFFFF, f"AccECN {name}"
                    ),
                )
            )
        return tuple(fields)
