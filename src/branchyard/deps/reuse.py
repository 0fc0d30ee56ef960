"""Making a worktree's dependency tree: reuse the main worktree's when the
lockfiles match, else install; verify, and fall back to installing, saying why."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from branchyard.core.errors import BranchyardError, ProviderError
from branchyard.core.events import NullReporter, Reporter
from branchyard.core.paths import is_inside
from branchyard.deps.filecopy import Method
from branchyard.deps.install import (
    Runner,
    is_virtualenv,
    run_install,
    smoke_failure,
    uv_available,
    uv_sync,
)
from branchyard.deps.lockstamp import lockfile_hash, read_stamp, write_stamp
from branchyard.deps.treecopy import CopyRequest, CopyStats, TreeCopyError, copy_tree
from branchyard.system.fsprobe import FsProbe

MODES = ("auto", "reflink", "hardlink", "copy", "install")
INCOMPLETE = "incomplete"  # the lock hash stamped on a tree whose install failed
Strategy = Literal["reuse", "venv", "install"]


@dataclass(frozen=True)
class DepsTarget:
    """One ``[[deps]]`` entry, for one worktree."""

    dir: str  # relative to the worktree root
    worktree: Path
    main: Path
    lockfiles: tuple[str, ...] = ()
    install: str = ""
    mode: str = "auto"
    smoke: str = ""

    @property
    def dest(self) -> Path:
        return self.worktree / self.dir

    @property
    def source(self) -> Path:
        return self.main / self.dir

    @property
    def cwd(self) -> Path:
        """Where install and smoke commands run: the directory holding the tree."""
        return self.dest.parent


@dataclass(frozen=True)
class Decision:
    strategy: Strategy
    reason: str
    lock_hash: str  # the worktree's lockfiles
    main_lock_hash: str


@dataclass(frozen=True)
class Outcome:
    changed: bool
    action: str  # kept | foreign | reused | installed | recreated | updated
    method: str  # reflink | hardlink | shared | copy | install | uv | ""
    reason: str
    stats: CopyStats | None = None


@dataclass(frozen=True)
class Session:
    """What making trees needs besides the target: how commands run, the
    filesystem probe (shared by all entries of a setup) and the reporter."""

    runner: Runner
    probe: FsProbe = field(default_factory=FsProbe)
    reporter: Reporter = field(default_factory=NullReporter)


def decide(target: DepsTarget) -> Decision:
    """How this worktree's tree should be made (reads the lockfiles only)."""
    mine = lockfile_hash(target.worktree, target.lockfiles)
    main = lockfile_hash(target.main, target.lockfiles)
    strategy, reason = _strategy(target, mine, main)
    return Decision(strategy, reason, mine, main)


def _strategy(target: DepsTarget, mine: str, main: str) -> tuple[Strategy, str]:
    if target.mode == "install":
        return "install", "mode = install"
    if is_virtualenv(target.source) or is_virtualenv(target.dest):
        return "venv", "virtualenvs hold absolute paths, so they are re-created, not copied"
    if not target.lockfiles:
        return "install", "no lockfiles configured to prove the trees would match"
    if not mine:
        return "install", f"none of {', '.join(target.lockfiles)} exists in the worktree"
    if mine != main:
        return "install", "the lockfiles differ from the main worktree's"
    if not target.source.is_dir():
        return "install", f"the main worktree has no {target.dir} to reuse"
    return "reuse", "the lockfiles are identical to the main worktree's"


def tree_state(target: DepsTarget) -> str:
    """For status/doctor: "missing", "foreign" (not made by branchyard),
    "incomplete" (its install failed), "stale" (lockfiles changed) or "current"."""
    if not os.path.lexists(target.dest):
        return "missing"
    stamp = read_stamp(target.dest)
    if stamp is None:
        return "foreign"
    if stamp.lock_hash == INCOMPLETE:
        return "incomplete"
    current = lockfile_hash(target.worktree, target.lockfiles)
    return "current" if stamp.lock_hash == current else "stale"


def ensure_deps(target: DepsTarget, session: Session) -> Outcome:
    """Make the tree if needed; idempotent. Never touches the main worktree,
    and never replaces a tree branchyard did not make."""
    _check_paths(target)
    decision = decide(target)
    if os.path.lexists(target.dest):
        return _existing(target, decision, session)
    if decision.strategy == "reuse":
        return _reuse(target, decision, session)
    return _install(target, decision, session, "")


def _existing(target: DepsTarget, decision: Decision, session: Session) -> Outcome:
    stamp = read_stamp(target.dest)
    if stamp is None:
        return Outcome(False, "foreign", "", f"{target.dir} exists and was not made by "
                       "branchyard; left as it is")
    if stamp.lock_hash == decision.lock_hash:
        return Outcome(False, "kept", stamp.method, "already made for these lockfiles")
    return _install(target, decision, session, "the lockfiles changed since it was made")


