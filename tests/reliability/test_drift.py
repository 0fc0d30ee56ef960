"""Drift: worktrees removed behind branchyard's back, orphaned leases, stuck
resources, unfinished snapshot/pool databases, a crashed proxy. `doctor`
reports each precisely; `doctor --fix` / `gc` repair only what has no owner."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from branchyard.api.doctor import DoctorRequest, doctor
from branchyard.config.model import PortsConfig
from branchyard.core.paths import state_dir
from branchyard.db import postgres as pg
from branchyard.db import records as dbrec
from branchyard.system import ports
from tests.conftest import git

from .conftest import (
    PG_ADMIN,
    Project,
    alive,
    assert_world_consistent,
    background,
    branches,
    cli,
    cli_json,
    end,
    finding_kinds,
    pg_names,
    pg_url,
)


def up(project: Project, branch: str) -> Path:
    cli(project.path, "up", branch, check=True)
    record = project.ledger.read().by_branch(branch)
    assert record is not None
    return Path(record.path)


def database_of(project: Project, branch: str) -> str:
    record = project.ledger.read().by_branch(branch)
    assert record is not None
    [db] = [r.spec.database for r in record.resources if r.kind == "postgres"]
    return str(db)


def test_worktrees_removed_behind_our_back_are_noticed_and_collected(project: Project) -> None:
    gone_git, gone_rm, kept = (up(project, b) for b in ("feat/git-rm", "feat/rm-rf", "feat/kept"))
    dbs = {b: database_of(project, b) for b in ("feat/git-rm", "feat/rm-rf", "feat/kept")}
    pids = [background(gone_git), background(gone_rm), background(kept)]
    try:
        git("worktree", "remove", "--force", str(gone_git), cwd=project.path)
        shutil.rmtree(gone_rm)
        listed = cli_json(project.path, "ls")["worktrees"]
        states = {w["branch"]: w["state"] for w in listed}  # type: ignore[union-attr, index]
        assert states == {"main": "main", "feat/git-rm": "missing", "feat/rm-rf": "missing",
                          "feat/kept": "ready"}
        status = cli(project.path, "status", "feat/rm-rf")
        assert ("state       missing (its directory is gone; `branchyard down feat/rm-rf`"
                in status.stdout)
        report = cli_json(project.path, "doctor", code=1)
        assert finding_kinds(report) == ["missing_worktree", "missing_worktree"]
        first = report["findings"][0]  # type: ignore[index]
        assert first["subject"] == f"worktree 'feat/git-rm' at {gone_git}"
        assert first["gone"] is True and first["owner"].startswith("ledger entry feat_git_rm_")
        collected = cli_json(project.path, "gc")
        assert [r["error"] for r in collected["repairs"]] == [None, None]  # type: ignore[union-attr, index]
        assert not alive(pids[0]) and not alive(pids[1])  # their dev servers were stopped
        assert alive(pids[2])  # a live worktree's process is never touched
        names = pg_names(project.uid)
        assert dbs["feat/git-rm"] not in names and dbs["feat/rm-rf"] not in names
        assert dbs["feat/kept"] in names
        assert_world_consistent(project, live=["feat/kept"])
        # branches may hold work: gc never deletes them
        assert {"feat/git-rm", "feat/rm-rf", "feat/kept"} <= branches(project.path)
    finally:
        for pid in pids:
            end(pid)
    cli(project.path, "down", "feat/kept", check=True)


def test_env_path_and_run_of_a_missing_worktree_say_so(project: Project) -> None:
    path = up(project, "feat/gone")
    shutil.rmtree(path)
    for args in (("env", "feat/gone"), ("path", "feat/gone"),
                 ("run", "feat/gone", "--", "true")):
        done = cli(project.path, *args)
        assert done.returncode == 1
        assert f"the worktree of 'feat/gone' is gone ({path})" in done.stderr
        assert "branchyard down feat/gone" in done.stderr or "doctor" in done.stderr
    cli(project.path, "gc", check=True)
    assert_world_consistent(project)


def test_orphan_leases_are_released_and_owned_ones_kept(project: Project,
                                                        tmp_path: Path) -> None:
    up(project, "feat/a")
    cfg = PortsConfig(range=(49000, 49999))
    ghost_repo = ports.lease_ports(f"{tmp_path / 'deleted' / '.git'}#x_123456", ["PORT"], cfg)
    ghost_slug = ports.lease_ports(f"{project.common}#never_setup_abc123", ["PORT"], cfg)
    report = doctor(DoctorRequest(project.path))
    leases = [f for f in report.findings if f.kind == "orphan_lease"]
    assert [(f.subject, f.gone) for f in leases] == [
        (f"ports {ghost_slug['PORT']}", True), (f"ports {ghost_repo['PORT']}", True)]
    assert "is gone" in leases[1].why and "has no worktree 'never_setup_abc123'" in leases[0].why
    doctor(DoctorRequest(project.path, fix=True, gone_only=True))
    owners = {lease.owner for lease in ports.all_leases()}
    assert not any("never_setup" in o or "deleted" in o for o in owners)
    assert_world_consistent(project, live=["feat/a"])
    cli(project.path, "down", "feat/a", check=True)


def test_unmanaged_and_prunable_worktrees(project: Project) -> None:
    plain = project.path.parent / "plain"
    ghost = project.path.parent / "ghost"
    git("worktree", "add", "-q", "-b", "plain", str(plain), cwd=project.path)
    git("worktree", "add", "-q", "-b", "ghost", str(ghost), cwd=project.path)
    shutil.rmtree(ghost)
    report = doctor(DoctorRequest(project.path))
    by_kind = {f.kind: f for f in report.findings}
    assert sorted(by_kind) == ["prunable_worktree", "unmanaged_worktree"]
    assert by_kind["unmanaged_worktree"].fix == ""  # report only
    assert f"run `branchyard setup` in {plain}" in by_kind["unmanaged_worktree"].hint
    fixed = doctor(DoctorRequest(project.path, fix=True))
    assert [r.done for r in fixed.repairs] == ["pruned git's worktree metadata"]
    assert plain.is_dir() and "ghost" in branches(project.path)
    assert [f.kind for f in doctor(DoctorRequest(project.path)).findings] == [
        "unmanaged_worktree"]


def test_interrupted_up_never_removes_changes_or_commits(project: Project) -> None:
    done = cli(project.path, "up", "feat/dirty", fault="setup.env")
    assert done.returncode == -9
    path = project.path.parent / next(p.name for p in project.path.parent.iterdir()
                                      if p.name.startswith("app.feat_dirty"))
    (path / "notes.txt").write_text("work in progress\n")
    done = cli(project.path, "up", "feat/commit", fault="up.worktree")
    assert done.returncode == -9
    other = next(p for p in project.path.parent.iterdir() if p.name.startswith("app.feat_co"))
    (other / "f.txt").write_text("x")
    git("add", "f.txt", cwd=other)
    git("commit", "-qm", "work", cwd=other)
    fixed = doctor(DoctorRequest(project.path, fix=True))
    done_text = " | ".join(r.done for r in fixed.repairs)
    assert f"kept the worktree {path}: it has changes (notes.txt)" in done_text
    assert f"removed the worktree {other}" in done_text
    assert "kept branch 'feat/commit': it has commits of its own" in done_text
    assert (path / "notes.txt").is_file() and "feat/commit" in branches(project.path)
    # the kept worktree's resources were released: it is now merely unmanaged
    assert [f.kind for f in doctor(DoctorRequest(project.path)).findings] == [
        "unmanaged_worktree"]
    assert pg_names(project.uid) <= {project.main_db} | {
        s.name for s in dbrec.snapshots(project.ledger.read())}


def test_stuck_resource_is_destroyed_and_setup_recreates_it(project: Project) -> None:
    path = up(project, "feat/s")
    db = database_of(project, "feat/s")
    with project.ledger.update() as state:
        record = state.by_branch("feat/s")
        assert record is not None
        record.resource("db:app").state = "pending"  # type: ignore[union-attr]
    report = doctor(DoctorRequest(project.path))
    [finding] = report.findings
    assert (finding.kind, finding.subject) == ("stuck_resource", "db:app of worktree 'feat/s'")
    assert finding.hint == f"then run `branchyard setup` in {path} to create it again"
    doctor(DoctorRequest(project.path, fix=True))
    assert db not in pg_names(project.uid)
    cli(path, "setup", check=True)
    assert db in pg_names(project.uid)
    assert_world_consistent(project, live=["feat/s"])
    cli(project.path, "down", "feat/s", check=True)


def test_unfinished_snapshot_and_pool_databases(project: Project) -> None:
    snap = f"{project.uid}__snap_test_1"
    spare = f"{project.uid}__pool_test"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, snap)
        pg.create(conn, spare)
    with project.ledger.update() as state:
        dbrec.put_snapshot(state, dbrec.SnapshotRecord(snap, PG_ADMIN, "x", "k", 1))
        dbrec.put_pool(state, dbrec.PoolRecord(spare, PG_ADMIN, snap))
    report = doctor(DoctorRequest(project.path))
    assert sorted(f.kind for f in report.findings) == ["orphan_pool", "orphan_snapshot"]
    with pg.connect(pg_url(snap)):  # someone is still restoring into the snapshot
        busy = doctor(DoctorRequest(project.path, fix=True))
        [deferred] = [r for r in busy.repairs if r.error is not None]
        assert deferred.error.message == "not now: a session is still building it"  # type: ignore[union-attr]
        assert [r.done for r in busy.repairs if r.error is None] == [
            f"dropped {spare} and forgot it"]
        assert not busy.healthy
    assert snap in pg_names(project.uid) and spare not in pg_names(project.uid)
    again = doctor(DoctorRequest(project.path, fix=True))
    assert [(r.done, r.error) for r in again.repairs] == [(f"dropped {snap} and forgot it", None)]
    assert pg_names(project.uid) == {project.main_db}
    assert not dbrec.snapshots(project.ledger.read()) and not dbrec.pool(project.ledger.read())


def test_databases_the_ledger_did_not_create_are_never_dropped(project: Project) -> None:
    path = up(project, "feat/own")
    theirs = f"{project.uid}_theirs"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, theirs)
    shutil.rmtree(path)
    cli(project.path, "gc", check=True)
    assert pg_names(project.uid) >= {project.main_db, theirs}
    assert not project.ledger.read().worktrees


def test_crashed_proxy_is_reported_and_its_pid_file_removed(project: Project) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    pid_file = state_dir() / "proxy" / "proxy.pid"
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(json.dumps({"pid": dead.pid, "port": 1355, "https": False,
                                    "started": time.time(), "create_time": 1.0}))
    report = doctor(DoctorRequest(project.path))
    [finding] = report.findings
    assert finding.kind == "proxy_crashed" and finding.hint == "then `branchyard proxy start`"
    doctor(DoctorRequest(project.path, fix=True))
    assert not pid_file.exists()


def test_scratch_worktrees_of_dead_merges_are_removed_busy_ones_kept(repo: Path) -> None:
    from filelock import FileLock

    from branchyard.merge.scratch import scratch_root

    root = scratch_root(repo / ".git")
    root.mkdir(parents=True)
    dead, busy = root / "merge-dead", root / "merge-busy"
    for path in (dead, busy):
        git("worktree", "add", "-q", "--detach", str(path), "HEAD", cwd=repo)
    with FileLock(str(busy) + ".lock", timeout=5):
        report = doctor(DoctorRequest(repo))
        assert [(f.kind, f.subject) for f in report.findings] == [
            ("scratch_worktree", f"merge scratch worktree {dead}")]
        fixed = doctor(DoctorRequest(repo, fix=True))
        assert [r.done for r in fixed.repairs] == [f"removed {dead}"]
        assert not dead.exists() and busy.is_dir()
    git("worktree", "remove", "--force", str(busy), cwd=repo)


def test_a_stopped_managed_server_that_worktrees_need_is_reported(repo: Path,
                                                                  tmp_path: Path) -> None:
    from branchyard.db import serverstate
    from branchyard.ledger import Ledger, ResourceRecord, WorktreeRecord
    from branchyard.resources.specs import PostgresSpec

    home = serverstate.server_home()
    home.mkdir(parents=True)
    (home / "server.json").write_text(json.dumps({
        "port": 1, "password": "pw", "cluster_dir": str(tmp_path / "cluster"),
        "bin_dir": "/nonexistent"}))
    wt = tmp_path / "wt"
    git("worktree", "add", "-q", "-b", "feat/m", str(wt), cwd=repo)
    with Ledger(repo / ".git").update() as state:
        record = WorktreeRecord("feat_m_1", "feat-m", "feat/m", 1, str(wt), state="ready")
        record.resources.append(ResourceRecord("postgres", "db:app", PostgresSpec(
            name="app", role="worktree", env="DATABASE_URL", seed="clone",
            server="postgresql://postgres:pw@127.0.0.1:1/postgres", database="app_feat_m_1",
            main="app", main_url="postgresql://postgres:pw@127.0.0.1:1/app",
            url="postgresql://postgres:pw@127.0.0.1:1/app_feat_m_1",
            common_dir=str(repo / ".git"), managed=True), state="ready"))
        state.worktrees[record.slug] = record
    [finding] = doctor(DoctorRequest(repo)).findings
    assert (finding.kind, finding.fix, finding.hint) == (
        "server_stopped", "", "`branchyard server start`")
    assert finding.why == "it is not running, and the databases of feat/m live on it"


def test_an_unreadable_lease_registry_is_rebuilt_from_the_ledgers(project: Project) -> None:
    up(project, "feat/kept")
    record = project.ledger.read().by_branch("feat/kept")
    assert record is not None
    registry = ports.registry_path()
    registry.write_text("{garbage")
    refused = cli(project.path, "up", "feat/new")
    assert refused.returncode == 1 and "the port lease registry" in refused.stderr
    report = doctor(DoctorRequest(project.path))
    assert [f.kind for f in report.findings] == ["lease_registry_unreadable"]
    doctor(DoctorRequest(project.path, fix=True))
    assert sorted(lease.port for lease in ports.all_leases()) == sorted(record.ports.values())
    [kept] = registry.parent.glob("ports.unreadable.*.json")
    assert kept.read_text() == "{garbage"
    up(project, "feat/new")
    assert_world_consistent(project, live=["feat/kept", "feat/new"])
    for branch in ("feat/kept", "feat/new"):
        cli(project.path, "down", branch, check=True)


def test_a_repair_rechecks_the_world_before_acting(project: Project) -> None:
    from branchyard.api.doctor import diagnose, repair_actions
    from branchyard.api.repair import repair
    from branchyard.context import open_context

    path = up(project, "feat/back")
    db = database_of(project, "feat/back")
    shutil.rmtree(path)
    git("worktree", "prune", cwd=project.path)
    ctx = open_context(project.path)
    [finding] = diagnose(ctx)
    assert finding.kind == "missing_worktree"
    up(project, "feat/back")  # brought up again (adopting its entry) before the fix runs
    done = repair(finding, repair_actions(ctx)[finding.kind])
    assert (done.done, done.error) == ("skipped: the worktree is back", None)
    assert db in pg_names(project.uid)
    assert_world_consistent(project, live=["feat/back"])
    cli(project.path, "down", "feat/back", check=True)


def test_orphan_redis_leases_are_released_and_owned_ones_kept(project: Project,
                                                              tmp_path: Path) -> None:
    from branchyard.db import redisdb

    up(project, "feat/r")
    record = project.ledger.read().by_branch("feat/r")
    assert record is not None
    address = "127.0.0.1:6379"
    mine = redisdb.lease_index(address, f"{project.common}|{record.slug}|cache", 0)
    ghost_owner = f"{tmp_path / 'gone' / '.git'}|x_123456|cache"
    ghost = redisdb.lease_index(address, ghost_owner, 0)
    [finding] = doctor(DoctorRequest(project.path)).findings
    assert (finding.kind, finding.subject, finding.owner) == (
        "orphan_redis_lease", f"Redis database {ghost} on {address} ([[database]] 'cache')",
        ghost_owner)
    doctor(DoctorRequest(project.path, fix=True, gone_only=True))
    assert redisdb.leased_indexes() == {address: {str(mine): f"{project.common}|"
                                                  f"{record.slug}|cache"}}
    cli(project.path, "down", "feat/r", check=True)


def test_a_snapshot_a_crash_kept_from_being_retired_is_dropped(project: Project) -> None:
    old, new = f"{project.uid}__snap_k_1", f"{project.uid}__snap_k_2"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, old)
        pg.create(conn, new)
    with project.ledger.update() as state:
        for name, gen in ((old, 1), (new, 2)):
            dbrec.put_snapshot(state, dbrec.SnapshotRecord(name, PG_ADMIN, "x", "k", gen,
                                                           state="ready"))
    [finding] = doctor(DoctorRequest(project.path)).findings
    assert (finding.kind, finding.why) == ("orphan_snapshot", f"superseded by {new}")
    [fixed] = doctor(DoctorRequest(project.path, fix=True)).repairs
    assert fixed.done == f"dropped {old}"
    assert pg_names(project.uid) == {project.main_db, new}
    assert [s.name for s in dbrec.snapshots(project.ledger.read())] == [new]


def test_half_written_state_files_of_killed_processes_are_removed(repo: Path) -> None:
    from branchyard.ledger import Ledger

    dead = subprocess.Popen(["true"])
    dead.wait()
    ledger = Ledger(repo / ".git")
    ledger.dir.mkdir(parents=True)
    stale = ledger.dir / f".ledger.{dead.pid}.tmp"
    stale.write_text('{"schema": 1, "work')
    live = ledger.dir / f".ledger.{os.getpid()}.tmp"  # a writer still at work
    live.write_text("{")
    [finding] = doctor(DoctorRequest(repo)).findings
    assert (finding.kind, finding.subject, finding.gone) == ("stale_tempfile", str(stale), True)
    doctor(DoctorRequest(repo, fix=True, gone_only=True))
    assert not stale.exists() and live.exists()
