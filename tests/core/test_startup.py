"""Start-up cost: what `env` and `ls` import in a fresh process, on a real
repository. `env` runs from every prompt and `ls` from agents in a loop; a
module they do not use is time spent on every call (bench/scale.py measures
it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from branchyard import api
from tests.conftest import commit_config

CONFIG = '[project]\nname = "shop"\n[ports]\nnames = ["PORT"]\n'
PROBE = ("import json, sys\nfrom branchyard.cli.main import main\n"
         "code = main(sys.argv[1:])\n"
         "sys.stderr.write(json.dumps([code, sorted(sys.modules)]))\n")


@pytest.fixture
def app(repo: Path) -> Path:
    return commit_config(repo, CONFIG)


def imported(cwd: Path, *argv: str) -> set[str]:
    """The modules a fresh ``branchyard ARGV`` process has imported when it ends."""
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=True)
    code, modules = json.loads(done.stderr.splitlines()[-1])
    assert code == 0
    return set(modules)


def test_env_in_a_worktree_imports_no_click_dotenv_subprocess_or_process_table(
        app: Path) -> None:
    api.up(api.UpRequest("feat/a", cwd=app))
    modules = imported(Path(api.worktree_path("feat/a", app)), "env")
    assert {"click", "dotenv", "subprocess", "psutil", "tempfile", "branchyard.system.processes",
            "branchyard.system.mainports", "branchyard.providers", "branchyard.cli.group"
            } & modules == set()


def test_env_reads_the_worktrees_env_files_when_there_are_some(app: Path) -> None:
    api.up(api.UpRequest("feat/a", cwd=app))
    wt = Path(api.worktree_path("feat/a", app))
    (wt / ".env").write_text("GREETING=hello\n")
    assert "dotenv" in imported(wt, "env")


def test_ls_imports_no_process_library_nor_tools_it_has_nothing_for(app: Path) -> None:
    api.up(api.UpRequest("feat/a", cwd=app))
    imported(app, "ls", "--json")  # the first one leases main's port (a probe, a write)
    modules = imported(app, "ls", "--json")
    expected_absent = {"branchyard.system.listeners", "branchyard.services.status",
                       "branchyard.db.freshness", "branchyard.api.databases", "socket",
                       "tempfile", "branchyard.proxy.routes",
                       "branchyard.proxy.backends"}
    if sys.platform.startswith("linux"):
        expected_absent.add("psutil")  # the process table comes from /proc
    assert expected_absent & modules == set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_up_reads_its_own_start_time_from_proc_not_psutil(app: Path) -> None:
    """`up` records its pid and start time (its intent) before it makes anything:
    on Linux one read of /proc/self/stat, not psutil's ~10 ms import."""
    assert "psutil" not in imported(app, "up", "feat/b")
