"""Talking to a worktree's supervisor: start it, make it re-read its plan, stop it.

The API writes ``plan.json`` and calls :func:`apply_plan`; `stop`, `down` and
`teardown` call :func:`shutdown` before they end the worktree's other processes,
so the supervisor never restarts a service they are stopping.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from branchyard.core.errors import ServiceError
from branchyard.services.state import (
    LIVE_STATES,
    Plan,
    SupervisorState,
    is_alive,
    read_state,
    service_dir,
    write_plan,
    write_state,
)
from branchyard.system.processes import ProcInfo

START_TIMEOUT = 10.0


def supervisor_alive(state: SupervisorState | None) -> bool:
    return state is not None and is_alive(state.pid, state.create_time)


def apply_plan(plan: Plan) -> SupervisorState:
    """Write the plan and have the supervisor apply it (starting one if none runs);
    returns its state once it has applied this plan."""
    directory = service_dir(plan.worktree)
    write_plan(directory, plan)
    state = read_state(directory)
    if supervisor_alive(state):
        assert state is not None
        os.kill(state.pid, signal.SIGUSR1)
    else:
        _launch(directory, plan.worktree)
    return _wait_applied(directory, plan.generation)


def _launch(directory: Path, worktree: str) -> None:
    """Start the supervisor detached; it forks twice, so this returns at once."""
    log = directory / "supervisor.log"
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as out:
        # the worktree as its directory: `stop` and `down` count it as the worktree's
        done = subprocess.run([sys.executable, "-m", "branchyard.services.supervisor",
                               str(directory)], cwd=worktree, stdin=subprocess.DEVNULL,
                              stdout=out, stderr=out, start_new_session=True, check=False,
                              timeout=START_TIMEOUT)
    if done.returncode != 0:
        raise ServiceError(f"the service supervisor did not start (exit {done.returncode})",
                           hint=f"see {log}")


def _poll(directory: Path, ready: Callable[[SupervisorState], bool],
          interval: float) -> SupervisorState | None:
    """The supervisor's state once ``ready`` holds, within START_TIMEOUT; else None."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        state = read_state(directory)
        if state is not None and ready(state):
            return state
        time.sleep(interval)
    return None


def _wait_applied(directory: Path, generation: int) -> SupervisorState:
    applied = _poll(directory, lambda s: s.generation >= generation and bool(s.pid), 0.02)
    if applied is not None:
        return applied
    state = read_state(directory)
    if state is not None and supervisor_alive(state):  # one that was starting: tell it
        os.kill(state.pid, signal.SIGUSR1)
        return _retry(directory, generation)
    raise ServiceError(f"the service supervisor did not answer within {START_TIMEOUT:g} s",
                       hint=f"see {directory / 'supervisor.log'}")


def _retry(directory: Path, generation: int) -> SupervisorState:
    applied = _poll(directory, lambda s: s.generation >= generation, 0.05)
    if applied is not None:
        return applied
    raise ServiceError("the service supervisor runs but did not apply the new plan",
                       hint=f"see {directory / 'supervisor.log'}")


def shutdown(worktree: str | Path, grace: float = 5.0) -> tuple[ProcInfo, ...]:
    """Stop the worktree's supervisor and its services (a supervisor that is gone
    leaves its services: their recorded process groups are ended). Returns what
    was running."""
    directory = service_dir(worktree)
    state = read_state(directory)
    if state is None:
        return ()
    ended = [ProcInfo(rec.pid, name, f"service {name}", str(worktree))
             for name, rec in state.services.items() if rec.pid and
             is_alive(rec.pid, rec.create_time)]
    if supervisor_alive(state):
        ended.insert(0, ProcInfo(state.pid, "supervisor", "branchyard service supervisor",
                                 str(worktree)))
        os.kill(state.pid, signal.SIGTERM)
        _wait_gone(state.pid, state.create_time, grace + 5.0)
    else:
        _end_orphans(directory, state, grace)
    return tuple(ended)


def _wait_gone(pid: int, create_time: float, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and is_alive(pid, create_time):
        time.sleep(0.02)
    if is_alive(pid, create_time):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _end_orphans(directory: Path, state: SupervisorState, grace: float) -> None:
    """The services a killed supervisor left: TERM their groups, then KILL."""
    live = [rec for rec in state.services.values()
            if rec.pid and is_alive(rec.pid, rec.create_time)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for rec in live:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(rec.pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(is_alive(r.pid, r.create_time)
                                                  for r in live):
            time.sleep(0.02)
    for rec in state.services.values():
        if rec.state in LIVE_STATES:
            rec.state, rec.pid, rec.ready = "stopped", 0, False
    if not state.ended:
        state.ended = time.time()
    write_state(directory, state)


def forget(worktree: str | Path) -> None:
    """Remove the worktree's service directory (plan, state, logs): teardown."""
    shutil.rmtree(service_dir(worktree), ignore_errors=True)


def release(worktree: str | Path) -> None:
    """Teardown: stop the services, close the tmux session, remove their files."""
    from branchyard.services.tmux import kill_session

    shutdown(worktree)
    kill_session(worktree)
    forget(worktree)
