"""Dev servers listening on the wrong port.

A dev server started without ``branchyard run`` (a plain ``npm run dev``) does not
get the worktree's ``PORT`` from its process environment, so it takes the
framework's default — often the main worktree's port, whose URL then serves the
wrong worktree's app and database. This finds such servers: a process whose
working directory is inside worktree W listens on a port that another worktree
owns, or on some other port while W's own app port has no listener.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from branchyard.processes import protected_pids, worktree_root_of


@dataclass(frozen=True)
class Listener:
    port: int
    pid: int
    command: str
    root: str  # the worktree its cwd is inside (realpath)


@dataclass(frozen=True)
class StrayListener:
    """A server of worktree ``root`` listening on ``port`` instead of ``expected``."""

    root: str
    pid: int
    command: str
    port: int
    expected: int  # the worktree's own app port
    owner: str = ""  # the worktree whose port it took ("" when nobody's)

    def message(self, names: Mapping[str, str]) -> str:
        """One line for ls/status/doctor/the 502 page; ``names``: root → how to call it."""
        me = names.get(self.root, self.root)
        taken = f", {names.get(self.owner, self.owner)}'s port," if self.owner else ""
        return (f"{me}: `{self.command}` (pid {self.pid}) listens on port {self.port}{taken} "
                f"instead of its own port {self.expected}; start it with `branchyard run` "
                "(it sets PORT), or pass the port to the server")


def listeners(roots: Mapping[str, object]) -> list[Listener]:
    """One scan: TCP listeners of processes whose cwd is inside one of ``roots``."""
    import psutil

    real = {os.path.realpath(r): r for r in roots}
    skip = protected_pids()
    found: list[Listener] = []
    seen: set[tuple[int, int]] = set()
    try:
        sockets = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return found  # macOS without root: nothing can be told
    for conn in sockets:
        if conn.status != psutil.CONN_LISTEN or not conn.pid or conn.pid in skip \
                or not conn.laddr:
            continue
        port = conn.laddr[1]
        key = (conn.pid, port)
        if key in seen:
            continue
        seen.add(key)
        try:
            proc = psutil.Process(conn.pid)
            cwd, cmd = proc.cwd(), " ".join(proc.cmdline()) or proc.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        root = worktree_root_of(cwd, list(real))
        if root is not None:
            found.append(Listener(port, conn.pid, cmd, root))
    return found


def stray_listeners(worktrees: Mapping[str, Mapping[str, int]],
                    app_ports: Mapping[str, int]) -> list[StrayListener]:
    """``worktrees``: root → every port it owns; ``app_ports``: root → the port its
    dev URL routes to. The servers listening where they should not."""
    real = {os.path.realpath(r): ports for r, ports in worktrees.items()}
    apps = {os.path.realpath(r): p for r, p in app_ports.items()}
    owner_of = {port: root for root, ports in real.items() for port in ports.values()}
    found = listeners(real)
    answered = {(lst.root, lst.port) for lst in found}
    strays: list[StrayListener] = []
    for lst in found:
        expected = apps.get(lst.root)
        if expected is None or lst.port in real[lst.root].values():
            continue
        owner = owner_of.get(lst.port, "")
        if owner or (lst.root, expected) not in answered:
            strays.append(StrayListener(lst.root, lst.pid, lst.command, lst.port, expected,
                                        owner))
    return strays
