"""Which processes belong to a worktree: the `run` record first, else the cwd.

Real processes throughout: `branchyard run` as a real wrapper process, real
children, a real process table.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from branchyard import api
from branchyard.ledger import Ledger, ProcessRecord
from tests.conftest import commit_config, git

CONFIG = '[project]\nname = "shop"\n[ports]\nnames = ["PORT"]\n'
DEADLINE = 15.0


@pytest.fixture
def app(repo: Path) -> Path:
    return commit_config(repo, CONFIG)




def branchyard_run(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "branchyard", "run", *args], cwd=cwd,
                            stdin=subprocess.DEVNULL)


def recorded_child(app: Path, slug: str, wrapper: subprocess.Popen[bytes]) -> int:
    """The pid `run` recorded for ``slug`` (polled: the wrapper records it once
    the child has started)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        assert wrapper.poll() is None, f"`branchyard run` ended with {wrapper.returncode}"
        procs = Ledger(app / ".git").read().worktrees[slug].processes
        if procs:
            return procs[0].pid
        time.sleep(0.05)
    raise AssertionError("`branchyard run` recorded no process")


def children_of(pid: int) -> list[int]:
    import psutil

    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        found = [c.pid for c in psutil.Process(pid).children(recursive=True)]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"process {pid} started no child")


def alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def gone_soon(pid: int) -> bool:
    deadline = time.monotonic() + DEADLINE
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


def views(app: Path) -> dict[str, api.WorktreeView]:
    return {str(v.frozen_branch or v.branch): v for v in api.list_worktrees(app)}


def test_stop_main_spares_a_run_started_from_main_for_another_worktree(
        app: Path, started: list[subprocess.Popen[bytes]]) -> None:
    slug = api.up(api.UpRequest("feat/a", cwd=app)).setup.slug
    wrapper = branchyard_run(app, "feat/a", "--", "sleep", "60")  # cwd: main
    started.append(wrapper)
    child = recorded_child(app, slug, wrapper)

    stopped = api.stop_worktree(app, name="main", grace=0.5)

    assert stopped.stopped == ()
    assert alive(wrapper.pid) and alive(child)
    shown = views(app)
    assert shown["main"].processes == []  # the wrapper is branchyard's, not main's
    assert shown["feat/a"].processes == [child]
    result = api.stop_worktree(app, name="feat/a", grace=0.5)
    assert [p.pid for p in result.stopped] == [child]
    assert wrapper.wait(DEADLINE) == 128 + 15  # it ends once its child has ended
    assert Ledger(app / ".git").read().worktrees[slug].processes == []


def test_a_run_that_moves_into_main_still_belongs_to_its_worktree(
        app: Path, started: list[subprocess.Popen[bytes]]) -> None:
    slug = api.up(api.UpRequest("feat/a", cwd=app)).setup.slug
    wt = Path(api.worktree_path("feat/a", app))
    # the shell is recorded; the sleep it starts is its child, with main as its cwd
    wrapper = branchyard_run(wt, "--", "sh", "-c", f"cd {app} && sleep 60; true")
    started.append(wrapper)
    shell = recorded_child(app, slug, wrapper)
    [server] = children_of(shell)

    assert api.stop_worktree(app, name="main", grace=0.5).stopped == ()
    assert alive(server)
    assert sorted(views(app)["feat/a"].processes) == sorted([shell, server])
    assert views(app)["main"].processes == []
    api.down(api.DownRequest("feat/a", force=True, cwd=app))
    assert gone_soon(server) and gone_soon(shell)
    assert wrapper.wait(DEADLINE) != 0


def test_ls_counts_a_run_once_not_its_wrapper(
        app: Path, started: list[subprocess.Popen[bytes]]) -> None:
    slug = api.up(api.UpRequest("feat/a", cwd=app)).setup.slug
    wt = Path(api.worktree_path("feat/a", app))
    wrapper = branchyard_run(wt, "--", "sleep", "60")  # wrapper and child both in feat/a
    started.append(wrapper)
    child = recorded_child(app, slug, wrapper)

    shown = views(app)
    assert shown["feat/a"].processes == [child]
    assert shown["main"].processes == []
    assert api.status_of(app, name="feat/a").processes == [child]


