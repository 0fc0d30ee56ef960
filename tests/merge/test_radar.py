"""The conflict radar on real repositories and worktrees."""

from __future__ import annotations

from pathlib import Path

from filelock import FileLock
from yard import add_worktree, commit, git, write

from branchyard.merge.locks import add_locks
from branchyard.merge.radar import scan
from branchyard.merge.targets import load_repo


def _conflicts(report_pairs: object) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(p.ours, p.theirs): p.files for p in report_pairs if p.files}  # type: ignore[attr-defined]


def test_committed_conflict_between_two_worktrees_only(shared: Path) -> None:
    a, b, c = (add_worktree(shared, n) for n in ("a", "b", "c"))
    commit(a, {"app.py": "one\nTWO-a\nthree\n"}, "a edits")
    commit(b, {"app.py": "one\nTWO-b\nthree\n"}, "b edits")
    commit(c, {"other.py": "c\n"}, "c adds")

    report = scan(load_repo(shared))

    assert _conflicts(report.pairs) == {("a", "b"): ("app.py",)}
    assert len(report.pairs) == 3 + 3  # three pairs, three against the base
    assert report.conflict
    assert [p.theirs for p in report.pairs if p.against_base] == ["base:main"] * 3


def test_uncommitted_and_untracked_changes_count_and_nothing_is_touched(shared: Path) -> None:
    a, b = add_worktree(shared, "a"), add_worktree(shared, "b")
    commit(a, {"app.py": "one\nTWO-a\nthree\n", "new.txt": "from a\n"}, "a edits")
    write(b, {"app.py": "one\nTWO-b\nthree\n", "new.txt": "from b\n"})  # not committed
    git("add", "app.py", cwd=b)  # one staged, one untracked
    status_before = git("status", "--porcelain", cwd=b)
    index = Path(git("rev-parse", "--git-path", "index", cwd=b))
    index = index if index.is_absolute() else b / index
    index_before = index.read_bytes()

    report = scan(load_repo(shared))

    assert _conflicts(report.pairs) == {("a", "b"): ("app.py", "new.txt")}
    assert [s.snapshot.dirty for s in report.sides] == [False, True]
    assert git("status", "--porcelain", cwd=b) == status_before
    assert index.read_bytes() == index_before
    assert git("status", "--porcelain", cwd=shared) == ""


def test_ignored_files_are_left_out(shared: Path) -> None:
    a, b = add_worktree(shared, "a"), add_worktree(shared, "b")
    commit(a, {".env.local": "A=1\n"}, "a forces an env file in")
    write(b, {".env.local": "B=2\n"})  # ignored by .gitignore in b

    assert _conflicts(scan(load_repo(shared)).pairs) == {}


def test_worktree_against_a_base_that_moved(shared: Path) -> None:
    a = add_worktree(shared, "a")
    write(a, {"app.py": "one\nTWO-a\nthree\n"})
    commit(shared, {"app.py": "one\nTWO-main\nthree\n"}, "main edits")

    report = scan(load_repo(shared))

    assert _conflicts(report.pairs) == {("a", "base:main"): ("app.py",)}


def test_migration_number_collision_without_textual_conflict(shared: Path) -> None:
    a, b = add_worktree(shared, "a"), add_worktree(shared, "b")
    commit(a, {"migrations/0002_users.sql": "a;\n"}, "a migration")
    write(b, {"migrations/0002_orders.sql": "b;\n"})
    commit(shared, {"migrations/0002_main.sql": "m;\n"}, "main migration")

    report = scan(load_repo(shared))

    assert _conflicts(report.pairs) == {}
    found = {(p.ours, p.theirs): [(m.framework, m.key, m.ours, m.theirs) for m in p.migrations]
             for p in report.pairs if p.migrations}
    assert found == {
        ("a", "b"): [("sql", "2", ("migrations/0002_users.sql",),
                      ("migrations/0002_orders.sql",))],
        ("a", "base:main"): [("sql", "2", ("migrations/0002_users.sql",),
                              ("migrations/0002_main.sql",))],
        ("b", "base:main"): [("sql", "2", ("migrations/0002_orders.sql",),
                              ("migrations/0002_main.sql",))],
    }
    assert report.conflict


def test_alembic_two_heads(repo: Path) -> None:
    head = 'revision = "r1"\ndown_revision = None\n'
    commit(repo, {"alembic/versions/r1_init.py": head}, "alembic base")
    a, b = add_worktree(repo, "a"), add_worktree(repo, "b")
    commit(a, {"alembic/versions/r2_users.py": 'revision = "r2"\ndown_revision = "r1"\n'}, "a")
    commit(b, {"alembic/versions/r3_orders.py":
               'revision: str = "r3"\ndown_revision: str | None = "r1"\n'}, "b")

    (pair,) = [p for p in scan(load_repo(repo)).pairs if p.migrations]

    assert (pair.ours, pair.theirs) == ("a", "b")
    assert pair.migrations[0].describe() == \
        "alembic: both add a revision on parent r1 in alembic/versions"


def test_edit_of_a_path_locked_by_another_worktree(shared: Path) -> None:
    a, b = add_worktree(shared, "a"), add_worktree(shared, "b")
    repo = load_repo(shared)
    add_locks(repo.common_dir, repo.find("a").slug, "a", ["migrations/"], "renumbering")  # type: ignore[union-attr]
    write(b, {"migrations/0002_x.sql": "x;\n"})
    write(a, {"migrations/0003_y.sql": "y;\n"})  # the holder itself may edit

    hits = scan(load_repo(shared)).lock_hits

    assert [(h.worktree, h.path, h.lock.holder, h.lock.reason) for h in hits] == [
        ("b", "migrations/0002_x.sql", "a", "renumbering")]


def test_same_size_edit_right_after_checkout_is_seen(shared: Path) -> None:
    a = add_worktree(shared, "a")
    add_worktree(shared, "b")
    write(a, {"app.py": "ONE\nTWO\nTHREE\n"})  # same size, same second as the checkout

    (side_a, _) = scan(load_repo(shared)).sides

    assert side_a.snapshot.dirty
    assert [c.path for c in side_a.changes] == ["app.py"]


def test_the_kept_index_follows_edits_commits_and_a_busy_lock(shared: Path) -> None:
    a, b = add_worktree(shared, "a"), add_worktree(shared, "b")

    def changed() -> list[str]:
        side = next(s for s in scan(load_repo(shared)).sides if s.name == "a")
        return [c.path for c in side.changes]

    assert changed() == []
    write(a, {"app.py": "ONE\nTWO\nTHREE\n"})
    assert changed() == ["app.py"]
    commit(a, {"new.py": "n\n"}, "a commits")  # the real index changes: copied afresh
    write(a, {"app.py": "one\ntwo\nthree\n"})
    assert changed() == ["new.py"]
    gitdir = Path(git("rev-parse", "--absolute-git-dir", cwd=a))
    assert (gitdir / "branchyard-radar.index").exists()
    with FileLock(str(gitdir / "branchyard-radar.flock")):  # another radar holds it
        write(a, {"untracked.txt": "u\n"})
        assert changed() == ["new.py", "untracked.txt"]
    (gitdir / "branchyard-radar.index.lock").write_text("")  # a git that crashed on it
    assert changed() == ["new.py", "untracked.txt"]
    assert git("status", "--porcelain", cwd=b) == ""


def test_no_worktrees_no_conflicts(repo: Path) -> None:
    report = scan(load_repo(repo))
    assert (report.sides, report.pairs, report.conflict, report.merges_run) == ((), (), False, 0)
