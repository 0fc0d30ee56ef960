"""Supervised services: real processes, real restarts, real logs."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from branchyard.api.services import ServicesRequest, restart_services, start_services
from branchyard.services.state import is_alive, read_state, service_dir
from branchyard.services.status import last_lines, supervisor_of
from tests.services.conftest import Yard, http_get


def start(yard: Yard, *words: str, wait: float = 15.0) -> None:
    start_services(ServicesRequest(words, wait=wait, cwd=yard.worktree))


def test_start_runs_the_service_ready_with_the_derived_env_only(yard: Yard) -> None:
    start(yard)
    svc = yard.service()
    assert svc.state == "ready"
    assert svc.port == yard.port()
    assert svc.ready and svc.pid and svc.exit_code is None and svc.restarts == 0
    assert http_get(yard.port()) == "hello from the service"
    texts = [(line.stream, line.text) for line in last_lines(yard.worktree, "web")]
    # the shared secret is not in the process environment: the app reads the file
    assert ("out", f"listening on {yard.port()} env=None file=SECRET=one") in texts
    assert ("err", "a line on stderr") in texts
    assert any(s == "supervisor" and t.startswith("ready after") for s, t in texts)
    proc = psutil.Process(svc.pid)
    assert os.path.realpath(proc.cwd()) == os.path.realpath(yard.worktree)
    for name in ("state.json", "plan.json", "supervisor.log", "logs/web.log"):
        mode = os.stat(service_dir(yard.worktree) / name).st_mode & 0o777
        assert oct(mode) == "0o600", name  # the plan holds database URLs, logs secrets


def test_start_twice_leaves_the_running_service_alone(yard: Yard) -> None:
    start(yard)
    first = yard.service().pid
    result = start_services(ServicesRequest((), cwd=yard.worktree))
    assert result.acted == () and result.unchanged == ("web",)
    assert yard.service().pid == first


def test_restart_gives_a_new_process(yard: Yard) -> None:
    start(yard)
    first = yard.service().pid
    restart_services(ServicesRequest((), wait=15, cwd=yard.worktree))
    svc = yard.service()
    assert svc.state == "ready" and svc.pid != first and svc.restarts == 1
    assert not psutil.pid_exists(first or 0) or psutil.Process(first).status() == "zombie"


def test_a_crashing_service_restarts_with_backoff_then_stays_crashed(
        yard_factory: Callable[..., Yard]) -> None:
    yard = yard_factory('max_restarts = 3\n[services.boom]\ncommand = "echo boom; exit 3"\n')
    start(yard)
    yard.wait_for(lambda: yard.service("boom").state == "crashed", what="crashed")
    svc = yard.service("boom")
    assert (svc.exit_code, svc.restarts, svc.exit_text) == (3, 3, "exited with code 3")
    lines = last_lines(yard.worktree, "boom")
    notes = [line.text for line in lines if line.stream == "supervisor"]
    restarts = [n for n in notes if "restarting in" in n]
    assert restarts == ["exited with code 3; restarting in 0.05 s (attempt 1 of 3)",
                        "exited with code 3; restarting in 0.1 s (attempt 2 of 3)",
                        "exited with code 3; restarting in 0.2 s (attempt 3 of 3)"]
    assert notes[-1].startswith("exited with code 3; not restarted after 3 attempt(s)")
    starts = [line.time for line in lines if line.text.startswith("started")]
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) == 4
    assert all(gap >= wait for gap, wait in zip(gaps, (0.05, 0.1, 0.2), strict=True))
    assert [line.text for line in lines if line.stream == "out"] == ["boom"] * 4
    assert supervisor_of(yard.worktree).ended  # type: ignore[union-attr]


def test_logs_rotate_at_the_size_limit(yard_factory: Callable[..., Yard]) -> None:
    script = "import sys\\nfor i in range(3000): print(f'line {i:05d} ' + 'x' * 40)"
    yard = yard_factory('log_max_bytes = 8192\nlog_files = 3\n[services.chatty]\n'
                        f'command = "{sys.executable} -c \\"{script}\\""\nrestart = "no"\n')
    start(yard)
    yard.wait_for(lambda: yard.service("chatty").state == "exited", what="exited")
    logs = service_dir(yard.worktree) / "logs"
    assert sorted(p.name for p in logs.iterdir()) == ["chatty.log", "chatty.log.1",
                                                      "chatty.log.2"]
    assert all(p.stat().st_size <= 8192 for p in logs.iterdir())
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in logs.iterdir())
    out = [line.text for line in last_lines(yard.worktree, "chatty", n=10_000)
           if line.stream == "out"]
    assert out[-1].startswith("line 02999 ")
    numbers = [int(t.split()[1]) for t in out]
    assert numbers == list(range(numbers[0], 3000))  # the newest lines, none lost inside
    assert 200 < len(numbers) < 3000


def test_supervision_survives_the_shell_that_started_it(yard: Yard) -> None:
    shell = subprocess.run(
        ["sh", "-c", f"{sys.executable} -m branchyard start --wait 15 >/dev/null 2>&1 &"],
        cwd=yard.worktree, check=True, timeout=30)
    assert shell.returncode == 0  # the shell is gone at once; its child went on
    yard.wait_for(lambda: yard.service().state == "ready", what="ready")
    info = supervisor_of(yard.worktree)
    assert info is not None and info.alive
    assert os.getsid(info.pid) != os.getsid(0)  # its own session: no terminal hang-up
    assert psutil.Process(info.pid).ppid() != os.getpid()
    assert http_get(yard.port()) == "hello from the service"


def test_stop_ends_the_supervisor_and_its_services(yard: Yard) -> None:
    from branchyard import api

    start(yard)
    sup, web = supervisor_of(yard.worktree), yard.service().pid
    assert sup is not None and web
    sup_create = psutil.Process(sup.pid).create_time()
    web_create = psutil.Process(web).create_time()
    result = api.stop_worktree(yard.worktree, grace=1.0)
    assert {sup.pid, web} <= {p.pid for p in result.stopped}
    assert not is_alive(sup.pid, sup_create) and not is_alive(web, web_create)
    assert yard.service().state == "stopped"
    notes = [line.text for line in last_lines(yard.worktree, "web")]
    assert "stopped: the supervisor was asked to stop" in notes


def test_doctor_notices_a_killed_supervisor_and_fix_restarts_it(yard: Yard) -> None:
    from branchyard.api.doctor import DoctorRequest, doctor

    start(yard)
    info = supervisor_of(yard.worktree)
    assert info is not None
    old_web = yard.service().pid
    os.kill(info.pid, signal.SIGKILL)
    yard.wait_for(lambda: not psutil.pid_exists(info.pid) or
                  psutil.Process(info.pid).status() == "zombie", what="supervisor gone")
    assert yard.service().state == "lost"
    report = doctor(DoctorRequest(start=yard.main))
    found = [f for f in report.findings if f.kind == "supervisor_crashed"]
    assert len(found) == 1 and found[0].fix and str(yard.worktree) in found[0].subject
    fixed = doctor(DoctorRequest(start=yard.main, fix=True))
    assert fixed.healthy
    yard.wait_for(lambda: yard.service().state == "ready", what="ready again")
    new = supervisor_of(yard.worktree)
    assert new is not None and new.alive and new.pid != info.pid
    assert yard.service().pid != old_web
    assert http_get(yard.port()) == "hello from the service"
    assert not [f for f in doctor(DoctorRequest(start=yard.main)).findings
                if f.kind == "supervisor_crashed"]


def test_a_secret_rotated_in_main_restarts_the_service(yard: Yard) -> None:
    start(yard)
    first = yard.service().pid
    time.sleep(0.05)  # a new mtime even on coarse-grained file systems
    (yard.main / ".env.local").write_text("SECRET=two\n")
    yard.wait_for(lambda: yard.service().pid not in (None, first)
                  and yard.service().state == "ready", what="restarted")
    svc = yard.service()
    assert svc.env_action == "restarted" and svc.env_changed_at
    texts = [line.text for line in last_lines(yard.worktree, "web")]
    assert "env file changed (.env.local): restarting" in texts
    assert f"listening on {yard.port()} env=None file=SECRET=two" in texts


def test_on_env_change_signal_sends_it_without_a_restart(
        yard_factory: Callable[..., Yard]) -> None:
    trap = "trap 'echo got HUP' HUP; while true; do sleep 0.05; done"
    yard = yard_factory(f'[services.worker]\ncommand = "{trap}"\n'
                        'on_env_change = "signal:HUP"\n')
    start(yard)
    pid = yard.service("worker").pid
    time.sleep(0.05)
    (yard.main / ".env.local").write_text("SECRET=three\n")
    yard.wait_for(lambda: any(line.text == "got HUP"
                              for line in last_lines(yard.worktree, "worker")), what="HUP")
    assert yard.service("worker").pid == pid
    assert yard.service("worker").env_action == "sent SIGHUP"


def test_env_all_passes_every_value(yard_factory: Callable[..., Yard]) -> None:
    yard = yard_factory('env = "all"\n')
    (yard.main / "branchyard.toml").read_text()
    start(yard)
    texts = [line.text for line in last_lines(yard.worktree, "web")]
    assert f"listening on {yard.port()} env=one file=SECRET=one" in texts


def test_state_file_is_the_read_api(yard: Yard) -> None:
    start(yard)
    state = read_state(service_dir(yard.worktree))
    assert state is not None and state.services["web"].state == "ready"
    data = json.loads((service_dir(yard.worktree) / "state.json").read_text())
    assert data["schema"] == 1 and data["services"]["web"]["port"] == yard.port()
    assert isinstance(Path(yard.service().log_path), Path)
