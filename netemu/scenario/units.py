"""Parsers for the small languages inside scenario values: durations, percentages,
rates, sizes, TCP flags, numeric patterns, state names and payloads.

Every parser takes what YAML produced (str, int, float, bool, ...) and returns a
plain Python value, or raises ``UnitError`` with a one-line message meant for the
scenario's author. Standard library only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeGuard


class UnitError(ValueError):
    """A value that does not parse; the message is shown to the author as is."""


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` or ``""``: a close match, case-insensitively."""
    import difflib  # only when there is a message to write

    cands = list(candidates)
    lowered = {c.lower(): c for c in cands}
    match = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.6)
    return f" (did you mean '{lowered[match[0]]}'?)" if match else ""


def show(value: object) -> str:
    """A value as the author wrote it in YAML, for messages."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return repr(value) if "'" not in value else '"' + value.replace('"', '\\"') + '"'
    if isinstance(value, dict | list | tuple):
        text = _flow(value)
        if len(text) <= 40:
            return text
        return "a mapping" if isinstance(value, dict) else "a list"
    return str(value)


def _flow(value: object) -> str:
    """YAML flow style, for short collections in messages: [1, 2], {mss: 1460}."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_flow(k)}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    if isinstance(value, str):
        return value if value and value.replace("_", "").replace("-", "").isalnum() else repr(value)
    return show(value)


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --- durations ---------------------------------------------------------------

_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
}
_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_DURATION_RE = re.compile(rf"^\s*({_NUMBER})\s*([a-zµ]*)\s*$")


# Bounds on what a scenario may ask for: a run is a test, not a service (a sleep of
# 1e300 s validated and then ran until killed), and a rate or size beyond these is a
# typo or an attack on the loader (1e400mbit raised OverflowError).
MAX_DURATION = 86400.0  # a day
MAX_RATE = 10**15  # bit/s (a petabit)
# bytes: what a step moves is held in memory (send, recv, expect_data build or keep
# it): 8 GiB grew netemu past 7.8 GB; a gibibyte is 10x the largest transfer tests use
MAX_SIZE = 1 << 30


def parse_duration(value: object) -> float:
    """``"200ms"``, ``"2s"``, ``"1.5m"``, ``"500us"`` or a number of seconds -> seconds (>= 0)."""
    if _is_number(value):
        seconds = float(value)
    elif isinstance(value, str):
        m = _DURATION_RE.match(value)
        if not m or (m.group(2) not in _DURATION_UNITS and m.group(2) != ""):
            raise UnitError(
                f"bad duration {show(value)} (use e.g. 200ms, 2s, 1m, or a number of seconds)"
            )
        seconds = float(m.group(1)) * _DURATION_UNITS.get(m.group(2) or "s", 1.0)
    else:
        raise UnitError(f"expected a duration such as 200ms or 2s, got {show(value)}")
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise UnitError(f"bad duration {show(value)}")
    if seconds < 0:
        raise UnitError(f"a duration must not be negative, got {show(value)}")
    if seconds > MAX_DURATION:
        raise UnitError(f"a duration of at most {MAX_DURATION:g} s (a day), got {show(value)}")
    return seconds


def parse_positive_duration(value: object) -> float:
    seconds = parse_duration(value)
    if seconds <= 0:
        raise UnitError(f"must be longer than zero, got {show(value)}")
    return seconds


# --- percentages -------------------------------------------------------------

_PERCENT_RE = re.compile(rf"^\s*({_NUMBER})\s*%\s*$")


def parse_percent(value: object) -> float:
    """``"5%"`` or a probability between 0 and 1 -> a probability between 0 and 1."""
    if _is_number(value):
        p = float(value)
        if not 0 <= p <= 1:
            raise UnitError(
                f"a bare number is a probability between 0 and 1, got {show(value)}"
                f" (write '{value}%' for a percentage)"
            )
        return p
    if isinstance(value, str):
        m = _PERCENT_RE.match(value)
        if not m:
            raise UnitError(f"bad percentage {show(value)} (use e.g. 5% or 0.5%)")
        pct = float(m.group(1))
        if not 0 <= pct <= 100:
            raise UnitError(f"a percentage must be between 0% and 100%, got {show(value)}")
        return pct / 100
    raise UnitError(f"expected a percentage such as 5%, got {show(value)}")


# --- rates -------------------------------------------------------------------

