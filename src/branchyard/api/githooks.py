"""`hooks install`: a git post-checkout hook that sets up worktrees made by other
tools (plain `git worktree add`, Conductor, Claude Code, Codex).

git runs post-checkout with the null commit as the previous HEAD when it checks
out a new worktree; the hook then runs `branchyard setup` there. The hook goes
where git looks for hooks (``core.hooksPath`` respected). A user's existing hook
is never overwritten: when it lives in the git directory it is kept under
another name and runs first; when it is a file of the project (a tracked hooks
directory), installing is refused with a hint.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from branchyard.context import open_context
from branchyard.core.errors import BranchyardError
from branchyard.core.paths import is_inside
from branchyard.repo import git

HOOK = "post-checkout"
CHAINED = "post-checkout.pre-branchyard"
MARK = "# branchyard: set up new worktrees (installed by `branchyard hooks install`)"
# Set to skip the hook (scripts that set worktrees up themselves); `branchyard up`
# sets it when it runs the project's post-checkout hook after its own checkout.
SKIP_ENV = "BRANCHYARD_NO_HOOK"


class HookInstallError(BranchyardError):
    code = "hooks"


@dataclass(frozen=True)
class HookResult:
    path: Path
    action: str  # installed | already installed | updated | removed | not installed
    chained: Path | None = None


def hooks_dir(start: Path | str | None = None) -> Path:
    ctx = open_context(start)
    out = git.out(["rev-parse", "--path-format=absolute", "--git-path", "hooks"],
                  ctx.repo.main_path)
    return Path(out)


def hook_text(chained: bool) -> str:
    runner = shlex.join([sys.executable, "-m", "branchyard"])
    lines = ["#!/bin/sh", MARK]
    if chained:
        lines += ['"$(dirname "$0")/' + CHAINED + '" "$@" || exit $?']
    lines += [
        f'[ -n "${SKIP_ENV}" ] && exit 0',
        "# only a new checkout (previous HEAD all zeros) of a linked worktree",
        'case "$1" in *[!0]*) exit 0 ;; esac',
        '[ "$3" = "1" ] || exit 0',
        'case "$(git rev-parse --git-dir 2>/dev/null)" in */worktrees/*) ;; *) exit 0 ;; esac',
        f"{runner} setup || echo \"branchyard: setup failed; run "
        "'branchyard setup' in $(pwd)\" >&2",
        "exit 0",
        "",
    ]
    return "\n".join(lines)


def _is_ours(path: Path) -> bool:
    try:
        return MARK in path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False


def _inside_work_tree(folder: Path, start: Path | str | None) -> bool:
    ctx = open_context(start)
    real = os.path.realpath(folder)
    common = os.path.realpath(ctx.repo.common_dir)
    if is_inside(real, common):
        return False
    worktrees = [os.path.realpath(e.path) for e in git.worktrees(ctx.repo.main_path)]
    return any(is_inside(real, w) for w in worktrees)


def install_hooks(start: Path | str | None = None) -> HookResult:
    folder = hooks_dir(start)
    hook, chained = folder / HOOK, folder / CHAINED
    if hook.exists() and not _is_ours(hook):
        if _inside_work_tree(folder, start):
            raise HookInstallError(
                f"{hook} already exists and is a file of the project (core.hooksPath)",
                hint=f"add this line to it: {shlex.join([sys.executable, '-m', 'branchyard'])}"
                     " setup  (only when $1 is all zeros and $3 is 1), or unset "
                     "core.hooksPath")
        if chained.exists():
            raise HookInstallError(f"both {hook} and {chained} exist",
                                   hint=f"merge them by hand, then remove {chained}")
        os.replace(hook, chained)
    text = hook_text(chained.exists())
    action = "installed"
    if hook.exists():
        action = "already installed" if hook.read_text(encoding="utf-8") == text else "updated"
    folder.mkdir(parents=True, exist_ok=True)
    hook.write_text(text, encoding="utf-8")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return HookResult(hook, action, chained if chained.exists() else None)


def uninstall_hooks(start: Path | str | None = None) -> HookResult:
    folder = hooks_dir(start)
    hook, chained = folder / HOOK, folder / CHAINED
    if not _is_ours(hook):
        return HookResult(hook, "not installed")
    hook.unlink()
    if chained.exists():
        os.replace(chained, hook)
        return HookResult(hook, "removed (your previous hook is back)")
    return HookResult(hook, "removed")
