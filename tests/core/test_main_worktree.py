"""The main worktree is a worktree like the others: env, run, status, url, a port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from branchyard.cli.main import main
from branchyard.ledger import Ledger
from branchyard.system import ports as portlib
from tests.conftest import commit_config, run_cli


@pytest.fixture
def app(repo: Path) -> Path:
    commit_config(repo, '[project]\nname = "shop"\n[ports]\nnames = ["PORT"]\n'
                        '[env.vars]\nAPP_URL = "{url}/app"\n'
                        '[hooks]\nrun = "echo run-hook $PORT > hook.txt"\n')
    (repo / ".env").write_text("SECRET=s3cret\n")
    return repo


def _main_leases(repo: Path) -> list[int]:
    owner = portlib.owner_key((repo / ".git").resolve(), "@main")
    return [lease.port for lease in portlib.all_leases() if lease.owner == owner]


def test_env_in_main_is_its_env_files_and_derived_vars(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, app, "env", "--json")
    assert code == 0, err
    env = json.loads(out)["env"]
    [port] = _main_leases(app)
    assert env["SECRET"] == "s3cret"
    assert env["PORT"] == str(port)
    assert env["BRANCHYARD_URL"] == "http://shop.localhost:1355"
    assert env["APP_URL"] == "http://shop.localhost:1355/app"
    assert env["BRANCHYARD_LOCAL_URL"] == f"http://127.0.0.1:{port}"
    assert env["BRANCHYARD_BRANCH"] == "main"
    assert "COMPOSE_PROJECT_NAME" not in env  # main keeps its own compose project
    assert 41000 <= port <= 48999  # [ports] range
    # stable: a second call gets the same lease
    code, out, _ = run_cli(capsys, app, "env", "--json")
    assert json.loads(out)["env"]["PORT"] == str(port)
    assert _main_leases(app) == [port]


def test_the_port_mains_env_file_sets_wins_and_leases_nothing(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app / ".env.local").write_text("PORT=4321\n")
    code, out, _ = run_cli(capsys, app, "env", "--format", "shell")
    assert code == 0
    assert "export PORT=4321\n" in out
    assert _main_leases(app) == []
    code, out, _ = run_cli(capsys, app, "url", "--json")
    assert code == 0
    assert json.loads(out)["port"] == 4321


def test_run_in_main_uses_its_env_and_the_run_hook(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, app, "run", "--", "sh", "-c",
                           'echo "$PORT $APP_URL $SECRET" > out.txt; exit 3')
    assert code == 3, err
    [port] = _main_leases(app)
    assert (app / "out.txt").read_text() == f"{port} http://shop.localhost:1355/app s3cret\n"
    code, _, err = run_cli(capsys, app, "run")
    assert code == 0, err
    assert (app / "hook.txt").read_text() == f"run-hook {port}\n"


def test_a_run_in_main_is_recorded_and_stop_main_ends_it(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = Path(__file__).resolve().parents[2] / "src"
    child = subprocess.Popen(
        [sys.executable, "-m", "branchyard", "run", "--", "sh", "-c", "cd /; exec sleep 60"],
        cwd=app, env={**os.environ, "PYTHONPATH": str(src)})
    try:
        deadline = time.monotonic() + 20
        recorded: list[int] = []
        while time.monotonic() < deadline and not recorded:
            section = Ledger(app / ".git").read().sections.get("main", {})
            recorded = [p["pid"] for p in section.get("processes", [])]
            time.sleep(0.05)
        assert recorded, "the run in main was never recorded"
        code, out, err = run_cli(capsys, app, "stop", "main", "--json")
        assert code == 0, err
        stopped = [p["pid"] for p in json.loads(out)["stopped"]]
        assert recorded[0] in stopped  # found by the record: its cwd is outside main
        child.wait(20)  # `branchyard run` ends with its command
        assert Ledger(app / ".git").read().sections.get("main", {}).get("processes") == []
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def test_mains_lease_survives_down_gc_and_doctor(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, app, "env")
    [port] = _main_leases(app)
    assert run_cli(capsys, app, "up", "feat/x")[0] == 0
    assert run_cli(capsys, app, "down", "feat/x")[0] == 0
    _, out, _ = run_cli(capsys, app, "doctor", "--json")
    findings = json.loads(out)["findings"]
    assert not [f for f in findings if f["kind"] == "orphan_lease"], findings
    run_cli(capsys, app, "gc")
    run_cli(capsys, app, "doctor", "--fix")
    assert _main_leases(app) == [port]


def test_ls_and_status_show_mains_port(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, app, "ls", "--json")
    assert code == 0
    main_view = json.loads(out)["worktrees"][0]
    [port] = _main_leases(app)
    assert (main_view["main"], main_view["ports"]) == (True, {"PORT": port})
    code, out, _ = run_cli(capsys, app, "status", "--json")
    assert code == 0
    assert json.loads(out)["worktree"]["ports"] == {"PORT": port}


def test_up_main_says_to_use_run_in_the_main_worktree(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, app, "up", "main")
    assert code == 1
    assert "main is checked out in the main worktree" in err
    assert f"cd {app} && branchyard run" in err


def test_setup_in_main_names_commands_that_work_there(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, app, "setup")
    assert code == 1
    assert "needs no setup" in err
    assert "`branchyard run`" in err and "`branchyard up BRANCH`" in err


def _serve(cwd: Path, port: int) -> subprocess.Popen[bytes]:
    """A dev server started by hand (not by `branchyard run`), listening on ``port``."""
    proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                             str(port)], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while portlib.is_free(port):
        assert time.monotonic() < deadline, "the test server never listened"
        time.sleep(0.02)
    return proc


def test_a_server_on_mains_port_is_named_in_ls_status_and_doctor(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, app, "up", "feat/x")[0] == 0
    record = next(iter(Ledger(app / ".git").read().worktrees.values()))
    main_port = int(json.loads(run_cli(capsys, app, "env", "--json")[1])["env"]["PORT"])
    proc = _serve(Path(record.path), main_port)  # a plain `npm run dev` takes main's port
    try:
        _, out, _ = run_cli(capsys, app, "ls", "--json")
        doc = json.loads(out)
        feat = next(w for w in doc["worktrees"] if w["branch"] == "feat/x")
        [row] = feat["strays"]
        assert (row["pid"], row["port"], row["expected"], row["owner"]) == (
            proc.pid, main_port, record.ports["PORT"], "the main worktree")
        message = (f"feat/x: `{sys.executable} -m http.server --bind 127.0.0.1 {main_port}` "
                   f"(pid {proc.pid}) listens on port {main_port}, the main worktree's "
                   f"port, instead of its own port {record.ports['PORT']}; start it with "
                   "`branchyard run` (it sets PORT), or pass the port to the server "
                   f"(`cd {record.path} && branchyard run`)")
        assert row["message"] == message
        assert doc["warnings"] == [message]
        assert doc["worktrees"][0]["strays"] == []  # main's own list: nothing of its
        _, text, _ = run_cli(capsys, app, "ls")
        assert text.rstrip("\n").endswith(f"warning: {message}")
        _, out, _ = run_cli(capsys, app, "status", "feat/x", "--json")
        assert json.loads(out)["worktree"]["strays"] == [row]
        _, out, _ = run_cli(capsys, app, "doctor", "--json")
        [finding] = [f for f in json.loads(out)["findings"] if f["kind"] == "stray_listener"]
        assert (finding["owner"], finding["why"]) == ("feat/x", message)
    finally:
        proc.kill()
        proc.wait()
    run_cli(capsys, app, "down", "feat/x", "--force")


def test_main_is_a_name_like_any_worktrees(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, app, "up", "feat/n")[0] == 0
    wt = Path(next(iter(Ledger(app / ".git").read().worktrees.values())).path)
    code, out, err = run_cli(capsys, wt, "env", "main", "--json")  # from another worktree
    assert code == 0, err
    port = json.loads(out)["env"]["PORT"]
    assert json.loads(out)["env"]["BRANCHYARD_URL"] == "http://shop.localhost:1355"
    code, out, _ = run_cli(capsys, wt, "url", "main", "--json")
    assert (code, json.loads(out)["port"]) == (0, int(port))
    code, out, _ = run_cli(capsys, wt, "status", "main", "--json")
    assert (code, json.loads(out)["worktree"]["ports"]) == (0, {"PORT": int(port)})
    run_cli(capsys, app, "down", "feat/n")


def test_stop_main_leaves_a_nested_worktrees_processes(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    nested = app / ".worktrees" / "x"
    assert run_cli(capsys, app, "up", "feat/nested", "--path", str(nested))[0] == 0
    theirs = subprocess.Popen(["sleep", "60"], cwd=nested)
    mine = subprocess.Popen(["sleep", "60"], cwd=app)
    try:
        code, out, err = run_cli(capsys, app, "stop", "main", "--json")
        assert code == 0, err
        assert [p["pid"] for p in json.loads(out)["stopped"]] == [mine.pid]
        assert theirs.poll() is None  # the nested worktree owns its processes
    finally:
        for proc in (theirs, mine):
            proc.kill()
            proc.wait()
    run_cli(capsys, app, "down", "feat/nested", "--force")


def test_teardown_in_main_says_what_works_there(repo: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    os.chdir(repo)
    assert main(["teardown"]) == 1
    err = capsys.readouterr().err
    assert "the main worktree has nothing to tear down" in err
    assert "`branchyard stop` ends what runs here" in err
