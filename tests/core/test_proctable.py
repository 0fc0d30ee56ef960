"""The process table read from /proc gives psutil's values (the ledger's start
times are psutil's), and the root lookup of a scan gives the innermost root as
the one-by-one test does. Real processes throughout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from branchyard.system import processes, proctable

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")




def psutil_row(pid: int) -> proctable.Row:
    info = psutil.Process(pid).as_dict(["ppid", "name", "cmdline", "cwd", "create_time"])
    return proctable.Row(pid, info["ppid"], info["name"], info["cwd"] or "",
                         info["create_time"], tuple(info["cmdline"] or ()))


def test_a_scan_reads_what_psutil_reads(tmp_path: Path,
                                        started: list[subprocess.Popen[bytes]]) -> None:
    work = tmp_path / "work"
    gone = tmp_path / "gone"
    work.mkdir()
    gone.mkdir()
    sleeper = shutil.which("sleep")
    assert sleeper
    long_name = tmp_path / "a-sleeper-with-a-long-name"  # the kernel keeps 15 bytes
    shutil.copy(sleeper, long_name)
    started.append(subprocess.Popen([str(long_name), "60"], cwd=work))
    started.append(subprocess.Popen([sleeper, "60"], cwd=gone))
    # one argument holding spaces: psutil splits it as a rewritten title
    started.append(subprocess.Popen(["a title with spaces"], executable=sys.executable,
                                    stdin=subprocess.PIPE, cwd=work))
    gone.rmdir()
    table = proctable.read_table()
    assert list(table) == sorted(table)
    for proc in started:
        row = proctable.completed(table[proc.pid])
        assert row == psutil_row(proc.pid)
    long_row = proctable.completed(table[started[0].pid])
    assert (long_row.name, long_row.cwd) == ("a-sleeper-with-a-long-name", str(work))
    assert table[started[1].pid].cwd == str(gone)
    assert proctable.completed(table[started[2].pid]).cmdline == ("a", "title", "with",
                                                                 "spaces")


def test_the_command_line_is_read_only_when_asked_but_for_our_own_children(
        tmp_path: Path, started: list[subprocess.Popen[bytes]]) -> None:
    started.append(subprocess.Popen(["sleep", "60"], cwd=tmp_path))
    table = proctable.read_table()
    assert table[started[0].pid].cmdline == ("sleep", "60")  # our child: read at once
    assert table[os.getppid()].cmdline is None
    assert proctable.completed(table[os.getppid()]) == psutil_row(os.getppid())


def test_a_start_time_is_psutils_create_time(started: list[subprocess.Popen[bytes]]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started.append(child)
    for pid in (os.getpid(), child.pid):
        assert abs(proctable.start_time(pid) - psutil.Process(pid).create_time()) < 0.01
    child.kill()
    child.wait()
    assert proctable.start_time(child.pid) == 0.0


def test_pid_alive_is_psutils_pid_exists(started: list[subprocess.Popen[bytes]]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started.append(child)
    assert processes.pid_alive(child.pid) and processes.pid_alive(1)
    child.kill()
    child.wait()
    assert not psutil.pid_exists(child.pid)
    for pid in (child.pid, 0, -1):  # 0 and -1 would name process groups to os.kill
        assert not processes.pid_alive(pid)


def test_a_recorded_process_is_the_same_pid_and_start(
        started: list[subprocess.Popen[bytes]]) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    started.append(child)
    began = proctable.start_time(child.pid)
    assert processes.is_recorded(child.pid, began)
    assert not processes.is_recorded(child.pid, began - 1)  # a reused pid
    child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # ended, not yet reaped
    assert not processes.is_recorded(child.pid, began)  # a zombie
    child.wait()
    assert not processes.is_recorded(child.pid, began)
    assert not processes.is_recorded(0, began)


def test_lineage_is_psutils_parents() -> None:
    me = psutil.Process()
    assert proctable.lineage(me.pid) == [me.pid, *(p.pid for p in me.parents())]
    assert processes.protected_pids() == {me.pid, *(p.pid for p in me.parents())}


@pytest.mark.parametrize("cwd", [
    "/", "/srv", "/srv/app", "/srv/app/src/x", "/srv/app-x", "/srv/app/..x",
    "/srv/app/.worktrees/feat", "/srv/app/.worktrees/feat/deep/er", "/srv/app/.worktrees",
    "/other", "/srv//app/x", "/srv/app/"])
@pytest.mark.parametrize("roots", [
    ["/srv/app", "/srv/app/.worktrees/feat", "/srv/other"],
    ["/srv/app/.worktrees/feat"],
    ["/", "/srv/app"],
    []])
def test_the_innermost_root_is_the_one_by_one_answer(cwd: str, roots: list[str]) -> None:
    assert processes._innermost(cwd, frozenset(roots)) == processes._inside(cwd, roots)
