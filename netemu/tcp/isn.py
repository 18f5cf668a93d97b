"""Initial sequence numbers per RFC 6528 §3.

    ISN = M + F(localip, localport, remoteip, remoteport, secretkey)

"where M is the 4 microsecond timer, and F() is a pseudorandom function (PRF)
of the connection-id". The secret and the clock are injected, so a seeded run
reproduces its ISNs.
"""

from __future__ import annotations

import os


class IsnGenerator:
    def __init__(self, secret: bytes | None = None) -> None:
        self.secret = os.urandom(16) if secret is None else secret

    def isn(
        self, local_ip: str, local_port: int, remote_ip: str, remote_port: int, now: float
    ) -> int:
        import hashlib  # (on first use: ~1 ms of a start that makes no connection)

        conn_id = f"{local_ip}:{local_port}>{remote_ip}:{remote_port}".encode()
        f = hashlib.blake2s(conn_id, key=self.secret[:32], digest_size=4).digest()
        m = int(now * 250_000)  # the 4 µs timer
        return (m + int.from_bytes(f, "big")) & 0xFFFFFFFF


def ts_offset(
    secret: bytes, local_ip: str, local_port: int, remote_ip: str, remote_port: int
) -> int:
    """A per-connection offset for the TCP timestamp clock (RFC 7323 §7.1: "a
    random offset ... for each connection"; Linux: a keyed hash of the
    addresses, secure_tcp_ts_off). Keyed by the ISN secret, so a seeded run
    reproduces its timestamps."""
    import hashlib

    conn_id = f"ts {local_ip}:{local_port}>{remote_ip}:{remote_port}".encode()
    return int.from_bytes(hashlib.blake2s(conn_id, key=secret[:32], digest_size=4).digest(), "big")
