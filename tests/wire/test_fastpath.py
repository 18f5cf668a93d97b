"""The fast paths agree with the general ones they shortcut: option layouts,
whole-frame decoders, interned address conversions, arithmetic checksums."""

from __future__ import annotations

import random
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netemu.wire import (
    EOL,
    NOP,
    SACK_PERMITTED,
    IPv4Packet,
    MalformedPacket,
    MssOption,
    RawOption,
    TcpSegment,
    TimestampOption,
    WindowScaleOption,
    build_tcp_frame,
    parse_frame,
    pseudo_header_sum,
)
from netemu.wire.addr import (
    ip_from_int,
    ip_to_bytes,
    ip_to_int,
    ip_to_str,
    mac_to_bytes,
    mac_to_str,
)
from netemu.wire.checksum import internet_checksum, mod_ffff
from netemu.wire.frame import _FRAME_DECODERS, _parse_frame_general, parse_tcp_frame
from netemu.wire.tcp import (
    _DECODERS,
    _TOKENS,
    LAYOUT_SPECS,
    OPTION_LAYOUTS,
    _parse_options_general,
    emit_options,
    parse_options,
)

from .frames import IP_A, IP_B, MAC_A, MAC_B, tcp_frame


def layout_bytes(spec: str, rng: random.Random) -> bytes:
    """A layout's option area with random values (and the right kind/length bytes)."""
    out = b""
    for token in spec.split():
        head, body, _, _ = _TOKENS[token]
        out += head + rng.randbytes(struct.calcsize("!" + body))
    return out


@pytest.mark.parametrize("spec", LAYOUT_SPECS)
def test_layout_decoders_match_general_path(spec: str) -> None:
    rng = random.Random(spec)
    for _ in range(200):
        area = layout_bytes(spec, rng)
        general = _parse_options_general(area, 0, len(area))
        assert general[1] == b"" and EOL not in general[0]
        assert parse_options(area, 0, len(area)) == general
        # At an offset, as in a segment or a frame.
        buf = rng.randbytes(20) + area
        assert parse_options(buf, 20, len(buf)) == general
        assert emit_options(general[0]) == area


