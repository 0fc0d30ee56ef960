"""Building the combined commit in a scratch worktree: merge, rebase, squash
or cherry-pick, with conflicts only in lockfiles settled by regeneration."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from branchyard.core.errors import ConflictError, MergeError
from branchyard.merge.scratch import NO_HOOKS, head, run_commands, unmerged_paths
from branchyard.repo import git

STRATEGIES = ("merge", "rebase", "squash")
_CONTINUE_ENV = {"GIT_EDITOR": "true"}


@dataclass(frozen=True)
class BuildPlan:
    """What to combine onto the base, in a scratch worktree at the base's tip."""

    branch: str  # for messages
    tip: str  # the branch's commit, read once before building
    base: str  # base branch name, for messages
    base_commit: str
    strategy: str = "merge"  # merge | rebase | squash (ignored with picks)
    picks: tuple[str, ...] = ()  # cherry-pick these commits instead
    lockfiles: Mapping[str, str] | None = None  # path or glob → regenerate command


@dataclass(frozen=True)
class Built:
    commit: str  # the combined commit (== base_commit when nothing was new)
    regenerated: tuple[str, ...]  # lockfiles taken from the base and regenerated

    def already_in(self, base_commit: str) -> bool:
        return self.commit == base_commit


def build(plan: BuildPlan, scratch: Path, env: Mapping[str, str], log: TextIO) -> Built:
    """Combine ``plan`` onto the base in ``scratch``; raise :class:`ConflictError`
    naming the files when anything but a configured lockfile conflicts."""
    if plan.picks:
        return _steps(plan, scratch, env, log, ["cherry-pick", *plan.picks],
                      ["cherry-pick", "--continue"])
    if plan.strategy == "rebase":
        return _steps(plan, scratch, env, log, ["rebase", plan.base_commit, plan.tip],
                      ["rebase", "--continue"])
    if plan.strategy == "squash":
        return _squash(plan, scratch, env, log)
    if plan.strategy == "merge":
        return _merge(plan, scratch, env, log)
    raise MergeError(f"unknown merge strategy `{plan.strategy}`",
                     hint=f"use one of: {', '.join(STRATEGIES)}")


def _merge(plan: BuildPlan, scratch: Path, env: Mapping[str, str], log: TextIO) -> Built:
    message = f"Merge branch '{plan.branch}' into {plan.base}"
    started = _git(scratch, ["merge", "--no-ff", "--no-edit", "-m", message, plan.tip], log)
    regenerated = _settle(plan, scratch, env, log, started, None)
    if regenerated:
        _git(scratch, ["commit", "--no-edit"], log, check=True)
    return Built(head(scratch), regenerated)


def _squash(plan: BuildPlan, scratch: Path, env: Mapping[str, str], log: TextIO) -> Built:
    started = _git(scratch, ["merge", "--squash", plan.tip], log)
    regenerated = _settle(plan, scratch, env, log, started, None)
    if git.git(["diff", "--cached", "--quiet"], scratch, check=False).returncode == 0:
        return Built(head(scratch), regenerated)  # nothing new: already in the base
    subjects = git.out(["log", "--reverse", "--format=* %s", f"{plan.base_commit}..{plan.tip}"],
                       scratch)
    message = f"{plan.branch} (squashed)\n\n{subjects}\n"
    _git(scratch, ["commit", "-q", "-F", "-"], log, check=True, input_text=message)
    return Built(head(scratch), regenerated)


def _steps(plan: BuildPlan, scratch: Path, env: Mapping[str, str], log: TextIO,
           start: Sequence[str], resume: Sequence[str]) -> Built:
    """A sequence of replayed commits (rebase, cherry-pick) that may stop at each."""
    started = _git(scratch, start, log)
    regenerated = _settle(plan, scratch, env, log, started, resume)
    return Built(head(scratch), regenerated)


def _settle(plan: BuildPlan, scratch: Path, env: Mapping[str, str], log: TextIO,
            ok: bool, resume: Sequence[str] | None) -> tuple[str, ...]:
    """Resolve lockfile-only conflicts until the operation is through."""
    regenerated: list[str] = []
    while not ok:
        unmerged = unmerged_paths(scratch)
        if not unmerged:
            raise MergeError(f"git could not combine {plan.branch} with {plan.base}; "
                             f"see {getattr(log, 'name', 'the log')}",
                             hint="merge it by hand, or look at the log for git's reason")
        commands = [_regenerate_command(plan, path) for path in unmerged]
        stuck = [p for p, cmd in zip(unmerged, commands, strict=True) if cmd is None]
        if stuck:
            raise ConflictError(
                f"{plan.branch} conflicts with {plan.base} in: {', '.join(stuck)}",
                hint=f"rebase {plan.branch} onto {plan.base} and resolve these files, "
                     "then merge again")
        for path, command in zip(unmerged, commands, strict=True):
            _take_base_version(scratch, path, env, command or "", log)
            regenerated.append(path)
        ok = True if resume is None else _git(scratch, resume, log, env=_CONTINUE_ENV)
    return tuple(dict.fromkeys(regenerated))


def _regenerate_command(plan: BuildPlan, path: str) -> str | None:
    for pattern, command in (plan.lockfiles or {}).items():
        if path == pattern or fnmatch.fnmatchcase(path, pattern):
            return command
    return None


def _take_base_version(scratch: Path, path: str, env: Mapping[str, str], command: str,
                       log: TextIO) -> None:
    """The base's side of a lockfile, then the project's regenerate command."""
    _git(scratch, ["checkout", "--ours", "--", path], log, check=True)
    run_commands([command], scratch, env, f"lockfile {path}", log)
    _git(scratch, ["add", "--", path], log, check=True)


def _git(cwd: Path, args: Sequence[str], log: TextIO, *, check: bool = False,
         env: Mapping[str, str] | None = None, input_text: str | None = None) -> bool:
    """Run git in the scratch worktree, its output into the log; True on success."""
    log.write(f"$ git {' '.join(args)}\n")
    done = git.git([*NO_HOOKS, *args], cwd, check=False, env=env, input_text=input_text)
    log.write(done.stdout + done.stderr)
    log.flush()
    if check and done.returncode != 0:
        raise MergeError(f"`git {' '.join(args)}` failed in the scratch worktree: "
                         f"{done.stderr.strip() or done.stdout.strip()}")
    return done.returncode == 0
