"""State files: written atomically, readable by their owner only, versioned.

Every file branchyard keeps state in (the ledger, port and Redis leases, the proxy's
registry and pid file, the managed server's ``server.json``) goes through
:func:`write_json`: a private temp file beside the target, then ``os.replace``, so
a reader sees the old file or the new one, never half of one, and a killed writer
leaves only a ``.<name>.<random>.<pid>.tmp`` that ``doctor`` recognises by its pid.
The files carry database passwords and the paths of private work, hence mode 0600
and directories 0700.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE_MODE = 0o600
DIR_MODE = 0o700
VERSION_KEY = "version"
LEGACY_VERSION_KEY = "schema"  # what the ledger, ports.json and repos.json used first


def private_dir(path: Path, *, tighten: bool = True) -> Path:
    """``path`` as a directory only its owner can enter; missing parents are made
    0700 too. ``tighten=False`` leaves an existing directory's mode alone (the state
    dir and the server home, where an older managed cluster run by another user may
    live and must stay reachable)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        # another process may make it at the same moment
        with contextlib.suppress(FileExistsError):
            folder.mkdir(mode=DIR_MODE)
    if tighten and path.stat().st_mode & 0o777 != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def write_text(path: Path, text: str, *, mode: int = FILE_MODE) -> None:
    """Replace ``path`` by ``text`` atomically; the new file has ``mode``.

    No fsync: on ext4 (data=ordered) it would also flush the thousands of files a
    checkout just wrote, which made `up` half again as slow as `git worktree add`.
    """
    import tempfile  # here: the commands that only read state (`env`) never pay for it

    path.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp makes the file 0600 before a byte of it is written
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.",
                               suffix=f".{os.getpid()}.tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if mode != FILE_MODE:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Mapping[str, Any], *, version: int,
               sort_keys: bool = False) -> None:
    """Write ``{"version": version, **data}`` to ``path`` (atomic, mode 0600)."""
    doc = {VERSION_KEY: version, **{k: v for k, v in data.items() if k != VERSION_KEY}}
    write_text(path, json.dumps(doc, indent=1, sort_keys=sort_keys) + "\n")


def version_of(doc: Mapping[str, Any]) -> Any:
    """The format version a state document declares (``schema`` in older files);
    None when it declares none (files written before versions were added)."""
    return doc.get(VERSION_KEY, doc.get(LEGACY_VERSION_KEY))


def payload(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document without its version field."""
    return {k: v for k, v in doc.items() if k not in (VERSION_KEY, LEGACY_VERSION_KEY)}
