"""Where a worktree's services keep their files, and the files themselves.

Everything lives in one directory per worktree under the user state dir, named
from the worktree's real path (so a path alone finds it: `stop`, the proxy):
``plan.json`` (what should run; written by the API), ``state.json`` (what runs;
written by the supervisor), ``logs/``, ``supervisor.log`` and ``supervisor.lock``.
Both JSON files are versioned, written atomically, mode 0600 (the plan holds the
derived environment, database URLs included).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from branchyard.services import services_home

SCHEMA = 1
LIVE_STATES = ("starting", "ready", "running", "restarting")


@dataclass(frozen=True)
class ServiceSpec:
    """One service as the supervisor runs it: everything resolved."""

    name: str
    argv: tuple[str, ...]
    port: int = 0  # 0 = none
    port_name: str = ""
    ready: str = ""  # "http:/path" | "tcp" | "" (none)
    restart: str = "on-failure"
    on_env_change: str = "restart"  # restart | signal:NAME | none
    want: str = "running"  # running | stopped
    token: int = 0  # bumped by `restart`


@dataclass(frozen=True)
class Settings:
    env_mode: str = "derived"
    backoff: float = 0.5
    backoff_max: float = 30.0
    max_restarts: int = 5
    stop_grace: float = 5.0
    log_max_bytes: int = 1024 * 1024
    log_files: int = 3


@dataclass(frozen=True)
class Plan:
    """``plan.json``: what the supervisor of one worktree should run, and how."""

    worktree: str
    branch: str
    generation: int  # increases with every write; the supervisor acknowledges it
    settings: Settings
    env: dict[str, str]  # the derived variables (branchyard's override values)
    env_files: tuple[str, ...]  # the worktree's env files, in precedence order
    watch: tuple[str, ...]  # files whose change triggers on_env_change
    services: tuple[ServiceSpec, ...] = ()

    def service(self, name: str) -> ServiceSpec | None:
        return next((s for s in self.services if s.name == name), None)


@dataclass
class ServiceRecord:
    """One service in ``state.json``."""

    state: str = "stopped"  # starting | ready | running | restarting | crashed | exited | stopped
    pid: int = 0
    create_time: float = 0.0
    port: int = 0
    ready: bool = False
    exit_code: int | None = None  # 128+N when killed by signal N
    exit_signal: str = ""
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    env_changed_at: float = 0.0
    env_action: str = ""  # what the last env change did


@dataclass
class SupervisorState:
    """``state.json``, written only by the supervisor (and by `stop` when it is gone)."""

    worktree: str = ""
    pid: int = 0
    create_time: float = 0.0
    started: float = 0.0
    ended: float = 0.0  # 0 while it runs; set when it exits on its own terms
    generation: int = 0  # the last plan it applied
    services: dict[str, ServiceRecord] = field(default_factory=dict)


def service_dir(worktree: str | Path) -> Path:
    real = os.path.realpath(worktree)
    digest = hashlib.sha256(real.encode()).hexdigest()[:12]
    return services_home() / f"{os.path.basename(real) or 'root'}-{digest}"


def plan_path(directory: Path) -> Path:
    return directory / "plan.json"


def state_path(directory: Path) -> Path:
    return directory / "state.json"


def log_dir(directory: Path) -> Path:
    return directory / "logs"


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic and private: a temp file (0600) ``os.replace``-d over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump({"schema": SCHEMA, **data}, fh, indent=1)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        return None
    data.pop("schema")
    return data


def write_plan(directory: Path, plan: Plan) -> None:
    write_json(plan_path(directory), asdict(plan))


def read_plan(directory: Path) -> Plan | None:
    data = _read_json(plan_path(directory))
    if data is None:
        return None
    try:
        return Plan(
            data["worktree"], data["branch"], int(data["generation"]),
            Settings(**data["settings"]), dict(data["env"]), tuple(data["env_files"]),
            tuple(data["watch"]),
            tuple(ServiceSpec(**{**s, "argv": tuple(s["argv"])}) for s in data["services"]))
    except (KeyError, TypeError, ValueError):
        return None


def write_state(directory: Path, state: SupervisorState) -> None:
    write_json(state_path(directory), asdict(state))


def read_state(directory: Path) -> SupervisorState | None:
    data = _read_json(state_path(directory))
    if data is None:
        return None
    try:
        services = {k: ServiceRecord(**v) for k, v in data.pop("services").items()}
        return SupervisorState(**data, services=services)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def is_alive(pid: int, create_time: float) -> bool:
    """Whether ``pid`` is still the process that was recorded (not a reused pid,
    not a zombie)."""
    from branchyard.system.processes import is_recorded

    return is_recorded(pid, create_time, within=0.05)
