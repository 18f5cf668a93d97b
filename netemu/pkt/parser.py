"""Parse packetdrill's ``.pkt`` scripts into ``netemu.pkt.model`` events.

The language (packetdrill's lexer.l / parser.y, re-implemented): a script is an
optional block of ``--option=value`` lines, an optional backquoted init command,
then events. Each event is a time and an action::

    0     socket(..., SOCK_STREAM, IPPROTO_TCP) = 3           // system call
    +.1   < S 0:0(0) win 32792 <mss 1000,sackOK,nop,wscale 7> // inbound packet
    +0    > S. 0:0(0) ack 1 <...>                             // outbound packet
    +0...0.2 read(4, ..., 1000) = 1000                        // blocking call
    0.1~0.2 > . 1:1(0) ack 1001                               // time range
    *     > F. 1:1(0) ack 1                                   // any time
    +0    `sysctl -q net.ipv4.tcp_sack=0`                     // shell command
    +0    %{ assert tcpi_snd_cwnd == 10 }%                    // Python over TCP_INFO

``//`` and ``/* */`` are comments. Every error is ``PktError`` with the file, line
and column of the offending token; ``parse_file`` raises the first one.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..source_error import SourceError
from .model import (
    Code,
    Command,
    Event,
    Expr,
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


# Flag letters (packetdrill's, tcpdump's): '.' is ACK, '-' none.
FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, ".": 0x10, "U": 0x20, "E": 0x40,
             "W": 0x80}

# --- lexer ------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<cpp>//[^\n]*)
  | (?P<c>/\*(?:[^*]|\*(?!/))*\*/)
  | (?P<code>%\{(?:[^}]|\}(?!%))*\}%)
  | (?P<bq>`(?:\\.|[^`])*`)
  | (?P<string>"(?:\\.|[^"\\])*")
  | (?P<option>--[A-Za-z0-9_]+=[^\s]*)
  | (?P<ellipsis>\.\.\.)
  | (?P<ip>[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)
  | (?P<hex>0x[0-9a-fA-F]+)
  | (?P<float>-?[0-9]*\.[0-9]+)
  | (?P<int>-?[0-9]+(?![A-Za-z_]))
  | (?P<word>[A-Za-z0-9_]+)
  | (?P<punct>.)
""", re.VERBOSE | re.DOTALL)


class Tok:
    __slots__ = ("col", "kind", "line", "text", "value")

    def __init__(self, kind: str, text: str, line: int, col: int) -> None:
        self.kind = kind
        self.text = text
        self.line = line
        self.col = col
        self.value: object = text

    def __repr__(self) -> str:
        return f"Tok({self.kind}, {self.text!r}, {self.line}:{self.col})"


def tokenize(text: str, file: str = "<script>") -> list[Tok]:
    toks: list[Tok] = []
    line, line_start, pos, n = 1, 0, 0, len(text)
    while pos < n:
        m = _TOKEN.match(text, pos)
        assert m is not None  # the last alternative matches any character
        kind = m.lastgroup or "punct"
        s = m.group()
        col = pos - line_start + 1
        if kind == "c" and not s.endswith("*/"):
            raise PktError(file, line, col, "unterminated /* comment")
        if kind not in ("ws", "cpp", "c"):
            tok = Tok(kind, s, line, col)
            if kind == "int":
                tok.value = int(s)
            elif kind == "hex":
                tok.value = int(s, 16)
                tok.kind = "int"
            elif kind == "float":
                tok.value = float(s)
            elif kind in ("string", "bq"):
                tok.value = re.sub(r"\\(.)", r"\1", s[1:-1])
            elif kind == "code":
                tok.value = s[2:-2]
            elif kind == "punct" and s in "`\"":
                raise PktError(file, line, col, f"unterminated {'backquote' if s == '`' else 'string'}")
            elif kind == "punct" and s == "%" and text.startswith("%{", pos):
                raise PktError(file, line, col, "unterminated %{ code block (no closing }%)")
            toks.append(tok)
        nl = s.count("\n")
        if nl:
            line += nl
            line_start = pos + s.rfind("\n") + 1
        pos = m.end()
    toks.append(Tok("eof", "", line, pos - line_start + 1))
    return toks


