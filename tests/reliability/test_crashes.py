"""SIGKILL during `up` and `down` (at every fault point, then at random times):
`doctor` reports precisely, `doctor --fix` repairs, and the world agrees with
the ledger afterwards — nothing leaked, nothing with an owner removed."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchyard.core.faults import POINTS
from tests.conftest import git

from .conftest import (
    Project,
    alive,
    assert_world_consistent,
    background,
    branches,
    cli,
    cli_json,
    drop_prefixed,
    end,
    finding_kinds,
    make_project,
    pids_inside,
    spawn,
)

KILLED = -signal.SIGKILL


@pytest.fixture
def pool_project(tmp_path: Path, uid: str) -> Iterator[Project]:
    """A project keeping one warm spare clone (`pool = 1`)."""
    yield make_project(tmp_path / "app", uid, pool=1)
    wait_for_refills_of(tmp_path / "app" / ".git")
    drop_prefixed(uid)

# fault point → what `doctor` must find after `up feat/x` crashed there
UP_CRASHES = {
    "up.intent": ["interrupted_up"],
    "up.worktree": ["interrupted_up"],
    "setup.identity": ["interrupted_up"],
    "setup.ports": ["interrupted_up"],
    "resource.pending:db:app": ["interrupted_up"],
    "resource.created:db:app": ["interrupted_up"],
    "resource.pending:browser:profile": ["interrupted_up"],
    "setup.env": ["interrupted_up"],
    "snapshot.pending": ["interrupted_up", "orphan_snapshot"],
    "snapshot.copied": ["interrupted_up", "orphan_snapshot"],
}
# fault point → findings after the detached pool refill that `up` starts crashed there
POOL_CRASHES = {"pool.pending": ["orphan_pool"], "pool.created": ["orphan_pool"]}
# fault point → findings after `down feat/y` crashed there (feat/y had a process)
# (from "removing" on, the removal the user asked for is finished, whatever is left)
DOWN_CRASHES = {
    "down.removing": ["interrupted_down"],
    "down.removed": ["interrupted_down"],
    "teardown.marked": ["interrupted_down"],
    "teardown.destroying:db:app": ["interrupted_down"],
    "teardown.destroyed:db:app": ["interrupted_down"],
    "teardown.ports": ["interrupted_down"],
}


def test_every_fault_point_is_exercised() -> None:
    covered = {p.partition(":")[0] for p in [*UP_CRASHES, *DOWN_CRASHES, *POOL_CRASHES]}
    covered |= {"setup.ready", "down.stopped", "teardown.destroying"}
    assert covered == set(POINTS)


def crash(project: Project, point: str, *args: str) -> None:
    done = cli(project.path, *args, fault=point)
    assert done.returncode == KILLED, (point, done.returncode, done.stderr)


def repair(project: Project, expected: list[str], after: tuple[str, ...] = ()
           ) -> dict[str, object]:
    report = cli_json(project.path, "doctor", code=1)
    assert sorted(finding_kinds(report)) == sorted(expected)
    fixed = cli_json(project.path, "doctor", "--fix")
    assert fixed["healthy"] is True
    assert all(r["error"] is None for r in fixed["repairs"])  # type: ignore[union-attr, index]
    again = cli_json(project.path, "doctor")
    assert finding_kinds(again) == list(after)
    return report


@pytest.mark.parametrize("point", sorted(UP_CRASHES))
def test_crash_during_up_is_undone_by_doctor(project: Project, point: str) -> None:
    crash(project, point, "up", "feat/x")
    report = repair(project, UP_CRASHES[point])
    [finding] = [f for f in report["findings"] if f["kind"] == "interrupted_up"]  # type: ignore[union-attr, index]
    assert finding["subject"].startswith("`up feat/x` at ")
    assert "delete branch 'feat/x' if it has no commits of its own" in finding["fix"]
    assert_world_consistent(project)
    assert branches(project.path) == {"main"}


def test_after_a_repaired_crash_the_branch_comes_up_again(project: Project) -> None:
    crash(project, "resource.created:db:app", "up", "feat/x")
    cli(project.path, "doctor", "--fix", check=True)
    cli(project.path, "up", "feat/x", check=True)
    assert_world_consistent(project, live=["feat/x"])
    cli(project.path, "down", "feat/x", check=True)
    assert_world_consistent(project)


def test_crash_after_setup_finished_keeps_the_worktree(project: Project) -> None:
    crash(project, "setup.ready", "up", "feat/x")
    repair(project, ["stale_intent", "stale_intent"])
    assert_world_consistent(project, live=["feat/x"])  # its owner finished; nothing removed
    cli(project.path, "down", "feat/x", check=True)
    assert_world_consistent(project)


@pytest.mark.parametrize("point", sorted(DOWN_CRASHES))
def test_crash_during_down_is_finished_by_doctor(project: Project, point: str) -> None:
    cli(project.path, "up", "feat/y", check=True)
    path = Path(project.ledger.read().by_branch("feat/y").path)  # type: ignore[union-attr]
    crash(project, point, "down", "feat/y")
    repair(project, DOWN_CRASHES[point])
    assert_world_consistent(project)
    assert not path.exists() and pids_inside(path) == []
    assert "feat/y" not in branches(project.path)  # merged (no commits): deleted by down


def test_crash_before_removal_leaves_the_worktree_whole(project: Project) -> None:
    cli(project.path, "up", "feat/y", check=True)
    path = Path(project.ledger.read().by_branch("feat/y").path)  # type: ignore[union-attr]
    pid = background(path)
    try:
        crash(project, "down.stopped", "down", "feat/y")
        assert not alive(pid)  # down had stopped it
        repair(project, ["stale_intent"])
        assert_world_consistent(project, live=["feat/y"])
        assert path.is_dir()
    finally:
        end(pid)
    cli(project.path, "down", "feat/y", check=True)
    assert_world_consistent(project)


def test_crash_during_teardown_is_finished_by_doctor(project: Project) -> None:
    cli(project.path, "up", "feat/z", check=True)
    path = Path(project.ledger.read().by_branch("feat/z").path)  # type: ignore[union-attr]
    crash(project, "teardown.destroying", "teardown", "feat/z")
    report = repair(project, ["stuck_worktree", "stale_intent"],
                    after=("unmanaged_worktree",))
    assert "finish the teardown" in report["findings"][0]["fix"]  # type: ignore[index]
    assert_world_consistent(project, unmanaged=[path])
    assert path.is_dir() and "feat/z" in branches(project.path)  # teardown keeps them


def kill_at_random(project: Project, delay: float, args: list[str]) -> float | None:
    """Run the command and SIGKILL it after ``delay`` s; None if it was killed,
    else how long it took."""
    import psutil

    start = time.monotonic()
    proc = spawn(project.path, *args)
    try:
        proc.wait(delay)
    except subprocess.TimeoutExpired:
        children = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(signal.SIGKILL)
        # a git child outlives its killed parent for a moment; let it end on its own
        psutil.wait_procs(children, timeout=30)
    proc.communicate(timeout=60)
    return None if proc.returncode == KILLED else time.monotonic() - start


def timed(project: Project, *args: str) -> float:
    start = time.monotonic()
    cli(project.path, *args, check=True)
    return time.monotonic() - start


def settle(project: Project) -> list[str]:
    """Repair whatever a random kill left, then check the world."""
    fixed = cli_json(project.path, "doctor", "--fix", code=None)
    assert fixed["healthy"] is True, fixed
    live = [w.branch for w in project.ledger.read().worktrees.values()]
    assert_world_consistent(project, live=live)
    return live


def test_random_sigkill_during_up_and_down(project: Project) -> None:
    """At least 20 real kills at random moments (seeded), each followed by repair
    and a check of the whole world; the moments span each command's own run time."""
    rng = random.Random(int(os.environ.get("RELIABILITY_SEED", "20261121")))
    length = {"up": timed(project, "up", "feat/r"), "down": timed(project, "down", "feat/r")}
    killed = trials = 0
    deadline = time.monotonic() + 100
    while killed < 20 and trials < 40 and time.monotonic() < deadline:
        trials += 1
        live = settle(project)
        verb = "down" if "feat/r" in live else "up"
        took = kill_at_random(project, rng.uniform(0.1, 0.95 * length[verb]), [verb, "feat/r"])
        if took is None:
            killed += 1
        else:  # it ran faster than measured (the machine got quieter): aim shorter
            length[verb] = min(length[verb], took)
    settle(project)
    assert killed >= 20, (trials, killed, length)


