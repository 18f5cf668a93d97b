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

Parts: ``lexer`` (tokens, the cursor over them), ``packet_parser`` (packet lines);
this module the script, its events, times, system calls and expressions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..source_error import long_number
from .lexer import PktError, Tok, strtol, unescape
from .model import (
    Code,
    Command,
    Event,
    Expr,
    PacketSpec,
    Script,
    ScriptOption,
    Syscall,
    TimeSpec,
)
from .packet_parser import FLAG_BITS, PacketParser

__all__ = ["FLAG_BITS", "PktError", "parse_file", "parse_text"]

# Words packetdrill's lexer takes as keywords: a --define cannot replace them.
_RESERVED = frozenset(
    (
        "sa_family",
        "sin_port",
        "sin_addr",
        "msg_name",
        "msg_iov",
        "msg_flags",
        "msg_control",
        "cmsg_data",
        "cmsg_level",
        "cmsg_type",
        "ee_errno",
        "ee_origin",
        "ee_type",
        "ee_code",
        "ee_info",
        "ee_data",
        "scm_sec",
        "scm_nsec",
        "fd",
        "u32",
        "u64",
        "ptr",
        "events",
        "revents",
        "onoff",
        "linger",
        "htons",
        "ipv4",
        "ipv6",
        "icmp",
        "udp",
        "GREv0",
        "gre",
        "raw",
        "sum",
        "off",
        "key",
        "seq",
        "none",
        "checksum",
        "present",
        "encap",
        "psp",
        "spi",
        "mpls",
        "label",
        "tc",
        "ttl",
        "inet_addr",
        "inet6_addr",
        "ack",
        "eol",
        "ecr",
        "mss",
        "mtu",
        "nop",
        "sack",
        "sackOK",
        "md5",
        "TS",
        "FO",
        "FOEXP",
        "ECN",
        "e0b",
        "e1b",
        "ceb",
        "tos",
        "flowlabel",
        "flags",
        "Flags",
        "val",
        "win",
        "urg",
        "wscale",
        "ect01",
        "ect0",
        "ect1",
        "noecn",
        "ce",
        "id",
    )
)

