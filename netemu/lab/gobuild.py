"""Build the Go peers (``go/<name>/main.go``) on first use, offline, into a cache.

Debian's ``go`` with its shipped standard library, ``GOPROXY=off``,
``GOFLAGS=-mod=mod``, ``GOCACHE`` and ``GOPATH`` inside the cache folder, and a
``HOME`` there when the real one is unusable (CI). ``CGO_ENABLED`` is left alone
(setting it to 0 rebuilds the standard library). A binary is named after the hash
of its source and toolchain, so editing ``main.go`` rebuilds it; concurrent builds
(pytest-xdist) serialise on a lock file.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

GO_SOURCES = Path(__file__).resolve().parent / "go"


class GoBuildError(RuntimeError):
    pass


def cache_dir() -> Path:
    """``$NETEMU_CACHE``, else ``.cache/netemu`` in a source checkout, else
    ``$XDG_CACHE_HOME/netemu`` or ``~/.cache/netemu`` when writable, else a temp dir."""
    env = os.environ.get("NETEMU_CACHE")
    if env:
        return Path(env)
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() and os.access(root, os.W_OK):
        return root / ".cache" / "netemu"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    if os.path.isdir(os.path.dirname(base)) and os.access(os.path.dirname(base), os.W_OK):
        return Path(base) / "netemu"
    return Path(tempfile.gettempdir()) / f"netemu-cache-{os.getuid()}"


def programs() -> list[str]:
    return sorted(p.parent.name for p in GO_SOURCES.glob("*/main.go"))


def go_tool() -> str:
    go = shutil.which("go") or (
        "/usr/lib/go/bin/go" if os.path.exists("/usr/lib/go/bin/go") else None
    )
    if go is None:
        raise GoBuildError("Go is not installed (Debian: apt-get install golang-go)")
    return go


def _env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    home = env.get("HOME", "")
    if not home or not os.path.isdir(home) or not os.access(home, os.W_OK):
        env["HOME"] = str(cache / "home")
        (cache / "home").mkdir(parents=True, exist_ok=True)
    env.update(
        GOPROXY="off",
        GOFLAGS="-mod=mod",
        GOCACHE=str(cache / "gocache"),
        GOPATH=str(cache / "gopath"),
        GO111MODULE="on",
        GOTOOLCHAIN="local",
        GOTELEMETRY="off",
        GOENV="off",
    )
    return env


def binary(name: str) -> Path:
    """Path of the built ``name`` server, building it first if its source changed."""
    src = GO_SOURCES / name / "main.go"
    if not src.is_file():
        raise GoBuildError(f"no Go program {name!r} (have: {', '.join(programs())})")
    import hashlib  # (here: a .pkt run imports this module for cache_dir() only)

    go = go_tool()
    st = os.stat(os.path.realpath(go))
    digest = hashlib.sha256(
        src.read_bytes() + f"\0{os.path.realpath(go)}\0{st.st_size}\0{st.st_mtime_ns}".encode()
    ).hexdigest()[:16]
    cache = cache_dir() / "go"
    out = cache / "bin" / f"{name}-{digest}"
    if out.is_file():
        return out
    (cache / "bin").mkdir(parents=True, exist_ok=True)
    with open(cache / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if out.is_file():
            return out
        for stale in (cache / "bin").glob("*.tmp*"):  # from a build killed midway
            stale.unlink(missing_ok=True)
        env = _env(cache)
        work = cache / "src" / name
        work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, work / "main.go")
        if not (work / "go.mod").is_file():
            _run([go, "mod", "init", f"netemu.lab/{name}"], work, env)
        tmp = out.with_name(out.name + f".tmp{os.getpid()}")
        _run([go, "build", "-o", str(tmp), "."], work, env)  # no -trimpath: it rebuilds std (25 s)
        os.replace(tmp, out)
        for old in (cache / "bin").glob(f"{name}-*"):  # older builds of this program
            if old != out and ".tmp" not in old.name:
                old.unlink(missing_ok=True)
    return out


def _run(argv: list[str], cwd: Path, env: dict[str, str]) -> None:
    r = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if r.returncode:
        raise GoBuildError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stderr.strip()}")
