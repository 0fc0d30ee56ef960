"""Lockfile fingerprints, and the stamp branchyard leaves in a tree it made.

The stamp (``.branchyard-deps.json`` inside the tree) records the lockfile hash
the tree was made for. A tree without a stamp was made by someone else and is
left alone; a tree whose stamp differs from the lockfiles is out of date.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from branchyard.core import statefile

STAMP_NAME = ".branchyard-deps.json"


@dataclass(frozen=True)
class Stamp:
    lock_hash: str
    action: str  # reused | installed | recreated
    method: str  # reflink | hardlink | shared | copy | install | uv
    made_at: float


def lockfile_hash(root: Path, lockfiles: Sequence[str]) -> str:
    """sha256 over the names and bytes of the lockfiles that exist under ``root``;
    "" when none of them exists (nothing proves two trees would match)."""
    digest = hashlib.sha256()
    found = False
    for name in lockfiles:
        try:
            data = (root / name).read_bytes()
        except FileNotFoundError:
            digest.update(f"{name}\0missing\0".encode())
            continue
        found = True
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest() if found else ""


def read_stamp(tree: Path) -> Stamp | None:
    try:
        data = json.loads((tree / STAMP_NAME).read_text(encoding="utf-8"))
        return Stamp(str(data["lock_hash"]), str(data["action"]), str(data["method"]),
                     float(data["made_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_stamp(tree: Path, lock_hash: str, action: str, method: str) -> Stamp:
    """Write the stamp as a new file (never in place: in a hardlinked tree the old
    stamp may be shared with the main worktree's)."""
    stamp = Stamp(lock_hash, action, method, time.time())
    statefile.write_text(tree / STAMP_NAME, json.dumps(asdict(stamp), sort_keys=True) + "\n")
    return stamp
