"""netemu from Python: a lab with a real peer, and netemu's TCP endpoint on the other
end, for tests written in Python (docs/python.md). On anyio: a connection is an anyio
``ByteStream``, and everything here runs under asyncio (pytest-asyncio) or anyio's
pytest plugin.

    async with open_lab(peer="kernel", network={"delay": "10ms"}) as lab:
        await lab.step({"peer": {"listen": 8080}})
        stream = await lab.connect(8080)
        await lab.step("peer: accept")
        await stream.send(b"hello")
        await lab.step({"peer": {"expect": "hello"}})
        await stream.aclose()
        await lab.step("expect_peer_state: CLOSE-WAIT")
    print(lab.states(), lab.peer_states(), lab.run_dir)

There is one scenario format, and this is a way to run it a step at a time: the
settings of ``open_lab`` are a scenario's top-level keys (``peer``/``peers``,
``options``, ``sysctls``, ``network``, ``connections``, ``relative``, ``timeout``,
``seed``; docs/scenarios.md), checked by the scenario loader with its messages, and
``step`` runs any scenario step (``expect_segment``, ``expect_peer_state``, ``inject``,
``drop``, a ``peer:`` command to the kernel, …) against the connections opened so
far. The lab, the host, the peers and the trace are set up by the code that runs
``netemu run FILE`` (netemu.scenario.session.endpoint_lab), so a test here sees what
a scenario would: both sides' states from the peer kernel's tracepoints, the same
ladder, the same report.json.

A step that fails raises ``StepError`` (an ``AssertionError``: pytest shows it as a
failed assertion), with the step and netemu's message. Leaving the ``async with``
takes the lab down and, with ``run_dir``, writes trace.pcap, ladder.txt, ladder.html
and report.json there; ``result`` says "pass" unless a step failed or the body raised.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .host.stream import TcpStream
    from .lab.core import Lab
    from .lab.process import LabProcess
    from .run.result import StepResult
    from .scenario.runner import Runner
    from .scenario.schema import Scenario, StepBase
    from .trace.record import Trace

__all__ = ["LabSession", "SettingsError", "StepError", "go_program", "open_lab"]

_SETTINGS = (
    "description",
    "family",
    "peer",
    "peers",
    "options",
    "sysctls",
    "network",
    "connections",
    "relative",
    "timeout",
    "seed",
)


class SettingsError(ValueError):
    """``open_lab``'s settings, or a step given to ``step``, are not a valid scenario
    part; the message is the scenario loader's."""


class StepError(AssertionError):
    """A step failed: where it was called, its number, the step as the ladder writes
    it, and why."""

    def __init__(self, result: StepResult, where: str) -> None:
        self.result = result
        super().__init__(f"{where}: step {result.index} ({result.text}) failed: {result.message}")


def _caller() -> tuple[str, int]:
    """The file and line of the code that called into this module (a test's line):
    a step's ``line`` in report.json and the ladder."""
    import sys

    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno


def _scenario(
    name: str,
    settings: Mapping[str, Any],
    steps: Sequence[Any],
    where: Sequence[str] = (),
) -> Scenario:
    """The settings and steps as one scenario, through the scenario loader (its checks,
    its defaults, its messages). ``where``: each step's place in the caller's code
    (``test_x.py:12``), for a message that names a step by its line. Raises
    SettingsError, its message the loader's, each problem with the setting or step
    it is about."""
    import re

    import yaml

    from .scenario.loader import ScenarioError, load_scenario_text
    from .source_error import SourceError

    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise SettingsError(
            f"unknown setting(s) {', '.join(unknown)}: open_lab takes a scenario's top-level "
            f"keys ({', '.join(_SETTINGS)})"
        )
    try:
        head = yaml.safe_dump({"name": name, **settings}, sort_keys=False, allow_unicode=True)
        lines = [*head.splitlines(), "steps:"]
        starts: dict[int, str] = {}  # a step's first line in the text -> its place in code
        for k, step in enumerate(steps):
            starts[len(lines) + 1] = where[k] if k < len(where) else f"step {k + 1}"
            one = yaml.safe_dump([step], sort_keys=False, allow_unicode=True)
            lines += [f"  {line}" for line in one.splitlines()]
    except yaml.YAMLError as e:
        raise SettingsError(f"cannot be written as a scenario: {e}") from None
    try:
        return load_scenario_text("\n".join(lines) + "\n", "<netemu.api>")
    except ScenarioError as e:

        def about(err: SourceError) -> str:  # the setting or step a problem is about
            at = lines[err.line - 1].strip(" -") if 0 < err.line <= len(lines) else ""
            return f"at `{at}`: " if at else ""

        def placed(message: str) -> str:  # "the connect at line 6": at the caller's line
            return re.sub(r"\bline (\d+)\b", lambda m: starts.get(int(m[1]), m[0]), message)

        problems = "; ".join(f"{about(err)}{placed(err.message)}" for err in e.errors or [e])
        raise SettingsError(problems) from None