_MAX_DEPTH = 100  # nesting of [ ] { } ( ) in an expression
_MAX_TIME = 86400.0  # a day, as a scenario's durations: beyond, a run waits until killed
MAX_CHARS = 256 * 1024  # a script, as a scenario (packetdrill's own are under 12 KB)
MAX_EVENTS = 5000  # packetdrill's longest script has under 300
# C0 controls but tab and line ends, and DEL: text has none (a NUL was read as the end
# of a word, and the error named the word)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class _Parser(PacketParser):
    # -- script
    def script(self) -> Script:
        sc = Script(self.file, description=self._leading_comment())
        while self.tok.kind == "option":
            sc.options.append(self._option(self.next()))
        self._apply_defines(sc.options)
        while self.tok.kind == "bq":
            t = self.next()
            sc.init_commands.append(
                Event(
                    t.line,
                    t.col,
                    TimeSpec("abs", 0.0, text="init"),
                    Command(str(t.value)),
                    self._source(t.line),
                )
            )
        while self.tok.kind != "eof":
            if len(sc.events) == MAX_EVENTS:  # 43,000 took 1.5 s to read and check
                raise self.error(f"more than {MAX_EVENTS} events: this is event {MAX_EVENTS + 1}")
            sc.events.append(self.event())
        if not sc.events:
            raise PktError(self.file, self.tok.line, self.tok.col, "the script has no events")
        return sc

    def _option(self, t: Tok) -> ScriptOption:
        m = re.match(r"--([A-Za-z0-9_]+)(?:[ \t]*=[ \t]*(.*))?", t.text, re.DOTALL)
        assert m is not None
        name, value = m.group(1), m.group(2) or ""
        if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
            value = unescape(value[1:-1])
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
                t.kind, t.value = "string", unescape(val[1:-1])
            elif len(val) >= 2 and val[0] == "`" and val[-1] == "`":
                t.kind, t.value = "bq", val[1:-1]
            elif (n := strtol(val)) is not None:
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
            raise self.error(f"option {start.text.split('=')[0]} must come before the first event")
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
                raise self.error(
                    f"expected the end time of a blocking call after '...', found {self.describe()}"
                )
            self.next()
            end = float(t.value)
            if end < 0:
                raise self.error("times cannot be negative", t)
            if end > _MAX_TIME:
                raise self.error(f"a time of at most {_MAX_TIME:.0f} s (a day), got {t.text}", t)
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
            raise self.error(
                f"expected a packet ('<' or '>'), a system call, a `command` or "
                f"a %{{ }}% block after the time, found {self.describe()} "
                "(a system call needs its arguments in parentheses)"
            )
        else:
            raise self.error(
                f"expected a packet ('<' or '>'), a system call, a `command` or "
                f"a %{{ }}% block after the time, found {self.describe()}"
            )
        if end is not None and not isinstance(action, Syscall):
            raise self.error("only a system call may have an end time ('...')", t)
        return Event(start.line, start.col, time, action, self._source(start.line))

    def _number(self, what: str) -> tuple[float, str]:
        t = self.tok
        if t.kind not in ("int", "float"):
            raise self.error(f"expected {what}, found {self.describe()}")
        self.next()
        value = float(t.value)
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
            raise self.error(
                f"expected a time ('0', '+.1', '0.1~0.2' or '*') at the start of "
                f"an event, found {self.describe()}"
            )
        start, text = self._number("a time")
        text = ("+" if rel else "") + text
        if self.is_punct("~"):
            self.next()
            rel2 = False
            if self.is_punct("+"):
                self.next()
                rel2 = True
            if rel2 != rel:
                raise self.error(
                    "both ends of a time range must be relative ('+a~+b') or both absolute ('a~b')"
                )
            end_tok = self.tok
            end, text2 = self._number("the end of the time range")
            if end < start:
                raise self.error(f"time range ends ({end:g}) before it starts ({start:g})", end_tok)
            return TimeSpec(
                "rrange" if rel else "range", start, end, text + "~" + ("+" if rel2 else "") + text2
            )
        return TimeSpec("rel" if rel else "abs", start, text=text)

    # -- system calls
    def syscall(self) -> Syscall:
        name_tok = self.next()
        self.expect_punct("(")
        args: list[Expr] = []
        if not self.is_punct(")"):
            args = self.expr_list(")")
        self.expect_punct(")", f" to close the arguments of {name_tok.text}()")
        if not self.is_punct("="):
            raise self.error(
                f"expected '= <result>' after {name_tok.text}(...), found {self.describe()}"
            )
        self.next()
        ret = self.expr()
        call = Syscall(name_tok.text, args, ret, line=name_tok.line, col=name_tok.col)
        t = self.tok
        after_result = self.toks[self.i - 1].line  # (the result's last token)
        if t.kind == "word" and t.line > after_result and self.is_punct("(", self.peek(1)):
            # (packetdrill: "parse error: syntax error")
            raise self.error(
                f"expected a time ('0', '+.1', '0.1~0.2' or '*') at the start of an event, "
                f"found {t.text}(...): a system call needs its time ('+0 {t.text}(...)')"
            )
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
            raise PktError(
                self.file, t.line, t.col, f"an errno ({call.errno}) goes with a result of -1"
            )
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
            raise self.error(
                f"expected a value, found {self.describe()} (no fractions in system call values)"
            )
        raise self.error(f"expected a value, found {self.describe()}")

    def struct(self) -> Expr:
        t = self.next()
        fields: dict[str, Expr] = {}
        n = 0
        while not self.is_punct("}"):
            k = self.tok
            if self.is_punct("("):
                raise self.error(
                    "MPLS stack expressions ('{(label N, tc N, ttl N)}') are not supported"
                )
            if self.is_word("flags", "Flags") and (
                self.is_punct("[", self.peek()) or self.peek().kind == "int"
            ):
                raise self.error(
                    "GRE header expressions ('{flags [...] sum N ...}') are not supported"
                )
            if k.kind == "word" and self.is_punct("=", self.peek()):
                self.next()
                self.next()
                fields[k.text] = self.expr()
            elif (
                k.kind == "word"
                and self.is_punct("(", self.peek())
                and self.peek(2).kind in ("int", "ellipsis")
                and self.is_punct(")", self.peek(3))
                and self.is_punct("=", self.peek(4))
            ):
                count_tok = self.peek(2)
                self.i += 5
                e = self.expr()
                if count_tok.kind == "ellipsis":
                    e.count_any = True
                else:
                    e.count = int(count_tok.value)
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


def at(text: str, i: int) -> tuple[int, int]:
    """The line and column of ``text[i]``."""
    return text.count("\n", 0, i) + 1, i - (text.rfind("\n", 0, i) + 1) + 1


def too_big(file: str, text: str, size: str) -> PktError:
    cut = text.rfind("\n", 0, MAX_CHARS) + 1
    return PktError(
        file,
        *at(text, cut),
        f"the file is {size}, more than a script may be "
        f"({MAX_CHARS} characters): it goes on past here",
    )


def parse_text(text: str, file: str = "<script>", defines: dict[str, str] | None = None) -> Script:
    """Parse a script's text. ``defines``: packetdrill's command-line ``--define
    SYM=value`` (the script's own --define lines override them)."""
    if len(text) > MAX_CHARS:  # 5 MB of events took 7 s and 550 MB to read
        raise too_big(file, text, f"{len(text)} characters")
    m = _CONTROL.search(text)
    if m:
        raise PktError(
            file,
            *at(text, m.start()),
            f"a control character ({m.group()!r}) in the script: .pkt files are text",
        )
    long = long_number(text)
    if long is not None:
        raise PktError(file, *at(text, long[0]), long[1])
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
        raise too_big(
            str(p),
            raw[:cap].decode("utf-8", "replace"),
            f"{size} bytes" if size >= len(raw) else f"over {cap} bytes",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        start = raw.rfind(b"\n", 0, e.start) + 1
        col = len(raw[start : e.start].decode("utf-8")) + 1  # valid up to the bad byte
        raise PktError(
            str(p),
            raw.count(b"\n", 0, e.start) + 1,
            col,
            f"not UTF-8 text: byte {raw[e.start]:#04x} ({e.reason})",
        ) from None
    # as read_text() read it: universal newlines (a lone CR ends a line too)
    return parse_text(text.replace("\r\n", "\n").replace("\r", "\n"), str(p), defines)
