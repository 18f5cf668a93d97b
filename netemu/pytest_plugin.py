"""netemu's pytest plugin (the ``pytest11`` entry point ``netemu``; ``-p netemu``): YAML
scenarios and packetdrill ``.pkt`` scripts as test items, one item per file, each run
in a fresh lab through the run layer as ``netemu run FILE`` runs it (docs/pytest.md).

It is loaded in every pytest run of anyone who installed netemu, so importing it costs
next to nothing (pytest and the standard library; netemu's loaders when a file is
collected, its run layer when an item runs), and it collects nothing unless asked: a
file given on the command line, a file inside a directory given there, or one under
the ini option ``netemu_paths``. When pytest takes its paths from ``testpaths`` (a
plain ``pytest``), no scenario is collected unless it is under ``netemu_paths``.

Verdicts are netemu's: a scenario that fails is a failed item, reported in netemu's
words (the failed step's ``file:line``, its message, the ladder around it, the run
directory); a file that does not load is a collection error, its one line
``file:line:col: message``; an environment problem (not root, a missing tool, a lab
the kernel refuses) is a skip with the reason, and a failure when ``CI`` is set."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

SUFFIXES = (".yaml", ".yml", ".pkt")
# A YAML file is a scenario when it is a mapping with a top-level `steps:` key.
_STEPS = re.compile(r"^(?:steps|['\"]steps['\"])\s*:", re.MULTILINE)
_SNIFF_BYTES = 1 << 20  # as far as the scenario loader reads
_LADDER_LINES = 15  # of ladder.txt around the failure, in a failed item's report
_LATE_TRIES = 3  # a run netemu itself was late in has no verdict: made again, at most
_ROOTS = pytest.StashKey[list[Path]]()
_LAB_DIRS = pytest.StashKey[list[Path]]()  # the run directories of a test's netemu_lab


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("netemu", "netemu scenarios and packetdrill scripts")
    group.addoption(
        "--netemu-output",
        metavar="DIR",
        default=None,
        help="put each item's run directory under DIR (default: pytest's temporary directory)",
    )
    group.addoption(
        "--netemu-shard",
        metavar="I/N",
        default=None,
        type=_shard,
        help="run only shard I of N (1 <= I <= N) of the collected tests, for a suite "
        "spread over N CI machines: every Nth test in collection order, so the N shards "
        "together run each test once (docs/python.md)",
    )
    parser.addini(
        "netemu_paths",
        type="paths",
        default=[],
        help="directories (or files) whose .yaml/.yml/.pkt files are collected as netemu "
        "items when pytest visits them, besides the paths given on the command line",
    )


def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if m is None or not 1 <= int(m[1]) <= int(m[2]):
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N (e.g. 2/4), got {text!r}")
    return int(m[1]), int(m[2])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--netemu-shard I/N``: keep items I, I+N, I+2N… (1-based) of the collection,
    deselect the rest. Collection order is the same on every machine for the same
    checkout and arguments, so the shards never overlap and together cover all."""
    shard = config.getoption("netemu_shard", None)
    if shard is None:
        return
    i, n = shard
    keep = [item for k, item in enumerate(items) if k % n == i - 1]
    drop = [item for k, item in enumerate(items) if k % n != i - 1]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "netemu: a netemu scenario or packetdrill script, run in a fresh lab"
    )
    config.addinivalue_line(
        "markers", "root: needs root and network namespaces (never skipped silently when CI=true)"
    )


def _roots(config: pytest.Config) -> list[Path]:
    """Where netemu items are collected: the paths given on the command line (never
    ``testpaths``) and those of ``netemu_paths``, absolute."""
    roots = config.stash.get(_ROOTS, None)
    if roots is not None:
        return roots
    roots = []
    if config.args_source == pytest.Config.ArgsSource.ARGS:
        here = config.invocation_params.dir
        for arg in config.args:
            path = arg.split("::", 1)[0]
            if path and not path.startswith("-"):
                roots.append(Path(os.path.abspath(here / path)))
    roots.extend(Path(os.path.abspath(p)) for p in config.getini("netemu_paths"))
    config.stash[_ROOTS] = roots
    return roots


def _asked(config: pytest.Config, path: Path) -> bool:
    path = Path(os.path.abspath(path))
    return any(path == root or path.is_relative_to(root) for root in _roots(config))


