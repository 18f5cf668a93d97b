"""The one exception the wire layer raises while parsing."""


class MalformedPacket(ValueError):
    """Bytes that do not form a valid record; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadChecksum(MalformedPacket):
    """Well-formed bytes whose checksum does not verify (corruption, or offload)."""
