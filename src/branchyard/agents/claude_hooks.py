"""Claude Code's WorktreeCreate and WorktreeRemove hooks, which replace its own
``git worktree add`` / removal. The payload has come in three shapes (all with
``session_id``, ``cwd``, ``hook_event_name``, ``transcript_path``):

- ``{name}`` (Claude Code 2.1.x ``--worktree``, workflows): branchyard chooses
  the place, as ``branchyard up NAME`` would;
- ``{worktree_name, source_ref, base_path}`` (the hooks reference): under
  ``base_path``, from ``source_ref``;
- ``{worktree_path, base_ref}`` (earlier builds): exactly there, from ``base_ref``.

Unknown fields are ignored."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchyard.api.creation import UpRequest, up
from branchyard.api.provisioning import SetupRequest, setup
from branchyard.api.release import teardown
from branchyard.api.removal import DownRequest, down
from branchyard.context import open_context
from branchyard.core.errors import UsageError, WorktreeError
from branchyard.core.events import Reporter
from branchyard.envfiles.files import render
from branchyard.repo import git


@dataclass(frozen=True)
class CreateRequest:
    name: str
    path: Path | None  # None: where `branchyard up NAME` would put it
    base: str | None
    cwd: Path


@dataclass(frozen=True)
class Removal:
    path: str
    removed: bool
    note: str  # what happened, for stderr


def create_request(payload: dict[str, Any]) -> CreateRequest:
    cwd = _cwd(payload)
    base = _text(payload, "source_ref") or _text(payload, "base_ref") or None
    exact = _text(payload, "worktree_path")
    name = _text(payload, "worktree_name") or _text(payload, "name")
    if exact:
        path = Path(os.path.abspath(cwd / exact))
        return CreateRequest(name or path.name, path, base, cwd)
    if not name:
        raise UsageError("the WorktreeCreate payload has no name, worktree_name or "
                         "worktree_path", hint="this command is Claude Code's WorktreeCreate "
                         "hook; it expects the JSON object Claude Code sends on stdin")
    under = _text(payload, "base_path")
    return CreateRequest(name, Path(os.path.abspath(cwd / under / name)) if under else None,
                         base, cwd)


def create(request: CreateRequest, reporter: Reporter) -> str:
    """Create and set up the worktree; its absolute path. A worktree that already
    exists for this name (Claude Code resuming a session) is set up again."""
    existing = _existing(request)
    if existing is not None:
        return setup(SetupRequest(worktree=existing), reporter).path
    return up(UpRequest(request.name, base=request.base, path=request.path,
                        cwd=request.cwd), reporter).path


def _existing(request: CreateRequest) -> Path | None:
    ctx = open_context(request.cwd, main_config=True)
    branch = render(ctx.config.project.branch, {"name": request.name}, "project.branch")
    for entry in git.worktrees(ctx.repo.main_path):
        same_path = request.path is not None and _same(entry.path, request.path)
        if not entry.prunable and (same_path or (request.path is None and entry.branch == branch)):
            return entry.path
    return None


def remove(payload: dict[str, Any], reporter: Reporter) -> Removal:
    """Release everything the worktree had; remove it when it is clean, keep it
    (and say why) when it has changes."""
    raw = _text(payload, "worktree_path")
    if not raw:
        raise UsageError("the WorktreeRemove payload has no worktree_path",
                         hint="this command is Claude Code's WorktreeRemove hook")
    path = Path(os.path.abspath(_cwd(payload) / raw))
    if not path.is_dir():
        return Removal(str(path), False, f"{path} is already gone; nothing to remove")
    ctx = open_context(path, main_config=True)
    if _same(path, ctx.repo.main_path):
        raise WorktreeError(f"{path} is the main worktree; branchyard never removes it")
    changed = git.status_porcelain(path)
    if changed:
        teardown(path, name=str(path), reporter=reporter)
        return Removal(str(path), False,
                       f"kept {path}: it has uncommitted or untracked changes "
                       f"({', '.join(changed[:5])}); its resources were released. "
                       f"Commit them, then `branchyard down {path}` (or --force to discard)")
    result = down(DownRequest(str(path), cwd=ctx.repo.main_path), reporter)
    fate = "deleted, " if result.branch_deleted else ""
    return Removal(str(path), True, f"removed {path}; branch {fate}{result.branch_kept_reason}")


def _cwd(payload: dict[str, Any]) -> Path:
    raw = _text(payload, "cwd")
    return Path(raw) if raw and Path(raw).is_dir() else Path.cwd()


def _text(payload: dict[str, Any], key: str) -> str:
    value = payload.get(key)
    return value.strip() if isinstance(value, str) else ""


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
