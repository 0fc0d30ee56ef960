"""The golden snapshot: the copy of the main database that worktrees clone.

Postgres refuses to use a database with sessions as a template, and the main
database usually has them (the main dev server). So clones come from a snapshot
that accepts no connections, made from main by a brief template copy when main
is idle, by dump/restore otherwise (or after ending main's sessions, when the
user asks with ``--exclusive``). A new snapshot retires the old one and its pool.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path

from branchyard.core.errors import BranchyardError
from branchyard.core.events import NullReporter, Reporter
from branchyard.core.faults import fault
from branchyard.db import pool as pool_mod
from branchyard.db import postgres as pg
from branchyard.db import records
from branchyard.db.records import SnapshotRecord
from branchyard.db.urls import mask_url, parse_url
from branchyard.ledger import Ledger


@dataclass(frozen=True)
class SnapshotSource:
    """Which database a project's snapshot copies, and where the copy lives."""

    common_dir: Path
    server: str  # admin URL of the server that holds snapshot, pool and clones
    source: str  # URL of the database copied: main, or a remote for `dump:` seeds
    pool: int = 0
    clone: str = ""  # on a shared server: this clone's id (two machines' paths may agree)

    @property
    def key(self) -> str:
        src = parse_url(self.source)
        text = f"{self.common_dir}|{src.address}|{src.database}|{parse_url(self.server).address}"
        if self.clone:
            text += f"|{self.clone}"
        return hashlib.sha1(text.encode("utf-8"), usedforsecurity=False).hexdigest()[:10]

    @property
    def same_server(self) -> bool:
        return parse_url(self.source).address == parse_url(self.server).address

    def name(self, generation: int) -> str:
        main = pg.truncate_bytes(parse_url(self.source).database, 24)
        return f"{main}__snap_{self.key[:8]}_{generation}"


def current(src: SnapshotSource) -> SnapshotRecord | None:
    return records.current_snapshot(Ledger(src.common_dir).read(), src.key)


def ensure(src: SnapshotSource, reporter: Reporter | None = None, *,
           refresh: bool = False) -> SnapshotRecord:
    """The current snapshot for ``src``, made first if there is none (or it vanished);
    ``refresh``: made anew when main has changed since and is idle now.

    Parallel `up`s wait for the one that makes it instead of each making (and
    retiring) a generation of their own, which would drop the snapshot another
    one is cloning from.
    """
    record = _usable(src)
    if record is not None and not refresh:
        return record
    from filelock import FileLock

    report = reporter or NullReporter()
    lock = src.common_dir / "branchyard" / f"snapshot-{src.key}.lock"
    with FileLock(str(lock), timeout=3600):
        record = _usable(src)
        if record is None:
            return make(src, reporter=report)
        return _refresh_if_idle(src, record, report) if refresh else record


def _refresh_if_idle(src: SnapshotSource, record: SnapshotRecord,
                     reporter: Reporter) -> SnapshotRecord:
    """A new snapshot of a stale ``record`` when main has no session (by template
    copy; main's sessions are never ended); else ``record``."""
    from branchyard.db import freshness

    if not src.same_server or not freshness.of(src, record).stale:
        return record
    with pg.connect(src.server) as conn:
        busy = pg.other_sessions(conn, parse_url(src.source).database)
    if busy:
        reporter.message(f"the snapshot is stale, but main has {busy} session(s): kept "
                         "(refreshed by the first `up` once main is idle)")
        return record
    try:
        return make(src, idle_only=True, reporter=reporter)
    except pg.TemplateBusyError:
        reporter.message("the snapshot is stale, but a session opened on main: kept")
        return current(src) or record


def _usable(src: SnapshotSource) -> SnapshotRecord | None:
    record = current(src)
    if record is None:
        return None
    with pg.connect(src.server) as conn:
        if not pg.exists(conn, record.name):
            return None
    if record.pool != src.pool:
        _set_pool_size(src, record)
    return record


def _set_pool_size(src: SnapshotSource, record: SnapshotRecord) -> None:
    with Ledger(src.common_dir).update() as state:
        records.put_snapshot(state, replace(record, pool=src.pool))


