"""The CLI: whole outputs and whole JSON documents, on real repositories."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from branchyard.cli.main import main
from branchyard.ledger import Ledger
from tests.conftest import commit_config, git, run_cli


@pytest.fixture
def app(repo: Path) -> Path:
    return commit_config(repo, '[project]\nname = "shop"\n[ports]\nnames = ["PORT"]\n')


def test_up_env_ls_down_json(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, app, "up", "feat/x", "--json")
    assert code == 0
    doc = json.loads(out)
    record = next(iter(Ledger(app / ".git").read().worktrees.values()))
    port = record.ports["PORT"]
    wt = str(app.parent / f"app.{record.slug}")
    url = "http://feat-x.shop.localhost:1355"
    assert doc["schema_version"] == 1
    assert doc["command"] == "up"
    assert doc["ok"] is True
    assert doc["errors"] == []
    assert doc["worktree"] == {"branch": "feat/x", "path": wt, "slug": record.slug,
                               "subdomain": "feat-x", "ports": {"PORT": port}, "url": url,
                               "env_file": f"{wt}/.env.development.local"}
    assert doc["base"] == "main"
    assert doc["created_branch"] is True
    assert [p["phase"] for p in doc["phases"]] == [
        "checks", "worktree", "identity", "ports", "files", "browser", "env", "hooks"]

    code, out, _ = run_cli(capsys, Path(wt), "env", "--json")
    profile = record.env["BRANCHYARD_BROWSER_PROFILE"]
    assert json.loads(out) == {"schema_version": 1, "command": "env", "ok": True, "env": {
        "BRANCHYARD_SLUG": record.slug, "BRANCHYARD_SUBDOMAIN": "feat-x",
        "BRANCHYARD_BRANCH": "feat/x", "BRANCHYARD_INDEX": "1", "BRANCHYARD_PROJECT": "shop",
        "BRANCHYARD_URL": url, "COMPOSE_PROJECT_NAME": f"app-{record.slug}",
        "BRANCHYARD_HOST": "feat-x.shop.localhost",
        "BRANCHYARD_LOCAL_URL": f"http://127.0.0.1:{port}",
        "BRANCHYARD_LOCAL_HOST": f"127.0.0.1:{port}", "PORT": str(port),
        "BRANCHYARD_BROWSER_PROFILE": profile,
        "BRANCHYARD_BROWSER_SESSION": f"shop-{record.slug}"}, "errors": []}

    code, out, _ = run_cli(capsys, app, "ls", "--json")
    worktrees = json.loads(out)["worktrees"]
    assert [(w["branch"], w["state"], w["main"]) for w in worktrees] == [
        ("main", "main", True), ("feat/x", "ready", False)]
    feat = worktrees[1]
    assert {k: feat[k] for k in ("branch", "path", "slug", "subdomain", "ports", "databases",
                                 "url", "processes", "dirty")} == {
        "branch": "feat/x", "path": wt, "slug": record.slug, "subdomain": "feat-x",
        "ports": {"PORT": port}, "databases": [], "url": url, "processes": [], "dirty": False}

    code, out, _ = run_cli(capsys, app, "down", "feat/x", "--json")
    doc = json.loads(out)
    assert code == 0
    assert (doc["removed_worktree"], doc["branch_deleted"], doc["ports"]) == (True, True, [port])
    assert doc["branch_note"] == "merged into main"


def test_human_output_of_status(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, app, "up", "feat/s")
    record = next(iter(Ledger(app / ".git").read().worktrees.values()))
    wt = app.parent / f"app.{record.slug}"
    code, out, _ = run_cli(capsys, wt, "status")
    assert code == 0
    assert out == (
        "branch      feat/s\n"
        f"path        {wt}\n"
        "state       ready\n"
        f"slug        {record.slug}\n"
        "subdomain   feat-s\n"
        "url         http://feat-s.shop.localhost:1355\n"
        f"ports       PORT={record.ports['PORT']}\n"
        "databases   -\n"
        "processes   -\n"
        "dirty       no\n"
        "locks       -\n"
        "conflicts   not checked since the last change (run `branchyard conflicts`)\n")


def test_setup_again_says_nothing_changed(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, app, "up", "feat/again")
    wt = next(iter(Ledger(app / ".git").read().worktrees.values())).path
    code, out, _ = run_cli(capsys, Path(wt), "setup")
    assert code == 0
    assert out.splitlines()[0] == "feat/again was already set up; nothing changed"


def test_expected_failures_are_clear_errors(app: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, app, "up", "bad..name")
    assert (code, out) == (1, "")
    assert err == ("error: 'bad..name' is not a valid branch name\n"
                   "hint: see `git help check-ref-format` for what git accepts\n")
    code, out, _ = run_cli(capsys, app, "up", "bad..name", "--json")
    assert json.loads(out) == {
        "schema_version": 1, "command": "up", "ok": False,
        "errors": [{"code": "git", "message": "'bad..name' is not a valid branch name",
                    "hint": "see `git help check-ref-format` for what git accepts"}]}
    outside = tmp_path / "plain"
    outside.mkdir()
    code, _, err = run_cli(capsys, outside, "ls")
    assert code == 1
    assert err == (f"error: {outside} is not inside a git repository\n"
                   "hint: run branchyard inside a git repository or one of its worktrees\n")


def test_down_from_inside_is_refused(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, app, "up", "feat/in")
    wt = Path(next(iter(Ledger(app / ".git").read().worktrees.values())).path)
    code, _, err = run_cli(capsys, wt, "down", "feat/in")
    assert code == 1
    assert err.startswith(f"error: you are inside {wt}\nhint: cd out of the worktree first")
    assert wt.is_dir()


def test_usage_error_exit_code(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, app, "up")
    assert code == 2
    assert "Missing argument 'NAME'" in err


def test_git_too_old_is_refused(app: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    real = shutil.which("git")
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "git version 2.30.1"; exit 0; }\n'
                    f'exec {real} "$@"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}:{os.environ['PATH']}")
    code, _, err = run_cli(capsys, app, "up", "feat/old-git")
    assert code == 1
    assert err.startswith("error: git 2.30 is too old: branchyard needs git 2.38 or newer")


def test_run_passes_env_and_exit_code(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, app, "up", "feat/run")
    record = next(iter(Ledger(app / ".git").read().worktrees.values()))
    code, _, _ = run_cli(capsys, app, "run", "feat/run", "--", "sh", "-c",
                         'echo "$BRANCHYARD_SUBDOMAIN -- $PORT" > out.txt; exit 4')
    assert code == 4
    assert (Path(record.path) / "out.txt").read_text() == f"feat-run -- {record.ports['PORT']}\n"
    code, _, err = run_cli(capsys, app, "run", "feat/run", "true")
    assert code == 2
    assert "usage: branchyard run [--port-flag FLAG] [NAME] [-- COMMAND" in err


def test_shell_function_changes_directory(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_cli(capsys, app, "up", "feat/cd")
    wt = next(iter(Ledger(app / ".git").read().worktrees.values())).path
    _, function, _ = run_cli(capsys, app, "shell", "init", "bash")
    exe = Path(sys.executable).with_name("branchyard")
    script = f"{function}\nPATH={exe.parent}:$PATH\nbranchyard cd feat/cd && pwd\n"
    done = subprocess.run(["bash", "-c", script], cwd=app, capture_output=True, text=True,
                          check=True)
    assert done.stdout == f"{wt}\n"


def test_init_detects_the_repository(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".env.local").write_text("DATABASE_URL=postgres://u:p@localhost/shop\n"
                                     "PORT=3000\nAPI_PORT=4000\n")
    (repo / "package-lock.json").write_text("{}")
    (repo / "package.json").write_text('{"scripts": {"dev": "next dev"}}')
    code, out, _ = run_cli(capsys, repo, "init")
    assert code == 0
    assert out == f"wrote {repo}/branchyard.toml\nnote: Next.js reads PORT only from the " \
                  "process environment, never from .env files: start it with `branchyard " \
                  "run` (or load the override env file with direnv/mise, see the README)\n" \
                  "next: review it, commit it, then `branchyard up BRANCH`\n"
    from branchyard.config.load import load_config

    config, _ = load_config(repo)
    assert config.env.shared == (".env.local",)
    assert config.ports.names == ("PORT", "API_PORT")
    assert [(d.name, d.engine, d.source, d.env) for d in config.database] == [
        ("database", "postgres", "env:DATABASE_URL", "DATABASE_URL")]
    assert [(d.dir, d.lockfiles, d.install) for d in config.deps] == [
        ("node_modules", ("package-lock.json",), "npm ci")]
    assert config.hooks.setup == ()  # the [[deps]] entry installs or reuses node_modules
    assert config.hooks.run == "npm run dev -- -p $PORT"
    code, _, err = run_cli(capsys, repo, "init")
    assert code == 1
    assert "already exists" in err


def test_conductor_init_writes_settings_toml(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app / "branchyard.local.toml").write_text('[hooks]\nrun = "npm run dev"\n')
    code, _, _ = run_cli(capsys, app, "conductor", "init")
    assert code == 0
    # Conductor ignores conductor.json once settings.toml exists: only the latter
    assert not (app / "conductor.json").exists()
    import tomllib

    settings = tomllib.loads((app / ".conductor" / "settings.toml").read_text())
    assert settings["scripts"] == {"setup": "branchyard setup",
                                   "run": "branchyard run",
                                   "archive": "branchyard teardown", "run_mode": "concurrent"}


def test_the_version_has_one_home(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``--version`` and the installed package metadata both come from ``__version__``."""
    from importlib.metadata import version

    import branchyard

    os.chdir(repo)
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"branchyard, version {branchyard.__version__}"
    assert version("branchyard") == branchyard.__version__
    pyproject = (Path(branchyard.__file__).parents[2] / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject and "\nversion =" not in pyproject.split("[tool")[0]


def test_no_arguments_lists_every_command_once_grouped_by_task(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from branchyard.cli.group import COMMANDS, GROUPS

    os.chdir(repo)
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    titles = [f"{title}:" for title in GROUPS]
    assert [line for line in out.splitlines() if line in titles] == titles
    assert out.index("Start here:") < out.index("  up ") < out.index("Databases:")
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")
              and line.split()[0] in COMMANDS]
    assert sorted(listed) == sorted(COMMANDS)


@pytest.mark.parametrize(("argv", "command", "says"), [
    (["up", "--json", "--bogus"], "up", "No such option '--bogus'"),
    (["ls", "--json", "extra"], "ls", "unexpected extra argument"),
    (["db", "url", "--json", "--nope"], "db url", "No such option '--nope'"),
    (["nosuch", "--json"], "branchyard", "No such command 'nosuch'"),
])
def test_a_usage_error_with_json_is_one_json_document(
        repo: Path, capsys: pytest.CaptureFixture[str],
        argv: list[str], command: str, says: str) -> None:
    os.chdir(repo)
    assert main(argv) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["command"] == command and doc["ok"] is False
    assert doc["errors"][0]["code"] == "usage" and says in doc["errors"][0]["message"]
    assert "--help" in doc["errors"][0]["hint"]
    assert captured.err == ""


def test_run_with_no_command_runs_the_run_hook_through_the_shell(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "branchyard.toml").write_text(
        '[project]\nname = "shop"\n[hooks]\nrun = "sh serve.sh --port $PORT"\n')
    (repo / "serve.sh").write_text('echo "$*" > seen.txt\n')
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "config", cwd=repo)
    code, out, _ = run_cli(capsys, repo, "up", "feat/hook", "--json")
    assert code == 0, out
    record = next(iter(Ledger(repo / ".git").read().worktrees.values()))
    wt, port = Path(record.path), record.ports["PORT"]

    assert run_cli(capsys, repo, "run", "feat/hook")[0] == 0
    assert (wt / "seen.txt").read_text() == f"--port {port}\n"
    # --port-flag after NAME appends the flag and the port as words of their own
    assert run_cli(capsys, repo, "run", "feat/hook", "--port-flag", "--host-port")[0] == 0
    assert (wt / "seen.txt").read_text() == f"--port {port} --host-port {port}\n"
    assert run_cli(capsys, wt, "run", "--", "sh", "-c", "echo hi > seen.txt")[0] == 0
    assert (wt / "seen.txt").read_text() == "hi\n"


