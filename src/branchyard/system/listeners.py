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
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from branchyard.system.processes import ProcInfo, protected_pids


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
    from branchyard.system.processes import processes_by_root

    return listeners_of(processes_by_root([Path(r) for r in roots]))


def listeners_of(procs: Mapping[str, Sequence[ProcInfo]]) -> list[Listener]:
    """The TCP listeners of these processes (root → its processes, as
    ``processes_by_root`` gives them, so `ls` scans the process table once).

    On Linux the listening sockets are asked of the kernel once and matched to the
    candidates' socket fds: the machine-wide connection table (psutil's way) costs
    a tenth of a second on a busy machine."""
    skip = protected_pids()
    wanted = [(root, info) for root, infos in procs.items() for info in infos
              if info.pid not in skip]
    if not wanted:
        return []
    ports_of = _linux_ports_of if hasattr(socket, "AF_NETLINK") and \
        os.path.isdir("/proc/net") else _psutil_ports_of
    found: list[Listener] = []
    table = _listening_inodes() if ports_of is _linux_ports_of else {}
    for root, info in wanted:
        for port in sorted(ports_of(info.pid, table)):
            found.append(Listener(port, info.pid, info.cmdline, root))
    return found


def _listening_inodes() -> dict[int, int]:
    """Socket inode → port of every TCP socket in LISTEN state (IPv4 and IPv6):
    asked of the kernel's sock_diag (which filters by state itself, as `ss -l`
    does), else read from ``/proc/net/tcp*`` (every connection: slow when there
    are many)."""
    try:
        return _sock_diag_listening()
    except (OSError, struct.error):
        return _proc_listening()


SOCK_DIAG_BY_FAMILY = 20
NETLINK_SOCK_DIAG = 4
NLM_F_DUMP_REQUEST = 0x301  # NLM_F_REQUEST | NLM_F_DUMP
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10


def _sock_diag_listening() -> dict[int, int]:
    table: dict[int, int] = {}
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(2)
        for family in (socket.AF_INET, socket.AF_INET6):
            # inet_diag_req_v2: family, protocol, ext, pad, states; a zero socket id
            req = struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0,
                              1 << TCP_LISTEN) + bytes(48)
            sock.sendall(struct.pack("=IHHII", 16 + len(req), SOCK_DIAG_BY_FAMILY,
                                     NLM_F_DUMP_REQUEST, 1, 0) + req)
            _read_dump(sock, table)
    return table


def _read_dump(sock: socket.socket, table: dict[int, int]) -> None:
    while True:
        data = sock.recv(65536)
        off = 0
        while off + 16 <= len(data):
            length, kind = struct.unpack_from("=IH", data, off)
            if kind == NLMSG_ERROR:
                raise OSError("sock_diag refused the request")
            if kind == NLMSG_DONE or length < 16:
                return
            # inet_diag_msg: 4 bytes, then the socket id (sport first, big-endian)
            # … the inode is at offset 68
            port = struct.unpack_from(">H", data, off + 16 + 4)[0]
            table[struct.unpack_from("=I", data, off + 16 + 68)[0]] = port
            off += (length + 3) & ~3


def _proc_listening() -> dict[int, int]:
    table: dict[int, int] = {}
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name, encoding="ascii") as fh:
                next(fh, None)  # the header
                for line in fh:
                    fields = line.split(None, 10)
                    if len(fields) > 9 and fields[3] == "0A":  # TCP_LISTEN
                        table[int(fields[9])] = int(fields[1].rpartition(":")[2], 16)
        except OSError:
            continue
    return table


def _linux_ports_of(pid: int, table: Mapping[int, int]) -> set[int]:
    ports: set[int] = set()
    folder = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(folder)
    except OSError:
        return ports
    for fd in fds:
        try:
            link = os.readlink(f"{folder}/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            port = table.get(int(link[8:-1]))
            if port is not None:
                ports.add(port)
    return ports


def _psutil_ports_of(pid: int, _table: Mapping[int, int]) -> set[int]:
    import psutil

    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()
    return {c.laddr[1] for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}


def stray_listeners(worktrees: Mapping[str, Mapping[str, int]],
                    app_ports: Mapping[str, int],
                    found: list[Listener] | None = None) -> list[StrayListener]:
    """``worktrees``: root → every port it owns; ``app_ports``: root → the port its
    dev URL routes to; ``found``: the listeners, when the caller has scanned them
    already (:func:`listeners_of`). The servers listening where they should not."""
    real = {os.path.realpath(r): ports for r, ports in worktrees.items()}
    apps = {os.path.realpath(r): p for r, p in app_ports.items()}
    owner_of = {port: root for root, ports in real.items() for port in ports.values()}
    found = listeners(real) if found is None else found
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
