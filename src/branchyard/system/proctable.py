"""The process table, read cheaply: what `ls`, `status`, `stop` and `doctor`
match worktrees against.

Each process's parent, start time and current directory are read on every scan;
its command line only for the few a caller keeps (:func:`completed`). On Linux
that is one read of ``/proc/<pid>/stat`` and one ``readlink`` of its ``cwd`` —
psutil's own sources, without its import and its objects per process —;
elsewhere psutil reads everything at once. The values are psutil's either way:
its start time (boot time + start in clock ticks, so a ``create_time`` recorded
through psutil matches), its name (the kernel's, or the command's own when the
kernel cut it short) and its command line.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace

PROC = "/proc"
NAME_CUT = 15  # the kernel keeps this many bytes of a name (TASK_COMM_LEN - 1)


@dataclass(frozen=True)
class Row:
    pid: int
    ppid: int
    name: str
    cwd: str  # "" when it cannot be read; without the kernel's " (deleted)"
    create_time: float
    cmdline: tuple[str, ...] | None = None  # None: not read yet (:func:`completed`)


def _procfs() -> bool:
    return sys.platform.startswith("linux") and os.path.isdir(f"{PROC}/self")


def read_table() -> dict[int, Row]:
    """Every process, by pid in increasing order."""
    if not _procfs():
        return _psutil_table()
    boot, ticks = _boot_time(), os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    rows: dict[int, Row] = {}
    for pid in sorted(int(n) for n in os.listdir(PROC) if n.isdigit()):
        row = _stat_row(pid, boot, ticks)
        if row is None:
            continue
        if row.ppid == me:  # our own git commands are told apart by their command,
            row = completed(row)  # read before the cwd: one gone by then has none
        rows[pid] = replace(row, cwd=_cwd(pid))
    return rows


def completed(row: Row) -> Row:
    """``row`` with its command line, and its full name when the kernel's is cut
    (psutil's rule: the command's base name, if it starts with the kernel's)."""
    if row.cmdline is not None:
        return row
    cmdline = _cmdline(row.pid)
    name = row.name
    if len(name) >= NAME_CUT and cmdline:
        extended = os.path.basename(cmdline[0])
        if extended.startswith(name):
            name = extended
    return replace(row, name=name, cmdline=cmdline)


def lineage(pid: int) -> list[int]:
    """``pid`` and its ancestors, nearest first (psutil's ``parents()``: a parent
    started after its child is a reused number and ends the line)."""
    if not _procfs():
        import psutil

        return [pid, *(p.pid for p in psutil.Process(pid).parents())]
    boot, ticks = _boot_time(), os.sysconf("SC_CLK_TCK")
    found = [pid]
    row = _stat_row(pid, boot, ticks)
    while row is not None and row.pid != 1 and row.ppid:
        parent = _stat_row(row.ppid, boot, ticks)
        if parent is None or parent.create_time > row.create_time:
            break
        found.append(parent.pid)
        row = parent
    return found


def start_time(pid: int) -> float:
    """``pid``'s start time as psutil's ``create_time`` gives it; 0.0 when it is gone."""
    if not _procfs():
        import psutil

        try:
            return float(psutil.Process(pid).create_time())
        except psutil.NoSuchProcess:
            return 0.0
    row = _stat_row(pid, _boot_time(), os.sysconf("SC_CLK_TCK"))
    return row.create_time if row is not None else 0.0


def _boot_time() -> float:
    with open(f"{PROC}/stat", "rb") as fh:
        for line in fh:
            if line.startswith(b"btime"):
                return float(line.split()[1])
    raise OSError(f"no btime in {PROC}/stat")


def _stat_row(pid: int, boot: float, ticks: int) -> Row | None:
    """Parent, name and start time from ``/proc/<pid>/stat``; None: it is gone."""
    try:
        with open(f"{PROC}/{pid}/stat", "rb") as fh:
            data = fh.read()
    except PermissionError:  # what psutil leaves of a process it may not read
        return Row(pid, 0, "?", "", 0.0)
    except OSError:
        return None
    # the name is in parentheses and may hold spaces and parentheses itself
    end = data.rfind(b")")
    fields = data[end + 2:].split()
    return Row(pid, int(fields[1]), os.fsdecode(data[data.find(b"(") + 1:end]), "",
               int(fields[19]) / ticks + boot)


def _cwd(pid: int) -> str:
    try:
        link = os.readlink(f"{PROC}/{pid}/cwd")
    except OSError:  # another user's, a zombie, or gone
        return ""
    return link.split("\0")[0].removesuffix(" (deleted)")


def _cmdline(pid: int) -> tuple[str, ...]:
    """psutil's reading: NUL-separated, or space-separated for a process that
    rewrote its title (setproctitle)."""
    try:
        with open(f"{PROC}/{pid}/cmdline", encoding=sys.getfilesystemencoding(),
                  errors=sys.getfilesystemencodeerrors()) as fh:
            data = fh.read()
    except OSError:
        return ()
    if not data:  # a zombie, or a kernel thread
        return ()
    sep = "\0" if data.endswith("\0") else " "
    data = data.removesuffix(sep)
    args = data.split(sep)
    if sep == "\0" and len(args) == 1 and " " in data:
        args = data.split(" ")
    return tuple(args)


def _psutil_table() -> dict[int, Row]:
    import psutil

    rows: dict[int, Row] = {}
    for proc in psutil.process_iter(["pid", "ppid", "name", "cmdline", "cwd", "create_time"]):
        info = proc.info
        cwd = (info.get("cwd") or "").removesuffix(" (deleted)")
        rows[info["pid"]] = Row(info["pid"], info.get("ppid") or 0, info.get("name") or "?",
                                cwd, info.get("create_time") or 0.0,
                                tuple(info.get("cmdline") or ()))
    return rows
