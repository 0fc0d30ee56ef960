from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from depskit import Worktrees, git, make_worktrees
from nodetree import generate_node_modules

from branchyard.core.errors import HookError, ProviderError
from branchyard.core.events import NullReporter
from branchyard.deps.install import Runner
from branchyard.deps.lockstamp import STAMP_NAME, lockfile_hash, read_stamp, write_stamp
from branchyard.deps.reuse import DepsTarget, Session, decide, ensure_deps, tree_state

INSTALL = "mkdir -p node_modules && echo installed > node_modules/marker"


class Recorder(NullReporter):
    def __init__(self) -> None:
        self.messages: list[str] = []
        self.progressed: list[tuple[float, float, str]] = []
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.messages.append(text)

    def progress(self, done: float, total: float, unit: str = "") -> None:
        self.progressed.append((done, total, unit))

    def output(self, line: str) -> None:
        self.lines.append(line)


def _session(reporter: Recorder | None = None) -> Session:
    rec = reporter or Recorder()
    return Session(Runner(env=dict(os.environ), on_line=rec.output), reporter=rec)


def _target(wt: Worktrees, **kw: object) -> DepsTarget:
    args: dict[str, object] = {"dir": "node_modules", "worktree": wt.worktree,
                               "main": wt.main, "lockfiles": ("package-lock.json",),
                               "install": INSTALL}
    args.update(kw)
    return DepsTarget(**args)  # type: ignore[arg-type]


def test_identical_lockfiles_reuse_the_main_tree_once(trees: Worktrees) -> None:
    rec = Recorder()
    first = ensure_deps(_target(trees), _session(rec))
    again = ensure_deps(_target(trees), _session())

    assert (first.changed, first.action, first.method) == (True, "reused", "copy")
    assert first.stats is not None and first.stats.files == 600
    assert not (trees.worktree / "node_modules" / "marker").exists()  # no install ran
    assert read_stamp(trees.worktree / "node_modules").lock_hash == lockfile_hash(  # type: ignore[union-attr]
        trees.main, ("package-lock.json",))
    assert (again.changed, again.action) == (False, "kept")
    assert rec.progressed[-1][0] == rec.progressed[-1][1] > 0
    assert any("reusing the main worktree's tree by copy" in m for m in rec.messages)
    assert not (trees.main / "node_modules" / STAMP_NAME).exists()


def test_a_changed_lockfile_runs_the_install_command(trees: Worktrees) -> None:
    (trees.worktree / "package-lock.json").write_text("lock v2\n")

    outcome = ensure_deps(_target(trees), _session())

    assert (outcome.action, outcome.method) == ("installed", "install")
    assert "differ" in outcome.reason
    assert (trees.worktree / "node_modules" / "marker").read_text() == "installed\n"


def test_a_lockfile_change_after_reuse_updates_the_tree_in_place(trees: Worktrees) -> None:
    ensure_deps(_target(trees), _session())
    (trees.worktree / "package-lock.json").write_text("lock v2\n")

    outcome = ensure_deps(_target(trees), _session())

    assert outcome.action == "updated"
    assert outcome.reason == "the lockfiles changed since it was made"
    assert (trees.worktree / "node_modules" / "marker").exists()
    assert (trees.worktree / "node_modules" / "pkg1" / "package.json").exists()  # kept


def test_a_tree_branchyard_did_not_make_is_left_alone(trees: Worktrees) -> None:
    (trees.worktree / "node_modules").mkdir()
    (trees.worktree / "node_modules" / "mine").write_text("user data")

    outcome = ensure_deps(_target(trees), _session())

    assert (outcome.changed, outcome.action) == (False, "foreign")
    assert tree_state(_target(trees)) == "foreign"
    assert os.listdir(trees.worktree / "node_modules") == ["mine"]


def test_a_failing_smoke_check_falls_back_to_installing_and_says_why(trees: Worktrees) -> None:
    rec = Recorder()
    outcome = ensure_deps(_target(trees, smoke="test -f node_modules/marker"), _session(rec))

    assert outcome.action == "installed"
    assert outcome.reason.startswith("the smoke check failed after reuse: `test -f")
    assert not (trees.worktree / "node_modules" / "pkg1").exists()  # the reused tree went
    assert (trees.main / "node_modules" / "pkg1" / "package.json").exists()
    assert any("installing (the smoke check failed" in m for m in rec.messages)


def test_a_smoke_check_failing_after_install_is_an_error(trees: Worktrees) -> None:
    with pytest.raises(ProviderError, match="smoke check fails after a fresh install"):
        ensure_deps(_target(trees, smoke="exit 3"), _session())


def test_installing_without_an_install_command_says_what_to_configure(
        trees: Worktrees) -> None:
    (trees.worktree / "package-lock.json").write_text("lock v2\n")
    with pytest.raises(ProviderError, match="no install command") as err:
        ensure_deps(_target(trees, install=""), _session())
    assert "[[deps]]" in err.value.hint


def test_a_failed_install_is_retried_by_the_next_setup(trees: Worktrees) -> None:
    (trees.worktree / "package-lock.json").write_text("lock v2\n")
    half = "mkdir -p node_modules/half && echo boom && exit 1"
    with pytest.raises(HookError, match="boom"):
        ensure_deps(_target(trees, install=half), _session())

    assert tree_state(_target(trees)) == "incomplete"
    outcome = ensure_deps(_target(trees), _session())

    assert outcome.action == "updated"
    assert (trees.worktree / "node_modules" / "marker").exists()
    assert tree_state(_target(trees)) == "current"
    (trees.worktree / "package-lock.json").write_text("lock v3\n")
    assert tree_state(_target(trees)) == "stale"