# --- parser -----------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, file: str) -> None:
        self.file = file
        self.lines = text.splitlines()
        self.toks = tokenize(text, file)
        self.i = 0

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

    def error(self, message: str, tok: Tok | None = None) -> PktError:
        t = tok or self.tok
        return PktError(self.file, t.line, t.col, message)

    def is_punct(self, ch: str, tok: Tok | None = None) -> bool:
        t = tok or self.tok
        return t.kind == "punct" and t.text == ch

    def expect_punct(self, ch: str, what: str = "") -> Tok:
        if not self.is_punct(ch):
            raise self.error(f"expected '{ch}'{what}, found {self.describe()}")
        return self.next()

    def expect_int(self, what: str) -> int:
        t = self.tok
        if t.kind != "int":
            raise self.error(f"expected {what}, found {self.describe()}")
        self.next()
        return int(t.value)  # type: ignore[call-overload]

    def describe(self, tok: Tok | None = None) -> str:
        t = tok or self.tok
        if t.kind == "eof":
            return "the end of the script"
        if t.kind == "code":
            return "a %{ }% block"
        text = t.text if len(t.text) <= 30 else t.text[:27] + "..."
        return f"'{text}'"

    def same_line(self, tok: Tok, line: int) -> bool:
        return tok.kind != "eof" and tok.line == line

    # -- script
    def script(self) -> Script:
        sc = Script(self.file, description=self._leading_comment())
        while self.tok.kind == "option":
            t = self.next()
            name, _, value = t.text[2:].partition("=")
            sc.options.append(ScriptOption(name, value, t.line, t.col))
        while self.tok.kind == "bq":
            t = self.next()
            sc.init_commands.append(Event(t.line, t.col, TimeSpec("abs", 0.0, text="init"),
                                          Command(str(t.value)), self._source(t.line)))
        while self.tok.kind != "eof":
            sc.events.append(self.event())
        if not sc.events:
            raise PktError(self.file, self.tok.line, self.tok.col, "the script has no events")
        return sc

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
        line = d.line
        direction = d.text
        t = self.tok
        if self.is_punct("["):
            raise self.error("IP header fields ('[ect0]', '[noecn]', ...) are not supported")
        if t.kind == "word" and t.text in ("udp", "icmp", "UDP", "ICMP"):
            raise self.error(f"{t.text} packets are not supported (only TCP)")
        flags_text, flags = self.flags()
        start = self.expect_int("the sequence number ('start:end(len)')")
        self.expect_punct(":", " in 'start:end(len)'")
        end = self.expect_int("the end sequence number ('start:end(len)')")
        self.expect_punct("(", " in 'start:end(len)'")
        length = self.expect_int("the payload length ('start:end(len)')")
        self.expect_punct(")", " after the payload length")
        if length < 0 or (end - start) & 0xFFFFFFFF != length:
            raise PktError(self.file, t.line, t.col,
                           f"inconsistent sequence range {start}:{end}({length}): "
                           f"end - start must equal the length")
        pkt = PacketSpec(direction, flags, flags_text, start, end, length)  # type: ignore[arg-type]
        while self.same_line(self.tok, line) and self.tok.kind == "word":
            w = self.tok
            if w.text == "ack":
                self.next()
                pkt.ack = self.expect_int("the acknowledgment number after 'ack'")
            elif w.text == "win":
                self.next()
                pkt.win = self.expect_int("the window after 'win'")
                if not 0 <= pkt.win <= 65535:
                    raise self.error(f"window {pkt.win} is out of range (0-65535)", w)
            elif w.text in ("urg", "ecr", "mtu"):
                raise self.error(f"'{w.text}' in a packet is not supported")
            else:
                break
        if self.is_punct("<") and self.same_line(self.tok, line):
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
        if pkt.flags & FLAG_BITS["."] and pkt.ack is None and direction == "<":
            raise self.error("an inbound packet with the ACK flag needs 'ack N'", t)
        return pkt

    def flags(self) -> tuple[str, int]:
        t = self.tok
        if self.is_punct("-"):
            self.next()
            return "-", 0
        text = ""
        if t.kind == "word":
            text = t.text
            self.next()
            if self.is_punct(".") and self.tok.col == t.col + len(t.text):
                text += "."
                self.next()
        elif self.is_punct("."):
            text = "."
            self.next()
        else:
            raise self.error(f"expected TCP flags (S, S., ., P., F., R, ...), found "
                             f"{self.describe()}")
        bits = 0
        for i, ch in enumerate(text):
            if ch not in FLAG_BITS:
                raise PktError(self.file, t.line, t.col + i,
                               f"unknown TCP flag '{ch}' in '{text}' (flags: F S R P . U E W)")
            bits |= FLAG_BITS[ch]
        return text, bits

    def options(self) -> list[TcpOptionSpec]:
        out: list[TcpOptionSpec] = []
        while True:
            t = self.tok
            if t.kind != "word":
                raise self.error(f"expected a TCP option (mss, wscale, sackOK, sack, TS, nop, "
                                 f"eol), found {self.describe()}")
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
                    a = self.expect_int("a SACK block's left edge")
                    self.expect_punct(":", " in a SACK block 'left:right'")
                    b = self.expect_int("a SACK block's right edge")
                    blocks.append((a, b))
                if not blocks:
                    raise self.error(f"expected SACK blocks 'left:right' after 'sack', found "
                                     f"{self.describe()}")
                if len(blocks) > 4:
                    raise self.error("at most 4 SACK blocks fit in a TCP header", t)
                out.append(TcpOptionSpec("sack", tuple(blocks), t.line, t.col))
            elif name == "TS":
                if not (self.tok.kind == "word" and self.tok.text == "val"):
                    raise self.error(f"expected 'TS val N ecr N', found {self.describe()}")
                self.next()
                val = self.expect_int("the TS value after 'val'")
                if not (self.tok.kind == "word" and self.tok.text == "ecr"):
                    raise self.error(f"expected 'ecr N' after the TS value, found "
                                     f"{self.describe()}")
                self.next()
                ecr = self.expect_int("the TS echo reply after 'ecr'")
                out.append(TcpOptionSpec("TS", (val & 0xFFFFFFFF, ecr & 0xFFFFFFFF),
                                         t.line, t.col))
            elif name in ("FO", "FOEXP", "md5", "mpcapable", "dss", "mp_join", "exp", "tfo"):
                raise self.error(f"TCP option '{name}' is not supported (supported: mss, "
                                 "wscale, sackOK, sack, TS, nop, eol)", t)
            else:
                raise self.error(f"unknown TCP option '{name}' (supported: mss, wscale, "
                                 "sackOK, sack, TS val N ecr N, nop, eol)", t)
            if self.is_punct(","):
                self.next()
                continue
            return out

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
        line = name_tok.line
        t = self.tok
        if t.kind == "word" and self.same_line(t, line) and re.fullmatch(r"E[A-Z0-9]+", t.text):
            self.next()
            call.errno = t.text
        if self.is_punct("(") and self.same_line(self.tok, line):  # a note: (flags O_RDWR)
            depth = 0
            words = []
            while True:
                t = self.next()
                if t.kind == "eof":
                    raise self.error("unterminated '(' note after the result")
                if self.is_punct("(", t):
                    depth += 1
                elif self.is_punct(")", t):
                    depth -= 1
                    if depth == 0:
                        break
                words.append(t.text)
            call.note = " ".join(words[1:]) if words and words[0] == "(" else " ".join(words)
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
        first = self.primary()
        if not self.is_punct("|"):
            return first
        items = [first]
        while self.is_punct("|"):
            self.next()
            items.append(self.primary())
        return Expr("or", items, first.line, first.col)

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
            if self.tok.kind == "ellipsis":
                self.next()
            return Expr("string", t.value, t.line, t.col)
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
            return Expr("word", t.text, t.line, t.col)
        if self.is_punct("["):
            self.next()
            items = [] if self.is_punct("]") else self.expr_list("]")
            self.expect_punct("]")
            return Expr("list", items, t.line, t.col)
        if self.is_punct("{"):
            self.next()
            fields: dict[str, Expr] = {}
            n = 0
            while not self.is_punct("}"):
                k = self.tok
                if k.kind == "word" and self.is_punct("=", self.peek()):
                    self.next()
                    self.next()
                    fields[k.text] = self.expr()
                else:
                    fields[str(n)] = self.expr()
                    n += 1
                if self.is_punct(","):
                    self.next()
                elif not self.is_punct("}"):
                    raise self.error(f"expected ',' or '}}', found {self.describe()}")
            self.next()
            return Expr("struct", fields, t.line, t.col)
        raise self.error(f"expected a value, found {self.describe()}")


def parse_text(text: str, file: str = "<script>") -> Script:
    return _Parser(text, file).script()


def parse_file(path: str | Path) -> Script:
    p = Path(path)
    try:
        text = p.read_text()
    except UnicodeDecodeError as e:
        raise PktError(str(p), 0, 0, f"not a text file ({e.reason})") from None
    return parse_text(text, str(p))
