"""Parse packetdrill's ``.pkt`` scripts into ``netemu.pkt.model`` events.

The language (packetdrill's lexer.l / parser.y, re-implemented): a script is an
optional block of ``--option[=value]`` lines, an optional backquoted init command,
then events. Each event is a time and an action::

    0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3           // system call
    +.1   < S 0:0(0) win 32792 <mss 1000,sackOK,nop,wscale 7> // inbound packet
    +0    > S. 0:0(0) ack 1 <...>                             // outbound packet
    +0    > [ect0] P. 1:11(10) ack 1 urg 5 <FO abcd1234>       // IP fields, urgent pointer
    +0    < icmp unreachable frag_needed mtu 1200 [1:1461(1460)]  // ICMP
    +0    < udp (100)                                         // UDP
    +0...0.2 read(4, ..., 1000) = 1000                        // blocking call
    0.1~0.2 > . 1:1(0) ack 1001                               // time range
    *     > F. 1:1(0) ack 1                                   // any time
    +0    `sysctl -q net.ipv4.tcp_sack=0`                     // shell command
    +0    %{ assert tcpi_snd_cwnd == 10 }%                    // Python over TCP_INFO

``//`` and ``/* */`` are comments. ``--define=SYM=value`` replaces the word SYM
afterwards, as packetdrill's lexer does. Every error is ``PktError`` with the file,
line and column of the offending token; ``parse_file`` raises the first one.

Refused, with a "not supported" error: packet encapsulations (an outer ``ipv4``/
``ipv6`` header, ``gre``, ``mpls``) and the GRE / MPLS expressions of system calls.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..source_error import SourceError, long_number
from .model import (
    Code,
    Command,
    Event,
    Expr,
    IcmpSpec,
    IpSpec,
    PacketSpec,
    Script,
    ScriptOption,
    Syscall,
    TcpOptionSpec,
    TimeSpec,
)

__all__ = ["FLAG_BITS", "PktError", "parse_file", "parse_text"]


class PktError(SourceError):
    """A problem in a .pkt script at 1-based ``line``/``col`` (0: unknown)."""


# Flag letters (packetdrill's, tcpdump's): '.' is ACK, '-' none, 'A' AccECN's AE bit
# (the 9th flag bit, once NS). A digit 0-7 is AccECN's ACE counter: E, W, A from its bits.
FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20, "E": 0x40,
             "W": 0x80, "A": 0x100}
_ACE_BITS = (FLAG_BITS["E"], FLAG_BITS["W"], FLAG_BITS["A"])

# Words packetdrill's lexer takes as keywords: a --define cannot replace them.
_RESERVED = frozenset((
    "sa_family", "sin_port", "sin_addr", "msg_name", "msg_iov", "msg_flags", "msg_control",
    "cmsg_data", "cmsg_level", "cmsg_type", "ee_errno", "ee_origin", "ee_type", "ee_code",
    "ee_info", "ee_data", "scm_sec", "scm_nsec", "fd", "u32", "u64", "ptr", "events", "revents",
    "onoff", "linger", "htons", "ipv4", "ipv6", "icmp", "udp", "GREv0", "gre", "raw", "sum", "off",
    "key", "seq", "none", "checksum", "present", "encap", "psp", "spi", "mpls", "label", "tc",
    "ttl", "inet_addr", "inet6_addr", "ack", "eol", "ecr", "mss", "mtu", "nop", "sack", "sackOK",
    "md5", "TS", "FO", "FOEXP", "ECN", "e0b", "e1b", "ceb", "tos", "flowlabel", "flags", "Flags",
    "val", "win", "urg", "wscale", "ect01", "ect0", "ect1", "noecn", "ce", "id",
))

_ECN_WORDS = ("noecn", "ect0", "ect1", "ce", "ect01")
_MAX_DEPTH = 100  # nesting of [ ] { } ( ) in an expression
_MAX_OPTION_BYTES = 40  # TCP header's 60 bytes less its 20 fixed ones
_MAX_TIME = 86400.0  # a day, as a scenario's durations: beyond, a run waits until killed
MAX_CHARS = 256 * 1024  # a script, as a scenario (packetdrill's own are under 12 KB)
MAX_EVENTS = 5000  # packetdrill's longest script has under 300
# C0 controls but tab and line ends, and DEL: text has none (a NUL was read as the end
# of a word, and the error named the word)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_U32 = 0xFFFFFFFF

# --- lexer ------------------------------------------------------------------------------

_STR = r'"(?:\\.|[^"\\])*"'
_TOKEN = re.compile(rf"""
    (?P<ws>[ \t\r\n]+)
  | (?P<cpp>//[^\n]*)
  | (?P<c>/\*(?:[^*]|\*(?!/))*(?:\*/)?)
  | (?P<code>%\{{(?:[^}}]|\}}(?!%))*\}}%)
  | (?P<bq>`(?:\\.|[^`\\])*`)
  | (?P<string>{_STR})
  | (?P<option>--[A-Za-z0-9_]+
        (?:[ \t]*=[ \t]*(?:{_STR}|[A-Za-z0-9_]+=(?:{_STR}|`(?:\\.|[^`\\])*`)|[^\s]*))?)
  | (?P<ellipsis>\.\.\.)
  | (?P<ip>[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)
  | (?P<hex>0x[0-9a-fA-F]+(?![0-9A-Za-z_]))
  | (?P<float>-?[0-9]*\.[0-9]+(?![0-9]))
  | (?P<int>-[0-9]+(?![0-9])|[0-9]+(?![A-Za-z0-9_]))
  | (?P<word>[A-Za-z0-9_]+)
  | (?P<punct>.)
""", re.VERBOSE | re.DOTALL)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "a": "\a", "b": "\b", "f": "\f",
            "v": "\v", "e": "\x1b"}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)


def _unescape(s: str) -> str:
    """C escapes of a string literal: \\n \\t \\x41 \\101 \\" \\\\ (others: the char)."""
    if "\\" not in s:
        return s

    def one(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] == "x" and len(e) > 1:
            return chr(int(e[1:], 16))
        if e[0] in "01234567" and (len(e) > 1 or e != "0"):
            return chr(int(e, 8) & 0xFF)
        return _ESCAPES.get(e, e)

    return _ESCAPE.sub(one, s)


class Tok:
    __slots__ = ("col", "end", "kind", "line", "pos", "text", "value")

    def __init__(self, kind: str, text: str, line: int, col: int, pos: int = 0) -> None:
        self.kind = kind
        self.text = text
        self.line = line
        self.col = col
        self.pos = pos
        self.end = pos + len(text)
        self.value: object = text

    def __repr__(self) -> str:
        return f"Tok({self.kind}, {self.text!r}, {self.line}:{self.col})"


def tokenize(text: str, file: str = "<script>") -> list[Tok]:
    toks: list[Tok] = []
    line, line_start, pos, n = 1, 0, 0, len(text)
    match = _TOKEN.match
    while pos < n:
        m = match(text, pos)
        assert m is not None  # the last alternative matches any character
        kind = m.lastgroup or "punct"
        s = m.group()
        col = pos - line_start + 1
        if kind == "c" and not (s.endswith("*/") and len(s) >= 4):
            raise PktError(file, line, col, "unterminated /* comment")
        if kind not in ("ws", "cpp", "c"):
            tok = Tok(kind, s, line, col, pos)
            if kind == "int":
                tok.value = int(s)
            elif kind == "hex":
                tok.value = int(s, 16)
                tok.kind = "int"
            elif kind == "float":
                tok.value = float(s)
            elif kind == "string":
                tok.value = _unescape(s[1:-1])
            elif kind == "bq":
                tok.value = s[1:-1]  # as written: the shell reads the backslashes
            elif kind == "code":
                tok.value = s[2:-2]
            elif kind == "punct" and s in "`\"":
                raise PktError(file, line, col,
                               f"unterminated {'backquote' if s == '`' else 'string'}")
            elif kind == "punct" and s == "%" and text.startswith("%{", pos):
                raise PktError(file, line, col, "unterminated %{ code block (no closing }%)")
            toks.append(tok)
        nl = s.count("\n")
        if nl:
            line += nl
            line_start = pos + s.rfind("\n") + 1
        pos = m.end()
    toks.append(Tok("eof", "", line, pos - line_start + 1, pos))
    return toks


def _strtol(s: str) -> int | None:
    """C's strtol(s, &end, 0) when it takes all of ``s`` (a --define's value)."""
    m = re.fullmatch(r"\s*([-+]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", s)
    if m is None:
        return None
    body = m.group(2)
    if body[:2] in ("0x", "0X"):
        v = int(body, 16)
    elif body.startswith("0"):
        v = int(body, 8)
    else:
        v = int(body)
    return -v if m.group(1) == "-" else v


# --- parser -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, file: str, defines: dict[str, str] | None = None) -> None:
        self.file = file
        self.defines = dict(defines or {})
        self.src = text
        self.lines = text.splitlines()
        self.toks = tokenize(text, file)
        self.i = 0
        self.depth = 0

    # -- token helpers
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def prev_end(self) -> int:
        return self.toks[self.i - 1].end if self.i else 0

    def error(self, message: str, tok: Tok | None = None) -> PktError:
        t = tok or self.tok
        return PktError(self.file, t.line, t.col, message)

    def is_punct(self, ch: str, tok: Tok | None = None) -> bool:
        t = tok or self.tok
        return t.kind == "punct" and t.text == ch

    def is_word(self, *words: str, tok: Tok | None = None) -> bool:
        t = tok or self.tok
        return t.kind == "word" and t.text in words

    def expect_punct(self, ch: str, what: str = "") -> Tok:
        if not self.is_punct(ch):
            raise self.error(f"expected '{ch}'{what}, found {self.describe()}")
        return self.next()

    def expect_word(self, word: str, what: str = "") -> Tok:
        if not self.is_word(word):
            raise self.error(f"expected '{word}'{what}, found {self.describe()}")
        return self.next()

    def expect_int(self, what: str, lo: int | None = None, hi: int | None = None,
                   name: str = "") -> int:
        t = self.tok
        if t.kind != "int":
            hint = ""
            if t.kind == "word" and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", t.text):
                hint = f" (to use a name, define it: --define={t.text}=...)"
            raise self.error(f"expected {what}, found {self.describe()}{hint}")
        self.next()
        v = int(t.value)  # type: ignore[call-overload]
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise self.error(f"{name or what} {t.text} is out of range ({lo}-{hi})", t)
        return v

    def describe(self, tok: Tok | None = None) -> str:
        t = tok or self.tok
        if t.kind == "eof":
            return "the end of the script"
        if t.kind == "code":
            return "a %{ }% block"
        text = t.text if len(t.text) <= 30 else t.text[:27] + "..."
        return f"'{text}'"

    # -- script
    def script(self) -> Script:
        sc = Script(self.file, description=self._leading_comment())
        while self.tok.kind == "option":
            sc.options.append(self._option(self.next()))
        self._apply_defines(sc.options)
        while self.tok.kind == "bq":
            t = self.next()
            sc.init_commands.append(Event(t.line, t.col, TimeSpec("abs", 0.0, text="init"),
                                          Command(str(t.value)), self._source(t.line)))
        while self.tok.kind != "eof":
            if len(sc.events) == MAX_EVENTS:  # 43,000 took 1.5 s to read and check
                raise self.error(f"more than {MAX_EVENTS} events: this is event "
                                 f"{MAX_EVENTS + 1}")
            sc.events.append(self.event())
        if not sc.events:
            raise PktError(self.file, self.tok.line, self.tok.col, "the script has no events")
        return sc

    def _option(self, t: Tok) -> ScriptOption:
        m = re.match(r"--([A-Za-z0-9_]+)(?:[ \t]*=[ \t]*(.*))?", t.text, re.DOTALL)
        assert m is not None
        name, value = m.group(1), m.group(2) or ""
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = _unescape(value[1:-1])
        return ScriptOption(name, value, t.line, t.col)

    def _apply_defines(self, options: list[ScriptOption]) -> None:
        """packetdrill's lexer replaces a word defined with --define=SYM=value: by a
        string ("..."), a command (`...`), an integer, or another word."""
        defs = self.defines
        for o in options:
            if o.name == "define" and "=" in o.value and not o.value.startswith("="):
                sym, _, val = o.value.partition("=")
                defs[sym] = val
        if not defs:
            return
        for k in range(self.i, len(self.toks)):
            t = self.toks[k]
            if t.kind != "word" or t.text not in defs or t.text in _RESERVED:
                continue
            val = defs[t.text]
            if len(val) >= 2 and val[0] == '"' and val[-1] == '"':
                t.kind, t.value = "string", _unescape(val[1:-1])
            elif len(val) >= 2 and val[0] == "`" and val[-1] == "`":
                t.kind, t.value = "bq", val[1:-1]
            elif (n := _strtol(val)) is not None:
                t.kind, t.value = "int", n
                t.text = val
            else:
                t.value = t.text = val

    def _leading_comment(self) -> str:
        out: list[str] = []
        for raw in self.lines:
            s = raw.strip()
            if (not s and not out) or s.startswith("--"):
                continue
            if not s.startswith("//"):
                break
            body = s[2:].strip()
            if body.startswith("--") or body.startswith("`"):
                continue
            out.append(body)
        return " ".join(x for x in out if x).strip()

    def _source(self, line: int) -> str:
        return self.lines[line - 1].strip() if 0 < line <= len(self.lines) else ""

    # -- one event
    def event(self) -> Event:
        start = self.tok
        if start.kind == "option":
            raise self.error(f"option {start.text.split('=')[0]} must come before the first "
                             "event")
        if start.kind in ("bq", "code"):  # a command/snippet without a time: right after
            time = TimeSpec("rel", 0.0, text="")
        else:
            time = self.time()
        end: float | None = None
        end_text = ""
        if self.tok.kind == "ellipsis":
            self.next()
            rel = False
            if self.is_punct("+"):
                self.next()
                rel = True
            t = self.tok
            if t.kind not in ("int", "float"):
                raise self.error(f"expected the end time of a blocking call after '...', "
                                 f"found {self.describe()}")
            self.next()
            end = float(t.value)  # type: ignore[arg-type]
            if end < 0:
                raise self.error("times cannot be negative", t)
            if end > _MAX_TIME:
                raise self.error(f"a time of at most {_MAX_TIME:.0f} s (a day), got "
                                 f"{t.text}", t)
            end_text = ("+" if rel else "") + t.text
            if rel and not time.relative:
                raise self.error("a relative end time ('...+T') needs a relative start time", t)
        t = self.tok
        action: PacketSpec | Syscall | Command | Code
        if self.is_punct("<") or self.is_punct(">"):
            if end is not None:
                raise self.error("only a system call may have an end time ('...')", t)
            action = self.packet()
        elif t.kind == "bq":
            self.next()
            action = Command(str(t.value))
        elif t.kind == "code":
            self.next()
            action = Code(str(t.value))
        elif t.kind == "word" and self.is_punct("(", self.peek()):
            action = self.syscall()
            action.end = end
            action.end_text = end_text
        elif t.kind == "word":
            raise self.error(f"expected a packet ('<' or '>'), a system call, a `command` or "
                             f"a %{{ }}% block after the time, found {self.describe()} "
                             "(a system call needs its arguments in parentheses)")
        else:
            raise self.error(f"expected a packet ('<' or '>'), a system call, a `command` or "
                             f"a %{{ }}% block after the time, found {self.describe()}")
        if end is not None and not isinstance(action, Syscall):
            raise self.error("only a system call may have an end time ('...')", t)
        return Event(start.line, start.col, time, action, self._source(start.line))

    def _number(self, what: str) -> tuple[float, str]:
        t = self.tok
        if t.kind not in ("int", "float"):
            raise self.error(f"expected {what}, found {self.describe()}")
        self.next()
        value = float(t.value)  # type: ignore[arg-type]
        if value < 0:
            raise self.error("times cannot be negative", t)
        if value > _MAX_TIME:
            raise self.error(f"a time of at most {_MAX_TIME:.0f} s (a day), got {t.text}", t)
        return value, t.text

    def time(self) -> TimeSpec:
        if self.is_punct("*"):
            self.next()
            return TimeSpec("any", 0.0, text="*")
        rel = False
        if self.is_punct("+"):
            self.next()
            rel = True
        first = self.tok
        if first.kind not in ("int", "float"):
            raise self.error(f"expected a time ('0', '+.1', '0.1~0.2' or '*') at the start of "
                             f"an event, found {self.describe()}")
        start, text = self._number("a time")
        text = ("+" if rel else "") + text
        if self.is_punct("~"):
            self.next()
            rel2 = False
            if self.is_punct("+"):
                self.next()
                rel2 = True
            if rel2 != rel:
                raise self.error("both ends of a time range must be relative ('+a~+b') or "
                                 "both absolute ('a~b')")
            end_tok = self.tok
            end, text2 = self._number("the end of the time range")
            if end < start:
                raise self.error(f"time range ends ({end:g}) before it starts ({start:g})",
                                 end_tok)
            return TimeSpec("rrange" if rel else "range", start, end,
                            text + "~" + ("+" if rel2 else "") + text2)
        return TimeSpec("rel" if rel else "abs", start, text=text)

    # -- packets
    def packet(self) -> PacketSpec:
        d = self.next()
        direction = d.text
        t = self.tok
        if self.is_word("ipv4", "ipv6", "gre", "GREv0", "mpls"):
            what = {"ipv4": "an outer IPv4 header ('ipv4 A > B:')",
                    "ipv6": "an outer IPv6 header ('ipv6 A > B:')",
                    "mpls": "MPLS"}.get(t.text, "GRE")
            raise self.error(f"packet encapsulation is not supported ({what})")
        ip = self.ip_info(direction)
        t = self.tok
        if self.is_word("udp"):
            return self.udp_packet(direction, ip)
        if self.is_word("icmp"):
            return self.icmp_packet(direction, ip)
        psp_spi = None
        if self.is_word("encap"):
            self.next()
            self.expect_word("psp", " after 'encap' (encap psp spi N)")
            self.expect_word("spi", " in 'encap psp spi N'")
            psp_spi = self.expect_int("the SPI after 'spi'", 0, _U32, "spi")
        src_port, dst_port = self.ports()
        t = self.tok
        flags_text, flags, ace = self.flags()
        start, end, length = self.seq()
        if length < 0 or (end - start) & _U32 != length:
            raise PktError(self.file, t.line, t.col,
                           f"inconsistent sequence range {start}:{end}({length}): "
                           f"end - start must equal the length")
        pkt = PacketSpec(direction, flags, flags_text, start, end, length,  # type: ignore[arg-type]
                         ip=ip, ace=ace, src_port=src_port, dst_port=dst_port,
                         psp_spi=psp_spi)
        while self.tok.kind == "word":
            w = self.tok
            if w.text == "ack":
                self.next()
                pkt.ack = self.expect_int("the acknowledgment number after 'ack'", 0, _U32,
                                          "ack")
            elif w.text == "win":
                self.next()
                pkt.win = self.expect_int("the window after 'win'")
                if not 0 <= pkt.win <= 65535:
                    raise self.error(f"window {pkt.win} is out of range (0-65535)", w)
            elif w.text == "urg":
                self.next()
                pkt.urg = self.expect_int("the urgent pointer after 'urg'", 0, 0xFFFF,
                                          "urgent pointer")
            else:
                raise self.error(f"unexpected '{w.text}' in a packet (after the sequence "
                                 "numbers: 'ack N', 'win N', 'urg N', then '<options>')")
        if self.is_punct("<"):
            self.next()
            if self.tok.kind == "ellipsis":
                dots = self.next()
                pkt.options_any = True
                if direction == "<":
                    raise self.error("'<...>' (any options) only makes sense on an outbound "
                                     "('>') packet", dots)
            else:
                pkt.options = self.options()
            self.expect_punct(">", " to close the TCP option list")
        if self.tok.kind == "word" or self.is_punct("["):
            raise self.error(f"unexpected {self.describe()} after the packet")
        return pkt

    def ports(self) -> tuple[int | None, int | None]:
        if self.tok.kind != "int" or not self.is_punct(">", self.peek()):
            return None, None
        src = self.expect_int("the source port", 0, 0xFFFF, "source port")
        self.next()
        dst = self.expect_int("the destination port after '>'", 0, 0xFFFF, "destination port")
        return src, dst

    def seq(self) -> tuple[int, int, int]:
        start = self.expect_int("the sequence number ('start:end(len)')", 0, _U32,
                                "sequence number")
        self.expect_punct(":", " in 'start:end(len)'")
        end = self.expect_int("the end sequence number ('start:end(len)')", 0, _U32,
                              "end sequence number")
        self.expect_punct("(", " in 'start:end(len)'")
        length = self.expect_int("the payload length ('start:end(len)')", 0, 0xFFFF,
                                 "payload length")
        self.expect_punct(")", " after the payload length")
        return start, end, length

    def ip_info(self, direction: str) -> IpSpec | None:
        if not (self.is_punct("[") or self.is_punct("(")):
            return None
        open_tok = self.next()
        close = "]" if open_tok.text == "[" else ")"
        ip = IpSpec()
        while True:
            t = self.tok
            if t.kind != "word":
                raise self.error(f"expected an IP header field (noecn, ect0, ect1, ce, ect01, "
                                 f"tos 0x.., flowlabel 0x.., ttl N), found {self.describe()}")
            self.next()
            w = t.text
            if w in _ECN_WORDS or w == "tos":
                if ip.ecn is not None or ip.tos is not None:
                    raise self.error("only one of noecn, ect0, ect1, ce, ect01 and tos", t)
                if w == "tos":
                    ip.tos = self.expect_int("the TOS byte after 'tos' (0x..)", 0, 0xFF, "tos")
                else:
                    ip.ecn = w  # type: ignore[assignment]
            elif w == "flowlabel":
                if ip.flowlabel is not None:
                    raise self.error("flowlabel given twice", t)
                ip.flowlabel = self.expect_int("the flow label after 'flowlabel' (0x..)", 0,
                                               0xFFFFF, "flowlabel")
            elif w == "ttl":
                if ip.ttl is not None:
                    raise self.error("ttl given twice", t)
                ip.ttl = self.expect_int("the TTL after 'ttl'", 0, 255, "ttl")
            else:
                raise self.error(f"unknown IP header field '{w}' (noecn, ect0, ect1, ce, "
                                 "ect01, tos 0x.., flowlabel 0x.., ttl N)", t)
            if self.is_punct(","):
                self.next()
                continue
            if not self.is_punct(close):
                raise self.error(f"expected ',' or '{close}' in the IP header fields, found "
                                 f"{self.describe()}")
            self.next()
            break
        ip.text = self.src[open_tok.pos:self.prev_end()]
        if ip.ecn == "ect01" and direction != ">":
            raise self.error("[ect01] can only be used with outbound packets", open_tok)
        return ip

    def udp_packet(self, direction: str, ip: IpSpec | None) -> PacketSpec:
        t = self.next()
        if ip is not None and ip.ecn is not None:
            raise self.error("ECN can only be used with TCP packets", t)
        src_port, dst_port = self.ports()
        self.expect_punct("(", " before the UDP payload length ('udp (N)')")
        length = self.expect_int("the UDP payload length", 0, 0xFFFF, "UDP payload length")
        self.expect_punct(")", " after the UDP payload length")
        if self.tok.kind == "word" or self.is_punct("<") or self.is_punct("["):
            raise self.error(f"unexpected {self.describe()} after a UDP packet")
        return PacketSpec(direction, 0, "", 0, 0, length, ip=ip,  # type: ignore[arg-type]
                          proto="udp", src_port=src_port, dst_port=dst_port)

    def icmp_packet(self, direction: str, ip: IpSpec | None) -> PacketSpec:
        first = self.next()
        t = self.tok
        if t.kind != "word" or t.text in ("mtu", "id"):
            raise self.error(f"expected the ICMP type (unreachable, packet_too_big, "
                             f"time_exceeded, echo_request, type_N...), found {self.describe()}")
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
                icmp.echoed = self.next().text  # type: ignore[assignment]
                self.expect_punct("(", f" in '[{icmp.echoed} (N)]'")
                icmp.length = self.expect_int("a length", 0, 0xFFFF, "length")
                self.expect_punct(")", f" in '[{icmp.echoed} (N)]'")
            else:
                seq_tok = self.tok
                icmp.echoed = "tcp"
                icmp.start, icmp.end, icmp.length = self.seq()
                if (icmp.end - icmp.start) & _U32 != icmp.length:
                    raise PktError(self.file, seq_tok.line, seq_tok.col,
                                   f"inconsistent sequence range {icmp.start}:{icmp.end}"
                                   f"({icmp.length}): end - start must equal the length")
            self.expect_punct("]", " to close the packet the ICMP message quotes")
        icmp.text = self.src[first.pos:self.prev_end()]
        if self.tok.kind == "word" or self.is_punct("<") or self.is_punct("["):
            raise self.error(f"unexpected {self.describe()} in an ICMP packet (icmp TYPE [CODE] "
                             "[mtu N] [id N] [[start:end(len)]])")
        return PacketSpec(direction, 0, "", 0, 0, 0, ip=ip,  # type: ignore[arg-type]
                          proto="icmp", icmp=icmp)

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
            raise self.error(f"expected TCP flags (S, S., ., P., F., R, ...), found "
                             f"{self.describe()}")
        bits = 0
        ace: int | None = None
        ecn = False
        for i, ch in enumerate(text):
            if ch in FLAG_BITS:
                if ch in "EWA":
                    if ace is not None:
                        raise PktError(self.file, t.line, t.col + i,
                                       f"conflicting TCP flag '{ch}' in '{text}' (an ACE "
                                       "counter digit sets E, W and A)")
                    ecn = True
                bits |= FLAG_BITS[ch]
            elif "0" <= ch <= "7":
                if ace is not None or ecn:
                    raise PktError(self.file, t.line, t.col + i,
                                   f"conflicting TCP flag '{ch}' in '{text}' (one ACE counter "
                                   "digit, and not with E, W or A)")
                ace = int(ch)
            else:
                raise PktError(self.file, t.line, t.col + i,
                               f"unknown TCP flag '{ch}' in '{text}' (flags: F S R P . U E W "
                               "A, or an ACE digit 0-7)")
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
            raise self.error(f"{name}: {len(text) // 2} bytes is more than the {max_bytes} "
                             "that fit", t)
        return bytes.fromhex(text), text

    def options(self) -> list[TcpOptionSpec]:
        out: list[TcpOptionSpec] = []
        while True:
            t = self.tok
            if t.kind != "word":
                raise self.error(f"expected a TCP option (mss, wscale, sackOK, sack, TS, nop, "
                                 f"eol, FO, FOEXP, md5, ECN), found {self.describe()}")
            self.next()
            name = t.text
            if name in ("nop", "eol", "sackOK"):
                out.append(TcpOptionSpec(name, None, t.line, t.col))
            elif name == "mss":
                v = self.expect_int("the MSS after 'mss'")
                if not 0 <= v <= 65535:
                    raise self.error(f"mss {v} is out of range (0-65535)", t)
                out.append(TcpOptionSpec("mss", v, t.line, t.col))
            elif name == "wscale":
                v = self.expect_int("the shift after 'wscale'")
                if not 0 <= v <= 255:
                    raise self.error(f"wscale {v} is out of range (0-255)", t)
                out.append(TcpOptionSpec("wscale", v, t.line, t.col))
            elif name == "sack":
                blocks = []
                while self.tok.kind == "int":
                    a = self.expect_int("a SACK block's left edge", 0, _U32, "SACK left edge")
                    self.expect_punct(":", " in a SACK block 'left:right'")
                    b = self.expect_int("a SACK block's right edge", 0, _U32,
                                        "SACK right edge")
                    blocks.append((a, b))
                if not blocks:
                    raise self.error(f"expected SACK blocks 'left:right' after 'sack', found "
                                     f"{self.describe()}")
                if len(blocks) > 4:
                    raise self.error("at most 4 SACK blocks fit in a TCP header", t)
                out.append(TcpOptionSpec("sack", tuple(blocks), t.line, t.col))
            elif name == "TS":
                if not self.is_word("val"):
                    raise self.error(f"expected 'TS val N ecr N', found {self.describe()}")
                self.next()
                val = self.expect_int("the TS value after 'val'")
                if not self.is_word("ecr"):
                    raise self.error(f"expected 'ecr N' after the TS value, found "
                                     f"{self.describe()}")
                self.next()
                ecr = self.expect_int("the TS echo reply after 'ecr'")
                out.append(TcpOptionSpec("TS", (val & _U32, ecr & _U32), t.line, t.col))
            elif name in ("FO", "FOEXP"):
                v, raw = self._blob(f"{name} cookie", _MAX_OPTION_BYTES - (2 if name == "FO"
                                                                            else 4))
                out.append(TcpOptionSpec(name, v, t.line, t.col, raw))
            elif name == "md5":
                v, raw = self._blob("md5 digest", 16)
                if not raw:
                    raise self.error(f"expected the digest (hex) after 'md5', found "
                                     f"{self.describe()}")
                out.append(TcpOptionSpec(name, v, t.line, t.col, raw))
            elif name == "ECN":
                out.append(TcpOptionSpec("ECN", self._accecn(), t.line, t.col,
                                         self.src[t.end:self.prev_end()].strip()))
            elif name in ("exp", "mpcapable", "dss", "mp_join", "mpjoin", "add_address",
                          "tfo", "sack_perm", "mptcp"):
                raise self.error(f"TCP option '{name}' is not in packetdrill's language "
                                 "(packetdrill knows: mss, wscale, sackOK, sack, TS, nop, "
                                 "eol, FO, FOEXP, md5, ECN)", t)
            else:
                raise self.error(f"unknown TCP option '{name}' (packetdrill's options: mss, "
                                 "wscale, sackOK, sack, TS val N ecr N, nop, eol, FO, FOEXP, "
                                 "md5, ECN)", t)
            if self.is_punct(","):
                self.next()
                continue
            return out

    def _accecn(self) -> tuple[tuple[str, int], ...]:
        """``e0b N [ceb N [e1b N]]`` or ``e1b N [ceb N [e0b N]]``."""
        t = self.tok
        if not self.is_word("e0b", "e1b"):
            raise self.error(f"expected 'e0b N' or 'e1b N' after 'ECN', found "
                             f"{self.describe()}")
        first = t.text
        order = (first, "ceb", "e1b" if first == "e0b" else "e0b")
        fields = []
        for k, name in enumerate(order):
            if k and not self.is_word(name):
                break
            self.next()
            fields.append((name, self.expect_int(f"the AccECN counter after '{name}'",
                                                 0, 0xFFFFFF, f"AccECN {name}")))
        return tuple(fields)

    # -- system calls
    def syscall(self) -> Syscall:
        name_tok = self.next()
        self.expect_punct("(")
        args: list[Expr] = []
        if not self.is_punct(")"):
            args = self.expr_list(")")
        self.expect_punct(")", f" to close the arguments of {name_tok.text}()")
        if not self.is_punct("="):
            raise self.error(f"expected '= <result>' after {name_tok.text}(...), found "
                             f"{self.describe()}")
        self.next()
        ret = self.expr()
        call = Syscall(name_tok.text, args, ret, line=name_tok.line, col=name_tok.col)
        t = self.tok
        if t.kind == "word":  # no event starts with a word: this is the errno
            self.next()
            call.errno = t.text
        if self.is_punct("("):  # a note: (Resource temporarily unavailable), (flags O_RDWR)
            open_tok = self.next()
            depth = 1
            words = []
            while True:
                w = self.next()
                if w.kind == "eof":
                    raise self.error("unterminated '(' note after the result", open_tok)
                if self.is_punct("(", w):
                    depth += 1
                elif self.is_punct(")", w):
                    depth -= 1
                    if depth == 0:
                        break
                words.append(w.text)
            call.note = " ".join(words)
        if call.errno is not None and not (ret.kind == "int" and ret.value == -1):
            raise PktError(self.file, t.line, t.col,
                           f"an errno ({call.errno}) goes with a result of -1")
        return call

    def expr_list(self, close: str) -> list[Expr]:
        out = [self.expr()]
        while self.is_punct(","):
            self.next()
            out.append(self.expr())
        if not self.is_punct(close):
            raise self.error(f"expected ',' or '{close}', found {self.describe()}")
        return out

    def expr(self) -> Expr:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"expression nested too deeply (more than {_MAX_DEPTH} levels)")
        try:
            first = self.primary()
            if not self.is_punct("|"):
                return first
            items = [first]
            while self.is_punct("|"):
                self.next()
                items.append(self.primary())
            return Expr("or", items, first.line, first.col)
        finally:
            self.depth -= 1

    def primary(self) -> Expr:
        t = self.tok
        if t.kind == "ellipsis":
            self.next()
            return Expr("ellipsis", None, t.line, t.col)
        if t.kind == "int":
            self.next()
            return Expr("int", t.value, t.line, t.col)
        if self.is_punct("-") and self.peek().kind == "word":
            raise self.error("negative symbolic values are not supported")
        if t.kind == "string":
            self.next()
            s = str(t.value)
            while self.tok.kind == "string":  # "ab" "cd": one string
                s += str(self.next().value)
            e = Expr("string", s, t.line, t.col)
            if self.tok.kind == "ellipsis":
                self.next()
                e.prefix = True
            return e
        if t.kind == "ip":
            self.next()
            return Expr("string", t.text, t.line, t.col)
        if t.kind == "word":
            self.next()
            if self.is_punct("("):
                self.next()
                args = [] if self.is_punct(")") else self.expr_list(")")
                self.expect_punct(")")
                return Expr("call", (t.text, args), t.line, t.col)
            if self.is_punct("="):
                self.next()
                return Expr("assign", (t.text, self.expr()), t.line, t.col)
            if t.text == "NULL":
                return Expr("null", None, t.line, t.col)
            return Expr("word", t.text, t.line, t.col)
        if self.is_punct("["):
            self.next()
            items = [] if self.is_punct("]") else self.expr_list("]")
            self.expect_punct("]")
            return Expr("list", items, t.line, t.col)
        if self.is_punct("{"):
            return self.struct()
        if t.kind == "float":
            raise self.error(f"expected a value, found {self.describe()} (no fractions in "
                             "system call values)")
        raise self.error(f"expected a value, found {self.describe()}")

    def struct(self) -> Expr:
        t = self.next()
        fields: dict[str, Expr] = {}
        n = 0
        while not self.is_punct("}"):
            k = self.tok
            if self.is_punct("("):
                raise self.error("MPLS stack expressions ('{(label N, tc N, ttl N)}') are "
                                 "not supported")
            if self.is_word("flags", "Flags") and (self.is_punct("[", self.peek())
                                                   or self.peek().kind == "int"):
                raise self.error("GRE header expressions ('{flags [...] sum N ...}') are "
                                 "not supported")
            if k.kind == "word" and self.is_punct("=", self.peek()):
                self.next()
                self.next()
                fields[k.text] = self.expr()
            elif (k.kind == "word" and self.is_punct("(", self.peek())
                  and self.peek(2).kind in ("int", "ellipsis")
                  and self.is_punct(")", self.peek(3)) and self.is_punct("=", self.peek(4))):
                count_tok = self.peek(2)
                self.i += 5
                e = self.expr()
                if count_tok.kind == "ellipsis":
                    e.count_any = True
                else:
                    e.count = int(count_tok.value)  # type: ignore[call-overload]
                fields[k.text] = e
            else:
                fields[str(n)] = self.expr()
                n += 1
            if self.is_punct(","):
                self.next()
            elif not self.is_punct("}"):
                raise self.error(f"expected ',' or '}}', found {self.describe()}")
        self.next()
        return Expr("struct", fields, t.line, t.col)


