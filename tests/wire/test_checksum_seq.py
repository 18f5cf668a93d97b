"""checksum.py against a naive RFC 1071 reference; seq.py's modular arithmetic."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from netemu.wire.checksum import (
    fold,
    internet_checksum,
    pseudo_header_sum,
    verifies,
    word_sum,
)
from netemu.wire.seq import (
    seq_add,
    seq_diff,
    seq_ge,
    seq_gt,
    seq_in_window,
    seq_le,
    seq_lt,
    seq_max,
    seq_min,
)


def rfc1071(data: bytes) -> int:
    """RFC 1071 §4.1, word by word with end-around carry; odd length padded with 0."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += data[i] << 8 | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(st.binary(max_size=300))
def test_checksum_matches_rfc1071(data: bytes) -> None:
    assert internet_checksum(data) == rfc1071(data)


def test_checksum_edge_cases() -> None:
    for data in (
        b"",
        b"\x00",
        b"\x00\x00",
        b"\xff",
        b"\xff\xff",
        b"\xff\xff" * 7,
        b"\x01",
        b"\x00\x01",
        b"\xfe\xff\x01\x00",
        bytes(range(256)),
        bytes(range(255)),
    ):
        assert internet_checksum(data) == rfc1071(data), data


def test_checksum_odd_lengths_pad_with_zero() -> None:
    rng = random.Random(1)
    for n in range(1, 64, 2):
        data = rng.randbytes(n)
        assert internet_checksum(data) == internet_checksum(data + b"\x00") == rfc1071(data)


@given(st.binary(min_size=1, max_size=200))
def test_stored_checksum_verifies(data: bytes) -> None:
    # Insert the checksum at an even offset, as every header does: the whole verifies.
    if len(data) % 2:
        data += b"\x00"
    csum = internet_checksum(data)
    assert verifies(word_sum(data + csum.to_bytes(2, "big")))
    assert rfc1071(data + csum.to_bytes(2, "big")) == 0


def test_verifies_rejects_corruption() -> None:
    data = bytes(range(40))
    csum = internet_checksum(data).to_bytes(2, "big")
    assert verifies(word_sum(data + csum))
    assert not verifies(word_sum(data + csum[:1] + bytes([csum[1] ^ 1])))
    assert not verifies(0)  # all zeros is never a valid checksummed header


@given(st.lists(st.binary(max_size=40).map(lambda b: b + b"\x00" * (len(b) % 2)), max_size=5))
def test_word_sums_of_even_pieces_add(pieces: list[bytes]) -> None:
    whole = b"".join(pieces)
    assert fold(sum(word_sum(p) for p in pieces)) == internet_checksum(whole)


def test_pseudo_header_sum() -> None:
    header = bytes((198, 18, 0, 1, 198, 18, 0, 2, 0, 6, 0, 40))
    assert fold(pseudo_header_sum("198.18.0.1", "198.18.0.2", 6, 40)) == rfc1071(header)


# --- sequence numbers ------------------------------------------------------------

MOD = 2**32
u32 = st.integers(0, MOD - 1)


def test_seq_wraps_at_2_32() -> None:
    assert seq_add(MOD - 1, 1) == 0
    assert seq_add(MOD - 10, 20) == 10
    assert seq_add(5, -10) == MOD - 5
    assert seq_diff(5, MOD - 5) == 10
    assert seq_diff(MOD - 5, 5) == -10
    assert seq_lt(MOD - 1, 0) and seq_gt(0, MOD - 1)
    assert seq_lt(MOD - 100, 100) and not seq_lt(100, MOD - 100)
    assert seq_le(7, 7) and seq_ge(7, 7) and not seq_lt(7, 7) and not seq_gt(7, 7)
    assert seq_max(MOD - 1, 3) == 3 and seq_min(MOD - 1, 3) == MOD - 1


@given(u32, st.integers(-(2**31) + 1, 2**31 - 1))
def test_seq_order_follows_signed_distance(a: int, d: int) -> None:
    b = (a + d) % MOD
    assert seq_diff(b, a) == d
    assert seq_lt(a, b) == (d > 0)
    assert seq_gt(a, b) == (d < 0)
    assert seq_le(a, b) == (d >= 0)
    assert seq_ge(a, b) == (d <= 0)
    assert seq_max(a, b) == (b if d > 0 else a)
    assert seq_min(a, b) == (a if d > 0 else b)


@given(u32, u32)
def test_seq_comparisons_consistent(a: int, b: int) -> None:
    assert seq_lt(a, b) == seq_gt(b, a)
    assert seq_le(a, b) == (seq_lt(a, b) or a == b)
    assert seq_ge(a, b) == (seq_gt(a, b) or a == b)
    if a != b and (a - b) % MOD != 2**31:
        assert seq_lt(a, b) != seq_lt(b, a)


@given(u32, st.integers(0, 2**31), st.integers(-(2**31), 2**31))
def test_seq_in_window(start: int, size: int, off: int) -> None:
    x = (start + off) % MOD
    assert seq_in_window(x, start, size) == (0 <= off < size)


def test_seq_in_window_across_wrap() -> None:
    start = MOD - 10
    assert seq_in_window(MOD - 10, start, 20)
    assert seq_in_window(0, start, 20)
    assert seq_in_window(9, start, 20)
    assert not seq_in_window(10, start, 20)
    assert not seq_in_window(MOD - 11, start, 20)
    assert not seq_in_window(start, start, 0)  # an empty window holds nothing
