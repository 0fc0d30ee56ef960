"""`agents init`: the files each app reads, merged into what the user has, never
dropping their keys; a second run changes nothing."""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path

import pytest

from branchyard.cli.main import main
from tests.conftest import commit_config

CREATE = "branchyard agents hook claude worktree-create"
REMOVE = "branchyard agents hook claude worktree-remove"
IN_WT = 'cd "${CODEX_WORKTREE_PATH:-.}" && '


@pytest.fixture
def app(repo: Path) -> Path:
    return commit_config(repo, '[project]\nname = "shop"\n[hooks]\nrun = "npm run dev"\n')


def cli(capsys: pytest.CaptureFixture[str], cwd: Path, *argv: str) -> tuple[int, str, str]:
    os.chdir(cwd)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_all_four_apps_are_wired_and_a_second_run_changes_nothing(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, app, "agents", "init", "--json")
    assert code == 0
    rel = [".claude/settings.json", ".codex/environments/environment.toml",
           ".cursor/worktrees.json", ".conductor/settings.toml"]
    assert json.loads(out) == {
        "schema_version": 1, "command": "agents init", "ok": True,
        "apps": ["claude", "codex", "cursor", "conductor"], "changed": True, "errors": [],
        "files": [{"app": a, "path": str(app / r), "changed": True, "created": True}
                  for a, r in zip(["claude", "codex", "cursor", "conductor"], rel,
                                  strict=True)]}
    assert json.loads((app / rel[0]).read_text()) == {"hooks": {
        "WorktreeCreate": [{"hooks": [{"type": "command", "command": CREATE}]}],
        "WorktreeRemove": [{"hooks": [{"type": "command", "command": REMOVE}]}]}}
    assert tomllib.loads((app / rel[1]).read_text()) == {
        "version": 1, "name": "shop",
        "setup": {"script": IN_WT + "branchyard setup"},
        "cleanup": {"script": IN_WT + "branchyard teardown"},
        "actions": [{"name": "Run", "icon": "run",
                     "command": IN_WT + "branchyard run"},
                    {"name": "Open", "icon": "tool",
                     "command": IN_WT + "branchyard url --open"}]}
    assert json.loads((app / rel[2]).read_text()) == {
        "setup-worktree-unix": ["branchyard setup"], "setup-worktree": ["branchyard setup"]}
    assert tomllib.loads((app / rel[3]).read_text()) == {
        "$schema": "https://conductor.build/schemas/settings.repo.schema.json",
        "scripts": {"setup": "branchyard setup", "run": "branchyard run",
                    "archive": "branchyard teardown", "run_mode": "concurrent"}}
    assert not (app / "conductor.json").exists()  # Conductor ignores it next to settings.toml
    before = {r: (app / r).read_text() for r in rel}

    code, out, _ = cli(capsys, app, "agents", "init")
    assert code == 0
    assert out == "".join(f"unchanged  {a:<9}  {app / r}\n" for a, r in zip(
        ["claude", "codex", "cursor", "conductor"], rel, strict=True)) + \
        "nothing changed: the wiring was already in place\n"
    assert {r: (app / r).read_text() for r in rel} == before


