"""The one error shape for bad input files: ``file:line:col: message``."""

from __future__ import annotations

import re

MAX_DIGITS = 1000  # no value needs more (2^256 has 78 digits); Python reads up to 4,300
_LONG_NUMBER = re.compile(rf"\d{{{MAX_DIGITS + 1},}}")


def long_number(text: str) -> tuple[int, str] | None:
    """(index, message) of the first number too long for any value, or None: Python
    refuses to read an integer of over 4,300 digits (a traceback, in either loader)."""
    m = _LONG_NUMBER.search(text)
    if m is None:
        return None
    return m.start(), f"a number of {len(m.group())} digits: no value needs more than {MAX_DIGITS}"


class SourceError(ValueError):
    """A problem in an input file at 1-based ``line``/``col`` (0: unknown).
    ``errors`` holds every problem found, this one first."""

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        super().__init__(message)
        self.file = file
        self.line = line
        self.col = col
        self.message = message
        self.errors: list[SourceError] = [self]

    def __str__(self) -> str:
        if not self.line:
            return f"{self.file}: {self.message}"
        return f"{self.file}:{self.line}:{self.col}: {self.message}"