def test_no_main_tree_or_no_lockfile_means_install(tmp_path: Path) -> None:
    wt = make_worktrees(tmp_path)
    assert tree_state(_target(wt)) == "missing"
    assert decide(_target(wt)).reason == "the main worktree has no node_modules to reuse"
    assert decide(_target(wt, lockfiles=("yarn.lock",))).strategy == "install"
    assert decide(_target(wt, lockfiles=())).reason.startswith("no lockfiles configured")
    assert decide(_target(wt, mode="install")).reason == "mode = install"


def test_auto_links_a_pnpm_store_but_copies_npm_trees(tmp_path: Path) -> None:
    wt = make_worktrees(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    pkg = wt.main / "node_modules" / ".pnpm" / "a@1.0.0" / "node_modules" / "a"
    pkg.mkdir(parents=True)
    (store / "blob").write_text("module.exports = 1\n")
    os.link(store / "blob", pkg / "index.js")
    (wt.main / "node_modules" / ".modules.yaml").write_text("layoutVersion: 5\n")
    (wt.main / "node_modules" / "a").symlink_to(".pnpm/a@1.0.0/node_modules/a")

    outcome = ensure_deps(_target(wt), _session())

    reused = wt.worktree / "node_modules"
    assert outcome.method == "shared"
    assert os.stat(reused / "a" / "index.js").st_ino == os.stat(store / "blob").st_ino
    assert os.stat(reused / ".modules.yaml").st_ino != os.stat(
        wt.main / "node_modules" / ".modules.yaml").st_ino


def test_hardlink_mode_links_every_file(trees: Worktrees) -> None:
    outcome = ensure_deps(_target(trees, mode="hardlink"), _session())
    pkg = "node_modules/pkg1/package.json"
    assert outcome.method == "hardlink"
    assert os.stat(trees.worktree / pkg).st_ino == os.stat(trees.main / pkg).st_ino


def test_the_stamp_never_writes_through_a_hardlink(tmp_path: Path) -> None:
    main, wt = tmp_path / "main", tmp_path / "wt"
    main.mkdir()
    wt.mkdir()
    write_stamp(main, "aaa", "reused", "copy")
    os.link(main / STAMP_NAME, wt / STAMP_NAME)
    write_stamp(wt, "bbb", "reused", "hardlink")
    assert read_stamp(main).lock_hash == "aaa"  # type: ignore[union-attr]
    assert read_stamp(wt).lock_hash == "bbb"  # type: ignore[union-attr]


def test_lockfile_hash_follows_content_and_names(tmp_path: Path) -> None:
    (tmp_path / "a.lock").write_text("x")
    first = lockfile_hash(tmp_path, ("a.lock",))
    assert len(first) == 64
    assert lockfile_hash(tmp_path, ("b.lock",)) == ""  # none exists: nothing to compare
    (tmp_path / "b.lock").write_text("x")
    assert lockfile_hash(tmp_path, ("b.lock",)) != first  # same bytes, other name
    (tmp_path / "a.lock").write_text("y")
    assert lockfile_hash(tmp_path, ("a.lock",)) != first


def test_the_main_worktree_and_paths_outside_are_refused(trees: Worktrees) -> None:
    with pytest.raises(ProviderError, match="is the main worktree"):
        ensure_deps(_target(trees, worktree=trees.main), _session())
    with pytest.raises(ProviderError, match="relative path inside"):
        ensure_deps(_target(trees, dir="../escape"), _session())


def test_a_virtualenv_is_recreated_not_copied(tmp_path: Path) -> None:
    wt = make_worktrees(tmp_path)
    install = f"{sys.executable} -m venv --without-pip .venv"
    subprocess.run(install.split(), cwd=wt.main, check=True, timeout=60)
    target = _target(wt, dir=".venv", lockfiles=("package-lock.json",), install=install)

    outcome = ensure_deps(target, _session())

    assert (outcome.action, outcome.method) == ("recreated", "install")
    activate = (wt.worktree / ".venv" / "bin" / "activate").read_text()
    assert str(wt.worktree) in activate and str(wt.main / ".venv") not in activate


def test_across_filesystems_even_hardlink_mode_copies(tmp_path: Path) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem to copy onto")
    wt = make_worktrees(tmp_path)
    generate_node_modules(wt.main / "node_modules", files=200)
    with tempfile.TemporaryDirectory(dir=shm) as other:
        worktree = Path(other) / "wt"
        git("worktree", "add", "-q", "-b", "elsewhere", str(worktree), cwd=wt.main)
        target = _target(Worktrees(wt.main, worktree), mode="hardlink")

        outcome = ensure_deps(target, _session())

        assert outcome.method == "copy"
        assert (worktree / "node_modules" / "pkg1" / "package.json").exists()
        git("worktree", "remove", "--force", str(worktree), cwd=wt.main)


def test_workspace_entries_reuse_alike_and_leave_the_root_install_alone(
        trees: Worktrees) -> None:
    generate_node_modules(trees.main / "packages" / "web" / "node_modules", files=100)
    both = ("mkdir -p node_modules packages/web/node_modules && "
            "touch node_modules/marker packages/web/node_modules/marker")
    root = _target(trees, install=both)
    web = _target(trees, dir="packages/web/node_modules", install=both)

    assert [ensure_deps(t, _session()).action for t in (root, web)] == ["reused", "reused"]

    for tree in ("node_modules", "packages/web/node_modules"):  # the branch moves on
        subprocess.run(["rm", "-rf", str(trees.worktree / tree)], check=True)
    (trees.worktree / "package-lock.json").write_text("lock v2\n")
    assert [ensure_deps(t, _session()).action for t in (root, web)] == [
        "installed", "foreign"]
    assert (trees.worktree / "packages" / "web" / "node_modules" / "marker").exists()
