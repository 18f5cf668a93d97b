"""The generated decoders are compiled when their layout is first met (wire/_codegen.py
``lazy``), or all at once by ``warm_decoders`` before a .pkt script's clock starts."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


_NAMES = """
from netemu.wire import frame as F, tcp as T
def names():
    return ([[d.__name__ for d in F._FRAME_DECODERS[o]] for o in range(5, 16)],
            [[d.__name__ for d in F._TCP_DECODERS[o]] for o in range(5, 16)],
            sorted((n, [d.__name__ for d in ds]) for n, ds in T._DECODERS.items()))
"""


def _run(code: str) -> str:
    """In a fresh interpreter: the decoder tables are module state."""
    out = subprocess.run(
        [sys.executable, "-c", _NAMES + textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_nothing_is_compiled_at_import_and_a_frame_compiles_its_own_data_offset() -> None:
    out = _run(
        """
        from netemu.wire import IPv4Packet, TcpSegment, TimestampOption, NopOption
        from netemu.wire.frame import build_tcp_frame, parse_frame
        full, lean, opts = names()
        assert all(row == ["first"] for row in full + lean), (full, lean)
        assert all(ds == ["first"] for _, ds in opts), opts
        seg = TcpSegment(1, 2, 3, 4, 0x10, 100,
                         options=(NopOption(), NopOption(), TimestampOption(5, 6)))
        data = build_tcp_frame("02:00:00:00:00:01", "02:00:00:00:00:02",
                               IPv4Packet("10.0.0.1", "10.0.0.2", 6), seg)
        got = parse_frame(data).tcp
        assert (got.seq, got.ack, got.options[2].tsval) == (3, 4, 5), got
        full, lean, opts = names()
        compiled = [5 + i for i, row in enumerate(full) if row != ["first"]]
        assert compiled == [8] and "first" not in full[3], full
        assert all(row == ["first"] for row in lean), lean
        print("ok")
        """
    )
    assert out == "ok"


def test_warm_decoders_leaves_no_placeholder() -> None:
    out = _run(
        """
        F.warm_decoders()
        full, lean, opts = names()
        left = [n for row in full + lean for n in row if n != "decode"]
        left += [n for _, ds in opts for n in ds if n != "decode"]
        assert not left, left
        print(sum(map(len, full + lean)) + sum(len(ds) for _, ds in opts))
        """
    )
    assert int(out) >= 40  # every layout, lean and full, and the option decoders
