"""The proxy as a detached daemon: started, stopped, and its state read from its pid file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from branchyard.config.model import ProxyConfig
from branchyard.core import statefile
from branchyard.core.errors import ProxyError
from branchyard.core.paths import state_dir
from branchyard.proxy.bind import check_port_free

START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0
PORT_RELEASE_TIMEOUT = 3.0


@dataclass(frozen=True)
class ProxySettings:
    port: int = 1355
    https: bool = False
    host: str = "127.0.0.1"  # never anything but loopback


@dataclass(frozen=True)
class ProxyStatus:
    state: str  # running | stopped | crashed
    pid: int = 0
    port: int = 0
    https: bool = False
    started: float = 0.0
    log: str = ""
    already_running: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"state": self.state, "pid": self.pid, "port": self.port,
                "https": self.https, "started": self.started, "log": self.log}


def proxy_dir() -> Path:
    return state_dir() / "proxy"


def pid_file() -> Path:
    return proxy_dir() / "proxy.pid"


def log_file() -> Path:
    return proxy_dir() / "proxy.log"


def proxy_status() -> ProxyStatus:
    """Running, stopped, or crashed (a pid file whose process is gone)."""
    info = _read_pid_file()
    if info is None:
        return ProxyStatus("stopped", log=str(log_file()))
    from branchyard.system.processes import is_recorded

    alive = is_recorded(int(info.get("pid", 0)), float(info.get("create_time", 0.0)))
    return ProxyStatus("running" if alive else "crashed", pid=int(info.get("pid", 0)),
                       port=int(info.get("port", 0)), https=bool(info.get("https")),
                       started=float(info.get("started", 0.0)), log=str(log_file()))


def settings_for(cfg: ProxyConfig) -> ProxySettings:
    return ProxySettings(port=cfg.port, https=cfg.https)


def ensure_proxy(cfg: ProxyConfig) -> ProxyStatus | None:
    """For `up`/`setup`: start the proxy if ``[proxy] auto_start`` asks and it is not
    running (None when auto_start is off)."""
    return start_proxy(settings_for(cfg)) if cfg.auto_start else None


def url_note(cfg: ProxyConfig) -> str:
    """Why a dev URL will not answer now ("" when the proxy serves it)."""
    status = proxy_status()
    if status.state != "running":
        state = "down (crashed)" if status.state == "crashed" else "not running"
        return (f"the proxy is {state}, so the dev URL will not answer; `branchyard proxy "
                "start` starts it (or set [proxy] auto_start = true)")
    if status.port != cfg.port:
        return (f"the proxy runs on port {status.port}, not on [proxy] port {cfg.port}; "
                "restart it (`branchyard proxy stop && branchyard proxy start`) so the dev "
                "URL answers")
    return ""


def proxy_problems(cfg: ProxyConfig) -> list[str]:
    """For `doctor`: what is wrong with the proxy as this project configures it."""
    status = proxy_status()
    if status.state == "crashed":
        return [f"the proxy crashed (pid {status.pid} is gone; log: {status.log}); "
                "`branchyard proxy start` restarts it"]
    if status.state == "stopped":
        return ["the proxy is not running; `branchyard proxy start` starts it"] \
            if cfg.auto_start else []
    problems = []
    if status.port != cfg.port:
        problems.append(f"the proxy listens on port {status.port} but [proxy] port is "
                        f"{cfg.port}; dev URLs will not answer until it is restarted")
    if status.https != cfg.https:
        problems.append(f"the proxy serves {'HTTPS' if status.https else 'HTTP'} but "
                        f"[proxy] https is {str(cfg.https).lower()}; restart it")
    return problems


def start_proxy(settings: ProxySettings) -> ProxyStatus:
    """Start the daemon unless one runs already (then report that one)."""
    current = proxy_status()
    if current.state == "running":
        return replace(current, already_running=True)
    if current.state == "crashed":
        pid_file().unlink(missing_ok=True)
        _wait_port_released(settings)
    check_port_free(settings.host, settings.port)
    statefile.private_dir(proxy_dir())
    argv = [sys.executable, "-m", "branchyard", "proxy", "run", "--port", str(settings.port)]
    argv += ["--https"] if settings.https else ["--no-https"]
    with log_file().open("ab") as log:
        # cwd outside every worktree, so `branchyard stop`/`down` never take it along
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                 start_new_session=True, close_fds=True, cwd=proxy_dir())
    return _wait_started(child, settings)


def _wait_started(child: subprocess.Popen[bytes], settings: ProxySettings) -> ProxyStatus:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        status = proxy_status()
        if status.state == "running" and status.pid == child.pid and _accepts(settings):
            return status
        if child.poll() is not None:
            raise ProxyError(f"the proxy exited at start with code {child.returncode}:\n"
                             f"{_log_tail()}", hint=f"see {log_file()}")
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(child.pid, signal.SIGTERM)
    raise ProxyError(f"the proxy did not start within {START_TIMEOUT:g} s",
                     hint=f"see {log_file()}")


def _wait_port_released(settings: ProxySettings) -> None:
    """A crashed proxy's socket can outlive it briefly (the kernel closes it after
    the process is gone, e.g. behind io_uring); give it a moment."""
    deadline = time.monotonic() + PORT_RELEASE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            check_port_free(settings.host, settings.port)
            return
        except ProxyError:
            time.sleep(0.05)


def stop_proxy() -> ProxyStatus:
    """Stop the daemon (TERM, then KILL); a stale pid file is removed."""
    status = proxy_status()
    if status.state == "running":
        _terminate(status.pid)
    pid_file().unlink(missing_ok=True)
    return status


def _terminate(pid: int) -> None:
    import psutil

    try:
        proc = psutil.Process(pid)
        proc.terminate()
        proc.wait(STOP_TIMEOUT)
    except psutil.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)
    except psutil.NoSuchProcess:
        pass


def write_pid_file(port: int, https: bool) -> None:
    import psutil

    statefile.private_dir(proxy_dir())
    info = {"pid": os.getpid(), "port": port, "https": https, "started": time.time(),
            "create_time": psutil.Process().create_time()}
    statefile.write_json(pid_file(), info, version=1)


def remove_own_pid_file() -> None:
    info = _read_pid_file()
    if info is not None and info.get("pid") == os.getpid():
        pid_file().unlink(missing_ok=True)


def _read_pid_file() -> dict[str, Any] | None:
    try:
        data = json.loads(pid_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _accepts(settings: ProxySettings) -> bool:
    try:
        with socket.create_connection((settings.host, settings.port), timeout=0.5):
            return True
    except OSError:
        return False


def _log_tail() -> str:
    try:
        return "\n".join(log_file().read_text(errors="replace").splitlines()[-15:])
    except OSError:
        return ""
