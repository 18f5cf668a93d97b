"""The copy of DIR that ``netemu bench pkt-suite`` runs both sides on (so no script
writes into the suite): its files copied, the ancestors its scripts reach up to
(``../../common/defaults.sh``) mirrored by symlinks, and each symlink checked out as
text (a file holding nothing but another's relative path) made a symlink again.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path


def _stub_link(path: Path) -> str | None:
    """The path a file holds when it is a symlink checked out as text: small, not
    executable, one line with no blanks, naming an existing file."""
    try:
        st = path.lstat()
        if not path.is_file() or path.is_symlink() or st.st_size > 1024 or st.st_mode & 0o111:
            return None
        text = path.read_bytes().decode()
    except (OSError, UnicodeDecodeError):
        return None
    link = text[:-1] if text.endswith("\n") else text
    if not link or any(c.isspace() or c == "\0" for c in link):
        return None
    target = path.parent / link
    return link if target.is_file() and target.resolve() != path.resolve() else None


def symlink_stub_target(path: Path) -> Path | None:
    """The file ``path`` stands for when it is a symlink checked out as text (following a
    stub for a stub); else None."""
    link = _stub_link(path)
    if link is None:
        return None
    p = path
    for _ in range(8):
        p = p.parent / link
        link = _stub_link(p)
        if link is None:
            return p.resolve()
    return None


_UP = re.compile(r"(?:\.\./)+")


def levels_up(root: Path) -> int:
    """How far above ``root`` its files reach with relative paths (``../../common/x``
    from ``root/eor/`` is one level): the most ``../`` in a row anywhere, less the
    depth of the file's folder under ``root``."""
    need = 0
    for d, _, files in os.walk(root):
        depth = len(Path(d).relative_to(root).parts)
        for f in files:
            p = Path(d) / f
            try:
                if p.is_symlink() or p.stat().st_size > 1 << 20:
                    continue
                text = p.read_text(errors="replace")
            except OSError:
                continue
            for m in _UP.finditer(text):
                need = max(need, len(m.group(0)) // 3 - depth)
    return need


def stage(root: Path, staging: Path) -> tuple[Path, list[str]]:
    """A copy of the folder ``root`` under ``staging``, at the same place relative to as
    many of its ancestors as its files reach up to (``levels_up``): those are mirrored
    by symlinks to what they hold, so ``../../common/defaults.sh`` still finds the
    suite's neighbour. Symlink stubs are made symlinks again (a stubbed ``.pkt``
    becomes a copy of its target). Returns (the copy of root, the stubs' paths)."""
    ancestors = list(root.parents)[: levels_up(root)]  # root.parent first
    top = ancestors[-1] if ancestors else root
    base = staging / (top.name or "root")
    dst = base / root.relative_to(top)
    child = root
    for a in ancestors:
        mirror = base / a.relative_to(top)
        mirror.mkdir(parents=True, exist_ok=True)
        for entry in a.iterdir():
            if entry.name != child.name:
                (mirror / entry.name).symlink_to(entry)
        child = a
    shutil.copytree(root, dst, symlinks=True)
    fixed: list[str] = []
    for d, _, files in os.walk(root):
        for f in files:
            src = Path(d) / f
            target = symlink_stub_target(src)
            if target is None:
                continue
            rel = src.relative_to(root)
            out = dst / rel
            out.unlink()
            if out.suffix == ".pkt":
                shutil.copy2(target, out)
            else:
                out.symlink_to(target)
            fixed.append(rel.as_posix())
    return dst, sorted(fixed)
