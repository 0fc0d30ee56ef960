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
        "      hint   or `branchyard down feat/gone`; moved it with `mv`? run `git worktree "
        "repair` in its new place instead, and branchyard follows it\n")
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


def test_gc_all_collects_in_every_known_repository(tmp_path: Path) -> None:
    import json

    from branchyard.config.model import PortsConfig
    from branchyard.system import ports
    from tests.conftest import make_repo

    repos = [make_repo(tmp_path / name / "app") for name in ("one", "two")]
    for repo in repos:
        cli(repo, "up", "feat/x", check=True)
        record = Ledger(repo / ".git").read().by_branch("feat/x")
        assert record is not None
        shutil.rmtree(record.path)
    ghost = f"{tmp_path / 'deleted' / '.git'}#x_123456"
    ports.lease_ports(ghost, ["PORT"], PortsConfig())
    done = cli(tmp_path, "gc", "--all", "--json")  # from outside any repository
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert [r["repo"] for r in doc["reports"]] == [str(r) for r in sorted(repos)] + [""]
    assert [[f["kind"] for f in r["findings"]] for r in doc["reports"]] == [
        ["missing_worktree"], ["missing_worktree"], ["orphan_lease"]]
    assert doc["healthy"] is True
    assert all(not Ledger(r / ".git").read().worktrees for r in repos)
    assert ports.all_leases() == []
    text = cli(tmp_path, "doctor", "--all").stdout.splitlines()
    assert text == [f"doctor: nothing to do in {r}: the ledger and the world agree"
                    for r in sorted(repos)] + [
        "doctor: nothing to do in the machine-wide state (leases, state files, proxy): "
        "the ledger and the world agree"]
