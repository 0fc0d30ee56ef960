"""Finding and stopping the processes that belong to a worktree.

A process belongs to a worktree when its current directory is inside it. The
caller and its ancestors are never touched (they may be an agent's shell).
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_GRACE = 2.0


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    name: str
    cmdline: str
    cwd: str


@dataclass(frozen=True)
class StopReport:
    terminated: tuple[ProcInfo, ...]  # ended after SIGTERM
    killed: tuple[ProcInfo, ...]  # needed SIGKILL


def protected_pids() -> set[int]:
    """This process and all its ancestors."""
    import psutil

    me = psutil.Process()
    return {me.pid, *(p.pid for p in me.parents())}


def _inside(cwd: str, roots: Sequence[str]) -> str | None:
    """The innermost root containing ``cwd``: a worktree nested in the main one
    (``.worktrees/x``) owns its processes, not the main worktree."""
    found = [r for r in roots if cwd == r or cwd.startswith(r.rstrip(os.sep) + os.sep)]
    return max(found, key=len, default=None)


def processes_by_root(roots: Iterable[Path]) -> dict[str, list[ProcInfo]]:
    """One scan of the process table: root → processes whose cwd is inside it."""
    import psutil

    real = [os.path.realpath(r) for r in roots]
    found: dict[str, list[ProcInfo]] = {r: [] for r in real}
    if not real:
        return found
    skip = protected_pids()
    for proc in psutil.process_iter(["pid", "name", "cmdline", "cwd"]):
        info = proc.info
        cwd = info.get("cwd")
        if not cwd or info["pid"] in skip:
            continue
        root = _inside(cwd.removesuffix(" (deleted)"), real)
        if root is not None:
            cmd = " ".join(info.get("cmdline") or []) or info.get("name") or "?"
            found[root].append(ProcInfo(info["pid"], info.get("name") or "?", cmd, cwd))
    return found


def processes_in(root: Path) -> list[ProcInfo]:
    return next(iter(processes_by_root([root]).values()))


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