def wait_for_refills(project: Project) -> None:
    wait_for_refills_of(project.common)


def wait_for_refills_of(common: Path) -> None:
    """Wait (bounded) until no pool refill of this repository runs any more."""
    import psutil

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = [p for p in psutil.process_iter(["cmdline"])
                   if "_refill" in (p.info["cmdline"] or [])
                   and str(common) in (p.info["cmdline"] or [])]
        if not running:
            return
        psutil.wait_procs(running, timeout=1)
    raise AssertionError("the pool refill did not end within 60 s")


@pytest.mark.parametrize("point", sorted(POOL_CRASHES))
def test_crash_during_a_pool_refill_is_cleaned_by_doctor(pool_project: Project,
                                                         point: str) -> None:
    done = cli(pool_project.path, "up", "feat/p", fault=point)
    assert done.returncode == 0, done.stderr  # `up` itself finished; its refill crashed
    wait_for_refills(pool_project)
    report = repair(pool_project, POOL_CRASHES[point])
    assert report["findings"][0]["why"] == "making it was interrupted (state 'pending')"  # type: ignore[index]
    assert_world_consistent(pool_project, live=["feat/p"])
    cli(pool_project.path, "down", "feat/p", check=True)
    wait_for_refills(pool_project)


def test_crash_during_setup_of_a_worktree_made_by_another_tool(project: Project) -> None:
    wt = project.path.parent / "made-by-git"
    git("worktree", "add", "-q", "-b", "feat/other", str(wt), cwd=project.path)
    done = cli(wt, "setup", fault="resource.created:db:app")
    assert done.returncode == KILLED
    report = repair(project, ["stuck_worktree", "stale_intent"], after=("unmanaged_worktree",))
    assert report["findings"][0]["hint"] == f"then run `branchyard setup` in {wt}"  # type: ignore[index]
    assert_world_consistent(project, unmanaged=[wt])  # its database dropped, the worktree kept
    cli(wt, "setup", check=True)
    assert_world_consistent(project, live=["feat/other"])
    cli(project.path, "down", "feat/other", check=True)


