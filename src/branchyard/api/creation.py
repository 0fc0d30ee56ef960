"""`up`: pre-flight checks, branch + worktree, then `setup` — undone on failure."""

from __future__ import annotations

import os
import re
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from branchyard.api import intents
from branchyard.api.githooks import SKIP_ENV as SKIP_HOOK_ENV
from branchyard.api.provisioning import SetupRequest, SetupResult, setup
from branchyard.api.resources import preview_databases
from branchyard.config.model import CONFIG_FILE, LOCAL_CONFIG_FILE
from branchyard.context import Context, open_context
from branchyard.core.errors import BranchyardError, GitError, WorktreeError
from branchyard.core.events import NullReporter, PhaseTimer, Reporter
from branchyard.core.faults import fault
from branchyard.core.identity import slug_for
from branchyard.envfiles.files import dotenv_problem, render
from branchyard.repo import git


@dataclass(frozen=True)
class UpRequest:
    name: str  # branch name, or what `[project] branch` templates into one
    base: str | None = None
    path: Path | None = None
    cwd: Path | None = None
    reseed: bool = False


@dataclass(frozen=True)
class UpResult:
    branch: str
    path: str
    base: str
    created_branch: bool
    setup: SetupResult
    notes: tuple[str, ...] = ()  # what the user should know (main's config differs)


def up(request: UpRequest, reporter: Reporter | None = None) -> UpResult:
    """Create (or reuse) the branch, add its worktree, and set it up."""
    git.require_version()
    ctx = open_context(request.cwd, main_config=True)
    timer = PhaseTimer(reporter or NullReporter())
    branch = render(ctx.config.project.branch, {"name": request.name}, "project.branch")
    with timer.phase("checks"):
        base, path, exists, start = _preflight(ctx, branch, request)
    notes = _config_drift(ctx.repo.main_path, branch if exists else base)
    # The intent outlives the undo stack: a crash anywhere below leaves it as
    # the owner of a half-made worktree and branch; an error clears it after undo.
    intent = intents.new_intent("up", path, branch=branch, created_branch=not exists,
                                base_sha="" if exists else start, checkout_sha=start)
    with intents.recorded(ctx.ledger, intent), ExitStack() as undo:
        fault("up.intent")
        with timer.phase("worktree"):
            _add_worktree(ctx, branch, base, path, exists, undo)
        fault("up.worktree")
        try:
            result = setup(SetupRequest(worktree=path, reseed=request.reseed, base=base,
                                        created_branch=not exists, created_worktree=True),
                           timer)
        except BranchyardError as err:
            err.message = f"setup of the new worktree failed, so `up` was undone: {err.message}"
            err.hint = again_hint(err.hint, request.name)
            raise
        undo.pop_all()
    phases = tuple(timer.times)
    return UpResult(branch, str(path), base, not exists,
                    replace(result, phases=phases), notes)


def _config_drift(main: Path, commit: str) -> tuple[str, ...]:
    """A note when main's branchyard.toml is not the one the new worktree checks
    out: `up`'s checks read main's, the new worktree's setup reads its own."""
    mine = main / CONFIG_FILE
    theirs = git.git(["show", f"{commit}:{CONFIG_FILE}"], main, check=False)
    if theirs.returncode != 0:
        return ()  # not committed there: the worktree falls back to main's file
    try:
        current = mine.read_text(encoding="utf-8")
    except OSError:
        current = None
    if current == theirs.stdout:
        return ()
    change = "has uncommitted changes" if current is not None else "is missing"
    return (f"{CONFIG_FILE} in the main worktree {change}; the new worktree is set up "
            f"with the one committed in {commit!r} (commit the change there first, or put "
            f"personal settings in {LOCAL_CONFIG_FILE}, which every worktree reads)",)


# Setup's hints say "run `branchyard setup` again" (or "… in the worktree"); after
# an `up` that was undone there is no worktree to run it in: `up` is what to run.
_SETUP_AGAIN = re.compile(r"run (?:`branchyard setup`|setup)(?: in the worktree| again)+"
                          r"|run `branchyard setup`(?=$|[:;,.)])")


def again_hint(hint: str, name: str) -> str:
    """A setup hint, made true after `up NAME` was undone."""
    return _SETUP_AGAIN.sub(f"run `branchyard up {name}` again", hint)


