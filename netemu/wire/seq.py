"""Sequence-number arithmetic modulo 2**32 (RFC 9293 §3.4).

"It is essential to remember that the actual sequence number space is finite,
though very large ... all arithmetic dealing with sequence numbers must be
performed modulo 2**32."  Comparisons are made on the signed 32-bit difference.
"""

MASK = 0xFFFFFFFF
HALF = 0x80000000


def seq_add(a: int, n: int) -> int:
    return (a + n) & MASK


def seq_diff(a: int, b: int) -> int:
    """Signed distance a - b in (-2**31, 2**31]."""
    d = (a - b) & MASK
    return d - 0x100000000 if d >= HALF else d


def seq_lt(a: int, b: int) -> bool:
    return ((a - b) & MASK) >= HALF


def seq_le(a: int, b: int) -> bool:
    return a == b or ((a - b) & MASK) >= HALF


def seq_gt(a: int, b: int) -> bool:
    return ((b - a) & MASK) >= HALF


def seq_ge(a: int, b: int) -> bool:
    return a == b or ((b - a) & MASK) >= HALF


def seq_in_window(x: int, start: int, size: int) -> bool:
    """start <= x < start + size, modulo 2**32 (the RFC 9293 §3.10.7.4 test)."""
    return ((x - start) & MASK) < size


def seq_max(a: int, b: int) -> int:
    return b if seq_lt(a, b) else a


def seq_min(a: int, b: int) -> int:
    return a if seq_lt(a, b) else b
