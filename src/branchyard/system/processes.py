"""Finding and stopping the processes that belong to a worktree.

A process belongs to the worktree a ``branchyard run`` record names when it is
that run's child (same start time, so a reused pid claims nothing), in its
process group, or below it; otherwise to the innermost worktree its current
directory is in. The record wins over the directory. branchyard's own
processes — the caller, its ancestors (an agent's shell), the git commands it
runs, and the wrappers of ``branchyard run`` — belong to no worktree.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.paths import is_inside
from branchyard.system.proctable import Row, completed, lineage, read_table

DEFAULT_GRACE = 2.0
SAME_START = 0.01  # seconds: psutil's start times of one process agree to this


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    name: str
    cmdline: str
    cwd: str


@dataclass(frozen=True)
class Claim:
    """A process ``branchyard run`` started (in its own process group) for the
    worktree at ``root``, and the wrapper that waits for it."""

    root: str
    pid: int
    create_time: float
    runner: int = 0
    runner_create_time: float = 0.0


@dataclass(frozen=True)
class StopReport:
    terminated: tuple[ProcInfo, ...]  # ended after SIGTERM
    killed: tuple[ProcInfo, ...]  # needed SIGKILL


def protected_pids() -> set[int]:
    """This process and all its ancestors."""
    return set(lineage(os.getpid()))


def _info(row: Row) -> ProcInfo:
    row = completed(row)
    cmdline = row.cmdline or ()
    return ProcInfo(row.pid, row.name, " ".join(cmdline) or row.name, row.cwd)


def _inside(cwd: str, roots: Sequence[str]) -> str | None:
    """The innermost root containing ``cwd``: a worktree nested in the main one
    (``.worktrees/x``) owns its processes, not the main worktree."""
    found = [r for r in roots if is_inside(cwd, r)]
    return max(found, key=len, default=None)


def _innermost(cwd: str, roots: frozenset[str]) -> str | None:
    """:func:`_inside` for one process of many: ``cwd`` and its prefixes that end
    before a separator, longest first, looked up in ``roots`` (real paths) instead
    of trying every root. A root ending in a separator (``/``) is tried last."""
    if cwd in roots:
        return cwd
    end = cwd.rfind(os.sep)
    while end > 0:
        if cwd[:end] in roots:
            return cwd[:end]
        end = cwd.rfind(os.sep, 0, end)
    return _inside(cwd, [r for r in roots if r.endswith(os.sep)])


def _started_as(row: Row | None, create_time: float) -> bool:
    return row is not None and (not create_time or
                                abs(row.create_time - create_time) <= SAME_START)


def _own(table: dict[int, Row], claims: Sequence[Claim]) -> set[int]:
    """branchyard's own processes: see the module docstring."""
    me = os.getpid()
    own = protected_pids()
    own |= {c.runner for c in claims if c.runner and _started_as(table.get(c.runner),
                                                                 c.runner_create_time)}
    own |= {r.pid for r in table.values()
            if r.ppid == me and os.path.basename(r.cmdline[0] if r.cmdline else "") == "git"}
    return own


def _live_claims(table: dict[int, Row], claims: Sequence[Claim]) -> dict[int, str]:
    """Process group → root of each claim still valid. A group outlives its
    leader (the kernel keeps its number until the last member ends); a leader's
    pid that now runs a process started at another time is not ours."""
    groups: dict[int, str] = {}
    for claim in claims:
        leader = table.get(claim.pid)
        if leader is None or _started_as(leader, claim.create_time):
            groups[claim.pid] = os.path.realpath(claim.root)
    return groups


def _claimed(row: Row, table: dict[int, Row], groups: dict[int, str],
             memo: dict[int, str | None]) -> str | None:
    """The root of the claim ``row`` falls under: its group, or an ancestor's
    (``memo`` keeps the answer for every process on the way up)."""
    chain: list[int] = []
    current: Row | None = row
    found: str | None = None
    while current is not None and current.pid > 1 and current.pid not in chain:
        if current.pid in memo:
            found = memo[current.pid]
            break
        chain.append(current.pid)
        found = groups.get(current.pid) or groups.get(_group(current.pid))
        if found is not None:
            break
        current = table.get(current.ppid)
    memo.update(dict.fromkeys(chain, found))
    return found


def _group(pid: int) -> int:
    try:
        return os.getpgid(pid)
    except (ProcessLookupError, PermissionError):
        return 0


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (perhaps another user's)."""
    if pid <= 0:  # 0 and negative numbers name process groups, not a process
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_recorded(pid: int, create_time: float, *, within: float = SAME_START) -> bool:
    """Whether ``pid`` is still the process recorded with ``create_time`` (its start
    time agrees to ``within`` s: not a reused pid), and not a zombie."""
    if pid <= 0:
        return False
    import psutil

    try:
        proc = psutil.Process(pid)
        return (abs(proc.create_time() - create_time) < within
                and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def group_alive(pid: int, create_time: float) -> bool:
    """Whether the process group ``branchyard run`` started as ``pid`` still has
    a member (and the pid, if alive, is still the process that was recorded)."""
    import psutil

    try:
        if abs(psutil.Process(pid).create_time() - create_time) > SAME_START:
            return False  # the pid was reused: the recorded process is gone
    except psutil.NoSuchProcess:
        pass
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def processes_by_root(roots: Iterable[Path | str], claims: Sequence[Claim] = (), *,
                      resolved: bool = False) -> dict[str, list[ProcInfo]]:
    """One scan of the process table: real path of each root → its processes.

    Pass every worktree of the repository as ``roots`` and every run record as
    ``claims``, then pick the root you want: a process of a nested worktree or
    of another worktree's run is never counted for the one that contains it.
    ``resolved``: the roots are real paths already.
    """
    real = list(dict.fromkeys(os.fspath(r) if resolved else os.path.realpath(r)
                              for r in roots))
    found: dict[str, list[ProcInfo]] = {r: [] for r in real}
    if not real:
        return found
    table = read_table()
    own = _own(table, claims)
    groups = _live_claims(table, claims)
    memo: dict[int, str | None] = {}
    lookup = frozenset(real)
    for row in table.values():
        if row.pid in own:
            continue
        root = _claimed(row, table, groups, memo) if groups else None
        if root is None and row.cwd:
            root = _innermost(row.cwd, lookup)
        if root is not None and root in found:
            found[root].append(_info(row))
    return found


def stop(procs: Sequence[ProcInfo], grace: float = DEFAULT_GRACE) -> StopReport:
    """SIGTERM, wait up to ``grace`` seconds, then SIGKILL what is left."""
    import psutil

    skip = protected_pids()
    live: dict[int, tuple[psutil.Process, ProcInfo]] = {}
    for info in procs:
        if info.pid in skip:
            continue
        try:
            proc = psutil.Process(info.pid)
            proc.send_signal(signal.SIGTERM)
            live[info.pid] = (proc, info)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    _, alive = psutil.wait_procs([p for p, _ in live.values()], timeout=grace)
    killed: list[ProcInfo] = []
    for proc in alive:
        try:
            proc.kill()
            killed.append(live[proc.pid][1])
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=5)
    killed_pids = {k.pid for k in killed}
    terminated = tuple(i for pid, (_, i) in live.items() if pid not in killed_pids)
    return StopReport(terminated, tuple(killed))


def worktree_root_of(cwd: str, roots: Sequence[str]) -> str | None:
    """The innermost of ``roots`` (real paths) containing ``cwd``, or None."""
    return _inside(cwd.removesuffix(" (deleted)"), roots)
