"""The typed read API of a worktree's services, for `ls`, `status`, the proxy's
502 page and a dashboard. Reading only: files, and one liveness check of the
supervisor's pid (no process-table scan).

- :func:`list_services` → ``list[ServiceState]``: each configured or recorded
  service of a worktree with its state (``starting``, ``ready``, ``running`` (no
  readiness check), ``restarting`` (waiting out its backoff), ``crashed``,
  ``exited``, ``stopped``; ``lost`` when the supervisor died under it — `doctor
  --fix` repairs that), pid, port, readiness, exit code, restarts, start time
  and log file.
- :func:`supervisor_of` → ``SupervisorInfo | None``: the supervisor's pid and
  whether it is alive.
- :func:`last_lines` → ``list[LogLine]``: the last N log lines of one service
  (or all), oldest first, each with time, service, stream (``out``, ``err``,
  ``supervisor``) and text.
- :func:`failure_of` → ``ServiceFailure | None``: how the service on a port
  ended and its last lines (the proxy's 502 page).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from branchyard.services.logs import LogLine, log_file, read_lines
from branchyard.services.state import (
    LIVE_STATES,
    ServiceRecord,
    SupervisorState,
    is_alive,
    log_dir,
    read_plan,
    read_state,
    service_dir,
)


@dataclass(frozen=True)
class ServiceState:
    name: str
    state: str
    pid: int | None
    port: int | None
    ready: bool
    exit_code: int | None
    restarts: int
    started_at: float | None  # Unix time of the current (or last) start
    log_path: str
    exit_signal: str = ""
    env_changed_at: float | None = None
    env_action: str = ""  # what the last change of an env file did

    @property
    def uptime(self) -> float | None:
        """Seconds since it started, while it runs."""
        if self.state not in LIVE_STATES or self.state == "restarting" or not self.started_at:
            return None
        return max(0.0, time.time() - self.started_at)

    @property
    def exit_text(self) -> str:
        """``exited with code 1`` / ``killed by SIGKILL`` / ``""``."""
        if self.exit_code is None:
            return ""
        if self.exit_signal:
            return f"killed by {self.exit_signal}"
        return f"exited with code {self.exit_code}"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "state": self.state, "pid": self.pid, "port": self.port,
                "ready": self.ready, "exit_code": self.exit_code,
                "exit_signal": self.exit_signal or None, "restarts": self.restarts,
                "started_at": self.started_at, "uptime": _round(self.uptime),
                "log_path": self.log_path, "env_changed_at": self.env_changed_at,
                "env_action": self.env_action or None}


@dataclass(frozen=True)
class SupervisorInfo:
    pid: int
    alive: bool
    ended: bool  # it exited on its own terms (nothing left to run, or `stop`)
    started: float

    @property
    def crashed(self) -> bool:
        """Gone without ending its services' supervision (SIGKILL, a crash)."""
        return not self.alive and not self.ended


@dataclass(frozen=True)
class ServiceFailure:
    service: str
    exit_text: str  # "" while it has not exited
    state: str
    lines: tuple[LogLine, ...]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def supervisor_of(worktree: str | Path) -> SupervisorInfo | None:
    state = read_state(service_dir(worktree))
    if state is None or not state.pid:
        return None
    return _info(state)


def _info(state: SupervisorState) -> SupervisorInfo:
    alive = is_alive(state.pid, state.create_time) if not state.ended else False
    return SupervisorInfo(state.pid, alive, bool(state.ended), state.started)


def list_services(worktree: str | Path, configured: tuple[str, ...] = ()) -> list[ServiceState]:
    """The services of a worktree: those recorded by its supervisor, plus
    ``configured`` names never started (state ``stopped``)."""
    directory = service_dir(worktree)
    state = read_state(directory)
    records = dict(state.services) if state is not None else {}
    lost = state is not None and _info(state).crashed
    plan = read_plan(directory)
    ports = {s.name: s.port for s in plan.services} if plan is not None else {}
    names = list(dict.fromkeys([*records, *configured]))
    return [_service(directory, n, records.get(n), lost, ports.get(n)) for n in names]


def _service(directory: Path, name: str, rec: ServiceRecord | None, lost: bool,
             port: int | None) -> ServiceState:
    path = str(log_file(log_dir(directory), name))
    if rec is None:
        return ServiceState(name, "stopped", None, port or None, False, None, 0, None, path)
    state = "lost" if lost and rec.state in LIVE_STATES else rec.state
    return ServiceState(name, state, rec.pid or None, rec.port or port or None, rec.ready,
                        rec.exit_code, rec.restarts, rec.started_at or None, path,
                        rec.exit_signal, rec.env_changed_at or None, rec.env_action)


def last_lines(worktree: str | Path, service: str | None = None, n: int = 50,
               since: float = 0.0) -> list[LogLine]:
    """The last ``n`` lines of ``service``'s log (all services: ``None``)."""
    directory = service_dir(worktree)
    plan = read_plan(directory)
    files = plan.settings.log_files if plan is not None else 3
    if service is not None:
        names = [service]
    else:
        names = sorted(p.name.removesuffix(".log") for p in log_dir(directory).glob("*.log"))
    return read_lines(log_dir(directory), names, last=n, since=since, files=files)


def failure_of(worktree: str | Path, port: int, n: int = 20) -> ServiceFailure | None:
    """The service that serves ``port`` in the worktree: its state, how it
    exited, and its last ``n`` log lines; None when no service serves it."""
    for svc in list_services(worktree):
        if svc.port == port:
            lines = tuple(last_lines(worktree, svc.name, n))
            return ServiceFailure(svc.name, svc.exit_text, svc.state, lines)
    return None