def _install(target: DepsTarget, decision: Decision, session: Session, why: str) -> Outcome:
    reason = why or decision.reason
    updating = os.path.lexists(target.dest)
    try:
        method, action = _run_installer(target, decision, session, reason)
    except BranchyardError:
        if not updating and target.dest.is_dir():
            # A half-installed tree this run caused: stamp it so the next setup
            # installs again instead of taking it for one the user made.
            write_stamp(target.dest, INCOMPLETE, "failed", "install")
        raise
    _verify_install(target, session)
    if target.dest.is_dir():
        write_stamp(target.dest, decision.lock_hash, action, method)
    return Outcome(True, "updated" if updating else action, method, reason)


def _run_installer(target: DepsTarget, decision: Decision, session: Session,
                   reason: str) -> tuple[str, str]:
    if decision.strategy == "venv":
        return _recreate_venv(target, session, reason), "recreated"
    session.reporter.message(f"{target.dir}: installing ({reason}): {target.install}")
    run_install(target.install, target.cwd, target.dir, session.runner)
    return "install", "installed"


def _recreate_venv(target: DepsTarget, session: Session, reason: str) -> str:
    if uv_available(target.lockfiles):
        session.reporter.message(f"{target.dir}: uv sync from uv's cache ({reason})")
        uv_sync(target.dest, target.cwd, session.runner)
        return "uv"
    session.reporter.message(f"{target.dir}: installing ({reason}): {target.install}")
    run_install(target.install, target.cwd, target.dir, session.runner)
    return "install"


def _verify_install(target: DepsTarget, session: Session) -> None:
    failure = smoke_failure(target.smoke, target.cwd, session.runner)
    if failure:
        raise ProviderError(
            f"deps {target.dir}: the smoke check fails after a fresh install: {failure}",
            hint="fix the install, or the smoke command of this [[deps]] entry")


def _reuse(target: DepsTarget, decision: Decision, session: Session) -> Outcome:
    method, note = choose_method(target, session.probe)
    session.reporter.message(f"{target.dir}: reusing the main worktree's tree by {method}"
                             f"{note} ({decision.reason})")
    staging = target.dest.with_name(f".{target.dest.name}.branchyard-staging")
    _remove_ours(staging, target)
    request = CopyRequest(target.source, staging, method,
                          rewrite_from=target.main, rewrite_to=target.worktree)
    try:
        stats = copy_tree(request, lambda done, total: session.reporter.progress(
            done, total, "files"))
    except TreeCopyError as exc:
        _remove_ours(staging, target)
        return _install(target, decision, session, f"reuse failed: {exc.message}")
    if decide(target) != decision:
        _remove_ours(staging, target)
        return _install(target, decide(target), session, "the lockfiles changed during reuse")
    write_stamp(staging, decision.lock_hash, "reused", method)
    try:
        os.rename(staging, target.dest)
    except OSError:  # another process made the tree meanwhile: keep theirs
        _remove_ours(staging, target)
        return _existing(target, decision, session)
    return _smoke_after_reuse(target, decision, session, Outcome(
        True, "reused", method, decision.reason, stats))


def _smoke_after_reuse(target: DepsTarget, decision: Decision, session: Session,
                       outcome: Outcome) -> Outcome:
    failure = smoke_failure(target.smoke, target.cwd, session.runner)
    if not failure:
        return outcome
    _remove_ours(target.dest, target)
    return _install(target, decision, session, f"the smoke check failed after reuse: {failure}")


def choose_method(target: DepsTarget, probe: FsProbe) -> tuple[Method, str]:
    """The copy method for this filesystem and mode, and a note when the mode
    asked for something the filesystem cannot do."""
    target.dest.parent.mkdir(parents=True, exist_ok=True)
    caps = probe.capabilities(target.source, target.dest.parent)
    if target.mode == "copy":
        return "copy", ""
    if target.mode == "reflink":
        return ("reflink", "") if caps.reflink else ("copy", " (no reflinks on this filesystem)")
    if target.mode == "hardlink":
        return ("hardlink", "") if caps.hardlink else ("copy", " (hardlinks impossible here)")
    if caps.reflink:
        return "reflink", ""
    if caps.hardlink and is_pnpm_tree(target.source):
        return "shared", ""
    return "copy", ""


def is_pnpm_tree(tree: Path) -> bool:
    """pnpm's node_modules: files already hardlinked from its content-addressed store."""
    return (tree / ".pnpm").is_dir() or (tree / ".modules.yaml").is_file()


def _check_paths(target: DepsTarget) -> None:
    rel = Path(target.dir)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ProviderError(f"deps dir {target.dir!r} must be a relative path inside the "
                            "worktree", hint="fix `dir` in the [[deps]] entry")
    if _same(target.worktree, target.main):
        raise ProviderError(f"deps {target.dir}: {target.worktree} is the main worktree; "
                            "its dependencies are never replaced")


def _remove_ours(path: Path, target: DepsTarget) -> None:
    """Remove a tree this run made, after checking it is not the main worktree's."""
    real, source = os.path.realpath(path), os.path.realpath(target.source)
    worktree = os.path.realpath(target.worktree)
    if is_inside(real, source) or real == worktree or not is_inside(real, worktree):
        raise ProviderError(f"refusing to remove {path}: it is not inside the worktree "
                            f"{target.worktree}")
    if os.path.islink(path):
        os.unlink(path)
    elif os.path.lexists(path):
        shutil.rmtree(path)


def _same(a: Path, b: Path) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)
