"""netemu.run.codecache: the generated decoders' code kept between runs, in a file of
netemu's cache folder, handed to netemu.wire (which opens no file itself)."""

from __future__ import annotations

import marshal
from pathlib import Path

import pytest

from netemu.run import codecache
from netemu.wire import _codegen, frame
from netemu.wire.frame import build_tcp_frame, parse_frame
from netemu.wire.tcp import MssOption


@pytest.fixture(autouse=True)
def _fresh_tables():
    """Each test starts with nothing cached or compiled, and lazy decoders (as a new
    process has them); what it changes is put back."""
    code, compiled = dict(_codegen.CODE), dict(_codegen.COMPILED)
    _codegen.CODE.clear()
    _codegen.COMPILED.clear()
    yield
    _codegen.CODE.clear()
    _codegen.CODE.update(code)
    _codegen.COMPILED.clear()
    _codegen.COMPILED.update(compiled)


def _a_frame() -> bytes:
    from netemu.wire import IPv4Packet, TcpSegment
    from netemu.wire.tcp import ACK, SYN

    seg = TcpSegment(40000, 80, 1, 0, SYN | ACK, 65535, options=(MssOption(1460),))
    ip = IPv4Packet("198.18.0.1", "198.18.0.2", 6)
    return build_tcp_frame("02:00:00:00:00:01", "02:00:00:00:00:02", ip, seg)


def test_the_first_warm_up_compiles_and_saves_the_next_compiles_nothing(tmp_path: Path):
    with codecache.decoder_code(tmp_path):
        frame.warm_decoders()
    path = codecache.cache_file(tmp_path)
    saved = codecache.load(path)
    assert len(saved) >= 30  # every decoder's code
    # a new run: the code is handed over, nothing compiled, the file left alone
    _codegen.CODE.clear()
    mtime = path.stat().st_mtime_ns
    with codecache.decoder_code(tmp_path):
        frame.warm_decoders()
        assert _codegen.COMPILED == {}
    assert path.stat().st_mtime_ns == mtime
    got = parse_frame(_a_frame())
    assert got.tcp is not None and got.tcp.dst_port == 80 and got.tcp.options == (MssOption(1460),)


@pytest.mark.parametrize(
    "content",
    [b"", b"not marshal at all", marshal.dumps([1, 2]), marshal.dumps({"src": 42}), b"\x00" * 64],
)
def test_a_file_that_is_not_a_cache_of_ours_is_ignored_and_replaced(tmp_path: Path, content):
    path = codecache.cache_file(tmp_path)
    path.write_bytes(content)
    assert codecache.load(path) == {}
    with codecache.decoder_code(tmp_path):
        frame.warm_decoders()
    assert len(codecache.load(path)) >= 30


def test_an_unwritable_cache_folder_only_costs_the_compile(tmp_path: Path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    with codecache.decoder_code(blocked / "sub"):  # cannot be made: no cache, no error
        frame.warm_decoders()
    assert parse_frame(_a_frame()).tcp is not None


def test_a_file_others_could_have_written_is_not_run(tmp_path: Path):
    with codecache.decoder_code(tmp_path):
        frame.warm_decoders()
    path = codecache.cache_file(tmp_path)
    assert codecache.load(path)
    path.chmod(0o666)  # world-writable: anyone could have put code there
    assert codecache.load(path) == {}
    path.chmod(0o600)
    assert codecache.load(path)
