"""`branchyard url` and `branchyard browser` from inside real worktrees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from proxykit import add_worktree

from branchyard.cli.main import main
from branchyard.system.browser import profile_dir


def _json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, object]]:
    code = main([*args, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def worktree(repo: Path, common_dir: Path) -> Path:
    path = repo.parent / "app.feat"
    subprocess.run(["git", "worktree", "add", "-q", "-b", "feat/a", str(path)], cwd=repo,
                   check=True)
    add_worktree(common_dir, "feat/a", {"PORT": 41234, "API_PORT": 41235}, path=path)
    return path


def test_url_of_current_worktree_branch_and_main(
        repo: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(worktree)
    assert main(["url"]) == 0
    out = capsys.readouterr()
    assert out.out == "http://feat-a.app.localhost:1355\n"
    assert out.err == ("note: the proxy is not running, so the dev URL will not answer; "
                       "`branchyard proxy start` starts it (or set [proxy] auto_start = true)\n")
    code, doc = _json(capsys, "url")
    assert code == 0
    assert {k: doc[k] for k in ("url", "host", "branch", "port", "local_url",
                                "proxy")} == {
        "url": "http://feat-a.app.localhost:1355", "host": "feat-a.app.localhost",
        "branch": "feat/a", "port": 41234, "local_url": "http://127.0.0.1:41234",
        "proxy": "stopped"}
    monkeypatch.chdir(repo)
    assert main(["url", "feat/a"]) == 0
    assert capsys.readouterr().out == "http://feat-a.app.localhost:1355\n"
    assert main(["url"]) == 0
    assert capsys.readouterr().out == "http://app.localhost:1355\n"


def test_url_of_unknown_branch_fails_with_hint(
        repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(repo)
    code, doc = _json(capsys, "url", "nope")
    assert code == 1
    assert doc["errors"] == [{"code": "worktree",
                              "message": "no branchyard worktree for branch 'nope'",
                              "hint": "`branchyard ls` lists them; `branchyard up nope` "
                                      "creates one"}]


def test_https_url_follows_config(repo: Path, worktree: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    (worktree / "branchyard.toml").write_text("[proxy]\nhttps = true\nport = 443\n")
    monkeypatch.chdir(worktree)
    assert main(["url"]) == 0
    assert capsys.readouterr().out == "https://feat-a.app.localhost\n"


def test_browser_dry_run_uses_the_worktree_profile_and_copy_login(
        repo: Path, common_dir: Path, worktree: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    main_profile = profile_dir(common_dir, None)
    (main_profile / "Default" / "Local Storage" / "leveldb").mkdir(parents=True)
    (main_profile / "Default" / "Local Storage" / "leveldb" / "000003.log").write_text("ls")
    (main_profile / "Default" / "Cookies").write_text("cookies-db")
    (main_profile / "Local State").write_text("{}")
    (main_profile / "Default" / "History").write_text("not copied")
    (worktree / "branchyard.toml").write_text('[browser]\ncommand = "/bin/true"\n')
    monkeypatch.chdir(worktree)
    code, doc = _json(capsys, "browser", "--copy-login", "--dry-run")
    assert code == 0
    profile = Path(str(doc["profile"]))
    assert profile.parent == main_profile.parent
    assert profile.name.startswith("feat_a_")
    assert doc["command"] == ["/bin/true", "--no-first-run", "--no-default-browser-check",
                              f"--user-data-dir={profile}", "--password-store=basic",
                              "http://feat-a.app.localhost:1355"]
    assert doc["copied"] == ["Local State", "Default/Cookies", "Default/Local Storage"]
    assert (profile / "Default" / "Cookies").read_text() == "cookies-db"
    assert (profile / "Default" / "Local Storage" / "leveldb" / "000003.log").exists()
    assert not (profile / "Default" / "History").exists()
    assert doc["pid"] == 0


def test_copy_login_without_main_profile_explains(
        worktree: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (worktree / "branchyard.toml").write_text('[browser]\ncommand = "/bin/true"\n')
    monkeypatch.chdir(worktree)
    code, doc = _json(capsys, "browser", "--copy-login", "--dry-run")
    assert code == 1
    assert "has no browser profile yet" in doc["errors"][0]["message"]  # type: ignore[index]
