"""The one place the dashboard meets the supervised services: their state, the
last lines of their logs, new lines as they come, and start/stop/restart, mapped
to the dashboard's own frozen values."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from branchyard.config.model import Config
from branchyard.core.errors import UsageError
from branchyard.services import logs, state, status
from branchyard.services.logs import LogLine

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


def configured(config: Config) -> tuple[str, ...]:
    """The services a worktree of this config runs (``[services]``, or ``web``)."""
    from branchyard.api.services import configured_services

    return tuple(configured_services(config))


def services_of(worktree: str, names: tuple[str, ...]) -> tuple[ServiceCard, ...]:
    """The services of ``worktree``: those its supervisor recorded, plus ``names``
    never started (``stopped``)."""
    return tuple(ServiceCard(s.name, s.state, s.port or 0, s.pid or 0, s.exit_text, s.restarts,
                             s.uptime or 0.0) for s in status.list_services(worktree, names))


def watched_files(worktree: str) -> list[str]:
    """Files whose change means a service changed state (the supervisor's record)."""
    directory = state.service_dir(worktree)
    return [str(state.state_path(directory)), str(state.plan_path(directory))]


def log_tail(worktree: str, service: str, last: int, since: float = 0.0) -> list[LogLine]:
    return status.last_lines(worktree, service, last, since)


class LogFollower:
    """New lines of one service's log; :meth:`poll` is cheap when nothing came."""

    def __init__(self, worktree: str, service: str) -> None:
        path = logs.log_file(state.log_dir(state.service_dir(worktree)), service)
        self._inner = logs.Follower(path, service)

    def poll(self) -> list[LogLine]:
        return self._inner.poll()

    def close(self) -> None:
        self._inner.close()


def act(worktree: str, name: str, op: str, service: str) -> str:
    """Start, stop or restart one service (all: ``service`` "") of the worktree
    ``name`` (its slug) at ``worktree``; what was done, as text."""
    from branchyard.api import services as api

    if op not in OPS:
        raise UsageError(f"unknown action {op!r}", hint="start, stop or restart")
    words = (name, service) if service else (name,)
    run = {"start": api.start_services, "stop": api.stop_services,
           "restart": api.restart_services}[op]
    result = run(api.ServicesRequest(words=words, cwd=Path(worktree)))
    done = ", ".join(result.acted) or "nothing"
    verb = {"start": "started", "stop": "stopped", "restart": "restarted"}[op]
    return f"{verb} {done} in {os.path.basename(worktree)}"
