"""The radar's shortcut never calls a conflicting pair clean."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from yard import add_worktree, commit, git

from branchyard.merge.changes import Change
from branchyard.merge.overlap import footprint, surely_clean
from branchyard.merge.radar import _surely_clean, merge_tree, scan
from branchyard.merge.targets import load_repo

FILES = ["a/x.txt", "a/y.txt", "a/b/z.txt", "c.txt", "d/e.txt"]


def _fp(*changes: tuple[str, str], fork: str = "f", commits: tuple[str, ...] = ("c1",)):  # type: ignore[no-untyped-def]
    return footprint(fork, commits, [Change(s, p, "") for s, p in changes])


def test_rules() -> None:
    one = _fp(("M", "a/x.txt"))
    assert surely_clean(one, _fp(("A", "a/new.txt"), commits=("c2",)))
    assert not surely_clean(one, _fp(("M", "a/x.txt"), commits=("c2",)))  # same path
    assert not surely_clean(_fp(("A", "a")), _fp(("A", "a/new.txt"), commits=("c2",)))
    assert not surely_clean(one, _fp(("D", "c.txt"), commits=("c2",)))  # renames possible
    assert not surely_clean(one, _fp(("A", "q.txt"), fork="g", commits=("c2",)))
    assert not surely_clean(one, _fp(("A", "q.txt")))  # a shared commit: later merge base


def _random_edit(root: Path, rng: random.Random, n: int) -> None:
    for _ in range(rng.randint(1, 3)):
        path = root / rng.choice([*FILES, f"a/new{rng.randint(0, 2)}.txt", "a/b", "c.txt/sub"])
        roll = rng.random()
        if roll < 0.2 and path.is_file():
            path.unlink()
        elif not path.is_dir() and not any(p.is_file() for p in path.parents
                                           if root in p.parents):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"edit {n} {rng.random()}\n")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shortcut_agrees_with_merge_tree(repo: Path, seed: int) -> None:
    rng = random.Random(seed)
    commit(repo, {f: f"{f}\n" for f in FILES}, "files")
    for n in range(6):
        wt = add_worktree(repo, f"w{n}")
        _random_edit(wt, rng, n)
        if rng.random() < 0.5:
            git("add", "-A", cwd=wt)
            git("commit", "-q", "--allow-empty", "-m", f"w{n}", cwd=wt)

    report = scan(load_repo(repo))

    by_name = {s.name: s for s in report.sides}
    shortcut = 0
    for pair in report.pairs:
        a = by_name[pair.ours]
        b = None if pair.against_base else by_name[pair.theirs]
        if _surely_clean(a, b):
            shortcut += 1
            other = b.snapshot.commit if b else a.base_commit
            assert merge_tree(a.snapshot.commit, other, load_repo(repo).common_dir) == ((), "")
    assert shortcut > 0
