"""``merge``: build the combined commit in a scratch worktree, run the checks
there, and advance the base branch only when they pass."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from branchyard.core.errors import BranchyardError, ConflictError, MergeError
from branchyard.core.faults import fault
from branchyard.merge.changes import changes_between, merge_base, read_blobs
from branchyard.merge.migrations import added_migrations, collisions, patterns_from_config
from branchyard.merge.refs import Moved, RefMovedError, move_branch
from branchyard.merge.scratch import new_log, run_commands, scratch_worktree
from branchyard.merge.strategies import STRATEGIES, BuildPlan, Built, build
from branchyard.merge.targets import Repo, Worktree, base_tip, branch_tip
from branchyard.repo import git

ATTEMPTS = 3  # rebuilds when the base moves while checks run

# The environment a worktree's app gets (its databases, ports), by its path: given
# by the caller (the api layer knows it); {} for a worktree it does not know.
EnvFor = Callable[[Path], Mapping[str, str]]


def no_env(_path: Path) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class MergeRequest:
    branch: str
    strategy: str = ""  # "" = [merge] strategy
    picks: tuple[str, ...] = ()
    update_branch: bool = False  # move the agent's branch to the result afterwards
    log: Path | None = None  # where the attempt's log goes; default: a new file


@dataclass(frozen=True)
class MergeResult:
    branch: str
    base: str
    strategy: str
    old_base: str
    new_base: str
    regenerated: tuple[str, ...]
    checks: tuple[str, ...]
    log: str
    already_merged: bool
    checkout_updated: str  # the checkout of the base brought along, "" if none
    branch_updated: bool
    branch_note: str  # why the agent's branch was not updated, when asked
    left_behind: bool = False  # the branch's worktree has uncommitted changes (not merged)


def merge_branch(repo: Repo, request: MergeRequest, env_for: EnvFor = no_env) -> MergeResult:
    """Merge ``request.branch`` into its base; the branch itself is not rewritten
    unless ``update_branch``. Checks run with ``env_for`` of the branch's worktree.
    Raises :class:`MergeError` (conflict, red checks)."""
    strategy = request.strategy or repo.config.merge.strategy
    if strategy not in STRATEGIES:
        raise MergeError(f"unknown merge strategy `{strategy}`",
                         hint=f"use one of: {', '.join(STRATEGIES)}")
    request = replace(request, branch=repo.branch_of(request.branch))  # any NAME
    tip = branch_tip(repo, request.branch, missing=f"there is no branch `{request.branch}`",
                     hint="name a local branch (see `git branch`)")
    worktree = repo.find(request.branch)
    base = (worktree.base if worktree else
            git.base_branch("", repo.config.project.base, repo.main_path))
    if base == request.branch:
        raise MergeError(f"`{base}` is the base branch itself",
                         hint="merge a feature branch into its base, not the base into itself")
    log = request.log or new_log(repo.common_dir, request.branch)
    for _ in range(ATTEMPTS):
        old = base_tip(repo, base)
        plan = BuildPlan(request.branch, tip, base, old, strategy, request.picks,
                         repo.config.merge.lockfiles)
        if not plan.picks:
            refuse_migration_collisions(repo, plan)
        built = _build_and_check(repo, plan, worktree, log, env_for)
        if built.already_in(old):
            return _result(request, plan, built, log)
        try:
            moved = move_branch(base, old, built.commit, repo.common_dir)
        except RefMovedError:
            continue
        fault("merge.advanced", request.branch)  # base moved, nothing recorded yet
        return _after(repo, request, plan, built, log, moved)
    raise MergeError(f"`{base}` kept moving while {request.branch} was being merged",
                     hint="run the merge again when the base is quieter")


def refuse_migration_collisions(repo: Repo, plan: BuildPlan) -> None:
    """Git merges two migrations with the same number without complaint; the
    database does not. Refuse before building."""
    cwd = repo.common_dir
    fork = merge_base(plan.tip, plan.base_commit, cwd)
    if fork is None:
        return
    patterns = patterns_from_config(repo.config.merge.migrations)
    read = partial(read_blobs, cwd=cwd)
    ours = added_migrations(changes_between(fork, plan.tip, cwd), patterns, read)
    theirs = added_migrations(changes_between(fork, plan.base_commit, cwd), patterns, read)
    found = collisions(ours, theirs) if ours else ()
    if found:
        clash = found[0]
        raise ConflictError(
            f"{plan.branch} collides with {plan.base} on migrations: {clash.describe()} "
            f"({', '.join(clash.ours + clash.theirs)})",
            hint=f"renumber the migration in {plan.branch} (or add a merge revision), "
                 "then merge again")


def _build_and_check(repo: Repo, plan: BuildPlan, worktree: Worktree | None,
                     log: Path, env_for: EnvFor) -> Built:
    with log.open("a", encoding="utf-8") as out, \
            scratch_worktree(repo.common_dir, plan.base_commit) as scratch:
        out.write(f"# {plan.strategy} {plan.branch} ({plan.tip}) onto "
                  f"{plan.base} ({plan.base_commit}) in {scratch}\n")
        env = check_env(worktree, scratch, plan, env_for)
        try:
            built = build(plan, scratch, env, out)
            fault("merge.built", plan.branch)  # combined in the scratch worktree only
            if not built.already_in(plan.base_commit):
                run_commands(repo.config.merge.checks, scratch, env, "merge check", out)
        except BranchyardError as err:
            out.write(f"# failed: {err}\n")
            err.hint = f"{err.hint}; the full log is {log}".lstrip("; ")
            raise
        out.write(f"# built {built.commit}\n")
        return built


def check_env(worktree: Worktree | None, scratch: Path, plan: BuildPlan,
              env_for: EnvFor = no_env) -> dict[str, str]:
    """The environment of checks and regenerate commands: the merged worktree's
    own environment (its databases, ports) when branchyard set it up, without
    the ``GIT_*`` variables that would point git elsewhere."""
    env = dict(git.clean_env())
    env.pop("LC_ALL", None)  # git's parsing locale, not the user's
    if "LC_ALL" in os.environ:
        env["LC_ALL"] = os.environ["LC_ALL"]
    env.update(env_for(worktree.path) if worktree is not None else {})
    env.update({"BRANCHYARD_MERGE_BRANCH": plan.branch, "BRANCHYARD_MERGE_BASE": plan.base,
                "BRANCHYARD_SCRATCH": str(scratch)})
    return env


def _after(repo: Repo, request: MergeRequest, plan: BuildPlan, built: Built, log: Path,
           moved: Moved) -> MergeResult:
    worktree = repo.find(request.branch)
    dirty = worktree is not None and git.is_dirty(worktree.path)
    note = ""
    updated = False
    if request.update_branch:
        try:
            move_branch(request.branch, plan.tip, built.commit, repo.common_dir)
            updated = True
        except MergeError as err:
            note = str(err)
    return replace(_result(request, plan, built, log), checks=repo.config.merge.checks,
                   already_merged=False, checkout_updated=moved.checkout,
                   branch_updated=updated, branch_note=note, left_behind=dirty)


def _result(request: MergeRequest, plan: BuildPlan, built: Built, log: Path) -> MergeResult:
    """What a merge that moved no branch reports (the base had it already);
    :func:`_after` adds what moving them did."""
    return MergeResult(
        branch=request.branch, base=plan.base,
        strategy="pick" if plan.picks else plan.strategy,
        old_base=plan.base_commit, new_base=built.commit, regenerated=built.regenerated,
        checks=(), log=str(log), already_merged=True, checkout_updated="",
        branch_updated=False, branch_note="")