def go_program(name: str) -> Path:
    """The path of one of netemu's Go programs (``hello``, ``echo``, ``client``: the
    sources in netemu/lab/go), built on first use, offline; for ``start_server`` and
    ``spawn`` with arguments a ``peer: go-echo`` does not take."""
    from .lab.gobuild import binary

    return binary(name)


class LabSession:
    """An open lab (``open_lab``): netemu's endpoint at ``emu_ip``, the peer at
    ``peer_ip``; steps, connections, and afterwards what happened."""

    def __init__(self, name: str, settings: Mapping[str, Any], sc: Scenario) -> None:
        self.name = name
        self.scenario = sc  # the settings as the loader read them
        self._settings = dict(settings)
        self._runner: Runner | None = None
        self._done: list[Any] = []  # the steps run so far, as given: the next is checked
        self._where: list[str] = []  # after them (a connection must be opened before use)
        self._pending: tuple[Any, str] = (None, "")  # and where in the caller's code
        self.run_dir: Path | None = None
        self.result: str | None = None  # "pass" / "fail", once the lab is down
        self.report: dict[str, Any] | None = None  # report.json, when run_dir was given
        self.error: str | None = None

    # -- the lab -----------------------------------------------------------------------
    @property
    def runner(self) -> Runner:
        if self._runner is None:
            raise RuntimeError("the lab is not open (use `async with open_lab(...)`)")
        return self._runner

    @property
    def lab(self) -> Lab:
        """The lab itself (netemu.lab.core.Lab): its namespaces, ``spawn``, ``env``."""
        return self.runner.lab

    @property
    def emu_ip(self) -> str:
        """netemu's address in the scenario's family (``family: ipv6``: 2001:2::1)."""
        six = self.lab.emu_ip6 if self.scenario.family == "ipv6" else None
        return six or self.lab.emu_ip

    @property
    def peer_ip(self) -> str:
        """The peer's address in the scenario's family (``family: ipv6``: 2001:2::2)."""
        six = self.lab.peer_ip6 if self.scenario.family == "ipv6" else None
        return six or self.lab.peer_ip

    @property
    def trace(self) -> Trace:
        """Everything seen so far: frames both ways, both sides' states, notes."""
        return self.runner.trace

    # -- steps -------------------------------------------------------------------------
    def parse_step(self, step: str | Mapping[str, Any]) -> StepBase:
        """A scenario step from its YAML text (``"expect_state: ESTABLISHED"``) or its
        mapping (``{"peer": {"listen": 8080}}``), checked as the scenario loader
        checks it, with this lab's settings around it."""
        file, line = _caller()
        here = f"{os.path.basename(file)}:{line}"
        if isinstance(step, str):
            import yaml

            try:
                step = yaml.safe_load(step)
            except yaml.YAMLError as e:
                problem = getattr(e, "problem", None) or str(e).splitlines()[0]
                raise SettingsError(
                    f"{file}:{line}: step {step!r} is not YAML: {problem}"
                ) from None
        try:
            sc = _scenario(self.name, self._settings, [*self._done, step], [*self._where, here])
        except SettingsError as e:
            raise SettingsError(f"{file}:{line}: step {step!r}: {e}") from None
        self._pending = step, here
        return sc.steps[-1]

    async def step(self, step: str | Mapping[str, Any]) -> StepResult:
        """Run one scenario step now; its result. Raises StepError when it fails."""
        parsed = self.parse_step(step)
        self._done.append(self._pending[0])  # the connections it names exist for the next
        self._where.append(self._pending[1])
        file, parsed._line = _caller()  # the step's line: the caller's, not the YAML's
        parsed._col = 0
        runner = self.runner
        if not await runner.run_steps([parsed], first=len(runner.results) + 1):
            raise StepError(runner.results[-1], f"{file}:{parsed.line}")
        return runner.results[-1]

    async def steps(self, steps: str | Sequence[str | Mapping[str, Any]]) -> None:
        """Several steps in order: a list, or YAML text of a list (a scenario's
        ``steps:``). Stops at the first that fails (StepError)."""
        if isinstance(steps, str):
            import yaml

            loaded = yaml.safe_load(steps)
            if not isinstance(loaded, list):
                raise SettingsError("steps: expected a YAML list ('- connect: 8080' ...)")
            steps = loaded
        for one in steps:
            await self.step(one)

    # -- connections -------------------------------------------------------------------
    async def connect(
        self, port: int | None = None, *, conn: str | None = None, **step: Any
    ) -> TcpStream:
        """Open a connection from netemu's endpoint to the peer (a ``connect`` step:
        ``local_port``, ``options``, ``wait``, ``timeout`` as there) and return it as an
        anyio byte stream. ``port`` defaults as in a scenario (the peer's server
        port); ``conn`` names it for later steps."""
        args = {**step, **({"port": port} if port is not None else {})}
        args.update({"conn": conn} if conn is not None else {})
        await self.step({"connect": args} if args else "connect")
        return self.stream(conn)

    async def listen(self, port: int, **step: Any) -> None:
        """netemu's endpoint listens on ``port`` (a ``listen`` step)."""
        await self.step({"listen": {"port": port, **step}})

    async def accept(
        self, port: int | None = None, *, conn: str | None = None, **step: Any
    ) -> TcpStream:
        """The next connection the peer opened to a port netemu listens on (an
        ``accept`` step), as an anyio byte stream."""
        args = {**step, **({"port": port} if port is not None else {})}
        args.update({"conn": conn} if conn is not None else {})
        await self.step({"accept": args} if args else "accept")
        return self.stream(conn)

    def stream(self, conn: str | None = None) -> TcpStream:
        """The byte stream of connection ``conn`` (default: the scenario's default)."""
        name = conn or self.scenario.default_conn()
        ctx = self.runner.ctx.get(name)
        if ctx is None or ctx.stream is None:
            raise RuntimeError(f"connection {name!r} is not open")
        return ctx.stream

    async def start_server(
        self,
        argv: Sequence[str],
        *,
        port: int,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
        timeout: float = 5.0,
    ) -> LabProcess:
        """Start a program in the peer's namespace (its environment has the lab's
        addresses: NETEMU_PEER_IP, NETEMU_EMU_IP…) and wait until it listens on
        ``port``. The lab stops it when it goes down."""
        try:
            proc = self.lab.spawn(list(argv), env=dict(env or {}), name=name)
        except FileNotFoundError:
            raise FileNotFoundError(f"start_server: program not found: {argv[0]}") from None
        try:
            await self.lab.wait_listening_async(port, proc=proc, timeout=timeout)
        except TimeoutError:
            raise TimeoutError(
                f"start_server: {os.path.basename(argv[0])} did not listen on port {port} "
                f"within {timeout:g} s"
            ) from None
        return proc

    def spawn(self, argv: Sequence[str], **kw: Any) -> LabProcess:
        """Start any program in the peer's namespace without waiting for it (a client,
        say). Keywords: ``env`` (added to the lab's), ``name`` (for its log),
        ``stdin``/``stdout``/``stderr`` (as subprocess's: ``subprocess.PIPE``…),
        ``cwd``, ``ns`` ("peer", or "emu" for the emulator's namespace). Its ``popen``
        is the ``subprocess.Popen`` (bytes: decode its output yourself). The lab stops
        it when it goes down."""
        return self.lab.spawn(list(argv), **kw)

    # -- what happened -----------------------------------------------------------------
    def states(self, conn: str | None = None) -> list[str]:
        """netemu's states of connection ``conn`` (default: the scenario's default
        connection), in order, from the first it entered."""
        name = conn or self.scenario.default_conn()
        return [r.new for r in self.trace.states if r.conn == name]

    def peer_states(self, conn: str | None = None) -> list[str]:
        """The peer kernel's states of its end of connection ``conn`` (default: the
        scenario's default connection), in order, as its tracepoints reported them.
        Every socket's, listeners' too, is in ``trace.peer_states``."""
        name = conn or self.scenario.default_conn()
        ctx = self.runner.ctx.get(name)
        if ctx is None or ctx.local_port is None:
            raise RuntimeError(f"connection {name!r} was never opened")
        return [
            r.state
            for r in self.trace.peer_states
            if r.remote[1] == ctx.local_port
            and (ctx.peer_port is None or r.local[1] == ctx.peer_port)
        ]


