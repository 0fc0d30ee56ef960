"""One managed cluster on disk, as its :class:`ServerState` describes it: made
(``initdb`` and branchyard's lines of ``postgresql.conf``), started and stopped
(``pg_ctl``, as the user it runs as), asked whether it runs and what version
its data is."""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import replace
from pathlib import Path

from branchyard.core import statefile
from branchyard.core.errors import CommandError, DatabaseError
from branchyard.db import cow
from branchyard.db.serverstate import (
    HOST,
    START_TIMEOUT,
    SUPERUSER,
    ServerState,
    server_home,
)
from branchyard.system.external import run


def postmaster_pid(state: ServerState) -> int:
    """The pid of the cluster's running server, 0 when none runs."""
    try:
        first = (state.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first)
        os.kill(pid, 0)
    except (OSError, ValueError):
        return 0
    return pid


def run_cluster(state: ServerState, *, port: int = 0) -> None:
    """Start the cluster of ``state`` (initdb the first time), on ``port`` for this
    run when given (an upgrade's new cluster, beside the old one); idempotent."""
    if postmaster_pid(state):
        return
    cow.ensure_mounted(state.cow_home)  # never a cluster on the bare mount point
    on = replace(state, port=port) if port else state
    _check_port_free(on)
    if not (state.data_dir / "PG_VERSION").exists():
        _initdb(state)
    extra = ["-o", f"-p {port}"] if port else []
    _pg_ctl(state, "start", *extra, "-l", str(state.log_file), "-w", "-t", str(START_TIMEOUT))
    _enable_stat_statements(on)


def stop_cluster(state: ServerState) -> bool:
    if not postmaster_pid(state):
        return False
    _pg_ctl(state, "stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT))
    return True


def cluster_version(state: ServerState) -> int:
    """The major version of the cluster's data (``PG_VERSION``), else of its binaries."""
    try:
        return int((state.data_dir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return state.version


def _as_user(state: ServerState, argv: list[str]) -> list[str]:
    return ["runuser", "-u", state.user, "--", *argv] if state.user else argv


def _pg_ctl(state: ServerState, *args: str) -> None:
    argv = _as_user(state, [str(Path(state.bin_dir) / "pg_ctl"), "-D", str(state.data_dir),
                            *args])
    try:
        run(argv, timeout=START_TIMEOUT + 30)
    except CommandError as exc:
        raise DatabaseError(f"the managed Postgres server failed to {args[0]}: "
                            f"{exc.message}",
                            hint=f"see its log: {state.log_file}") from None


def _check_port_free(state: ServerState) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as Postgres does: connections of a just-stopped server in TIME_WAIT do
        # not make the port busy, a listener does
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, state.port))
        except OSError:
            raise DatabaseError(
                f"port {state.port} on {HOST}, kept for the managed Postgres server, "
                "is used by another program",
                hint="stop that program, or set [server] port to a free port and remove "
                     f"{server_home() / 'server.json'} before any worktree uses it") from None


def _initdb(state: ServerState) -> None:
    cluster = Path(state.cluster_dir)
    cluster.mkdir(parents=True, exist_ok=True)
    cluster.chmod(0o700)
    pwfile = cluster / "pwfile"
    statefile.write_text(pwfile, state.password + "\n")  # 0600 from its first byte
    if state.user:
        _chown_tree(cluster, state.user)
    try:
        run(_as_user(state, [str(Path(state.bin_dir) / "initdb"), "-D", str(state.data_dir),
                             "-U", SUPERUSER, "--pwfile", str(pwfile), "-E", "UTF8",
                             "--locale=C", "--auth-host=scram-sha-256",
                             "--auth-local=scram-sha-256"]), timeout=180)
    except CommandError as exc:
        raise DatabaseError(f"initdb of the managed Postgres cluster failed: {exc.message}",
                            hint=f"fix the cause, remove {cluster}, and start again") from None
    finally:
        pwfile.unlink(missing_ok=True)
    _write_conf(state)


def _write_conf(state: ServerState) -> None:
    lines = ["", "# written by branchyard (managed server)",
             f"listen_addresses = '{HOST}'", f"port = {state.port}",
             f"max_connections = {int(state.max_connections)}",
             f"unix_socket_directories = '{state.cluster_dir}'"]
    if _has_stat_statements(state):
        lines.append("shared_preload_libraries = 'pg_stat_statements'")
    conf = state.data_dir / "postgresql.conf"
    with conf.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def _has_stat_statements(state: ServerState) -> bool:
    bin_dir = Path(state.bin_dir)
    lib_dirs = [bin_dir.parent / "lib", bin_dir.parent / "lib" / "postgresql"]
    return any((d / "pg_stat_statements.so").exists() or
               (d / "pg_stat_statements.dylib").exists() for d in lib_dirs)


def _enable_stat_statements(state: ServerState) -> None:
    if not _has_stat_statements(state):
        return
    from psycopg import Error

    from branchyard.db.postgres import connect

    with connect(state.url) as conn, contextlib.suppress(Error):
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def _chown_tree(root: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for path in (root, *root.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid)
