"""`doctor` and `gc` as people read them: the whole human output, pinned."""

from __future__ import annotations

import shutil
from pathlib import Path

from branchyard.ledger import Ledger

from .conftest import cli


def test_doctor_then_fix_then_clean_output(repo: Path) -> None:
    assert cli(repo, "doctor").stdout == (
        f"doctor: nothing to do in {repo}: the ledger and the world agree\n")
    cli(repo, "up", "feat/gone", check=True)
    record = Ledger(repo / ".git").read().by_branch("feat/gone")
    assert record is not None
    shutil.rmtree(record.path)
    [port] = record.ports.values()
    holdings = f"browser profile; ports {port}"
    finding = (
        f"  missing_worktree: worktree 'feat/gone' at {record.path}\n"
        f"      owner  ledger entry {record.slug}\n"
        "      why    its directory is gone (removed outside branchyard: `git worktree "
        "remove`, rm -rf, an agent app's archive)\n"
        f"      fix    stop processes still inside it; release {holdings}; drop the "
        "ledger entry; `git worktree prune`\n"
        "      hint   or `branchyard down feat/gone`\n")
    report = cli(repo, "doctor")
    assert report.returncode == 1
    assert report.stdout == (f"doctor: 1 finding(s) in {repo}\n" + finding
                             + "run `branchyard doctor --fix` to repair what has a fix\n")
    fixed = cli(repo, "gc")
    assert fixed.returncode == 0
    assert fixed.stdout == (
        f"gc: 1 finding(s) in {repo}\n" + finding
        + f"      fixed  released browser profile; freed ports {port}; dropped ledger "
        f"entry {record.slug}\n")
    assert cli(repo, "doctor").stdout == (
        f"doctor: nothing to do in {repo}: the ledger and the world agree\n")