_RATE_UNITS = {"bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12}
_RATE_RE = re.compile(rf"^\s*({_NUMBER})\s*([a-z]+)(?:/s)?\s*$", re.IGNORECASE)


def parse_rate(value: object) -> int:
    """``"10mbit"``, ``"512kbit"``, ``"1gbit"`` or a number of bits per second -> bit/s."""
    if _is_number(value):
        bits = float(value)
    elif isinstance(value, str):
        m = _RATE_RE.match(value)
        unit = m.group(2).lower() if m else ""
        if not m or unit not in _RATE_UNITS:
            hint = ""
            if unit.endswith("bps") or unit.endswith("b"):
                hint = " ('bps' is ambiguous (tc reads it as bytes); write bits: 10mbit)"
            raise UnitError(f"bad rate {show(value)}{hint or ' (use e.g. 10mbit, 512kbit, 1gbit)'}")
        bits = float(m.group(1)) * _RATE_UNITS[unit]
    else:
        raise UnitError(f"expected a rate such as 10mbit, got {show(value)}")
    if bits != bits or bits <= 0:
        raise UnitError(f"a rate must be more than zero, got {show(value)}")
    if bits > MAX_RATE:
        raise UnitError(f"a rate of at most {MAX_RATE:g} bit/s, got {show(value)}")
    return round(bits)


# --- sizes -------------------------------------------------------------------

_SIZE_UNITS = {
    "": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)


def parse_size(value: object) -> int:
    """A byte count: ``100000``, ``"64k"``, ``"64KiB"``, ``"1M"`` (binary units) -> int >= 0."""
    if isinstance(value, bool):
        raise UnitError(f"expected a byte count, got {show(value)}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        m = _SIZE_RE.match(value)
        if not m or m.group(2).lower() not in _SIZE_UNITS:
            raise UnitError(f"bad size {show(value)} (use e.g. 65536, 64k or 64KiB)")
        f = float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]
        if f > MAX_SIZE:
            raise UnitError(f"a byte count of at most {MAX_SIZE} (1 GiB), got {show(value)}")
        if f != int(f):
            raise UnitError(f"bad size {show(value)}: not a whole number of bytes")
        n = int(f)
    elif isinstance(value, float) and value.is_integer() and abs(value) <= MAX_SIZE:
        n = int(value)
    else:
        raise UnitError(f"expected a byte count such as 1000 or 64k, got {show(value)}")
    if n < 0:
        raise UnitError(f"a byte count must not be negative, got {show(value)}")
    if n > MAX_SIZE:
        raise UnitError(f"a byte count of at most {MAX_SIZE} (1 GiB), got {show(value)[:40]}")
    return n


# --- payloads ----------------------------------------------------------------

PATTERN = bytes(range(256))


def pattern_bytes(n: int) -> bytes:
    """``bytes: N`` payloads: N bytes of 00 01 02 ... ff 00 01 ... (the kernel agent's
    ``source`` pattern)."""
    whole, rest = divmod(n, 256)
    return PATTERN * whole + PATTERN[:rest]


def parse_hex(value: object) -> str:
    """Hex digits, with optional spaces, colons or a leading 0x -> lowercase hex string."""
    if not isinstance(value, str):
        raise UnitError(f"expected a string of hex digits, got {show(value)}")
    text = re.sub(r"[\s:]", "", value)
    if text[:2].lower() == "0x":
        text = text[2:]
    bad = re.search(r"[^0-9a-fA-F]", text)
    if bad:
        raise UnitError(
            f"not hex: {show(value)} has {show(bad.group(0))} (use pairs of 0-9a-f, spaces allowed)"
        )
    if len(text) % 2:
        raise UnitError(f"odd number of hex digits in {show(value)}")
    return text.lower()


# --- TCP flags ---------------------------------------------------------------

FIN, SYN, RST, PSH, ACK, URG, ECE, CWR = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80
FLAG_LETTERS = {"S": SYN, "F": FIN, "R": RST, "P": PSH, ".": ACK, "U": URG, "E": ECE, "W": CWR}
FLAG_NAMES = {
    "SYN": SYN,
    "FIN": FIN,
    "RST": RST,
    "PSH": PSH,
    "ACK": ACK,
    "URG": URG,
    "ECE": ECE,
    "CWR": CWR,
}
_LETTER_ORDER = "SFRP.UEW"


def flags_text(mask: int) -> str:
    """tcpdump order and letters: S F R P . U E W; ``none`` for no flags."""
    return "".join(c for c in _LETTER_ORDER if mask & FLAG_LETTERS[c]) or "none"


def _parse_flag_mask(text: str, original: object) -> int:
    text = text.strip()
    if text.lower() in ("", "none"):
        return 0
    words = [w for w in re.split(r"[\s+|,]+", text) if w]
    if any(
        len(w) >= 3 and (w.upper() in FLAG_NAMES or any(c.upper() not in FLAG_LETTERS for c in w))
        for w in words
    ):
        # names: SYN+ACK, syn|ack, "FIN, ACK", "SYN ACK"
        mask = 0
        for word in words:
            bit = FLAG_NAMES.get(word.upper(), FLAG_LETTERS.get(word.upper()))
            if bit is None:
                chunks = [word[i : i + 3].upper() for i in range(0, len(word), 3)]
                if len(chunks) > 1 and all(c in FLAG_NAMES for c in chunks):
                    hint = f" (did you mean '{'+'.join(chunks)}'?)"
                else:
                    hint = did_you_mean(word, FLAG_NAMES) or (
                        " (names: SYN ACK FIN RST PSH URG ECE CWR, or letters S F R P . U E W)"
                    )
                raise UnitError(f"unknown TCP flag {show(word)} in {show(original)}{hint}")
            mask |= bit
        return mask
    mask = 0
    for ch in text:
        if ch.isspace():
            continue
        bit = FLAG_LETTERS.get(ch.upper())
        if bit is None:
            raise UnitError(
                f"unknown TCP flag letter {show(ch)} in {show(original)} "
                "(letters: S F R P . U E W, '.' is ACK; or names like SYN+ACK)"
            )
        mask |= bit
    return mask


def parse_flags(value: object) -> int:
    """Exact flags for a crafted segment: ``"S."``, ``"SYN+ACK"``, ``"none"`` -> bit mask."""
    if not isinstance(value, str):
        raise UnitError(f"expected TCP flags such as 'S.' or 'SYN+ACK', got {show(value)}")
    if value.strip() == "*" or value.strip().startswith("+"):
        raise UnitError(f"a crafted segment needs exact flags, got {show(value)}")
    return _parse_flag_mask(value, value)


@dataclass(frozen=True, slots=True)
class FlagsMatch:
    """Flags to match: exactly ``mask`` or, with ``exact=False``, at least ``mask``."""

    mask: int
    exact: bool = True

    def matches(self, flags: int) -> bool:
        flags &= 0xFF
        return flags == self.mask if self.exact else flags & self.mask == self.mask

    def __str__(self) -> str:
        return ("" if self.exact else "+") + flags_text(self.mask)


def parse_flags_match(value: object) -> FlagsMatch | None:
    """``"*"`` -> None (any); ``"F."`` -> exactly FIN+ACK; ``"+F"`` -> FIN and maybe others."""
    if not isinstance(value, str):
        raise UnitError(f"expected TCP flags such as 'F.' or 'SYN+ACK', got {show(value)}")
    text = value.strip()
    if text == "*":
        return None
    if text.startswith("+"):
        return FlagsMatch(_parse_flag_mask(text[1:], value), exact=False)
    return FlagsMatch(_parse_flag_mask(text, value))


# --- numeric patterns --------------------------------------------------------

_INT_OPS = ("<=", ">=", "!=", "<", ">", "==", "=")
_RANGE_RE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")


@dataclass(frozen=True, slots=True)
class IntMatch:
    """A number to match: ``op`` is one of == != < <= > >= or ``..`` (inclusive range)."""

    op: str
    value: int
    high: int | None = None

    def matches(self, v: int) -> bool:
        op, x = self.op, self.value
        if op == "..":
            return x <= v <= (self.high if self.high is not None else x)
        return {"==": v == x, "!=": v != x, "<": v < x, "<=": v <= x, ">": v > x, ">=": v >= x}[op]

    def __str__(self) -> str:
        if self.op == "==":
            return str(self.value)
        if self.op == "..":
            return f"{self.value}..{self.high}"
        return f"{self.op}{self.value}"


def parse_int_match(value: object) -> IntMatch | None:
    """``"*"`` -> None (any); ``17``; ``">0"``, ``"<=1000"``, ``"!=0"``; ``"100..200"``."""
    if isinstance(value, bool):
        raise UnitError(f"expected a number, '*' or a comparison like '>0', got {show(value)}")
    if isinstance(value, int):
        return IntMatch("==", value)
    if isinstance(value, str):
        text = value.strip()
        if text == "*":
            return None
        m = _RANGE_RE.match(text)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if lo > hi:
                raise UnitError(f"empty range {show(value)}")
            return IntMatch("..", lo, hi)
        for op in _INT_OPS:
            if text.startswith(op):
                rest = text[len(op) :].strip()
                if re.fullmatch(r"-?\d+", rest):
                    return IntMatch("==" if op == "=" else op, int(rest))
                break
        if re.fullmatch(r"-?\d+", text):
            return IntMatch("==", int(text))
    raise UnitError(
        f"expected a number, '*', a comparison like '>0' or a range like "
        f"'10..20', got {show(value)}"
    )


# --- TCP states ---------------------------------------------------------------


def state_names() -> list[str]:
    from netemu.tcp.state import State

    return [s.value for s in State]


def normalise_state(value: object) -> str:
    """``"fin_wait_2"``, ``"Fin-Wait-2"``, ``"FIN WAIT 2"`` -> ``"FIN-WAIT-2"`` (a State value)."""
    names = state_names()
    if not isinstance(value, str):
        raise UnitError(f"expected a TCP state name such as ESTABLISHED, got {show(value)}")
    key = re.sub(r"[\s_\-]+", "-", value.strip()).upper()
    aliases = {
        "SYN-RCVD": "SYN-RECEIVED",
        "SYN-RECV": "SYN-RECEIVED",
        "FIN-WAIT1": "FIN-WAIT-1",
        "FIN-WAIT2": "FIN-WAIT-2",
        "TIMEWAIT": "TIME-WAIT",
        "CLOSEWAIT": "CLOSE-WAIT",
        "LASTACK": "LAST-ACK",
        "SYNSENT": "SYN-SENT",
    }
    key = aliases.get(key, key)
    if key in names:
        return key
    hint = did_you_mean(key, names) or f" (states: {', '.join(names)})"
    raise UnitError(f"unknown TCP state {show(value)}{hint}")
