"""Hotspot locks and check-edit on real worktrees."""

from __future__ import annotations

from pathlib import Path

import pytest
from yard import add_worktree, commit, write

from branchyard.core.errors import MergeError
from branchyard.ledger import Ledger
from branchyard.merge.editcheck import check_edit
from branchyard.merge.locks import (
    Lock,
    LockHeldError,
    add_locks,
    read_locks,
    release_locks,
    remove_locks,
)
from branchyard.merge.targets import load_repo


def test_lock_covers_files_folders_and_globs() -> None:
    assert Lock("package.json", "s", "a").covers("package.json")
    assert Lock("db/migrations/", "s", "a").covers("db/migrations/0001_x.sql")
    assert Lock("src/**/routes.ts", "s", "a").covers("src/app/api/routes.ts")
    assert Lock("*.lock", "s", "a").covers("yarn.lock")
    assert not Lock("db/migrations", "s", "a").covers("db/migrations_old/x.sql")
    assert not Lock("package.json", "s", "a").covers("web/package.json.bak")


def test_lock_refuses_a_path_held_by_another_and_unlock_rules(repo: Path) -> None:
    common = load_repo(repo).common_dir
    add_locks(common, "slug_a", "a", ["db/", "package.json"], "schema work")
    with pytest.raises(LockHeldError, match=r"`db/x.sql` is already locked by a \(schema work\)"):
        add_locks(common, "slug_b", "b", ["db/x.sql"])
    with pytest.raises(LockHeldError, match=r"`db` is already locked by a"):
        add_locks(common, "slug_b", "b", ["db"])  # wider than a's lock: overlaps too
    with pytest.raises(LockHeldError, match=r"`\*.json` is already locked by a"):
        add_locks(common, "slug_b", "b", ["*.json"])
    add_locks(common, "slug_b", "b", ["README.md"])
    with pytest.raises(LockHeldError, match="locked by a, not by this worktree"):
        remove_locks(common, "slug_b", ["package.json"])

    assert [lk.pattern for lk in remove_locks(common, "slug_b", ["package.json"], force=True)] \
        == ["package.json"]
    assert release_locks(common, "slug_a") == 1
    assert release_locks(common, "slug_a") == 0
    assert [(lk.pattern, lk.holder) for lk in read_locks(common)] == [("README.md", "b")]
    assert Ledger(common).read().sections["locks"]["locks"][0]["slug"] == "slug_b"


def test_check_edit_reports_locks_and_changes_of_other_worktrees(shared: Path) -> None:
    a, b, c = (add_worktree(shared, n) for n in ("a", "b", "c"))
    commit(b, {"app.py": "changed in b\n"}, "b edits")
    write(c, {"routes.ts": "uncommitted in c\n"})
    repo = load_repo(shared)
    add_locks(repo.common_dir, repo.find("c").slug, "c", ["migrations/"], "renumbering")  # type: ignore[union-attr]

    assert check_edit(repo, a / "app.py").changed_by == ("b",)
    assert check_edit(repo, a / "routes.ts").changed_by == ("c",)
    locked = check_edit(repo, a / "migrations" / "0002_new.sql")
    assert (locked.path, locked.editor, locked.clear) == ("migrations/0002_new.sql", "a", False)
    assert locked.lock is not None and locked.lock.holder == "c"
    assert check_edit(repo, c / "migrations" / "0002_new.sql").clear  # the holder may
    assert check_edit(repo, a / "README.md").clear
    assert check_edit(repo, shared / "app.py").changed_by == ("b",)  # from the main checkout


def test_a_folder_whose_name_starts_with_two_dots_is_inside_the_worktree(shared: Path) -> None:
    a = add_worktree(shared, "a")
    write(a, {"..cache/notes.txt": "n\n"})
    repo = load_repo(shared)

    holder, rel = repo.relative(a / "..cache" / "notes.txt")

    assert (holder.name, rel) == ("a", "..cache/notes.txt")
    with pytest.raises(MergeError, match="is not a file inside a worktree"):
        repo.relative(shared.parent / "elsewhere.txt")
