"""The lexer of packetdrill's language (its lexer.l, re-implemented): ``tokenize``
turns a script into ``Tok``s, and ``Cursor`` walks them for the parser.

Layer rule: the standard library and ``source_error`` only; ``parser`` and
``packet_parser`` build on it.
"""

from __future__ import annotations

import re

from ..source_error import SourceError


class PktError(SourceError):
    """A problem in a .pkt script at 1-based ``line``/``col`` (0: unknown)."""


# --- lexer ------------------------------------------------------------------------------

_STR = r'"(?:\\.|[^"\\])*"'
_TOKEN = re.compile(
    rf"""
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
""",
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "0": "\0",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "e": "\x1b",
}
_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]{1,2}|[0-7]{1,3}|.)", re.DOTALL)


def unescape(s: str) -> str:
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
        self.value: int | float | str = text

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
                tok.value = unescape(s[1:-1])
            elif kind == "bq":
                tok.value = s[1:-1]  # as written: the shell reads the backslashes
            elif kind == "code":
                tok.value = s[2:-2]
            elif kind == "punct" and s in '`"':
                raise PktError(
                    file, line, col, f"unterminated {'backquote' if s == '`' else 'string'}"
                )
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


def strtol(s: str) -> int | None:
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


class Cursor:
    """A script's tokens and where the parser is among them, with the checks every
    part of the grammar uses (``expect_*``) and its errors (``error``: the file, line
    and column of a token)."""

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

    def expect_int(
        self, what: str, lo: int | None = None, hi: int | None = None, name: str = ""
    ) -> int:
        t = self.tok
        if t.kind != "int":
            hint = ""
            if t.kind == "word" and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", t.text):
                hint = f" (to use a name, define it: --define={t.text}=...)"
            raise self.error(f"expected {what}, found {self.describe()}{hint}")
        self.next()
        v = int(t.value)
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