def make(src: SnapshotSource, *, exclusive: bool = False, idle_only: bool = False,
         reporter: Reporter | None = None) -> SnapshotRecord:
    """Make a new snapshot of ``src.source``; retire older ones and their pools.

    ``idle_only``: by template copy only, raising :class:`pg.TemplateBusyError`
    when main has sessions (never dump/restore, never ending sessions)."""
    from branchyard.db import freshness

    report = reporter or NullReporter()
    writes = freshness.main_writes(src)  # before the copy: a write during it shows later
    with Ledger(src.common_dir).update() as state:
        gen = records.next_generation(state, src.key)
        record = SnapshotRecord(name=src.name(gen), server=src.server, generation=gen,
                                source=mask_url(src.source), key=src.key, pool=src.pool,
                                main_writes=-1 if writes is None else writes)
        records.put_snapshot(state, record)
    fault("snapshot.pending")
    try:
        method = _copy(src, record.name, exclusive, report, idle_only)
    except BaseException:
        _discard(src.common_dir, record)
        raise
    fault("snapshot.copied")
    record = replace(record, state="ready", method=method)
    with Ledger(src.common_dir).update() as state:
        records.put_snapshot(state, record)
    retire_older(src.common_dir, record)
    return record


def _copy(src: SnapshotSource, name: str, exclusive: bool, report: Reporter,
          idle_only: bool = False) -> str:
    main = parse_url(src.source).database
    if src.same_server:
        with pg.connect(src.server) as conn:
            if exclusive and pg.terminate_sessions(conn, main):
                report.message(f"ended the sessions on {main!r} (--exclusive)")
            if pg.other_sessions(conn, main) == 0:
                try:
                    report.message(f"snapshot of {main!r} by template copy")
                    pg.create(conn, name, template=main, allow_connections=False)
                    return "template"
                except pg.TemplateBusyError:
                    if exclusive or idle_only:
                        raise
    if idle_only:
        raise pg.TemplateBusyError(f"{main!r} has sessions: the snapshot is not refreshed now")
    report.message(f"snapshot of {main!r} by dump/restore (it has open sessions)"
                   if src.same_server else f"pulling {mask_url(src.source)} by dump/restore")
    from branchyard.db.pgclient import dump_restore

    with pg.connect(src.server) as conn:
        pg.create(conn, name)
    dump_restore(src.source, parse_url(src.server).with_database(name).render(),
                 no_owner=not src.same_server)
    with pg.connect(src.server) as conn:
        pg.set_allow_connections(conn, name, False)
    return "dump"


def _discard(common_dir: Path, record: SnapshotRecord) -> None:
    """Drop a snapshot; its record is forgotten only once it is surely gone, so an
    unreachable server leaves it for ``doctor`` rather than orphaned."""
    with contextlib.suppress(BranchyardError), pg.connect(record.server) as conn:
        pg.drop(conn, record.name)
        with Ledger(common_dir).update() as state:
            records.forget_snapshot(state, record.name)


def retire_older(common_dir: Path, keep: SnapshotRecord) -> None:
    """Drop older snapshots of the same key and their pools (all ledger-owned)."""
    old = [s for s in records.snapshots(Ledger(common_dir).read())
           if s.key == keep.key and s.name != keep.name and s.generation < keep.generation]
    for record in old:
        pool_mod.drain(common_dir, record.name)
        _discard(common_dir, record)


def drop_all(common_dir: Path, key: str) -> list[str]:
    """Drop every snapshot (and pool) recorded for ``key``; the names dropped."""
    gone = []
    for record in records.snapshots(Ledger(common_dir).read()):
        if record.key == key:
            pool_mod.drain(common_dir, record.name)
            _discard(common_dir, record)
            gone.append(record.name)
    return gone


@dataclass(frozen=True)
class SnapshotInfo:
    """A recorded snapshot as `ls`, `db status` and `gc --snapshots` see it."""

    name: str
    server: str  # masked
    key: str
    created: float
    size: int  # bytes; -1 when its server cannot be reached
    spares: int  # warm pool databases of it
    in_use: int  # worktrees (in the ledger) whose databases are cloned from it

    def as_json(self) -> dict[str, object]:
        import time

        return {"name": self.name, "server": self.server, "size": self.size,
                "age_seconds": round(time.time() - self.created, 1),
                "spares": self.spares, "worktrees": self.in_use}


def inventory(common_dir: Path, uses: dict[str, int]) -> list[SnapshotInfo]:
    """The current snapshot of each key with its size; ``uses``: worktrees per key."""
    state = Ledger(common_dir).read()
    keys = sorted({s.key for s in records.snapshots(state)})
    if not keys:
        return []  # `ls` of a project without snapshots pays nothing for the driver
    from psycopg import Error

    found = []
    for key in keys:
        record = records.current_snapshot(state, key)
        if record is None:
            continue
        size = -1
        with contextlib.suppress(BranchyardError, Error), pg.connect(record.server) as conn:
            info = pg.database_info(conn, record.name)
            size = info.size if info else -1
        spares = sum(1 for p in records.pool(state) if p.snapshot == record.name)
        found.append(SnapshotInfo(record.name, mask_url(record.server), key, record.created,
                                  size, spares, uses.get(key, 0)))
    return found
