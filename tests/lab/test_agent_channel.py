"""The kernel agent's reply channel reads a long reply in time linear in its size (a
100 MiB read used to take 223 s: each chunk re-split everything read before it)."""

from __future__ import annotations

import os
import select
import threading
import time
from types import SimpleNamespace

from netemu.lab.kernel import _Channel


def _read_one_reply(size: int) -> tuple[float, dict]:
    r, w = os.pipe()
    r2, w2 = os.pipe()
    proc = SimpleNamespace(popen=SimpleNamespace(stdin=os.fdopen(w2, "wb"),
                                                 stdout=os.fdopen(r, "rb")))
    ch = _Channel(proc)  # type: ignore[arg-type]
    line = b'{"id": 1, "ok": true, "data": "' + b"A" * size + b'"}\n{"id": 2, "ok": true}\n'

    def feed() -> None:
        view = memoryview(line)
        while view:
            view = view[os.write(w, view):]
        os.close(w)

    t = threading.Thread(target=feed)
    t0 = time.perf_counter()
    t.start()
    while 2 not in ch.replies:
        select.select([ch.rfd], [], [], 1.0)
        ch.read_some()
    took = time.perf_counter() - t0
    t.join()
    for f in (proc.popen.stdin, proc.popen.stdout):
        f.close()
    os.close(r2)
    return took, ch.replies[1]


def test_a_long_reply_is_read_in_linear_time():
    small, reply = _read_one_reply(4 << 20)
    assert len(reply["data"]) == 4 << 20
    big, reply = _read_one_reply(32 << 20)
    assert len(reply["data"]) == 32 << 20
    # 8x the bytes: linear is ~8x the time, quadratic ~64x; allow a noisy machine 24x.
    assert big < 24 * small + 0.5, (small, big)
