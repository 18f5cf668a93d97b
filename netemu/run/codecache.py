"""The compiled code of netemu.wire's generated decoders, kept between runs.

A packetdrill run compiles every decoder before its clock starts
(``wire.frame.warm_decoders``): ~60 small functions, ~11 ms of each run's start. Their
code depends only on netemu's source and Python's version, so it is kept in a file in
netemu's cache folder (``decoders-<python magic>.marshal``: a dict from each generated
source to its code, marshalled) and handed to netemu.wire before it compiles
(``wire._codegen.CODE``); what it compiled anyway is added to the file. netemu.wire
itself opens no file: this module does, for it.

A file that cannot be read, holds something else, or is not this user's own (owned by
another, or writable by others: it holds code to run) is ignored (the code is compiled,
as without a cache); it is replaced atomically, so runs at once (``-j``, xdist) never
read half of one. Keys are the whole sources: a decoder whose source changed is simply
not found."""

from __future__ import annotations

import contextlib
import importlib.util
import marshal
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import CodeType

from ..wire import _codegen

_MAX_BYTES = 4 << 20  # a file larger than this is not ours (the real one: ~0.2 MB)


def cache_file(directory: Path | None = None) -> Path:
    from ..lab.gobuild import cache_dir

    magic = importlib.util.MAGIC_NUMBER.hex()
    return (directory or cache_dir()) / f"decoders-{magic}.marshal"


def load(path: Path) -> dict[str, CodeType]:
    """The cached code, or {} (no file, unreadable, or not a cache of ours)."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            # Code to run: only from a file of this user's that no one else may write
            # (the cache folder may fall back to a shared temporary directory).
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return {}
            raw = f.read(_MAX_BYTES + 1)
        if len(raw) > _MAX_BYTES:
            return {}
        data = marshal.loads(raw)
    except (OSError, ValueError, EOFError, TypeError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, CodeType)}


def save(path: Path, code: dict[str, CodeType]) -> None:
    """Write ``code`` to ``path`` atomically; a failure is ignored (no cache, then)."""
    with contextlib.suppress(OSError, ValueError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".decoders-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps(code))
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def decoder_code(directory: Path | None = None) -> Iterator[None]:
    """Around a run's warm-up (``warm_decoders``): the cached code given to
    netemu.wire before, what it compiled anyway saved after."""
    path = cache_file(directory)
    cached = load(path)
    _codegen.CODE.update(cached)
    _codegen.COMPILED.clear()
    try:
        yield
    finally:
        if _codegen.COMPILED:
            save(path, {**cached, **_codegen.COMPILED})
            _codegen.COMPILED.clear()
