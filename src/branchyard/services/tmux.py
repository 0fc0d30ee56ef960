"""The optional tmux session of a worktree: a window per service (following its
log) and one for the agent command. Without tmux, every call says so clearly."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.errors import ServiceError
from branchyard.core.paths import state_dir
from branchyard.services.state import service_dir

TIMEOUT = 10.0


@dataclass(frozen=True)
class TmuxSession:
    name: str
    created: bool
    windows: tuple[str, ...]


def session_name(worktree: str | Path) -> str:
    """tmux forbids ``.`` and ``:`` in session names."""
    return "by-" + re.sub(r"[^A-Za-z0-9_-]", "_", service_dir(worktree).name)


def require_tmux() -> str:
    found = shutil.which("tmux")
    if found is None:
        raise ServiceError("tmux is not installed, so there is no session to open",
                           hint="install tmux (apt install tmux / brew install tmux), or "
                                "follow the services with `branchyard logs -f`")
    return found


def _tmux(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # run from the state dir: a tmux server this starts must not have its cwd in the
    # worktree, or `branchyard stop` would end every session of the user
    cwd = state_dir()
    cwd.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([require_tmux(), *args], capture_output=True, text=True,
                          timeout=TIMEOUT, check=False, cwd=cwd, stdin=subprocess.DEVNULL)
    if check and done.returncode != 0:
        raise ServiceError(f"tmux {args[0]} failed: {done.stderr.strip()}")
    return done


def has_session(worktree: str | Path) -> bool:
    if shutil.which("tmux") is None:
        return False
    return _tmux("has-session", "-t", f"={session_name(worktree)}", check=False).returncode == 0


def open_session(worktree: str, services: tuple[str, ...], agent: str) -> TmuxSession:
    """Create the session (detached) unless it exists."""
    name = session_name(worktree)
    if has_session(worktree):
        return TmuxSession(name, False, ())
    logs = [sys.executable, "-m", "branchyard", "logs", worktree]
    windows = [(svc, shlex.join([*logs, svc, "-f"])) for svc in services]
    if agent:
        windows.append(("agent", agent))
    if not windows:
        windows.append(("shell", os.environ.get("SHELL", "sh")))
    first, *rest = windows
    _tmux("new-session", "-d", "-s", name, "-c", worktree, "-n", first[0], first[1])
    for title, command in rest:
        _tmux("new-window", "-t", f"={name}:", "-c", worktree, "-n", title, command)
    return TmuxSession(name, True, tuple(w[0] for w in windows))


def attach_argv(worktree: str) -> list[str]:
    """The command that enters the session (switch-client inside tmux)."""
    verb = "switch-client" if os.environ.get("TMUX") else "attach-session"
    return [require_tmux(), verb, "-t", f"={session_name(worktree)}"]


def kill_session(worktree: str | Path) -> bool:
    """End the worktree's session, if tmux and the session exist."""
    if not has_session(worktree):
        return False
    _tmux("kill-session", "-t", f"={session_name(worktree)}", check=False)
    return True
