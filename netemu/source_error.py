"""The one error shape for bad input files: ``file:line:col: message``."""

from __future__ import annotations


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