def test_the_users_keys_and_comments_are_kept(app: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    claude = {"permissions": {"allow": ["Bash(ls)"]}, "hooks": {"PreToolUse": [
        {"matcher": "Bash", "hooks": [{"type": "command", "command": "audit.sh"}]}]}}
    (app / ".claude").mkdir()
    (app / ".claude/settings.json").write_text(json.dumps(claude))
    (app / ".codex/environments").mkdir(parents=True)
    (app / ".codex/environments/environment.toml").write_text(
        '# our Codex setup\nversion = 1\nname = "Shop"\n\n[[actions]]\nname = "Test"\n'
        'icon = "test"\ncommand = "npm test"  # the suite\n')
    (app / ".cursor").mkdir()
    (app / ".cursor/worktrees.json").write_text('{"setup-worktree-windows": ["npm ci"]}')
    (app / ".conductor").mkdir()
    (app / ".conductor/settings.toml").write_text(
        '# team settings\nenterprise_data_privacy = true\n[scripts]\nrun_mode = "nonconcurrent"\n')
    code, _, err = cli(capsys, app, "agents", "init")
    assert code == 0, err

    merged = json.loads((app / ".claude/settings.json").read_text())
    assert merged["permissions"] == claude["permissions"]
    assert merged["hooks"]["PreToolUse"] == claude["hooks"]["PreToolUse"]  # type: ignore[index]
    assert set(merged["hooks"]) == {"PreToolUse", "WorktreeCreate", "WorktreeRemove"}
    codex_text = (app / ".codex/environments/environment.toml").read_text()
    assert codex_text.startswith('# our Codex setup\nversion = 1\nname = "Shop"\n')
    assert 'command = "npm test"  # the suite' in codex_text
    codex = tomllib.loads(codex_text)
    assert [a["name"] for a in codex["actions"]] == ["Test", "Run", "Open"]
    assert codex["setup"] == {"script": IN_WT + "branchyard setup"}
    assert json.loads((app / ".cursor/worktrees.json").read_text()) == {
        "setup-worktree-windows": ["npm ci"], "setup-worktree-unix": ["branchyard setup"],
        "setup-worktree": ["branchyard setup"]}
    conductor_text = (app / ".conductor/settings.toml").read_text()
    assert conductor_text.startswith("# team settings\nenterprise_data_privacy = true\n")
    assert tomllib.loads(conductor_text)["scripts"] == {
        "run_mode": "nonconcurrent", "setup": "branchyard setup",
        "run": "branchyard run", "archive": "branchyard teardown"}


def test_a_value_of_the_users_is_replaced_only_with_force(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app / ".cursor").mkdir()
    (app / ".cursor/worktrees.json").write_text('{"setup-worktree": ["npm ci"]}')
    (app / ".claude").mkdir()
    theirs = {"hooks": {"WorktreeCreate": [{"hooks": [
        {"type": "command", "command": "./make-worktree.sh"}]}]}}
    (app / ".claude/settings.json").write_text(json.dumps(theirs))
    code, out, err = cli(capsys, app, "agents", "init", "--json")
    assert code == 1
    doc = json.loads(out)
    assert doc["ok"] is False and doc["errors"][0]["code"] == "unsafe"
    assert doc["errors"][0]["message"] == (
        "these settings of yours would be replaced: .claude/settings.json: "
        "hooks.WorktreeCreate = " + json.dumps(theirs["hooks"]["WorktreeCreate"])
        + '; .cursor/worktrees.json: setup-worktree = ["npm ci"]')
    assert "--force" in doc["errors"][0]["hint"]
    # nothing was written, not even for the apps without a conflict
    assert json.loads((app / ".claude/settings.json").read_text()) == theirs
    assert not (app / ".codex").exists() and not (app / ".conductor").exists()

    code, _, err = cli(capsys, app, "agents", "init", "--force")
    assert code == 0, err
    assert json.loads((app / ".cursor/worktrees.json").read_text())["setup-worktree"] == [
        "branchyard setup"]
    hooks = json.loads((app / ".claude/settings.json").read_text())["hooks"]
    assert hooks["WorktreeCreate"] == [{"hooks": [{"type": "command", "command": CREATE}]}]


def test_a_codex_platform_script_that_would_override_ours_is_a_conflict(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = app / ".codex/environments/environment.toml"
    path.parent.mkdir(parents=True)
    path.write_text('version = 1\nname = "shop"\n[setup]\nscript = ""\n'
                    '[setup.linux]\nscript = "npm ci"\n')
    code, _, err = cli(capsys, app, "agents", "init", "--only", "codex")
    assert code == 1
    # the empty default script is simply unset; the Linux one would win over ours
    assert err.startswith("error: these settings of yours would be replaced: "
                          '.codex/environments/environment.toml: setup.linux.script = "npm ci"\n')
    code, _, _ = cli(capsys, app, "agents", "init", "--only", "codex", "--force")
    assert code == 0
    setup = tomllib.loads(path.read_text())["setup"]
    assert setup == {"script": IN_WT + "branchyard setup",
                     "linux": {"script": IN_WT + "branchyard setup"}}


def test_an_older_wiring_of_ours_is_updated_without_force(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app / ".conductor").mkdir()
    (app / ".conductor/settings.toml").write_text(
        '[scripts]\nsetup = "branchyard setup --no-hooks"\nrun = "branchyard run -- old"\n')
    code, _, err = cli(capsys, app, "agents", "init", "--only", "conductor")
    assert code == 0, err
    assert tomllib.loads((app / ".conductor/settings.toml").read_text())["scripts"] == {
        "setup": "branchyard setup", "run": "branchyard run",
        "archive": "branchyard teardown", "run_mode": "concurrent"}


def test_conductor_json_is_updated_only_when_the_repository_has_it(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app / "conductor.json").write_text('{"enterpriseDataPrivacy": true}')
    code, out, _ = cli(capsys, app, "conductor", "init")  # the alias
    assert code == 0
    assert out == f"updated  conductor  {app / 'conductor.json'}\n"
    assert json.loads((app / "conductor.json").read_text()) == {
        "enterpriseDataPrivacy": True, "runScriptMode": "concurrent",
        "scripts": {"setup": "branchyard setup", "run": "branchyard run",
                    "archive": "branchyard teardown"}}
    # settings.toml would make Conductor ignore conductor.json (and its other keys)
    assert not (app / ".conductor").exists()


def test_a_run_hook_that_needs_a_shell_expands_port_inside_branchyard_run(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (app / "branchyard.local.toml").write_text(
        '[hooks]\nrun = "next dev -p $PORT"\n')
    code, _, _ = cli(capsys, app, "agents", "init", "--only", "codex,conductor")
    assert code == 0
    run = "branchyard run"
    assert tomllib.loads((app / ".conductor/settings.toml").read_text())["scripts"]["run"] == run
    codex = tomllib.loads((app / ".codex/environments/environment.toml").read_text())
    assert codex["actions"][0]["command"] == IN_WT + run


def test_bad_input_is_a_clear_error(app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, app, "agents", "init", "--only", "claude,vim", "--json")
    assert code == 2
    assert json.loads(out)["errors"] == [{
        "code": "usage", "message": "unknown app(s) for --only: vim",
        "hint": "choose from: claude, codex, cursor, conductor"}]
    (app / ".cursor").mkdir()
    (app / ".cursor/worktrees.json").write_text("{not json")
    code, _, err = cli(capsys, app, "agents", "init", "--only", "cursor")
    assert code == 1
    assert err.startswith(f"error: {app / '.cursor/worktrees.json'} is not valid JSON: ")
    assert (app / ".cursor/worktrees.json").read_text() == "{not json"


def test_init_proposes_wiring_for_the_apps_it_finds(
        repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (repo / ".claude").mkdir()
    (repo / ".cursor").mkdir()
    code, out, _ = cli(capsys, repo, "init")
    assert code == 0
    assert out.endswith("agent apps found (claude, cursor): wire them with "
                        "`branchyard agents init --only claude,cursor`\n")
    assert not (repo / ".claude/settings.json").exists()  # proposed, not done
