"""The host's errors (netemu.host exports them)."""


class HostError(Exception):
    pass


class ConnectionRefused(HostError):
    pass