def looks_like_scenario(path: Path) -> bool:
    """A .pkt file always; a YAML file when it has a top-level ``steps:`` key (a CI
    configuration or a docker-compose file is no scenario)."""
    if path.suffix == ".pkt":
        return True
    try:
        with open(path, "rb") as f:
            text = f.read(_SNIFF_BYTES).decode(errors="replace")
    except OSError:
        return True  # unreadable: the loader says why, as a collection error
    return _STEPS.search(text) is not None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in SUFFIXES or not _asked(parent.config, file_path):
        return None
    if not looks_like_scenario(file_path):
        return None
    node: NetemuFile = NetemuFile.from_parent(parent, path=file_path)
    return node


def _shown(config: pytest.Config, path: Path) -> str:
    """``path`` as the user would write it: relative to where pytest was started when
    it is below it."""
    try:
        return str(path.relative_to(config.invocation_params.dir))
    except ValueError:
        return str(path)


class NetemuFile(pytest.File):
    """A scenario (.yaml, .yml) or a packetdrill script (.pkt): one item, the file."""

    def collect(self) -> Iterator[pytest.Item]:
        from netemu.source_error import SourceError

        shown = _shown(self.config, self.path)
        try:
            kind, source = _load(self.path)
        except SourceError as e:  # ScenarioError, PktError: file:line:col: message
            errs = getattr(e, "errors", None) or [e]
            lines = [_as_shown(str(err), self.path, shown) for err in errs]
            raise self.CollectError("\n".join(lines)) from None
        except OSError as e:
            raise self.CollectError(f"{shown}: {e.strerror or e}") from None
        item: NetemuItem = NetemuItem.from_parent(
            self, name=self.path.name, kind=kind, source=source, shown=shown
        )
        item.add_marker("netemu")
        item.add_marker("root")
        yield item


def _as_shown(message: str, path: Path, shown: str) -> str:
    """A loader's ``/abs/path:line:col: message`` as ``shown:line:col: message``."""
    return shown + message[len(str(path)) :] if message.startswith(str(path)) else message


def _load(path: Path) -> tuple[str, Any]:
    """(kind, the loaded scenario or script); the loader's own error on bad input. A
    .pkt takes packetdrill's options from the script itself, as ``netemu run x.pkt``.
    The path is absolute: a script's shell commands run in its folder, wherever the
    item runs from."""
    if path.suffix == ".pkt":
        from netemu.pkt import load_pkt

        return "pkt", load_pkt(path)
    from netemu.scenario.loader import load_scenario

    return "yaml", load_scenario(path)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def environment_problem() -> str | None:
    """Why no lab can be made here, or None (as ``netemu run`` checks, exit 3)."""
    from netemu.run.environment import lab_problem

    problem = lab_problem()
    if problem is not None and not problem.startswith("missing"):
        problem += " (netemu runs each file in a lab)"
    return problem


def _skip_or_fail(why: str) -> NoReturn:
    """A skip with the reason; a failure when CI is set (never a silent skip there)."""
    if in_ci():
        pytest.fail(f"{why}: CI is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(why)


class NetemuFailed(Exception):
    """The run's verdict was fail: its report, ladder.txt and run directory."""

    def __init__(self, report: dict[str, Any], run_dir: Path) -> None:
        super().__init__(report.get("error") or "failed")
        self.report = report
        self.run_dir = run_dir


class NetemuItem(pytest.Item):
    """One file's run, in a lab of its own (items are independent: ``-n N`` works)."""

    def __init__(self, *, kind: str, source: Any, shown: str, **kw: Any) -> None:
        super().__init__(**kw)
        self.kind = kind
        self.source = source
        self.shown = shown

    def runtest(self) -> None:
        problem = environment_problem()
        if problem is not None:
            _skip_or_fail(problem)
        if self.kind == "pkt" and self.source.dry_run:  # --dry_run in the script: checked
            return
        import asyncio

        from netemu.lab.core import LabError
        from netemu.run.result import EnvironmentProblem
        from netemu.run.rundir import discard_run_dir

        for _ in range(_LATE_TRIES):
            run_dir = self._run_dir()
            try:
                outcome = asyncio.run(self._start(run_dir))
            except (EnvironmentProblem, LabError) as e:  # (a sysctl the kernel refuses)
                discard_run_dir(run_dir)  # nothing left behind
                _skip_or_fail(f"{self.source.name}: {e}")
            if not outcome.report.get("netemu_late"):
                break
        if outcome.report.get("netemu_late"):  # netemu run: exit 3, no verdict
            _skip_or_fail(f"{self.source.name}: {outcome.report['netemu_late']}")
        if not outcome.passed:
            raise NetemuFailed(outcome.report, outcome.run_dir)

    async def _start(self, run_dir: Path) -> Any:
        if self.kind == "pkt":
            from netemu.pkt.session import run_pkt

            return await run_pkt(self.source, run_dir)
        from netemu.scenario.session import run_scenario

        return await run_scenario(self.source, run_dir)

    def _run_dir(self) -> Path:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", self.path.stem) or "scenario"
        if self.config.getoption("netemu_output"):
            stem = self.source.name
        return _new_run_dir(self.config, stem)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, NetemuFailed):
            return failure_text(self.shown, excinfo.value.report, excinfo.value.run_dir)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, self.name


