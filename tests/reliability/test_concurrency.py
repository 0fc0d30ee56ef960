"""Parallel agents: eight `branchyard up` processes at the same moment, `up`
racing `down`, and two repositories leasing ports side by side."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from branchyard.core.identity import compose_project_name
from branchyard.system import ports

from .conftest import (
    Project,
    assert_world_consistent,
    cli,
    drop_prefixed,
    make_project,
    pg_names,
    spawn,
    worktree_paths,
)

# names that sanitize alike (case, `-` vs `_` vs `.`) and plain ones
EIGHT = ["feat/a-b", "feat/a_b", "feat/A-b", "feat/a.b", "fix/1", "fix/2", "chore/x", "docs"]


def run_together(procs: list[tuple[Path, list[str]]]) -> list[subprocess.CompletedProcess[str]]:
    started = [(spawn(cwd, *args), args) for cwd, args in procs]
    done = []
    for proc, args in started:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(args, proc.returncode, out, err))
    return done


def test_eight_parallel_ups_get_distinct_everything(project: Project) -> None:
    results = run_together([(project.path, ["up", name, "--json"]) for name in EIGHT])
    for res in results:
        assert res.returncode == 0, res.stdout[:1500]
    docs = [json.loads(r.stdout) for r in results]
    state = project.ledger.read()
    records = list(state.worktrees.values())
    assert sorted(r.branch for r in records) == sorted(EIGHT)
    for attr in ("slug", "subdomain", "path", "index"):
        assert len({getattr(r, attr) for r in records}) == 8, attr
    all_ports = [p for r in records for p in r.ports.values()]
    assert len(set(all_ports)) == 16
    dbs = {res.spec.database for r in records for res in r.resources if res.kind == "postgres"}
    assert len(dbs) == 8 and dbs <= pg_names(project.uid)
    assert len({compose_project_name("app", r.slug) for r in records}) == 8
    assert len(worktree_paths(project.path)) == 9
    assert {d["worktree"]["slug"] for d in docs} == {r.slug for r in records}
    assert_world_consistent(project, live=EIGHT)
    downs = run_together([(project.path, ["down", name]) for name in EIGHT])
    assert [d.returncode for d in downs] == [0] * 8, [d.stderr for d in downs]
    assert_world_consistent(project)
    assert pg_names(project.uid) - {project.main_db} == {
        s["name"] for s in project.ledger.read().sections["postgres"]["snapshots"].values()}


def test_up_racing_down_of_the_same_worktree_ends_consistent(project: Project) -> None:
    outcomes = set()
    for _ in range(3):
        if not project.ledger.read().by_branch("feat/race"):
            cli(project.path, "up", "feat/race", check=True)
        down, up = run_together([(project.path, ["down", "feat/race"]),
                                 (project.path, ["up", "feat/race"])])
        record = project.ledger.read().by_branch("feat/race")
        live = ["feat/race"] if record else []
        assert_world_consistent(project, live=live)
        # whichever lost said why, and nothing half-done was left
        assert down.returncode == 0 or "error:" in down.stderr
        assert up.returncode == 0 or "error:" in up.stderr
        outcomes.add((down.returncode, up.returncode, bool(live)))
    if project.ledger.read().by_branch("feat/race"):
        cli(project.path, "down", "feat/race", check=True)
    assert_world_consistent(project)
    assert outcomes


def test_two_repositories_never_share_a_port(tmp_path: Path, uid: str) -> None:
    one = make_project(tmp_path / "one" / "app", uid + "a")
    two = make_project(tmp_path / "two" / "app", uid + "b")
    try:
        names = ["feat/p", "feat/q", "feat/r"]
        results = run_together([(p.path, ["up", n]) for p in (one, two) for n in names])
        assert [r.returncode for r in results] == [0] * 6, [r.stderr for r in results]
        leases = ports.all_leases()
        assert len({lease.port for lease in leases}) == len(leases) == 12
        assert {lease.owner.rpartition("#")[0] for lease in leases} == {
            str(one.common), str(two.common)}
        for proj in (one, two):
            assert_world_consistent(proj, live=names)
            for name in names:
                cli(proj.path, "down", name, check=True)
            assert_world_consistent(proj)
    finally:
        drop_prefixed(uid)
        for proj in (one, two):
            assert os.path.isdir(proj.path)
