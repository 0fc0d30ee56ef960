"""`start`, `restart`, `attach`: a worktree's supervised services (dev servers;
their `logs`: :mod:`branchyard.api.logs`).

The plan handed to the supervisor is derived here, in one place, from
``[services]`` (default: ``web`` = ``[hooks] run`` on the first port) and the
worktree's ledger entry: each command runs through ``sh -c`` like `run`'s hook,
with the derived variables only (``env = "derived"``: the app reads its env
files itself, so a secret rotated in main reaches it on the next restart) or
everything (``env = "all"``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from branchyard.api.info import live_record_for
from branchyard.api.targets import record_for
from branchyard.config.model import Config, ServiceConfig
from branchyard.context import Context, open_context
from branchyard.core.errors import UsageError, WorktreeError
from branchyard.envfiles.files import main_env_files
from branchyard.ledger import WorktreeRecord
from branchyard.services import control
from branchyard.services.state import (
    LIVE_STATES,
    Plan,
    ServiceSpec,
    Settings,
    read_plan,
    read_state,
    service_dir,
)
from branchyard.services.status import ServiceState, list_services

SETTLED = ("ready", "running", "crashed", "exited", "stopped", "lost")


@dataclass(frozen=True)
class ServicesRequest:
    words: tuple[str, ...] = ()  # [NAME] [SERVICE…] as typed
    wait: float = 0.0  # seconds to wait for the services to be ready (0: do not wait)
    cwd: Path | None = None


@dataclass(frozen=True)
class ServicesResult:
    branch: str
    path: str
    services: tuple[ServiceState, ...]
    acted: tuple[str, ...]  # the services started / restarted / stopped
    unchanged: tuple[str, ...] = ()  # already running (start)
    supervisor_pid: int = 0


def configured_services(config: Config) -> dict[str, ServiceConfig]:
    """``[services.NAME]`` tables, or the default ``web`` service from ``[hooks] run``."""
    if config.services.define:
        return dict(config.services.define)
    if not config.hooks.run:
        return {}
    return {"web": ServiceConfig(command=config.hooks.run,
                                 port=config.ports.names[0] if config.ports.names else "")}


def start_services(request: ServicesRequest) -> ServicesResult:
    """Start the named services (all when none is named) of the worktree; those
    already running are left alone."""
    return _act(request, "start")


def restart_services(request: ServicesRequest) -> ServicesResult:
    return _act(request, "restart")


def stop_services(request: ServicesRequest) -> ServicesResult:
    """Stop the named services (all when none is named), leaving the worktree's
    other processes (`branchyard stop` ends everything)."""
    return _act(request, "stop")


def _act(request: ServicesRequest, action: str) -> ServicesResult:
    ctx = open_context(request.cwd)
    record, names = split_words(ctx, request.words)
    wt_ctx = open_context(record.path)
    services = configured_services(wt_ctx.config)
    if not services:
        raise UsageError("no services to start: `[hooks] run` is not set and there is no "
                         "[services.NAME] table in branchyard.toml",
                         hint='add `[hooks] run = "npm run dev"`, or [services.web] '
                              'command = "…" (see the README, "Dev servers")')
    _check_names(names, services)
    selected = set(names or services)
    plan, acted, unchanged = _plan(wt_ctx, record, services, selected, action)
    state = control.apply_plan(plan)
    if request.wait > 0 and action != "stop":
        _wait_settled(record.path, set(acted), request.wait)
    return ServicesResult(record.branch, record.path,
                          tuple(list_services(record.path, tuple(services))),
                          tuple(acted), tuple(unchanged), state.pid)


def split_words(ctx: Context, words: tuple[str, ...]) -> tuple[WorktreeRecord, tuple[str, ...]]:
    """``[NAME] [SERVICE…]``: the first word is a worktree unless it names a service
    of the current worktree and no worktree."""
    services = configured_services(ctx.config)
    if words and words[0] in services and ctx.loc.in_linked_worktree:
        try:
            record_for(ctx, words[0])
        except WorktreeError:
            return live_record_for(ctx, None), words
    if not words:
        return _here(ctx), ()
    return live_record_for(ctx, words[0]), words[1:]


def _here(ctx: Context) -> WorktreeRecord:
    if not ctx.loc.in_linked_worktree:
        return live_record_for(ctx, str(ctx.repo.main_path))
    return live_record_for(ctx, None)


def _check_names(names: tuple[str, ...], services: dict[str, ServiceConfig]) -> None:
    unknown = [n for n in names if n not in services]
    if unknown:
        raise UsageError(f"no service named {unknown[0]!r}",
                         hint=f"the services are: {', '.join(services)} "
                              "([services] in branchyard.toml)")


def _plan(ctx: Context, record: WorktreeRecord, services: dict[str, ServiceConfig],
          selected: set[str], action: str) -> tuple[Plan, list[str], list[str]]:
    directory = service_dir(record.path)
    old, state = read_plan(directory), read_state(directory)
    alive = control.supervisor_alive(state)
    specs: list[ServiceSpec] = []
    acted: list[str] = []
    unchanged: list[str] = []
    for name, svc in services.items():
        prev = old.service(name) if old is not None else None
        token = prev.token if prev is not None else 0
        want = prev.want if prev is not None and alive else "stopped"
        if name in selected:
            rec = state.services.get(name) if state is not None and alive else None
            live = rec is not None and rec.state in LIVE_STATES
            if action == "stop":
                want = "stopped"
                (acted if live else unchanged).append(name)
            elif action == "restart" or not live or prev is None or prev.want != "running":
                token, want = token + 1, "running"
                acted.append(name)
            else:
                want = "running"
                unchanged.append(name)
        specs.append(_spec(ctx.config, record, name, svc, want, token))
    generation = max(time.time_ns(), (old.generation + 1) if old is not None else 0)
    return _plan_of(ctx, record, generation, specs), acted, unchanged


def _spec(config: Config, record: WorktreeRecord, name: str, svc: ServiceConfig,
          want: str, token: int) -> ServiceSpec:
    from branchyard.api.runner import run_hook_argv

    port = record.ports.get(svc.port, 0) if svc.port else 0
    default = not config.services.define  # the `[hooks] run` service: like `run`
    flag = config.ports.inject_flag
    # the default service is `run`'s hook (with its port flag); a service of its own
    # is its command as written, so compound shell commands work
    argv = (run_hook_argv(svc.command, [flag, str(port)] if flag and port else []) if default
            else ["sh", "-c", svc.command])
    ready = svc.ready if svc.ready not in ("", "none") else ("tcp" if port and not svc.ready
                                                             else "")
    return ServiceSpec(name, tuple(argv), port, svc.port, ready, svc.restart,
                       svc.on_env_change or config.services.on_env_change, want, token)


def _plan_of(ctx: Context, record: WorktreeRecord, generation: int,
             specs: list[ServiceSpec]) -> Plan:
    cfg = ctx.config
    s = cfg.services
    files = [str(p) for p in main_env_files(Path(record.path), cfg.env.shared)
             if p.name != cfg.env.override_file]
    shared = [str(p) for p in main_env_files(ctx.repo.main_path, cfg.env.shared)
              if p.name != cfg.env.override_file]
    settings = Settings(s.env, s.backoff, s.backoff_max, s.max_restarts, s.stop_grace,
                        s.log_max_bytes, s.log_files)
    return Plan(record.path, record.branch, generation, settings, dict(record.env),
                tuple(files), _distinct([*files, *shared]), tuple(specs))


def _distinct(paths: list[str]) -> tuple[str, ...]:
    """One path per file: a worktree's shared env file is a symlink to main's."""
    return tuple({os.path.realpath(p): p for p in reversed(paths)}.values())[::-1]


def _wait_settled(path: str, names: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [s for s in list_services(path) if s.name in names]
        if all(s.state in SETTLED for s in states):
            return
        time.sleep(0.05)


def open_tmux(path: str) -> str:
    """Open the worktree's tmux session; a note for people."""
    from branchyard.services import tmux

    ctx = open_context(path)
    services = tuple(configured_services(ctx.config))
    session = tmux.open_session(path, services, ctx.config.agent.command)
    if not session.created:
        return f"tmux session {session.name} is already open: `branchyard attach`"
    return (f"tmux session {session.name} opened (windows: {', '.join(session.windows)}): "
            "`branchyard attach`")


def attach_tmux(name: str | None, cwd: Path | None = None) -> None:
    """Replace this process with tmux attached to the worktree's session (opened
    first when needed)."""
    from branchyard.services import tmux

    ctx = open_context(cwd)
    record = live_record_for(ctx, name) if name else _here(ctx)
    tmux.require_tmux()
    open_tmux(record.path)
    argv = tmux.attach_argv(record.path)
    os.execvp(argv[0], argv)  # noqa: S606 (tmux takes over the terminal)
