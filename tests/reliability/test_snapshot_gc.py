"""The snapshot that outlives the last worktree: shown by `ls` and `db status`
with its size, dropped by `gc --snapshots` (and only then)."""

from __future__ import annotations

from branchyard.db import records

from .conftest import Project, cli, cli_json, pg_names


def test_an_unused_snapshot_is_listed_with_its_size_and_gc_snapshots_drops_it(
        project: Project) -> None:
    cli_json(project.path, "up", "feat/a")
    [snap] = records.snapshots(project.ledger.read())
    listed = cli_json(project.path, "ls")["snapshots"]
    assert [(s["name"], s["worktrees"]) for s in listed] == [(snap.name, 1)]  # type: ignore[index, union-attr]
    status = cli_json(project.path, "db", "status")
    [shown] = status["snapshots"]  # type: ignore[misc]
    assert shown["size"] > 0  # type: ignore[index]

    kept = cli_json(project.path, "gc", "--snapshots")
    assert kept["snapshots_dropped"] == []  # a worktree still clones from it
    assert snap.name in pg_names(project.uid)

    cli_json(project.path, "down", "feat/a")
    text = cli(project.path, "ls", check=True).stdout
    assert f"snapshot {snap.name}: " in text and "`branchyard gc --snapshots` drops it" in text
    [listed_after] = cli_json(project.path, "ls")["snapshots"]  # type: ignore[misc]
    assert listed_after["worktrees"] == 0 and listed_after["size"] > 0  # type: ignore[index]

    plain = cli_json(project.path, "gc")
    assert "snapshots_dropped" not in plain and snap.name in pg_names(project.uid)
    dropped = cli_json(project.path, "gc", "--snapshots")
    assert dropped["snapshots_dropped"] == [snap.name]
    assert pg_names(project.uid) == {project.main_db}
    assert records.snapshots(project.ledger.read()) == []
