"""The one place the dashboard meets the supervised services.

Everything the page needs about services — their state, the last lines of their
logs, new lines as they come, and start/stop/restart — goes through here, mapped
to the dashboard's own frozen values, so a change in the services API is
absorbed in this file alone. The modules are imported by name
(:func:`_svc`): without the services package every read answers "nothing
runs" and :func:`act` refuses.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchyard.config import Config
from branchyard.errors import BranchyardError

OPS = ("start", "stop", "restart")
LIVE = ("starting", "ready", "running", "restarting")


@dataclass(frozen=True)
class ServiceCard:
    name: str
    state: str  # starting | ready | running | restarting | crashed | exited | stopped | lost
    port: int = 0
    pid: int = 0
    exit_text: str = ""  # "exited with code 1", "killed by SIGKILL"
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
    """A module of the services feature by name: this file type-checks with or
    without it."""
    return importlib.import_module(module)


def configured(config: Config) -> tuple[str, ...]:
    """The services a worktree of this config runs (``[services]``, or ``web``)."""
    if not available():
        return ()
    return tuple(_svc("branchyard.api.services").configured_services(config))


def services_of(worktree: str, names: tuple[str, ...]) -> tuple[ServiceCard, ...]:
    """The services of ``worktree``: those its supervisor recorded, plus ``names``
    never started (``stopped``)."""
    if not available():
        return ()
    found = _svc("branchyard.services.status").list_services(worktree, names)
    return tuple(ServiceCard(s.name, s.state, s.port or 0, s.pid or 0, s.exit_text, s.restarts,
                             s.uptime or 0.0) for s in found)


def watched_files(worktree: str) -> list[str]:
    """Files whose change means a service changed state (the supervisor's record)."""
    if not available():
        return []
    st = _svc("branchyard.services.state")
    directory = st.service_dir(worktree)
    return [str(st.state_path(directory)), str(st.plan_path(directory))]


def log_tail(worktree: str, service: str, last: int, since: float = 0.0) -> list[LogEntry]:
    if not available():
        return []
    lines = _svc("branchyard.services.status").last_lines(worktree, service, last, since)
    return [LogEntry(x.time, x.service, x.stream, x.text) for x in lines]


class LogFollower:
    """New lines of one service's log; :meth:`poll` is cheap when nothing came."""

    def __init__(self, worktree: str, service: str) -> None:
        self._inner: Any = None
        if available():
            logs, st = _svc("branchyard.services.logs"), _svc("branchyard.services.state")
            path = logs.log_file(st.log_dir(st.service_dir(worktree)), service)
            self._inner = logs.Follower(path, service)

    def poll(self) -> list[LogEntry]:
        if self._inner is None:
            return []
        return [LogEntry(x.time, x.service, x.stream, x.text) for x in self._inner.poll()]

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def act(worktree: str, name: str, op: str, service: str) -> str:
    """Start, stop or restart one service (all: ``service`` "") of the worktree
    ``name`` (its slug) at ``worktree``; what was done, as text."""
    if op not in OPS:
        raise ServicesUnavailableError(f"unknown action {op!r}", hint="start, stop or restart")
    if not available():
        raise ServicesUnavailableError("this branchyard has no supervised services",
                                       hint="upgrade branchyard")
    api = _svc("branchyard.api.services")
    words = (name, service) if service else (name,)
    result = getattr(api, f"{op}_services")(api.ServicesRequest(words=words,
                                                                cwd=Path(worktree)))
    done = ", ".join(result.acted) or "nothing"
    verb = {"start": "started", "stop": "stopped", "restart": "restarted"}[op]
    return f"{verb} {done} in {os.path.basename(worktree)}"