@contextlib.asynccontextmanager
async def open_lab(
    name: str = "python",
    *,
    run_dir: str | Path | None = None,
    **settings: Any,
) -> AsyncIterator[LabSession]:
    """A lab with the peer(s) of ``settings`` (a scenario's top-level keys) started
    and netemu's endpoint up, for the body of the ``async with``. ``run_dir``: where
    the run's trace.pcap, ladder.txt, ladder.html and report.json go when it ends.

    Needs root (network namespaces); ``netemu.run.environment.lab_problem()`` says why
    a machine cannot."""
    from .scenario.session import endpoint_lab, start_peers, write_outputs
    from .scenario.settings import impairments

    sc = _scenario(name, settings, [{"sleep": "0s"}])
    session = LabSession(name, settings, sc)
    out = Path(run_dir) if run_dir is not None else None
    seed = sc.seed
    isn_secret = None if seed is None else seed.to_bytes(16, "big", signed=True)
    t0 = time.monotonic()
    failed: BaseException | None = None
    with contextlib.ExitStack() as hold:
        try:
            async with endpoint_lab(
                sc, out, hold=hold, pipes=impairments(sc), isn_secret=isn_secret
            ) as runner:
                await start_peers(runner)
                session._runner = runner
                try:
                    yield session
                except BaseException as e:
                    failed = e
                    raise
                finally:
                    if failed is not None and not isinstance(failed, StepError):
                        session.error = f"{type(failed).__name__}: {failed}"
                    session.error = runner.failure() or session.error
                    session.result = "fail" if session.error else "pass"
        finally:
            if out is not None and session._runner is not None:
                outcome = write_outputs(
                    sc,
                    out,
                    runner.trace,
                    runner,
                    passed=session.result == "pass",
                    error=session.error,
                    duration=time.monotonic() - t0,
                )
                session.run_dir, session.report = out, outcome.report