def failure_text(shown: str, report: dict[str, Any], run_dir: Path) -> str:
    """A failed run in netemu's words: the failed step at ``file:line`` with its
    message, the ladder around the failure, the run directory."""
    failed = [s for s in report.get("steps") or () if s.get("status") == "fail"]
    lines = []
    if failed:
        s = failed[0]
        lines.append(f"{shown}:{s['line']}: step {s['index']} {s['action']}: {s['message']}")
    error = report.get("error")
    if error and (not failed or failed[0]["message"] not in error):
        lines.append(f"{shown}: {error}")
    excerpt = ladder_excerpt(run_dir / "ladder.txt")
    if excerpt:
        lines += ["", "ladder (ladder.txt, around the failure):", *excerpt, ""]
    lines.append(f"run directory: {run_dir}")
    return "\n".join(lines)


def ladder_excerpt(path: Path, size: int = _LADDER_LINES) -> list[str]:
    """Up to ``size`` lines of the ladder, the failure's mark (``✗``) two thirds of the
    way down (the last lines when there is no mark)."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    marks = [i for i, line in enumerate(lines) if "✗" in line]
    end = len(lines)
    if marks:
        end = min(len(lines), marks[0] + size // 3 + 1)
    start = max(0, end - size)
    return [line.rstrip() for line in lines[start:end]]


# --- the Python API's fixture (netemu.api, docs/python.md) ------------------------------


@pytest.fixture
def netemu_lab(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """``netemu.api.open_lab`` for a test: ``async with netemu_lab(peer="kernel") as
    lab: ...``, with the test's own run directory (pytest's temporary directory, or
    under ``--netemu-output``). A plain fixture returning the opener, so it serves
    asyncio (pytest-asyncio) and anyio tests alike. The test is skipped where no lab can
    be made (a failure when CI is set); when it fails, its report ends with the ladder
    around the failure and the run directory."""
    problem = environment_problem()
    if problem is not None:
        _skip_or_fail(problem)
    from netemu.api import open_lab

    dirs = request.node.stash.setdefault(_LAB_DIRS, [])
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:60].strip("-") or "lab"

    def opener(name: str | None = None, **settings: Any) -> Any:
        run_dir = _new_run_dir(request.config, name or stem)
        dirs.append(run_dir)
        return open_lab(name or stem, run_dir=run_dir, **settings)

    return opener


def _new_run_dir(config: pytest.Config, name: str) -> Path:
    """A new run directory: under --netemu-output DIR, else pytest's temporary
    directory (each xdist worker has its own)."""
    out = config.getoption("netemu_output")
    if out:
        from netemu.run.rundir import default_run_dir

        return default_run_dir(name, out)
    factory = getattr(config, "_tmp_path_factory")  # noqa: B009 (set by pytest)
    path: Path = factory.mktemp(name, numbered=True)
    return path


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test that opened labs with ``netemu_lab``: a section per lab in its
    report, the ladder around the failure and the run directory."""
    report = yield
    dirs = item.stash.get(_LAB_DIRS, None)
    if dirs and report.when == "call" and report.failed:
        for run_dir in dirs:
            if not (run_dir / "report.json").exists():
                continue  # a lab that never opened (a bad setting): nothing to show
            lines = ladder_excerpt(run_dir / "ladder.txt")
            text = "\n".join([*lines, "", f"run directory: {run_dir}"])
            report.sections.append((f"netemu lab {run_dir.name}", text))
    return report
