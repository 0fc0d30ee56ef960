"""The services' CLI: whole outputs and JSON, on a real worktree and processes."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest

from branchyard import api
from branchyard.cli.main import main
from branchyard.proxy.backends import Backend
from branchyard.proxy.pages import bad_gateway
from tests.services.conftest import Yard, http_get, make_yard


def run_cli(capsys: pytest.CaptureFixture[str], cwd: Path, *argv: str) -> tuple[int, str, str]:
    os.chdir(cwd)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, "".join(line for line in err.splitlines(keepends=True)
                              if not line.startswith("[") and not line.startswith("{"))


def test_start_status_ls_logs_json(yard: Yard, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, yard.worktree, "start", "--wait", "15", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] and doc["acted"] == ["web"] and doc["branch"] == yard.branch
    (web,) = doc["services"]
    assert (web["name"], web["state"], web["port"], web["ready"]) == (
        "web", "ready", yard.port(), True)
    assert set(web) == {"name", "state", "pid", "port", "ready", "exit_code", "exit_signal",
                        "restarts", "started_at", "uptime", "log_path", "env_changed_at",
                        "env_action"}

    code, out, _ = run_cli(capsys, yard.main, "ls", "--json")
    views = {v["branch"]: v for v in json.loads(out)["worktrees"]}
    assert [s["state"] for s in views[yard.branch]["services"]] == ["ready"]
    assert views["main"]["services"] == []
    code, out, _ = run_cli(capsys, yard.main, "ls")
    assert re.search(rf"^{re.escape(yard.branch)} .* web:ready ", out, re.MULTILINE)

    code, out, _ = run_cli(capsys, yard.worktree, "status")
    row = next(line for line in out.splitlines() if line.startswith("services"))
    assert re.fullmatch(rf"services    web  ready  port {yard.port()}  pid \d+  up \d+s", row)

    code, out, _ = run_cli(capsys, yard.main, "logs", yard.branch, "web", "--json", "-n", "3")
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 3
    assert all(set(r) == {"time", "service", "stream", "text"} for r in records)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["time"])
               for r in records)
    assert records[-1]["stream"] == "supervisor" and records[-1]["text"].startswith("ready")

    code, out, _ = run_cli(capsys, yard.worktree, "logs")
    assert f"web   listening on {yard.port()} env=None file=SECRET=one" in out.splitlines()
    assert "web ! a line on stderr" in out.splitlines()

    code, out, _ = run_cli(capsys, yard.worktree, "logs", "nope", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["errors"][0]["message"] == "no worktree for 'nope'"


def test_up_start_then_logs_follow_sees_new_lines(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    yard = make_yard(repo, branch="main-only")  # commits the config on main
    api.down(api.DownRequest(yard.branch, force=True, cwd=repo))
    path = str(repo)
    try:
        code, out, _ = run_cli(capsys, repo, "up", "feat/started", "--start", "--json")
        assert code == 0, out
        doc = json.loads(out)
        path = doc["worktree"]["path"]
        assert doc["services"]["acted"] == ["web"]
        port = doc["worktree"]["ports"]["PORT"]
        started = Yard(repo, Path(path), "feat/started")
        started.wait_for(lambda: started.service().state == "ready", what="ready")
        follow = subprocess.Popen([sys.executable, "-m", "branchyard", "logs", "feat/started",
                                   "web", "-f", "--json"], cwd=repo,
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert follow.stdout is not None
            lines = line_queue(follow.stdout)
            first = read_json_line(lines)  # the last lines come first
            assert first["text"].startswith("started (pid ")
            while not read_json_line(lines)["text"].startswith("ready after"):
                pass
            assert http_get(port) == "hello from the service"  # a new line, followed
            line = read_json_line(lines)
            assert (line["service"], line["stream"], line["text"]) == ("web", "out",
                                                                       "request /")
        finally:
            follow.terminate()
            follow.wait(10)
        code, out, _ = run_cli(capsys, repo, "down", "feat/started", "--json")
        assert code == 0
        assert not Path(path).exists()
        assert not started.services()  # its service directory went with it
    finally:
        if Path(path).exists():
            api.stop_worktree(path)


def read_json_line(lines: queue.Queue[str], timeout: float = 15.0) -> dict[str, str]:
    return json.loads(lines.get(timeout=timeout))  # type: ignore[no-any-return]


def line_queue(stream: IO[str]) -> queue.Queue[str]:
    """The lines of ``stream`` as they come, read by a thread (no blocking read)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def test_502_page_shows_how_the_service_ended_and_its_last_lines(
        yard_factory: Callable[..., Yard]) -> None:
    from branchyard.api.services import ServicesRequest, start_services

    yard = yard_factory('max_restarts = 0\n[services.web]\ncommand = "echo '
                        "'cannot find module next'; exit 7\"\nport = \"PORT\"\n")
    start_services(ServicesRequest((), wait=15, cwd=yard.worktree))
    page = bad_gateway(Backend("feat-svc.svc.localhost", yard.port(), "slug", yard.branch,
                               str(yard.worktree)), "connection refused").decode()
    assert "Service <b>web</b> is <b>crashed</b>, exited with code 7" in page
    assert "out cannot find module next" in page
    assert f"branchyard restart {yard.branch} web" in page


def test_start_without_any_service_says_what_to_configure(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    api.up(api.UpRequest("feat/none", cwd=repo))
    code, _, err = run_cli(capsys, repo, "start", "feat/none")
    assert code == 2
    assert err.startswith("error: no services to start: `[hooks] run` is not set")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_start_tmux_opens_a_session_that_teardown_ends(
        yard_factory: Callable[..., Yard], capsys: pytest.CaptureFixture[str]) -> None:
    from branchyard.services.tmux import has_session, kill_session, session_name

    yard = yard_factory('[agent]\ncommand = "sleep 600"\n')
    try:
        code, out, _ = run_cli(capsys, yard.worktree, "start", "--tmux")
        assert code == 0
        assert f"note: tmux session {session_name(yard.worktree)} opened (windows: web, " \
               "agent): `branchyard attach`" in out
        windows = subprocess.run(["tmux", "list-windows", "-t", session_name(yard.worktree),
                                  "-F", "#{window_name}"], capture_output=True, text=True,
                                 check=True).stdout.split()
        assert windows == ["web", "agent"]
        api.teardown(yard.worktree)
        assert not has_session(yard.worktree)
    finally:
        kill_session(yard.worktree)


def test_attach_without_tmux_says_so(yard: Yard, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"  # a PATH with a shell and git, and no tmux
    bin_dir.mkdir()
    for tool in ("sh", "git"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or tool)
    monkeypatch.setenv("PATH", str(bin_dir))
    code, _, err = run_cli(capsys, yard.worktree, "attach")
    assert code == 1
    assert err.splitlines()[0] == "error: tmux is not installed, so there is no session to open"
    code, out, _ = run_cli(capsys, yard.worktree, "start", "--tmux", "--wait", "15")
    assert code == 0  # the services run; the missing tmux is a note
    assert "note: tmux is not installed: no session opened (`branchyard logs -f` follows " \
           "them)" in out.splitlines()
    assert yard.service().state == "ready"
