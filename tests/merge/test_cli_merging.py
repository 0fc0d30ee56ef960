"""The merge area's commands through `main([...])`: whole JSON and text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from yard import add_worktree, commit, git, write

from branchyard.cli.main import main
from branchyard.merge.markers import Marker, conflict_markers
from branchyard.merge.targets import load_repo


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _text(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_locks_and_check_edit_from_two_worktrees(shared: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a, b = add_worktree(shared, "a"), add_worktree(shared, "b")
    monkeypatch.chdir(a / "migrations")
    code, taken = _json(capsys, "lock", ".", "../app.py", "--reason", "schema")
    assert code == 0
    assert [(lk["pattern"], lk["holder"], lk["reason"]) for lk in taken["locks"]] == [
        ("migrations", "a", "schema"), ("app.py", "a", "schema")]

    monkeypatch.chdir(b)
    assert _text(capsys, "check-edit", "migrations/0002_x.sql") == (
        3, "migrations/0002_x.sql is locked by a: schema\n", "")
    assert _text(capsys, "check-edit", "README.md") == (0, "README.md: clear to edit\n", "")
    code, edit = _json(capsys, "check-edit", "migrations/0002_x.sql")
    edit["lock"].pop("created")
    assert (code, edit) == (3, {
        "schema_version": 1, "command": "check-edit", "ok": False,
        "path": "migrations/0002_x.sql", "editor": "b", "clear": False,
        "lock": {"pattern": "migrations", "slug": load_repo(shared).find("a").slug,  # type: ignore[union-attr]
                 "holder": "a", "reason": "schema"},
        "changed_by": [], "errors": []})
    code, out, err = _text(capsys, "lock", "app.py")
    assert (code, out) == (3, "")
    assert err.startswith("error: `app.py` is already locked by a (schema)\nhint: ")
    code, unlocked = _json(capsys, "unlock", "app.py", "--force")
    assert (code, [lk["pattern"] for lk in unlocked["released"]]) == (0, ["app.py"])

    monkeypatch.chdir(shared)
    assert _text(capsys, "locks") == (0, "migrations  held by a: schema\n", "")
    monkeypatch.chdir(a)
    assert _text(capsys, "unlock") == (0, "released 1 lock\n", "")
    assert _json(capsys, "locks")[1]["locks"] == []


def test_conflicts_text_and_the_markers_ls_reads(shared: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a, b = add_worktree(shared, "a"), add_worktree(shared, "b")
    commit(a, {"app.py": "A\n"}, "a edits")
    write(b, {"app.py": "B\n"})
    monkeypatch.chdir(shared)
    common = load_repo(shared).common_dir
    assert conflict_markers(common) == {}  # the radar never ran

    assert _text(capsys, "conflicts") == (3, (
        "conflict   a <-> b: app.py\n"
        "2 worktrees, 3 pairs checked: 1 conflicting, 0 with migration collisions, "
        "0 locked edits\n"), "")

    markers = conflict_markers(common)
    assert markers == {str(a): Marker(conflicts_with=("b",), files=("app.py",)),
                       str(b): Marker(conflicts_with=("a",), files=("app.py",))}
    assert markers[str(a)].text() == "conflicts: b"
    commit(b, {"other.py": "x\n"}, "b moves on")
    assert conflict_markers(common) == {}  # a HEAD moved: stale, not shown


def test_merge_command_json_and_pick_of_an_unknown_commit(
        shared: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    monkeypatch.chdir(shared)

    code, merged = _json(capsys, "merge", "a", "--strategy", "squash")

    assert code == 0
    assert {k: merged[k] for k in ("ok", "branch", "base", "strategy", "already_merged",
                                   "regenerated", "checkout_updated")} == {
        "ok": True, "branch": "a", "base": "main", "strategy": "squash",
        "already_merged": False, "regenerated": [], "checkout_updated": str(shared)}
    assert merged["new_base"] == git("rev-parse", "main", cwd=shared)
    code, failed = _json(capsys, "merge", "a", "--pick", "nope")
    assert (code, failed["errors"][0]["code"]) == (2, "usage")


def test_queue_status_and_remove(shared: Path, monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    add_worktree(shared, "a")
    monkeypatch.chdir(shared)
    assert _text(capsys, "queue", "status") == (0, "the merge queue is empty\n", "")
    assert _json(capsys, "queue", "add", "nope")[0] == 2
    assert _text(capsys, "queue", "add", "a") == (0, "   1  queued   a\n", "")
    assert _text(capsys, "queue", "remove", "a") == (0, "removed 1 entry\n", "")


def test_merge_down_removes_the_merged_worktree(shared: Path, monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    monkeypatch.chdir(shared)

    code, merged = _json(capsys, "merge", "a", "--down")

    assert (code, merged["errors"]) == (0, [])
    assert not a.exists()
    assert git("show", "main:feature.py", cwd=shared) == "a"
    assert str(a) not in git("worktree", "list", cwd=shared)


def test_merge_down_of_a_dirty_worktree_merges_and_reports_the_refusal(
        shared: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    write(a, {"wip.py": "not committed\n"})
    monkeypatch.chdir(shared)

    code, merged = _json(capsys, "merge", "a", "--down")

    assert code == 1
    assert (merged["ok"], merged["left_behind"]) == (False, True)
    assert merged["errors"][0]["code"] == "unsafe"
    assert (a / "wip.py").exists()
    assert git("show", "main:feature.py", cwd=shared) == "a"


def test_conflicts_shows_locks_and_edits_of_locked_paths(
        shared: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = add_worktree(shared, "a"), add_worktree(shared, "b")
    monkeypatch.chdir(a)
    assert main(["lock", "migrations/", "--reason", "renumbering"]) == 0
    write(b, {"migrations/0002_b.sql": "b;\n"})
    monkeypatch.chdir(shared)

    assert _text(capsys, "conflicts") == (3, (
        "locked     b edits migrations/0002_b.sql (locked by a: renumbering)\n"
        "lock       migrations/ held by a: renumbering\n"
        "2 worktrees, 3 pairs checked: 0 conflicting, 0 with migration collisions, "
        "1 locked edits\n"), "")
    assert conflict_markers(load_repo(shared).common_dir)[str(b)].text() == \
        "locked: migrations/0002_b.sql"
