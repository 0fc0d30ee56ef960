"""After the last `down` (and after `demo`) nothing branchyard made stays: every
file under the sealed state dir and ``<git-common-dir>/branchyard`` is listed and
each must be one we expect, holding nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from branchyard import api
from branchyard.cli.main import main
from tests.conftest import commit_config, git

CONFIG = """\
[project]
name = "shop"
[env]
shared = [".env.local"]
[ports]
names = ["PORT", "API_PORT"]
[browser]
session_file = "agent-browser.json"
"""
# Lock files stay (filelock keeps them so a waiting process never locks an
# unlinked file); they are empty.
LOCKS = {"state/ports.json.lock", "state/proxy/repos.lock", "state/server/server.lock",
         "state/server/reserve.lock",
         "git/ledger.lock", "git/worktree-add.lock"}


def state_dir() -> Path:
    return Path(os.environ["BRANCHYARD_STATE_DIR"])


def made_files(common_dir: Path | None) -> dict[str, str]:
    """Every file and folder branchyard made, as ``state/…`` and ``git/…`` → content
    (``<dir>`` for a folder)."""
    found: dict[str, str] = {}
    bases = {"state": state_dir()}
    if common_dir is not None:
        bases["git"] = common_dir / "branchyard"
    for label, base in bases.items():
        for path in sorted(base.rglob("*")) if base.is_dir() else []:
            key = f"{label}/{path.relative_to(base)}"
            found[key] = "<dir>" if path.is_dir() else path.read_text(encoding="utf-8")
    return found


def assert_only_empty_records(found: dict[str, str], repos: list[str]) -> None:
    files = {k: v for k, v in found.items() if v != "<dir>"}
    folders = {k for k, v in found.items() if v == "<dir>"}
    assert folders <= {"state/proxy", "state/server"}, f"folders left behind: {sorted(folders)}"
    assert all(files[k] == "" for k in set(files) & LOCKS)
    records = {k: json.loads(v) for k, v in files.items() if k not in LOCKS}
    assert set(records) <= {"state/ports.json", "state/proxy/repos.json", "git/ledger.json"}, \
        f"files left behind: {sorted(set(records) - {'state/ports.json'})}"
    assert records.get("state/ports.json", {}).get("leases", {}) == {}
    assert records.get("state/proxy/repos.json", {}).get("repos", []) == repos
    ledger = records.get("git/ledger.json", {})
    assert (ledger.get("worktrees", {}), ledger.get("sections", {})) == ({}, {})


@pytest.fixture
def app(repo: Path) -> Path:
    commit_config(repo, CONFIG)
    (repo / ".env.local").write_text("SECRET=s3cret\n")
    return repo


def test_up_up_down_down_leaves_only_empty_records(
        app: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for branch in ("feat/a", "feat/b"):
        path = Path(api.up(api.UpRequest(branch, cwd=app)).path)
        (path / f"{branch.replace('/', '-')}.txt").write_text("work\n")
        git("add", "-A", cwd=path)
        git("commit", "-qm", "work", cwd=path)
    os.chdir(app)
    assert main(["conflicts", "--json"]) == 0  # the radar keeps its markers in the ledger
    os.chdir(path)
    assert main(["lock", "src/", "--json"]) == 0
    os.chdir(app)
    capsys.readouterr()
    assert "radar" in json.loads((app / ".git/branchyard/ledger.json").read_text())["sections"]

    for branch in ("feat/a", "feat/b"):
        api.down(api.DownRequest(branch, force=True, cwd=app))

    assert_only_empty_records(made_files(app / ".git"), [str((app / ".git").resolve())])


@pytest.mark.parametrize("with_database", [False, True], ids=["no-database", "database"])
def test_demo_leaves_only_empty_records(with_database: bool) -> None:
    from branchyard.db import clusterhome
    from branchyard.demo import database_available, run_demo

    if with_database and not database_available():
        pytest.skip("PostgreSQL binaries are not installed: the demo runs without a database")
    cluster = clusterhome.cluster_dir(clusterhome.run_as_user())  # where the demo's server lives

    result = run_demo(with_database=with_database)

    assert result.with_database is with_database and not Path(result.root).exists()
    assert_only_empty_records(made_files(None), [])
    assert not cluster.exists()  # the managed server the demo made is gone with it


def test_a_removed_repository_leaves_the_proxy_registry(app: Path, tmp_path: Path) -> None:
    import shutil

    from tests.conftest import make_repo

    other = make_repo(tmp_path / "other")
    (other / "branchyard.toml").write_text(CONFIG)
    (other / ".env.local").write_text("SECRET=s3cret\n")
    api.down(api.DownRequest(api.up(api.UpRequest("feat/x", cwd=other)).path, force=True,
                             cwd=other))
    shutil.rmtree(other)  # the whole repository is thrown away

    api.up(api.UpRequest("feat/a", cwd=app))

    repos = json.loads((state_dir() / "proxy" / "repos.json").read_text())["repos"]
    assert repos == [str((app / ".git").resolve())]
    api.down(api.DownRequest("feat/a", force=True, cwd=app))
