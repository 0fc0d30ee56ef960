"""`branchyard proxy start|stop|status` with a real detached daemon."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from proxykit import App, add_worktree, listen_port, request, wait_for

from branchyard.cli.main import main
from branchyard.config.model import ProxyConfig
from branchyard.proxy.bind import bind_error
from branchyard.proxy.daemon import (
    ensure_proxy,
    proxy_dir,
    proxy_problems,
    proxy_status,
    stop_proxy,
)
from branchyard.proxy.pool import MAX_IDLE_PER_PORT


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def in_repo(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(repo)
    yield repo
    stop_proxy()  # whatever a test left running


def test_start_twice_reports_the_running_one_then_stop(
        in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = listen_port()
    code, doc = _cli(capsys, "proxy", "start", "--port", str(port))
    assert code == 0
    first = doc["proxy"]
    assert isinstance(first, dict)
    assert (first["state"], first["port"], doc["already_running"]) == ("running", port, False)
    assert psutil.Process(first["pid"]).is_running()
    # outside every worktree, so stopping a worktree's processes never takes it along
    assert psutil.Process(first["pid"]).cwd() == str(proxy_dir())

    code, doc = _cli(capsys, "proxy", "start", "--port", str(port))
    assert (code, doc["already_running"]) == (0, True)
    assert doc["proxy"]["pid"] == first["pid"]  # type: ignore[index]

    code, doc = _cli(capsys, "proxy", "status")
    assert (code, doc["proxy"]["state"]) == (0, "running")  # type: ignore[index]

    code, doc = _cli(capsys, "proxy", "stop")
    assert (code, doc["stopped"]) == (0, True)
    assert not psutil.pid_exists(first["pid"]) or \
        psutil.Process(first["pid"]).status() == psutil.STATUS_ZOMBIE
    assert proxy_status().state == "stopped"


def test_status_detects_a_crashed_proxy_and_start_recovers(
        in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = listen_port()
    _, doc = _cli(capsys, "proxy", "start", "--port", str(port))
    pid = doc["proxy"]["pid"]  # type: ignore[index]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: proxy_status().state == "crashed", what="crash detection")

    code, doc = _cli(capsys, "proxy", "status")
    assert code == 1
    assert doc["proxy"]["state"] == "crashed"  # type: ignore[index]
    assert doc["errors"][0]["code"] == "proxy"  # type: ignore[index]

    code, doc = _cli(capsys, "proxy", "start", "--port", str(port))
    assert code == 0, doc
    assert doc["proxy"]["pid"] != pid  # type: ignore[index]


def test_port_in_use_names_the_process_holding_it(
        in_repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        code, doc = _cli(capsys, "proxy", "start", "--port", str(port))
    assert code == 1
    error = doc["errors"][0]  # type: ignore[index]
    assert f"port {port} is already in use by pid {os.getpid()}" in error["message"]
    assert "[proxy] port" in error["hint"]
    assert proxy_status().state == "stopped"


def test_thousand_idle_keep_alive_connections_stay_cheap(
        in_repo: Path, common_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    app = App("a")
    try:
        add_worktree(common_dir, "feat/a", {"PORT": app.port})
        port = listen_port()
        _, doc = _cli(capsys, "proxy", "start", "--port", str(port))
        daemon = psutil.Process(doc["proxy"]["pid"])  # type: ignore[index]
        assert request(port, "feat-a.app.localhost")[0] == 200
        before = daemon.memory_info().rss
        conns = []
        try:
            for _ in range(1000):
                sock = socket.create_connection(("127.0.0.1", port), timeout=10)
                conns.append(sock)
                assert request(port, "feat-a.app.localhost", sock=sock)[0] == 200
            grown = daemon.memory_info().rss - before
            open_conns = daemon.net_connections()
            assert len(open_conns) >= 1000
            assert grown < 40 << 20, f"proxy grew by {grown >> 20} MiB for 1000 idle clients"
            print(f"RSS growth for 1000 idle connections: {grown / 1e6:.1f} MB")
            # idle clients hold no app connection: only the small idle pool stays open
            to_app = [c for c in open_conns if c.raddr and c.raddr.port == app.port]
            assert 1 <= len(to_app) <= MAX_IDLE_PER_PORT
            assert request(port, "feat-a.app.localhost")[0] == 200
        finally:
            for sock in conns:
                sock.close()
    finally:
        app.stop()


def test_auto_start_and_doctor_problems(in_repo: Path) -> None:
    port = listen_port()
    assert ensure_proxy(ProxyConfig(port=port)) is None  # auto_start off: nothing happens
    assert proxy_status().state == "stopped"
    assert proxy_problems(ProxyConfig(port=port)) == []
    assert proxy_problems(ProxyConfig(port=port, auto_start=True)) == [
        "the proxy is not running; `branchyard proxy start` starts it"]

    started = ensure_proxy(ProxyConfig(port=port, auto_start=True))
    assert started is not None
    assert (started.state, started.port) == ("running", port)
    again = ensure_proxy(ProxyConfig(port=port, auto_start=True))
    assert again is not None
    assert (again.pid, again.already_running) == (started.pid, True)
    assert proxy_problems(ProxyConfig(port=port)) == []
    assert proxy_problems(ProxyConfig(port=port + 1, https=True)) == [
        f"the proxy listens on port {port} but [proxy] port is {port + 1}; dev URLs will "
        "not answer until it is restarted",
        "the proxy serves HTTP but [proxy] https is true; restart it"]

    os.kill(started.pid, signal.SIGKILL)
    wait_for(lambda: proxy_status().state == "crashed", what="crash detection")
    [problem] = proxy_problems(ProxyConfig(port=port))
    assert problem.startswith(f"the proxy crashed (pid {started.pid} is gone")


def test_low_port_without_privileges_explains_what_to_do() -> None:
    err = bind_error(443, PermissionError(errno.EACCES, "Permission denied"))
    assert str(err) == "binding port 443 needs privileges this user does not have"
    assert "keep the default port 1355" in err.hint
    assert "ip_unprivileged_port_start" in err.hint