def _preflight(ctx: Context, branch: str,
               request: UpRequest) -> tuple[str, Path, bool, str]:
    """The base, the worktree's path, whether the branch exists, and the commit the
    new worktree checks out; or the error that stops `up` before it makes anything."""
    main = ctx.repo.main_path
    if not git.has_commits(main):
        raise GitError("the repository has no commits yet",
                       hint="make a first commit, then run `branchyard up` again")
    if not git.is_valid_branch_name(branch, main):
        raise GitError(f"{branch!r} is not a valid branch name",
                       hint="see `git help check-ref-format` for what git accepts")
    problem = dotenv_problem(branch)  # the env file gives it to tools (BRANCHYARD_BRANCH)
    if problem:
        raise GitError(f"the branch name {branch!r} cannot be used: {problem}, so tools "
                       "reading the worktree's env file would not get it back as it is",
                       hint="choose another name for the branch")
    for entry in git.worktrees(main):
        if entry.branch == branch and os.path.realpath(entry.path) == os.path.realpath(main):
            raise WorktreeError(f"{branch} is checked out in the main worktree ({main}): "
                                "it needs no worktree of its own",
                                hint=f"start its dev server with `cd {main} && branchyard "
                                     "run` (its env: `branchyard env`), or make a new branch "
                                     "with `branchyard up BRANCH`")
        if entry.branch == branch:
            raise WorktreeError(f"branch {branch!r} is already checked out at {entry.path}",
                                hint=f"use that worktree (`branchyard path {branch}`), or "
                                     f"`branchyard down {branch}` first")
    exists = git.branch_exists(branch, main)
    base = git.base_branch(request.base or "", ctx.config.project.base, main)
    start = git.rev_parse(branch if exists else base, main)
    if not exists and start is None:
        raise GitError(f"the base {base!r} is not a commit in this repository",
                       hint="pass an existing branch or commit with --base")
    path = request.path or _templated_path(ctx, branch)
    path = Path(os.path.abspath(path))
    if path.exists():
        raise WorktreeError(f"the target directory {path} already exists",
                            hint="remove it, or choose another place with --path")
    preview_databases(ctx, branch, path)
    return base, path, exists, start or ""


def _templated_path(ctx: Context, branch: str) -> Path:
    values = {"repo": ctx.repo.name, "slug": slug_for(branch), "branch": branch,
              "project": ctx.repo.project,
              "name": branch.replace("/", "-")}
    rel = render(ctx.config.project.worktree_path, values, "project.worktree_path")
    return ctx.repo.main_path / rel


def _add_worktree(ctx: Context, branch: str, base: str, path: Path, exists: bool,
                  undo: ExitStack) -> None:
    main = ctx.repo.main_path
    where = ["--no-checkout", str(path)]
    args = ["worktree", "add", "--quiet", *where, branch] if exists else \
        ["worktree", "add", "--quiet", "-b", branch, *where, base]
    # Registered before the call: a half-made worktree is removed too.
    if not exists:
        undo.callback(_delete_branch, main, branch)
    undo.callback(_remove_worktree, main, path)
    # git's worktree registration reads the other worktrees' metadata and fails on
    # one a parallel `up` is half-way through writing; so registrations take turns
    # (milliseconds), and the checkout, the slow part, runs outside the lock.
    from filelock import FileLock

    ctx.ledger.dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(ctx.ledger.dir / "worktree-add.lock"), timeout=120):
        git.git(args, main)
    git.git(["reset", "--hard", "--quiet"], path)
    # `worktree add` would have run the project's post-checkout hook; so do we (a
    # hook from `branchyard hooks install` skips itself: setup runs next anyway).
    git.git(["hook", "run", "--ignore-missing", "post-checkout", "--",
             "0" * 40, "HEAD", "1"], path, env={SKIP_HOOK_ENV: "1"})


def _remove_worktree(main: Path, path: Path) -> None:
    git.git(["worktree", "remove", "--force", "--force", str(path)], main, check=False)
    git.git(["worktree", "prune"], main, check=False)


def _delete_branch(main: Path, branch: str) -> None:
    git.git(["branch", "-D", branch], main, check=False)
