"""The local merge queue: order, failures, crash recovery, watching."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from yard import add_worktree, commit, git, subjects

from branchyard.core.errors import MergeError
from branchyard.ledger import Ledger
from branchyard.merge.queue import (
    FAILED,
    MERGED,
    QueueEntry,
    RunOptions,
    _store,
    add_entries,
    read_queue,
    remove_entries,
    run_queue,
)
from branchyard.merge.targets import load_repo


def _loader(repo: Path):  # type: ignore[no-untyped-def]
    return lambda: load_repo(repo)


def test_add_keeps_order_and_skips_a_waiting_duplicate(repo: Path) -> None:
    common = load_repo(repo).common_dir
    first = add_entries(common, ["a", "b"])
    again = add_entries(common, ["b", "c"], strategy="rebase")

    assert [(e.id, e.branch, e.strategy) for e in read_queue(common)] == [
        (1, "a", ""), (2, "b", ""), (3, "c", "rebase")]
    assert again[0] == first[1]
    assert [e.branch for e in remove_entries(common, ["2", "c"])] == ["b", "c"]
    assert [e.branch for e in read_queue(common)] == ["a"]
    assert remove_entries(common, ["done"]) == ()  # nothing finished yet


def test_run_merges_in_order_and_goes_on_after_a_failure(shared: Path) -> None:
    a, b, c = (add_worktree(shared, n) for n in ("a", "b", "c"))
    commit(a, {"app.py": "A\n"}, "a edits app")
    commit(b, {"app.py": "B\n"}, "b edits app")  # conflicts once a is in
    commit(c, {"c.py": "c\n"}, "c adds")
    common = load_repo(shared).common_dir
    add_entries(common, ["a", "b", "c"], strategy="rebase")
    seen: list[tuple[str, str]] = []

    done = run_queue(_loader(shared), RunOptions(on_entry=lambda e: seen.append(
        (e.branch, e.state))))

    assert [(e.branch, e.state) for e in done] == [("a", MERGED), ("b", FAILED), ("c", MERGED)]
    assert seen == [("a", "running"), ("a", MERGED), ("b", "running"), ("b", FAILED),
                    ("c", "running"), ("c", MERGED)]
    failed = done[1]
    assert failed.reason == "b conflicts with main in: app.py"
    assert "CONFLICT" in Path(failed.log).read_text()
    assert subjects(shared) == ["c adds", "a edits app", "base files", "initial"]
    assert read_queue(common) == done
    assert [e.branch for e in remove_entries(common, ["done"])] == ["a", "b", "c"]


def test_an_entry_left_running_by_a_crash_is_finished_without_merging_twice(
        shared: Path) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"a.py": "a\n"}, "a adds")
    common = load_repo(shared).common_dir
    (entry,) = add_entries(common, ["a"], strategy="rebase")
    run_queue(_loader(shared))
    after = git("rev-parse", "main", cwd=shared)
    # The runner died after moving the base and before recording it:
    with Ledger(common).update() as state:
        _store(state, [replace(entry, state="running", log=str(shared.parent / "x.log"))])

    (done,) = run_queue(_loader(shared))

    assert (done.state, done.reason) == (MERGED, "already in the base")
    assert git("rev-parse", "main", cwd=shared) == after


def test_one_runner_at_a_time_and_watch_picks_up_new_entries(shared: Path) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"a.py": "a\n"}, "a adds")
    common = load_repo(shared).common_dir
    stop = threading.Event()
    finished: list[QueueEntry] = []
    options = RunOptions(watch=True, poll=0.05, stop=stop,
                         on_entry=lambda e: finished.append(e) if e.state == MERGED else None)
    runner = threading.Thread(target=lambda: run_queue(_loader(shared), options))
    runner.start()
    try:
        deadline = time.monotonic() + 5
        while not (common / "branchyard" / "queue.lock").exists() and time.monotonic() < deadline:
            stop.wait(0.01)
        with pytest.raises(MergeError, match="already processing the queue"):
            run_queue(_loader(shared))
        add_entries(common, ["a"])
        while not finished and time.monotonic() < deadline:
            stop.wait(0.01)
    finally:
        stop.set()
        runner.join(10)
    assert [(e.branch, e.state) for e in finished] == [("a", MERGED)]


def _queue_run_crashing_at(repo: Path, point: str) -> int:
    env = {**os.environ, "BRANCHYARD_FAULT": point}
    done = subprocess.run([sys.executable, "-m", "branchyard", "queue", "run"], cwd=repo,
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode


@pytest.mark.parametrize(("point", "base_moved"), [("merge.built", False),
                                                   ("merge.advanced", True)])
def test_a_killed_runner_leaves_the_base_before_or_after_the_entry(
        shared: Path, point: str, base_moved: bool) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"a.py": "a\n"}, "a adds")
    common = load_repo(shared).common_dir
    add_entries(common, ["a"], strategy="rebase")
    before = git("rev-parse", "main", cwd=shared)

    assert _queue_run_crashing_at(shared, point) == -signal.SIGKILL

    after = git("rev-parse", "main", cwd=shared)
    assert (after != before) is base_moved
    if base_moved:  # exactly the entry, on top of the old base
        assert git("rev-parse", "main^", cwd=shared) == before
        assert subjects(shared)[0] == "a adds"
    assert [e.state for e in read_queue(common)] == ["running"]
    assert len(list((common / "branchyard" / "scratch").glob("merge-*"))) == (
        0 if base_moved else 2)  # the scratch worktree and its lock file

    (done,) = run_queue(_loader(shared))

    assert done.state == MERGED
    assert done.reason == ("already in the base" if base_moved else "")
    assert subjects(shared)[:2] == ["a adds", "base files"]
    assert list((common / "branchyard" / "scratch").glob("merge-*")) == []
    assert git("worktree", "list", cwd=shared).count("\n") == 1


def test_queue_run_watch_from_the_command_line_until_interrupted(shared: Path) -> None:
    a = add_worktree(shared, "a")
    commit(a, {"a.py": "a\n"}, "a adds")
    common = load_repo(shared).common_dir
    runner = subprocess.Popen([sys.executable, "-m", "branchyard", "queue", "run", "--watch",
                               "--poll", "0.05"], cwd=shared, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        add_entries(common, ["a"])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and [e.state for e in read_queue(common)] != [MERGED]:
            threading.Event().wait(0.05)
        assert [e.state for e in read_queue(common)] == [MERGED]
        assert runner.poll() is None  # still watching
    finally:
        runner.send_signal(signal.SIGINT)
        try:
            _, err = runner.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # deaf to SIGINT: never leave it running
            runner.kill()
            runner.communicate()
            raise
    assert runner.returncode == 130
    assert "queue: a merged" in err
    assert subjects(shared)[:2] == ["Merge branch 'a' into main", "a adds"]