@pytest.mark.parametrize("point", ["resource.pending:db:shop", "resource.created:db:shop",
                                   "teardown.destroying:db:shop"])
def test_crashes_leave_no_mysql_database_behind(project: Project, point: str) -> None:
    import pymysql

    from branchyard.db.mysql import quote_ident

    def schemas() -> set[str]:
        with pymysql.connect(host="127.0.0.1", port=3306, user="root",
                             autocommit=True) as conn, conn.cursor() as cur:
            cur.execute("SELECT schema_name FROM information_schema.schemata "
                        "WHERE schema_name LIKE %s", (project.uid + "%",))
            return {r[0] for r in cur.fetchall()}

    main = f"{project.uid}_shop"
    with pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True) as conn, \
            conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quote_ident(main)}")
        cur.execute(f"CREATE TABLE {quote_ident(main)}.items (id INT PRIMARY KEY)")
    try:
        toml = project.path / "branchyard.toml"
        toml.write_text(toml.read_text() + '[[database]]\nname = "shop"\nengine = "mysql"\n'
                        f'source = "mysql://root@127.0.0.1:3306/{main}"\nenv = "SHOP_URL"\n')
        git("commit", "-qam", "mysql", cwd=project.path)
        if point.startswith("teardown"):
            cli(project.path, "up", "feat/my", check=True)
            assert len(schemas()) == 2
            crash(project, point, "down", "feat/my")
        else:
            crash(project, point, "up", "feat/my")
        cli(project.path, "doctor", "--fix", check=True)
        assert schemas() == {main}  # the clone is gone, main untouched
        assert_world_consistent(project)
    finally:
        with pymysql.connect(host="127.0.0.1", port=3306, user="root",
                             autocommit=True) as conn, conn.cursor() as cur:
            for name in schemas():
                cur.execute(f"DROP DATABASE {quote_ident(name)}")