def test_run_with_no_command_and_no_run_hook_says_what_to_do(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(capsys, app, "up", "feat/nohook")[0] == 0
    code, _, err = run_cli(capsys, app, "run", "feat/nohook")
    assert code == 2
    assert "no `[hooks] run`" in err and "branchyard run -- COMMAND" in err


def test_up_says_when_mains_config_has_uncommitted_changes(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, app, "up", "feat/same", "--json")
    assert code == 0 and json.loads(out)["notes"] == []
    with (app / "branchyard.toml").open("a") as config:
        config.write('[env.vars]\nEXTRA = "1"\n')
    code, out, _ = run_cli(capsys, app, "up", "feat/drift")
    assert code == 0
    note = ("note: branchyard.toml in the main worktree has uncommitted changes; the new "
            "worktree is set up with the one committed in 'main'")
    assert note in out
    wt = next(w for w in Ledger(app / ".git").read().worktrees.values()
              if w.branch == "feat/drift")
    assert "EXTRA" not in (Path(wt.path) / ".env.development.local").read_text()


def test_up_and_run_say_when_the_dev_url_will_not_answer(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No proxy runs in this test's own state dir: up and run say so, once each."""
    code, out, _ = run_cli(capsys, app, "up", "feat/noproxy", "--json")
    assert code == 0
    assert json.loads(out)["url_note"].startswith("the proxy is not running, so the dev URL")
    code, out, err = run_cli(capsys, app, "run", "feat/noproxy", "--", "true")
    assert code == 0
    assert err.count("note: the proxy is not running") == 1
    assert "`branchyard proxy start` starts it" in err
