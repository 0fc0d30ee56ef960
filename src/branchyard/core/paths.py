"""Machine-wide locations (user state dir), overridable for tests and CI,
whether a path is inside another, and a cheap signature of files that changes
when they do."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

# each file's (mtime in ns, size, inode); zeros for one that is missing
Signature = tuple[tuple[int, int, int], ...]


def state_dir() -> Path:
    """branchyard's machine-wide state: port leases, proxy, managed server, profiles.

    ``BRANCHYARD_STATE_DIR`` overrides the platform's user state dir.
    """
    override = os.environ.get("BRANCHYARD_STATE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_state_dir

    return Path(user_state_dir("branchyard", appauthor=False))


def is_inside(path: str | os.PathLike[str], root: str | os.PathLike[str]) -> bool:
    """``path`` is ``root`` or below it, compared as written: pass real paths
    (``os.path.realpath``) to compare where they point. ``/root-x`` is not inside
    ``/root``; a folder named ``..x`` inside ``root`` is."""
    path, root = os.fspath(path), os.fspath(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def signature(files: Iterable[str | os.PathLike[str]]) -> Signature:
    """A stat of each file: it changes when one is written, replaced or removed."""
    sig: list[tuple[int, int, int]] = []
    for path in files:
        try:
            st = os.stat(path)
            sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            sig.append((0, 0, 0))
    return tuple(sig)
