"""Where `netemu run` prints: rich on a terminal, plain text otherwise.

rich costs ~25 ms per run to import and set up. Output piped to a file, a CI log
or a test shows no colours anyway, so it gets the text rich would print there
(the markup tags ``netemu.cli.run`` uses removed, tabs expanded, the control characters
rich drops dropped) without importing rich. "A terminal" is decided as rich
decides it (``Console.is_terminal``): ``TTY_COMPATIBLE``, then ``FORCE_COLOR``,
then ``isatty()``. Unlike rich, user text (descriptions, step arguments) is
printed as written: ``[x]`` is not taken for markup, nor ``:smile:`` for an emoji.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

_TAGS = re.compile(r"\[/?(?:bold|dim|red|green)\]")
_CONTROL = dict.fromkeys((7, 8, 11, 12, 13))  # rich drops BEL, BS, VT, FF and CR too


def is_terminal(file: Any = None) -> bool:
    file = file or sys.stdout
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "1"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color != ""
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError):
        return False


class PlainConsole:
    """The part of rich's ``Console`` that ``netemu.cli.run`` uses, for a non-terminal."""

    closed = False  # the reader went away (`netemu run … | head`)

    def print(self, *objects: Any, markup: bool | None = None, **_: Any) -> None:
        if self.closed:
            return
        try:
            self._print(objects, markup)
        except OSError as e:
            # The run goes on to its verdict (and exit status): nothing more to write,
            # and no traceback at interpreter exit either.
            self.closed = True
            stdout_gone(e)

    def _print(self, objects: tuple[Any, ...], markup: bool | None) -> None:
        if sys.stdout is None:  # (started with stdout closed: `>&-`)
            raise OSError(9, "standard output is closed")
        self._write(objects, markup)

    def _write(self, objects: tuple[Any, ...], markup: bool | None) -> None:
        if not all(isinstance(o, str) for o in objects):  # a table: rich draws it
            from rich.console import Console

            Console(highlight=False, soft_wrap=True).print(*objects, markup=markup)
            return
        text = " ".join(objects)
        if markup is not False:
            text = _TAGS.sub("", text)
        sys.stdout.write(text.translate(_CONTROL).expandtabs(8) + "\n")
        sys.stdout.flush()  # as rich does: progress shows step by step in a pipe too


def stdout_gone(e: OSError) -> None:
    """Standard output cannot take more (its reader is gone, `| head`; a full disk;
    closed): later writes go nowhere, quietly, and the command goes on to its exit
    status. A reader gone is normal; any other failure is said once on stderr."""
    if not isinstance(e, BrokenPipeError):
        print(f"netemu: cannot write to standard output: {e.strerror or e}", file=sys.stderr)
    try:
        if sys.stdout is None:
            raise ValueError("closed")
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (for the rest of the process)


def say(line: str) -> None:
    """``print(line)`` for a command whose reader may be gone (``netemu validate … |
    head``): see ``stdout_gone``."""
    try:
        if sys.stdout is None:
            raise OSError(9, "standard output is closed")
        print(line, flush=True)
    except OSError as e:
        stdout_gone(e)


def make_console() -> Any:
    """rich's ``Console`` on a terminal, a ``PlainConsole`` otherwise."""
    if is_terminal():
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True)
    return PlainConsole()
