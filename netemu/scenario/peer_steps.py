"""Step actions both scenario runners share: a peer ``listen`` and ``connect`` in
either family (``peer_listen``, ``peer_connect``), what a ``peer`` step does on a
socket the kernel agent already has (``sock_step``: send, read, expect, shutdown,
close, abort, setsockopt), and the segment an ``inject`` step puts on the wire
(``injected_segment``). Layer: netemu.scenario."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..run.result import StepFailed
from ..wire import TcpSegment
from ..wire.tcp import (
    EOL,
    NOP,
    SACK_PERMITTED,
    MssOption,
    RawOption,
    SackOption,
    TcpOption,
    TimestampOption,
    WindowScaleOption,
)
from . import schema as S
from .conns import ConnCtx

if TYPE_CHECKING:
    from ..lab.kernel import AsyncKernelAgent, Connected, Listening
    from .steps import PeerConnect, PeerListen

MASK = 0xFFFFFFFF
_SHUTDOWN = {"write": "wr", "read": "rd", "both": "rdwr"}


async def peer_listen(agent: AsyncKernelAgent, listen: PeerListen, ipv6_lab: bool) -> Listening:
    """A peer ``listen``: in an IPv6 lab on ``::``, dual-stack (one listener takes both
    families' connections), else on 0.0.0.0."""
    return await agent.listen(
        listen.port,
        host="::" if ipv6_lab else "0.0.0.0",
        backlog=listen.backlog,
        opts=listen.setsockopt,
    )


async def peer_connect(
    agent: AsyncKernelAgent, ip: str, c: PeerConnect, timeout: float
) -> Connected:
    """A peer ``connect`` to ``ip`` (its family's socket; ``local_port`` bound on that
    family's wildcard address)."""
    any_ip = "::" if ":" in ip else "0.0.0.0"
    bind = (any_ip, c.local_port) if c.local_port is not None else None
    return await agent.connect(
        ip, c.port, timeout=timeout, wait=c.wait, opts=c.setsockopt, bind=bind
    )


async def sock_step(
    agent: AsyncKernelAgent,
    sock: int,
    step: S.PeerStep,
    timeout: float,
    *,
    who: str,
    clip: int | None = None,
    at_eof: str = "",
) -> None:
    """A peer step on the agent's socket ``sock`` (``agent``: a KernelAgent's ``aio``).
    A read that differs says what ``who`` read (``clip``: that many bytes of it); one
    that stops short, how many, then ``at_eof``."""
    cmd = step.command  # which of its fields is set
    if step.send is not None:
        await agent.send(sock, step.send.payload() or b"", timeout=timeout)
    elif cmd in ("read", "expect"):
        want = step.expect.payload() if step.expect is not None else None
        n = len(want) if want is not None else int(step.read or 0)
        got = await agent.recv(sock, exact=n, timeout=timeout)
        if want is not None and got != want:
            raise StepFailed(f"{who} read {got[:clip]!r}, expected {want[:clip]!r}")
        if len(got) != n:  # the agent's read stops short at EOF
            raise StepFailed(f"{who} read {len(got)} bytes, expected {n}{at_eof}")
    elif step.shutdown is not None:
        await agent.shutdown(sock, _SHUTDOWN[step.shutdown])
    elif cmd == "close":
        await agent.close(sock)
    elif cmd == "abort":
        await agent.abort(sock)
    elif step.setsockopt is not None:
        await agent.setsockopt(sock, step.setsockopt)


def injected_segment(
    step: S.Inject, ctx: ConnCtx, relative: bool, now: tuple[int, int] | None
) -> TcpSegment:
    """The segment ``step`` injects on ``ctx``'s connection: its seq and ack relative to
    the sender's and the receiver's ISNs (``relative``), else as given; where the step
    gives none, ``now``'s (the connection's current (seq, ack))."""
    assert step.flags is not None  # the loader requires it of an inject without 'scapy'
    ours, peers = (
        (ctx.isns.ours, ctx.isns.peers) if step.dir == "out" else (ctx.isns.peers, ctx.isns.ours)
    )
    seq = step.seq or 0
    ack = step.ack or 0
    if relative:
        seq = (seq + (ours or 0)) & MASK
        ack = (ack + (peers or 0)) & MASK
    if now is not None:
        now_seq, now_ack = now
        seq = now_seq if step.seq is None else seq
        ack = (now_ack if step.flags & 0x10 else 0) if step.ack is None else ack
    options = tuple(_option(o, ctx, step.dir, relative) for o in step.options)
    local = ctx.local_port or 0
    remote = ctx.peer_port or 0
    src, dst = (local, remote) if step.dir == "out" else (remote, local)
    return TcpSegment(
        src,
        dst,
        seq,
        ack,
        step.flags,
        65535 if step.win is None else step.win,
        step.payload() or b"",
        options,
        step.urg or 0,
    )


def _option(spec: S.TcpOptionSpec, ctx: ConnCtx, direction: str, relative: bool) -> TcpOption:
    kind, v = spec.kind, spec.value
    if kind == "mss":
        return MssOption(v)
    if kind == "wscale":
        return WindowScaleOption(v)
    if kind == "sackok":
        return SACK_PERMITTED
    if kind == "ts":
        return TimestampOption(v[0], v[1])
    if kind == "nop":
        return NOP
    if kind == "eol":
        return EOL
    if kind == "sack":
        base = (ctx.isns.peers if direction == "out" else ctx.isns.ours) or 0
        off = base if relative else 0
        return SackOption(tuple(((a + off) & MASK, (b + off) & MASK) for a, b in v))
    return RawOption(v[0], bytes(v[1]))
