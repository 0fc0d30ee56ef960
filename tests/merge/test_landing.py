"""`merge`: strategies, checks, lockfiles, the base ref and the main checkout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from yard import add_worktree, commit, git, subjects, write

from branchyard.api.info import worktree_env
from branchyard.core.errors import ConflictError, HookError, MergeError
from branchyard.ledger import Ledger, WorktreeRecord
from branchyard.merge.landing import MergeRequest, MergeResult, merge_branch
from branchyard.merge.targets import load_repo

REGEN = "open('deps.lock', 'w').write(open('deps.txt').read().upper())\n"


def _config(repo: Path, checks: str = "[]") -> None:
    """Checks, and a regenerate command that derives deps.lock from deps.txt."""
    commit(repo, {"tools/regen.py": REGEN, "branchyard.toml":
                  f"[merge]\nchecks = {checks}\n"
                  f"lockfiles = {{'deps.lock' = '{sys.executable} tools/regen.py'}}\n"},
           "config")


def test_merge_strategy_makes_a_merge_commit_and_moves_main(shared: Path) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    agent_head = git("rev-parse", "a", cwd=shared)

    result = merge_branch(load_repo(shared), MergeRequest("a"))

    assert subjects(shared)[:2] == ["Merge branch 'a' into main", "a: feature"]
    assert result.new_base == git("rev-parse", "main", cwd=shared)
    assert result.checkout_updated == str(shared)
    assert (shared / "feature.py").read_text() == "a\n"
    assert git("status", "--porcelain", cwd=shared) == ""
    assert git("rev-parse", "a", cwd=shared) == agent_head  # never rewritten
    assert git("worktree", "list", cwd=shared).count("\n") == 1  # scratch removed


@pytest.mark.parametrize(("strategy", "expected"), [
    ("rebase", ["a: two", "a: one", "main moved", "base files"]),
    ("squash", ["a (squashed)", "main moved", "base files"]),
])
def test_rebase_and_squash_give_linear_history(shared: Path, strategy: str,
                                               expected: list[str]) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"one.py": "1\n"}, "a: one")
    commit(a, {"two.py": "2\n"}, "a: two")
    commit(shared, {"main.py": "m\n"}, "main moved")

    merge_branch(load_repo(shared), MergeRequest("a", strategy=strategy))

    assert subjects(shared)[:-1] == expected
    assert git("rev-list", "--merges", "main", cwd=shared) == ""
    assert sorted(p.name for p in shared.glob("*.py")) == ["app.py", "main.py", "one.py",
                                                           "two.py"]


def test_pick_takes_only_the_named_commits(shared: Path) -> None:
    a = add_worktree(shared, "a")
    keep = commit(a, {"one.py": "1\n"}, "a: one")
    commit(a, {"two.py": "2\n"}, "a: two")

    merge_branch(load_repo(shared), MergeRequest("a", picks=(keep,)))

    assert subjects(shared)[:2] == ["a: one", "base files"]
    assert not (shared / "two.py").exists()


def test_red_checks_leave_the_base_alone_and_keep_a_log(shared: Path) -> None:
    _config(shared, checks='["test -f feature.py", "false"]')
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    before = git("rev-parse", "main", cwd=shared)

    with pytest.raises(HookError, match="merge check hook `false` failed") as caught:
        merge_branch(load_repo(shared), MergeRequest("a"))

    assert git("rev-parse", "main", cwd=shared) == before
    log = Path(caught.value.hint.rpartition("the full log is ")[2])
    assert "$ test -f feature.py" in log.read_text()


def test_conflict_names_the_files(shared: Path) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"app.py": "A\n"}, "a edits")
    commit(shared, {"app.py": "M\n"}, "main edits")

    with pytest.raises(ConflictError, match=r"a conflicts with main in: app.py"):
        merge_branch(load_repo(shared), MergeRequest("a", strategy="rebase"))


def test_lockfile_only_conflict_is_regenerated(shared: Path) -> None:
    _config(shared)
    commit(shared, {"deps.txt": "left-pad\n", "deps.lock": "LEFT-PAD\n"}, "deps")
    a = add_worktree(shared, "a")
    commit(a, {"deps.txt": "left-pad\nzod\n", "deps.lock": "stale from a\n"}, "a: zod")
    commit(shared, {"deps.lock": "main rewrote it\n"}, "main relocks")

    result = merge_branch(load_repo(shared), MergeRequest("a"))

    assert result.regenerated == ("deps.lock",)
    assert git("show", "main:deps.lock", cwd=shared) == "LEFT-PAD\nZOD"


def test_dirty_main_checkout_on_the_touched_file_blocks_the_move(shared: Path) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"app.py": "one\ntwo\nthree\nfour\n"}, "a edits")
    write(shared, {"app.py": "local edit\n"})
    before = git("rev-parse", "main", cwd=shared)

    with pytest.raises(MergeError, match="local changes to files the merge changes"):
        merge_branch(load_repo(shared), MergeRequest("a"))

    assert git("rev-parse", "main", cwd=shared) == before
    assert (shared / "app.py").read_text() == "local edit\n"


def test_main_checkout_elsewhere_is_left_alone(shared: Path) -> None:
    commit(shared, {"branchyard.toml": '[project]\nbase = "main"\n'}, "config")
    git("checkout", "-q", "-b", "other", cwd=shared)
    a = add_worktree(shared, "a", base="main")
    commit(a, {"feature.py": "a\n"}, "a: feature")

    result = merge_branch(load_repo(shared), MergeRequest("a"))

    assert result.checkout_updated == ""
    assert not (shared / "feature.py").exists()
    assert git("show", "main:feature.py", cwd=shared) == "a"


def test_update_branch_moves_the_agent_branch_and_its_files(shared: Path) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"one.py": "1\n"}, "a: one")
    commit(shared, {"main.py": "m\n"}, "main moved")

    result = merge_branch(load_repo(shared), MergeRequest("a", strategy="rebase",
                                                          update_branch=True))

    assert result.branch_updated
    assert git("rev-parse", "a", cwd=shared) == git("rev-parse", "main", cwd=shared)
    assert (a / "main.py").read_text() == "m\n"
    assert git("status", "--porcelain", cwd=a) == ""


def test_already_merged_is_not_an_error(shared: Path) -> None:
    add_worktree(shared, "a")
    tip = git("rev-parse", "main", cwd=shared)

    result = merge_branch(load_repo(shared), MergeRequest("a", update_branch=True))

    assert result == MergeResult(
        branch="a", base="main", strategy="merge", old_base=tip, new_base=tip,
        regenerated=(), checks=(), log=result.log, already_merged=True,
        checkout_updated="", branch_updated=False, branch_note="", left_behind=False)


def test_a_merge_reports_its_checks_the_checkout_and_the_branch_it_moved(
        shared: Path) -> None:
    _config(shared, checks="['true']")
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    (a / "notes.txt").write_text("not committed\n")
    old = git("rev-parse", "main", cwd=shared)

    result = merge_branch(load_repo(shared), MergeRequest("a", update_branch=True))

    new = git("rev-parse", "main", cwd=shared)
    assert result == MergeResult(
        branch="a", base="main", strategy="merge", old_base=old, new_base=new,
        regenerated=(), checks=("true",), log=result.log, already_merged=False,
        checkout_updated=str(shared), branch_updated=True, branch_note="",
        left_behind=True)
    assert git("rev-parse", "a", cwd=shared) == new


def test_a_branch_or_base_that_does_not_exist_is_named(shared: Path) -> None:
    with pytest.raises(MergeError, match="there is no branch `nope`") as caught:
        merge_branch(load_repo(shared), MergeRequest("nope"))
    assert caught.value.hint == "name a local branch (see `git branch`)"
    git("branch", "lonely", cwd=shared)
    commit(shared, {"branchyard.toml": "[project]\nbase = \"trunk\"\n"}, "base: trunk")

    with pytest.raises(MergeError, match="the base branch `trunk` does not exist") as caught:
        merge_branch(load_repo(shared), MergeRequest("lonely"))
    assert caught.value.hint == "set `[project] base` in branchyard.toml to an existing branch"


def test_project_git_hooks_do_not_run_in_the_scratch_worktree(shared: Path) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    for name in ("pre-commit", "post-checkout"):
        hook = shared / ".git" / "hooks" / name
        hook.write_text("#!/bin/sh\necho ran >> \"$HOME/hook-ran\"\nexit 1\n")
        hook.chmod(0o755)

    merge_branch(load_repo(shared), MergeRequest("a", strategy="squash"))

    assert not (Path.home() / "hook-ran").exists()
    assert subjects(shared)[0] == "a (squashed)"


def test_merging_the_base_into_itself_is_refused(shared: Path) -> None:
    with pytest.raises(MergeError, match="`main` is the base branch itself"):
        merge_branch(load_repo(shared), MergeRequest("main"))


def test_checks_get_the_worktree_env_and_no_git_redirection(
        shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen = shared.parent / "seen.txt"
    check = f'echo "$APP_PORT $BRANCHYARD_MERGE_BRANCH ${{GIT_INDEX_FILE:-unset}}" > {seen}'
    commit(shared, {"branchyard.toml": f"[merge]\nchecks = ['{check}']\n"}, "config")
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    common = load_repo(shared).common_dir
    with Ledger(common).update() as state:
        state.worktrees["a_slug"] = WorktreeRecord("a_slug", "a", "a", 1, str(a),
                                                   env={"APP_PORT": "41234"})
    monkeypatch.setenv("GIT_INDEX_FILE", str(shared.parent / "elsewhere"))

    merge_branch(load_repo(shared), MergeRequest("a"), worktree_env)

    monkeypatch.delenv("GIT_INDEX_FILE")
    assert seen.read_text() == "41234 a unset\n"


def test_a_base_that_moves_during_the_checks_gets_the_merge_rebuilt_on_top(
        shared: Path) -> None:
    flag = shared.parent / "moved-once"
    check = (f"test -e {flag} || (touch {flag} && "
             f"git -C {shared} commit -q --allow-empty -m concurrent)")
    commit(shared, {"branchyard.toml": f"[merge]\nchecks = ['{check}']\n"}, "config")
    a = add_worktree(shared, "a")
    commit(a, {"feature.py": "a\n"}, "a: feature")

    result = merge_branch(load_repo(shared), MergeRequest("a"))

    assert git("log", "--first-parent", "--format=%s", "-3", "main", cwd=shared).splitlines() \
        == ["Merge branch 'a' into main", "concurrent", "config"]
    assert result.old_base == git("rev-parse", "main^", cwd=shared)
    assert "$ test -e" in Path(result.log).read_text()


@pytest.mark.parametrize("strategy", ["rebase", "squash"])
def test_lockfile_conflicts_while_replaying_each_commit(shared: Path, strategy: str) -> None:
    _config(shared)
    commit(shared, {"deps.txt": "left-pad\n", "deps.lock": "LEFT-PAD\n"}, "deps")
    a = add_worktree(shared, "a")
    commit(a, {"deps.txt": "left-pad\nzod\n", "deps.lock": "a one\n"}, "a: zod")
    commit(a, {"deps.txt": "left-pad\nzod\nyup\n", "deps.lock": "a two\n"}, "a: yup")
    commit(shared, {"deps.lock": "main relocked\n"}, "main relocks")

    result = merge_branch(load_repo(shared), MergeRequest("a", strategy=strategy))

    assert result.regenerated == ("deps.lock",)
    assert git("show", "main:deps.lock", cwd=shared) == "LEFT-PAD\nZOD\nYUP"
    expected = ["a: yup", "a: zod"] if strategy == "rebase" else ["a (squashed)"]
    assert subjects(shared)[:len(expected) + 1] == [*expected, "main relocks"]


def test_merge_and_the_queue_take_any_name_of_the_worktree(shared: Path) -> None:
    a = add_worktree(shared, "feature/a")
    commit(a, {"feature.py": "a\n"}, "a: feature")
    with Ledger(load_repo(shared).common_dir).update() as state:
        state.worktrees["feature-a_1"] = WorktreeRecord(
            slug="feature-a_1", subdomain="fa", branch="feature/a", index=1, path=str(a))
    repo = load_repo(shared)
    for name in ("feature/a", "feature-a_1", "fa", a.name, str(a)):
        found = repo.find(name)
        assert found is not None and found.branch == "feature/a", name

    result = merge_branch(repo, MergeRequest("fa"))  # the subdomain

    assert result.branch == "feature/a"
    assert git("show", "main:feature.py", cwd=shared) == "a"
