"""The one place the dashboard meets :mod:`branchyard.services`.

Everything the page needs about services — their state, the last lines of their
logs, new lines as they come, and start/stop/restart — goes through here, mapped
to the dashboard's own frozen values, so a change in the services API is
absorbed in this file alone. Without the services package every function
answers "nothing runs" and :func:`act` refuses.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchyard.errors import BranchyardError

OPS = ("start", "stop", "restart")


@dataclass(frozen=True)
class ServiceCard:
    name: str
    state: str  # starting | ready | running | restarting | crashed | exited | stopped
    port: int = 0
    pid: int = 0
    exit_code: int | None = None
    restarts: int = 0
    uptime: float = 0.0  # seconds since it started; 0 when it does not run


@dataclass(frozen=True)
class LogEntry:
    time: float
    service: str
    stream: str  # out | err | supervisor
    text: str


class ServicesUnavailableError(BranchyardError):
    code = "services_unavailable"


def available() -> bool:
    return importlib.util.find_spec("branchyard.services") is not None


def _svc(module: str) -> Any:
    """A module of the services package, imported by name: this branch type-checks
    with or without it."""
    return importlib.import_module(f"branchyard.services.{module}")


def services_of(worktree: str) -> tuple[ServiceCard, ...]:
    """The services planned or running in ``worktree`` (none if it has none)."""
    if not available():
        return ()
    st = _svc("state")

    directory = st.service_dir(worktree)
    plan, sup = st.read_plan(directory), st.read_state(directory)
    names = [s.name for s in plan.services] if plan else []
    records = sup.services if sup else {}
    alive = sup is not None and st.is_alive(sup.pid, sup.create_time)
    now = time.time()
    cards = []
    for name in dict.fromkeys([*names, *records]):
        rec = records.get(name)
        if rec is None:
            cards.append(ServiceCard(name, "stopped"))
            continue
        state = rec.state if alive or rec.state not in st.LIVE_STATES else "stopped"
        running = state in st.LIVE_STATES and rec.started_at > 0
        cards.append(ServiceCard(name, state, rec.port, rec.pid if running else 0,
                                 rec.exit_code, rec.restarts,
                                 now - rec.started_at if running else 0.0))
    return tuple(cards)


def watched_files(worktree: str) -> list[str]:
    """Files whose change means a service changed state (the supervisor's record)."""
    if not available():
        return []
    st = _svc("state")

    directory = st.service_dir(worktree)
    return [str(st.state_path(directory)), str(st.plan_path(directory))]


def log_tail(worktree: str, service: str, last: int) -> list[LogEntry]:
    if not available():
        return []
    logs = _svc("logs")
    st = _svc("state")

    directory = st.log_dir(st.service_dir(worktree))
    return [LogEntry(x.time, x.service, x.stream, x.text)
            for x in logs.read_lines(directory, [service], last=last)]


class LogFollower:
    """New lines of one service's log; :meth:`poll` is cheap when nothing came."""

    def __init__(self, worktree: str, service: str) -> None:
        self._inner: Any = None
        if available():
            logs = _svc("logs")
            st = _svc("state")

            path = logs.log_file(st.log_dir(st.service_dir(worktree)), service)
            self._inner = logs.Follower(path, service)

    def poll(self) -> list[LogEntry]:
        if self._inner is None:
            return []
        return [LogEntry(x.time, x.service, x.stream, x.text) for x in self._inner.poll()]

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def act(worktree: str, op: str, service: str) -> str:
    """Start, stop or restart one service of ``worktree``; what was done, as text."""
    if op not in OPS:
        raise ServicesUnavailableError(f"unknown action {op!r}", hint="start, stop or restart")
    if not available():
        raise ServicesUnavailableError("this branchyard has no supervised services",
                                       hint="upgrade branchyard")
    getattr(_svc("control"), op)(Path(worktree), [service] if service else [])
    return f"{op} {service or 'all services'} in {os.path.basename(worktree)}"
