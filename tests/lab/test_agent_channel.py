"""The kernel agent's reply channel (netemu side, no agent): a reply's bytes come raw
after its line (``"payload": N``), wherever the pipe's reads happen to cut them, and a
long one is read in time linear in its size (a 100 MiB read used to take 223 s: each
chunk re-split everything read before it)."""

from __future__ import annotations

import json
import os
import select
import threading
import time
from types import SimpleNamespace

from netemu.lab.kernel import _Channel


def _channel() -> tuple[_Channel, int, list]:
    r, w = os.pipe()
    r2, w2 = os.pipe()
    files = [os.fdopen(w2, "wb"), os.fdopen(r, "rb"), os.fdopen(r2, "rb")]
    proc = SimpleNamespace(popen=SimpleNamespace(stdin=files[0], stdout=files[1]))
    return _Channel(proc), w, files  # type: ignore[arg-type]


def _reply(rid: int, data: bytes | None = None, **fields: object) -> bytes:
    msg = {"id": rid, "ok": True, **fields}
    if data is not None:
        msg["payload"] = len(data)
    return (json.dumps(msg) + "\n").encode() + (data or b"")


def _read_all(stream: bytes, last_id: int, cut: int | None = None) -> tuple[float, _Channel]:
    """Feed ``stream`` through a pipe (in writes of ``cut`` bytes, or as the pipe takes
    it) until reply ``last_id`` has come; the time that took, and the channel."""
    ch, w, files = _channel()

    def feed() -> None:
        view = memoryview(stream)
        while view:
            n = os.write(w, view[:cut] if cut else view)
            view = view[n:]
            if cut:
                time.sleep(0)  # let the reader see each piece on its own
        os.close(w)

    t = threading.Thread(target=feed)
    t0 = time.perf_counter()
    t.start()
    while last_id not in ch.replies:
        select.select([ch.rfd], [], [], 1.0)
        ch.read_some()
        assert not (ch.eof and last_id not in ch.replies), "EOF before the last reply"
    took = time.perf_counter() - t0
    t.join()
    for f in files:
        f.close()
    return took, ch


def test_payloads_cut_anywhere_arrive_whole() -> None:
    with_newlines = b'line one\nline two\n\n{"id": 99}\n' * 50
    stream = (
        _reply(1, with_newlines, len=len(with_newlines))
        + _reply(2)
        + _reply(3, b"", eof=True)
        + _reply(4, bytes(range(256)) * 3)
        + b"\n"
        + _reply(5, b"x")
    )
    for cut in (1, 2, 7, 64, 4096, None):
        _, ch = _read_all(stream, 5, cut)
        assert ch.replies[1]["data"] == with_newlines and ch.replies[1]["len"] == len(
            with_newlines
        ), cut
        assert "payload" not in ch.replies[1]
        assert ch.replies[2] == {"id": 2, "ok": True}  # no payload, no data
        assert ch.replies[3]["data"] == b"" and ch.replies[3]["eof"] is True
        assert ch.replies[4]["data"] == bytes(range(256)) * 3
        assert ch.replies[5]["data"] == b"x"
        assert type(ch.replies[4]["data"]) is bytes
        assert 99 not in ch.replies  # a line inside a payload is payload


def test_a_long_reply_is_read_in_linear_time() -> None:
    def one(size: int) -> float:
        took, ch = _read_all(_reply(1, b"A" * size) + _reply(2), 2)
        assert len(ch.replies[1]["data"]) == size
        return took

    small, big = one(4 << 20), one(32 << 20)
    # 8x the bytes: linear is ~8x the time, quadratic ~64x; allow a noisy machine 24x.
    assert big < 24 * small + 0.5, (small, big)


def test_a_request_payload_goes_raw_after_its_line() -> None:
    r, w = os.pipe()
    r2, w2 = os.pipe()
    files = [os.fdopen(w, "wb"), os.fdopen(r2, "rb")]
    ch = _Channel(SimpleNamespace(popen=SimpleNamespace(stdin=files[0], stdout=files[1])))  # type: ignore[arg-type]
    data = b"\n\x00" + bytes(range(256))
    rid = ch.send("send", {"sock": 3, "data": data, "timeout": None})
    files[0].close()
    with os.fdopen(r, "rb") as f:
        got = f.read()
    line, rest = got.split(b"\n", 1)
    assert json.loads(line) == {"id": rid, "op": "send", "sock": 3, "payload": len(data)}
    assert rest == data
    files[1].close()
    os.close(w2)