def _at(text: str, i: int) -> tuple[int, int]:
    """The line and column of ``text[i]``."""
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def _too_big(file: str, text: str, size: str) -> PktError:
    cut = text.rfind("\n", 0, MAX_CHARS) + 1
    return PktError(file, *_at(text, cut), f"the file is {size}, more than a script may be "
                    f"({MAX_CHARS} characters): it goes on past here")


def parse_text(text: str, file: str = "<script>",
               defines: dict[str, str] | None = None) -> Script:
    """Parse a script's text. ``defines``: packetdrill's command-line ``--define
    SYM=value`` (the script's own --define lines override them)."""
    if len(text) > MAX_CHARS:  # 5 MB of events took 7 s and 550 MB to read
        raise _too_big(file, text, f"{len(text)} characters")
    m = _CONTROL.search(text)
    if m:
        raise PktError(file, *_at(text, m.start()), f"a control character ({m.group()!r}) "
                       "in the script: .pkt files are text")
    long = long_number(text)
    if long is not None:
        raise PktError(file, *_at(text, long[0]), long[1])
    return _Parser(text, file, defines).script()


def parse_file(path: str | Path, defines: dict[str, str] | None = None) -> Script:
    """Parse a script file; ``OSError`` when it cannot be read. Only as much is read as
    can hold ``MAX_CHARS`` characters and one more."""
    p = Path(path)
    cap = 4 * MAX_CHARS + 4  # UTF-8 takes at most 4 bytes a character
    with open(p, "rb") as f:
        raw = f.read(cap + 1)
        size = os.fstat(f.fileno()).st_size
    if len(raw) > cap:
        raise _too_big(str(p), raw[:cap].decode("utf-8", "replace"),
                       f"{size} bytes" if size >= len(raw) else f"over {cap} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        start = raw.rfind(b"\n", 0, e.start) + 1
        col = len(raw[start:e.start].decode("utf-8")) + 1  # valid up to the bad byte
        raise PktError(str(p), raw.count(b"\n", 0, e.start) + 1, col,
                       f"not UTF-8 text: byte {raw[e.start]:#04x} ({e.reason})") from None
    # as read_text() read it: universal newlines (a lone CR ends a line too)
    return parse_text(text.replace("\r\n", "\n").replace("\r", "\n"), str(p), defines)