def test_a_missing_worktree_shows_its_server_and_stop_ends_it(
        app: Path, started: list[subprocess.Popen[bytes]]) -> None:
    api.up(api.UpRequest("feat/gone", cwd=app))
    wt = Path(api.worktree_path("feat/gone", app))
    server = subprocess.Popen(["sleep", "60"], cwd=wt)
    started.append(server)
    shutil.rmtree(wt)  # removed behind branchyard's back; the server runs on

    shown = views(app)["feat/gone"]
    assert (shown.state, shown.processes) == ("missing", [server.pid])
    assert api.status_of(app, name="feat/gone").processes == [server.pid]
    result = api.stop_worktree(app, name="feat/gone", grace=0.5)
    assert [p.pid for p in result.stopped] == [server.pid]
    assert server.wait(DEADLINE) is not None


def test_down_of_a_missing_worktree_stops_its_server(
        app: Path, started: list[subprocess.Popen[bytes]]) -> None:
    api.up(api.UpRequest("feat/gone", cwd=app))
    wt = Path(api.worktree_path("feat/gone", app))
    server = subprocess.Popen(["sleep", "60"], cwd=wt)
    started.append(server)
    shutil.rmtree(wt)

    result = api.down(api.DownRequest("feat/gone", cwd=app))

    assert result.was_missing and [p.pid for p in result.stopped] == [server.pid]
    assert server.wait(DEADLINE) is not None  # its port is free for someone else now


def test_a_record_whose_pid_was_reused_claims_nothing(
        app: Path, started: list[subprocess.Popen[bytes]]) -> None:
    slug = api.up(api.UpRequest("feat/a", cwd=app)).setup.slug
    other = subprocess.Popen(["sleep", "60"], cwd=app)  # main's, with a recorded pid
    started.append(other)
    with Ledger(app / ".git").update() as state:
        state.worktrees[slug].processes.append(
            ProcessRecord(other.pid, ["old"], time.time() - 3600, other.pid,
                          create_time=time.time() - 3600))

    shown = views(app)
    assert (shown["main"].processes, shown["feat/a"].processes) == ([other.pid], [])
    assert api.stop_worktree(app, name="feat/a", grace=0.5).stopped == ()
    assert alive(other.pid)
    assert [p.pid for p in api.stop_worktree(app, name="main", grace=0.5).stopped] == \
        [other.pid]


def test_stop_main_leaves_a_worktree_nested_inside_it(
        app: Path, started: list[subprocess.Popen[bytes]]) -> None:
    nested = app / ".worktrees" / "n"
    git("worktree", "add", "-q", "-b", "nested", str(nested), cwd=app)
    server = subprocess.Popen(["sleep", "60"], cwd=nested)
    started.append(server)

    assert api.stop_worktree(app, name="main", grace=0.5).stopped == ()
    assert alive(server.pid)
    assert [p.pid for p in api.stop_worktree(app, name="nested", grace=0.5).stopped] == \
        [server.pid]


def test_stop_forgets_records_of_runs_that_ended_and_keeps_live_ones(
        app: Path, started: list[subprocess.Popen[bytes]]) -> None:
    import psutil

    slug = api.up(api.UpRequest("feat/a", cwd=app)).setup.slug
    wt = Path(api.worktree_path("feat/a", app))
    wrapper = branchyard_run(wt, "--", "sleep", "60")
    started.append(wrapper)
    live = recorded_child(app, slug, wrapper)
    ended = subprocess.Popen(["sleep", "0"], cwd=wt)
    created = psutil.Process(ended.pid).create_time()
    ended.wait()  # as if its wrapper had been killed with SIGKILL: never forgotten
    with Ledger(app / ".git").update() as state:
        state.worktrees[slug].processes.append(
            ProcessRecord(ended.pid, ["sleep", "0"], time.time(), ended.pid, created))

    assert api.stop_worktree(app, name="main", grace=0.5).stopped == ()

    assert [p.pid for p in Ledger(app / ".git").read().worktrees[slug].processes] == [live]


def test_ls_never_counts_the_git_it_runs_itself(app: Path) -> None:
    api.up(api.UpRequest("feat/a", cwd=app))
    wt = Path(api.worktree_path("feat/a", app))
    # a git command of this very process, still running in the worktree while the
    # process table is read (as ls's own `git status` calls are)
    own_git = subprocess.Popen(["git", "cat-file", "--batch"], cwd=wt,
                               stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        assert views(app)["feat/a"].processes == []
    finally:
        assert own_git.stdin is not None
        own_git.stdin.close()
        own_git.wait(DEADLINE)


def test_ls_never_counts_its_own_dirty_checks(app: Path) -> None:
    # a git command of ls between fork and exec (or ending) shows no git command
    # line: one seen by the process scan was taken for its worktree's process
    for i in range(12):
        git("worktree", "add", "-q", "-b", f"w{i}", str(app.parent / f"w{i}"), cwd=app)
    for _ in range(40):
        assert {path: v.processes for path, v in views(app).items() if v.processes} == {}
