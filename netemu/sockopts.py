"""The socket options a kernel peer can be given: name -> (level, optname, kind).

A leaf: the standard library only, nothing of netemu's. The scenario format checks
option names against it (``scenario.peers``); the kernel agent (``lab/agent.py``)
sets and reads them. The agent runs alone (``python -I -S agent.py``, no netemu on
its path), so it loads this file by its path.

``kind``: how the value travels: ``int``, ``str`` (TCP_CONGESTION), ``linger``
(SO_LINGER's pair).

Also the kernel's TCP state numbers (``TCP_STATES``), which the agent's TCP_INFO and
sock_diag (``lab/diag.py``) both report.
"""

import socket

# Kernel TCP_* state numbers (include/net/tcp_states.h) -> RFC 9293 names;
# 12, TCP_NEW_SYN_RECV, is a request socket: SYN-RECEIVED.
TCP_STATES: dict[int, str] = {
    1: "ESTABLISHED",
    2: "SYN-SENT",
    3: "SYN-RECEIVED",
    4: "FIN-WAIT-1",
    5: "FIN-WAIT-2",
    6: "TIME-WAIT",
    7: "CLOSED",
    8: "CLOSE-WAIT",
    9: "LAST-ACK",
    10: "LISTEN",
    11: "CLOSING",
    12: "SYN-RECEIVED",
}

OPTIONS: dict[str, tuple[int, int, str]] = {
    "SO_RCVBUF": (socket.SOL_SOCKET, socket.SO_RCVBUF, "int"),
    "SO_SNDBUF": (socket.SOL_SOCKET, socket.SO_SNDBUF, "int"),
    "SO_RCVBUFFORCE": (socket.SOL_SOCKET, 33, "int"),
    "SO_SNDBUFFORCE": (socket.SOL_SOCKET, 32, "int"),
    "SO_REUSEADDR": (socket.SOL_SOCKET, socket.SO_REUSEADDR, "int"),
    "SO_REUSEPORT": (socket.SOL_SOCKET, socket.SO_REUSEPORT, "int"),
    "SO_KEEPALIVE": (socket.SOL_SOCKET, socket.SO_KEEPALIVE, "int"),
    "SO_LINGER": (socket.SOL_SOCKET, socket.SO_LINGER, "linger"),
    "SO_RCVLOWAT": (socket.SOL_SOCKET, socket.SO_RCVLOWAT, "int"),
    "TCP_NODELAY": (socket.IPPROTO_TCP, socket.TCP_NODELAY, "int"),
    "TCP_MAXSEG": (socket.IPPROTO_TCP, socket.TCP_MAXSEG, "int"),
    "TCP_CORK": (socket.IPPROTO_TCP, 3, "int"),
    "TCP_KEEPIDLE": (socket.IPPROTO_TCP, 4, "int"),
    "TCP_KEEPINTVL": (socket.IPPROTO_TCP, 5, "int"),
    "TCP_KEEPCNT": (socket.IPPROTO_TCP, 6, "int"),
    "TCP_SYNCNT": (socket.IPPROTO_TCP, 7, "int"),
    "TCP_LINGER2": (socket.IPPROTO_TCP, 8, "int"),
    "TCP_DEFER_ACCEPT": (socket.IPPROTO_TCP, 9, "int"),
    "TCP_WINDOW_CLAMP": (socket.IPPROTO_TCP, 10, "int"),
    "TCP_QUICKACK": (socket.IPPROTO_TCP, 12, "int"),
    "TCP_CONGESTION": (socket.IPPROTO_TCP, 13, "str"),
    "TCP_USER_TIMEOUT": (socket.IPPROTO_TCP, 18, "int"),
    "TCP_NOTSENT_LOWAT": (socket.IPPROTO_TCP, 25, "int"),
    "IP_TOS": (socket.IPPROTO_IP, socket.IP_TOS, "int"),
    "IP_TTL": (socket.IPPROTO_IP, socket.IP_TTL, "int"),
}
