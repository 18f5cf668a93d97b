"""What goes into and comes back out of a system call's buffers: payload bytes,
a socket option's value packed as the kernel takes it, and ``recvmsg``'s control
messages compared with the script's.

Layer rule: the standard library and ``pkt.symbols``; ``live`` uses it.
"""

from __future__ import annotations

import struct
from typing import Any

from .symbols import SYMBOLS, ScriptValueError


def payload_bytes(buf: Any, n: int) -> bytes:
    if isinstance(buf, bytes):
        return buf[:n].ljust(n, b"\0")
    return bytes(n)


def pack_opt(v: Any, optlen: Any) -> bytes:
    if isinstance(v, bytes):
        return v
    if isinstance(v, int):
        v = [v]
    if isinstance(v, list):
        if optlen == 1 and len(v) == 1:
            return struct.pack("B", v[0] & 0xFF)
        return b"".join(struct.pack("I", int(x) & 0xFFFFFFFF) for x in v if isinstance(x, int))
    if isinstance(v, dict):
        if "onoff" in v or "linger" in v:
            return struct.pack("ii", int(v.get("onoff", 0)), int(v.get("linger", 0)))
        return b"".join(
            struct.pack("I", int(x) & 0xFFFFFFFF) for x in v.values() if isinstance(x, int)
        )
    raise ScriptValueError(f"cannot pass {v!r} as a socket option value")


def compare_cmsgs(
    want: list[Any], got: list[tuple[int, int, bytes]], to_real: Any = None, tol_us: int = 4000
) -> str | None:
    """recvmsg's control messages against the script's: level, type, a
    ``sock_extended_err`` (error queue) field by field as written, and a
    ``scm_timestamping`` as packetdrill checks it: each timestamp the script gives (not
    0) within --tolerance_usecs of that script time on the kernel's clock."""
    if len(want) != len(got):
        return f"recvmsg(): expected {len(want)} control messages but got {len(got)}"
    for w, (level, ctype, data) in zip(want, got, strict=True):
        if not isinstance(w, dict):
            continue
        wl, wt = w.get("cmsg_level", ...), w.get("cmsg_type", ...)
        if (isinstance(wl, int) and wl != level) or (isinstance(wt, int) and wt != ctype):
            return (
                f"recvmsg(): control message: expected level {wl} type {wt} but got "
                f"level {level} type {ctype}"
            )
        d = w.get("cmsg_data", ...)
        if (
            isinstance(d, dict | list)
            and ctype == SYMBOLS["SCM_TIMESTAMPING"]
            and level == SYMBOLS["SOL_SOCKET"]
        ):
            stamps = d if isinstance(d, list) else [d]
            for i, ts in enumerate(stamps[:3]):
                if not isinstance(ts, dict) or len(data) < 16 * (i + 1):
                    continue
                sec, nsec = (
                    ts.get("scm_sec", ts.get("tv_sec", 0)),
                    ts.get("scm_nsec", ts.get("tv_nsec", 0)),
                )
                if not isinstance(sec, int) or not isinstance(nsec, int) or (not sec and not nsec):
                    continue  # packetdrill: a 0 timestamp is not checked
                a_sec, a_nsec = struct.unpack("qq", data[16 * i : 16 * i + 16])
                actual = a_sec * 1_000_000 + a_nsec // 1000
                exp = to_real(sec * 1_000_000 + nsec // 1000) if to_real else None
                if exp is None:
                    continue
                if abs(exp - actual) > tol_us:
                    return (
                        f"recvmsg(): bad timestamp {i} in scm_timestamping: expected "
                        f"{(exp - to_real(0)) / 1e6:.6f} s, got "
                        f"{(actual - to_real(0)) / 1e6:.6f} s (tolerance "
                        f"{tol_us / 1000:.1f} ms)"
                    )
        if isinstance(d, int):  # TCP_CM_INQ and other int-valued messages
            got_int = int.from_bytes(data[:4], "little", signed=True) if len(data) >= 4 else None
            if got_int != d:
                return f"recvmsg(): cmsg_data of type {ctype}: expected {d} but got {got_int}"
            continue
        if d is not ... and not (
            isinstance(d, dict | list)
            and (ctype == SYMBOLS["SCM_TIMESTAMPING"] or (isinstance(d, dict) and "ee_errno" in d))
        ):
            # Never a silent pass: a shape netemu does not compare is said so.
            return (
                f"recvmsg(): netemu cannot compare this cmsg_data yet (level {level}, "
                f"type {ctype}): {d!r}"
            )
        if isinstance(d, dict) and "ee_errno" in d and len(data) >= 16:
            vals = dict(
                zip(
                    ("ee_errno", "ee_origin", "ee_type", "ee_code", "ee_pad", "ee_info", "ee_data"),
                    struct.unpack("IBBBBII", data[:16]),
                    strict=True,
                )
            )
            for k, x in d.items():
                if isinstance(x, int) and k in vals and vals[k] != x:
                    return f"recvmsg(): sock_extended_err.{k}: expected {x} but got {vals[k]}"
    return None