def test_every_layout_compiles_and_is_reachable() -> None:
    assert len(OPTION_LAYOUTS) == len(LAYOUT_SPECS)
    for layout in OPTION_LAYOUTS:
        assert layout.length <= 40 and layout.length % 4 == 0, layout.spec
        assert layout.length in _DECODERS
        assert _FRAME_DECODERS[layout.length // 4 + 5]


def outcome(parse, *args) -> object:
    try:
        return parse(*args)
    except MalformedPacket as e:
        return (type(e), e.reason)


@pytest.mark.parametrize("spec", LAYOUT_SPECS)
def test_layout_rejects_any_wrong_kind_or_length_byte(spec: str) -> None:
    rng = random.Random(spec)
    area = layout_bytes(spec, rng)
    fixed, i = [], 0
    for token in spec.split():
        head, body, _, _ = _TOKENS[token]
        fixed += range(i, i + len(head))
        i += len(head) + struct.calcsize("!" + body)
    for pos in fixed:
        for value in (area[pos] ^ 1, area[pos] ^ 0x80, 0, 1):
            bad = area[:pos] + bytes([value]) + area[pos + 1 :]
            expected = outcome(_parse_options_general, bad, 0, len(bad))
            assert outcome(parse_options, bad, 0, len(bad)) == expected, (spec, pos, value)


@pytest.mark.parametrize("spec", [*LAYOUT_SPECS, ""])
def test_frame_decoders_match_general_path(spec: str) -> None:
    rng = random.Random("frame " + spec)
    for _ in range(100):
        area = layout_bytes(spec, rng)
        options = parse_options(area, 0, len(area))[0] if area else ()
        seg = TcpSegment(
            rng.randrange(65536),
            rng.randrange(65536),
            rng.getrandbits(32),
            rng.getrandbits(32),
            rng.randrange(4096),
            rng.randrange(65536),
            rng.randbytes(rng.randrange(30)),
            options,
            rng.randrange(65536),
        )
        ip = IPv4Packet(
            ip_from_int(rng.getrandbits(32)),
            ip_from_int(rng.getrandbits(32)),
            6,
            ttl=rng.randrange(256),
            tos=rng.randrange(256),
            identification=rng.randrange(65536),
            flags=rng.choice((0, 2, 4, 6)),
        )
        frame = build_tcp_frame(MAC_A, MAC_B, ip, seg) + rng.randbytes(rng.choice((0, 0, 7)))
        for verify in (True, False):
            fast = parse_frame(frame, verify)
            assert fast == _parse_frame_general(frame, verify)
            assert parse_tcp_frame(frame, verify) == (ip.src, ip.dst, fast.tcp)
        assert fast.tcp.options == options
        assert fast.emit() == frame


def test_lean_decoder_gives_what_parse_frame_gives_or_nothing() -> None:
    # Any byte of a frame changed: parse_tcp_frame gives parse_frame's segment and
    # addresses, or None where parse_frame raises or finds no regular TCP frame.
    rng = random.Random("lean")
    frames = [
        tcp_frame((NOP, NOP, TimestampOption(5, 6)), payload=rng.randbytes(101)),
        tcp_frame(payload=rng.randbytes(8)),
        tcp_frame((MssOption(1400),)),
    ]
    for _ in range(3000):
        frame = bytearray(rng.choice(frames))
        for _ in range(rng.choice((1, 1, 2))):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        verify = rng.random() < 0.8
        got = parse_tcp_frame(bytes(frame), verify)
        full = outcome(parse_frame, bytes(frame), verify)
        if got is not None:
            assert (full.ip.src, full.ip.dst, full.tcp) == got
        else:
            assert (
                isinstance(full, tuple)
                or full.tcp is None
                or full.ip.options
                or full.ip.is_fragment
            ), full


def test_frame_with_unlisted_layout_takes_the_generic_decoder() -> None:
    options = (TimestampOption(1, 2), NOP, NOP, MssOption(1400))  # no layout for this order
    frame = tcp_frame(options)
    assert parse_frame(frame).tcp.options == options
    assert parse_frame(frame) == _parse_frame_general(frame, True)
    raw = tcp_frame((RawOption(30, b"abc"), NOP))
    assert parse_frame(raw).tcp.options == (RawOption(30, b"abc"), NOP, EOL)


def test_value_records_are_frozen_and_shared() -> None:
    # The Ethernet record of an address pair and the MSS and window-scale options
    # are values: the parsers hand out one frozen record per value, fast path and
    # general path alike.
    import dataclasses

    syn = tcp_frame(
        (MssOption(1460), SACK_PERMITTED, TimestampOption(1, 2), NOP, WindowScaleOption(7))
    )
    other = tcp_frame((TimestampOption(3, 4), NOP, NOP, MssOption(1460)))  # generic decoder
    a, b, c = parse_frame(syn), parse_frame(syn), _parse_frame_general(syn, True)
    assert a.eth is b.eth is c.eth is parse_frame(other).eth
    assert a.tcp.options[0] is c.tcp.options[0] is parse_frame(other).tcp.options[3]
    assert a.tcp.options[4] is c.tcp.options[4] == WindowScaleOption(7)
    assert a.tcp.options[2] is not b.tcp.options[2]  # timestamps differ frame to frame
    for record, field in ((a.eth, "dst"), (a.tcp.options[0], "mss"), (a.tcp.options[4], "shift")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, field, 1)


def test_odd_length_segments() -> None:
    for n in range(0, 9):
        frame = tcp_frame(payload=bytes(range(n)))
        f = parse_frame(frame)
        assert f.tcp.payload == bytes(range(n)) and f.emit() == frame
        seg = frame[34:]
        parsed = TcpSegment.parse(seg, pseudo_header_sum(IP_A, IP_B, 6, len(seg)))
        assert parsed == f.tcp


@given(st.binary(max_size=64), st.integers(0, 0xFFF), st.integers(0, 2**32 - 1))
def test_segment_emit_checksum_is_rfc1071(payload: bytes, flags: int, seq: int) -> None:
    seg = TcpSegment(
        1234, 80, seq, 99, flags, 512, payload, (NOP, NOP, TimestampOption(7, 8)), urgent=3
    )
    raw = seg.emit(IP_A, IP_B)
    pseudo = ip_to_bytes(IP_A) + ip_to_bytes(IP_B) + bytes((0, 6)) + len(raw).to_bytes(2, "big")
    zeroed = raw[:16] + b"\x00\x00" + raw[18:]
    assert int.from_bytes(raw[16:18], "big") == internet_checksum(pseudo + zeroed)
    back = TcpSegment.parse(raw, pseudo_header_sum(IP_A, IP_B, 6, len(raw)))
    assert (back.payload, back.flags, back.seq, back.options) == (payload, flags, seq, seg.options)


@given(
    st.binary(max_size=40).map(lambda b: b[: len(b) // 4 * 4]),
    st.integers(0, 255),
    st.integers(0, 0xFFFF),
)
def test_ip_header_checksum_is_rfc1071(options: bytes, ttl: int, ident: int) -> None:
    hdr = IPv4Packet(IP_A, IP_B, 6, ttl=ttl, identification=ident, options=options).header(17)
    zeroed = hdr[:10] + b"\x00\x00" + hdr[12:]
    assert int.from_bytes(hdr[10:12], "big") == internet_checksum(zeroed)


def test_ip_header_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="multiple of 4"):
        IPv4Packet(IP_A, IP_B, 6, options=b"\x01").header()
    with pytest.raises(ValueError, match="at most 40"):
        IPv4Packet(IP_A, IP_B, 6, options=bytes(44)).header()
    with pytest.raises(ValueError, match="more than 40"):
        emit_options((TimestampOption(1, 2),) * 5)


def test_addresses_intern_and_convert() -> None:
    assert mac_to_str(b"\x02\x00\x00\x00\x00\xff") == "02:00:00:00:00:ff"
    assert mac_to_bytes("02:00:00:00:00:FF") == b"\x02\x00\x00\x00\x00\xff"
    assert ip_to_str(b"\xc6\x12\x00\x01") == "198.18.0.1" == ip_from_int(0xC6120001)
    assert ip_to_int("198.18.0.1") == 0xC6120001
    assert ip_to_bytes("198.18.0.1") == b"\xc6\x12\x00\x01"
    assert mac_to_str(b"\x02\x00\x00\x00\x00\xff") is mac_to_str(b"\x02\x00\x00\x00\x00\xff")
    with pytest.raises(ValueError):
        mac_to_bytes("02:00:00")
    with pytest.raises(ValueError):
        mac_to_str(b"\x01\x02")
    with pytest.raises(ValueError):
        ip_to_str(b"\x01\x02\x03")
    with pytest.raises(OSError):
        ip_to_int("not an address")
    for i in range(5000):  # the tables stay bounded
        ip_from_int(i)
    from netemu.wire.addr import _IP_STR, _LIMIT

    assert len(_IP_STR) <= _LIMIT


def test_bytearray_and_memoryview_inputs_give_bytes_fields() -> None:
    frame = tcp_frame()
    for buf in (bytearray(frame), memoryview(frame)):
        f = parse_frame(buf)
        assert f == parse_frame(frame)
        assert type(f.tcp.payload) is bytes and type(f.ip.payload) is bytes
    seg = TcpSegment.parse(bytearray(frame[34:]))
    assert type(seg.payload) is bytes


def test_codegen_stores_fields_only_for_plain_dataclasses() -> None:
    import dataclasses

    from netemu.wire._codegen import plain_dataclass, record
    from netemu.wire.frame import Frame

    for cls in (Frame, IPv4Packet, TcpSegment, TimestampOption):
        assert plain_dataclass(cls), cls
    assert record("o", TimestampOption, ["v", "w"]) == [
        "o = _new(TimestampOption)",
        "o.tsval = v",
        "o.tsecr = w",
    ]
    # A frozen record takes no stores: it is built by calling its class.
    assert not plain_dataclass(MssOption)
    assert record("o", MssOption, ["v"]) == ["o = MssOption(v)"]

    @dataclasses.dataclass
    class Checked:
        x: int

        def __post_init__(self) -> None:
            raise AssertionError

    class Handwritten:
        def __init__(self, x: int) -> None:
            self.x = x

    assert not plain_dataclass(Checked)
    assert record("o", Checked, ["v"]) == ["o = Checked(v)"]
    assert not plain_dataclass(Handwritten)
    with pytest.raises(TypeError):
        record("o", MssOption, ["a", "b"])


@given(
    st.binary(max_size=3000),
    st.integers(0, 0xFFF),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    st.integers(0, 0xFFFF),
)
def test_nop_nop_timestamp_emit_matches_general_path(
    payload: bytes, flags: int, seq: int, tsval: int, tsecr: int, win: int
) -> None:
    """The one-pack emitter for NOP, NOP, TSopt gives the general path's bytes."""
    seg = TcpSegment(
        40000,
        80,
        seq,
        seq ^ 0xFFFFFFFF,
        flags,
        win,
        payload,
        (NOP, NOP, TimestampOption(tsval, tsecr)),
    )
    fast = seg.emit("10.0.0.1", "10.0.0.2")
    opts = b"\x01\x01" + struct.pack("!BBII", 8, 10, tsval, tsecr)
    head = struct.pack("!HHIIHHHH", 40000, 80, seq, seq ^ 0xFFFFFFFF, (32 << 10) | flags, win, 0, 0)
    body = head + opts + payload
    csum = internet_checksum(
        ip_to_bytes("10.0.0.1")
        + ip_to_bytes("10.0.0.2")
        + struct.pack("!BBH", 0, 6, len(body))
        + body
    )
    general = body[:16] + struct.pack("!H", csum) + body[18:]
    assert fast == general
    assert TcpSegment.parse(fast, pseudo_header_sum("10.0.0.1", "10.0.0.2", 6, len(fast))).options[
        2
    ] == TimestampOption(tsval, tsecr)


@given(st.binary(max_size=9100), st.integers(0, 3))
def test_word_sum_mod_of_a_slice_is_its_words_remainder(data: bytes, start: int) -> None:
    from netemu.wire.checksum import word_sum, word_sum_mod

    start = min(start, len(data))
    assert word_sum_mod(data, start, len(data)) == word_sum(data[start:]) % 0xFFFF


@given(st.binary(max_size=9000))
def test_mod_ffff_is_the_remainder(data: bytes) -> None:
    v = int.from_bytes(data, "big")
    assert mod_ffff(v) == v % 0xFFFF
    assert mod_ffff(v << 8) == (v << 8) % 0xFFFF
