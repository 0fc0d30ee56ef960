"""The machine-wide list of repositories whose worktrees the proxy serves.

``setup`` registers each repository's git common dir here; the proxy reads the
routes themselves from each repository's ledger, so this file only says where
the ledgers are.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from filelock import FileLock, Timeout

from branchyard.core import statefile
from branchyard.core.errors import ProxyError
from branchyard.core.paths import state_dir

SCHEMA = 1
LOCK_TIMEOUT = 30.0


def registry_path() -> Path:
    return state_dir() / "proxy" / "repos.json"


def register_repo(common_dir: Path) -> bool:
    """Add a repository (its git common dir) to the registry; True if it was new."""
    wanted = str(Path(common_dir).resolve())
    path = registry_path()
    statefile.private_dir(path.parent)
    try:
        with FileLock(str(path.with_suffix(".lock")), timeout=LOCK_TIMEOUT):
            repos = _read(path)
            if wanted in repos:
                return False
            # a repository deleted since it registered leaves with this write
            _write(path, sorted({*(r for r in repos if os.path.isdir(r)), wanted}))
            return True
    except Timeout as exc:
        raise ProxyError(f"the repository registry {path} is locked for more than "
                         f"{LOCK_TIMEOUT:g} s",
                         hint=f"if no branchyard command runs, remove {path}.lock") from exc


def unregister_repo(common_dir: Path) -> None:
    """Remove a repository that is being thrown away (the demo's)."""
    gone = str(Path(common_dir).resolve())
    path = registry_path()
    if not path.is_file():
        return
    with FileLock(str(path.with_suffix(".lock")), timeout=LOCK_TIMEOUT):
        repos = _read(path)
        if gone in repos:
            _write(path, [r for r in repos if r != gone])


def known_repos() -> list[Path]:
    """Registered common dirs that still exist (a deleted repository is skipped)."""
    return [Path(p) for p in _read(registry_path()) if os.path.isdir(p)]


def _read(path: Path) -> list[str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ProxyError(f"the repository registry {path} is unreadable ({exc})",
                         hint="remove it and run `branchyard setup` in each worktree "
                              "to register the repositories again") from exc
    repos = data.get("repos", []) if isinstance(data, dict) else []
    return [str(r) for r in repos if isinstance(r, str)]


def _write(path: Path, repos: list[str]) -> None:
    statefile.write_json(path, {"repos": repos}, version=SCHEMA)
