"""Making a worktree's Postgres database: clone (pool or snapshot), empty,
dump or command seed; then the entry's setup commands. And dropping it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchyard.core.errors import DatabaseError
from branchyard.db import owner, sessions
from branchyard.db import postgres as pg
from branchyard.db.hooks import run_database_hook
from branchyard.resources.plan import PlanContext, adopted_note, adopted_refusal
from branchyard.resources.specs import PostgresSpec

if TYPE_CHECKING:
    import psycopg

    from branchyard.db.records import SnapshotRecord
    from branchyard.db.snapshot import SnapshotSource


def server_url(spec: PostgresSpec) -> str:
    """The admin URL, starting the managed cluster first when it is the server;
    shared by the command's connections to it (:mod:`sessions`)."""
    if spec.managed:
        from branchyard.db import managed

        managed.start_recorded(spec.server, spec.server_config)
    sessions.share(spec.server)
    return spec.server


def provision(spec: PostgresSpec, ctx: PlanContext) -> bool:
    """Create and seed the database of ``spec``; False when it was already there."""
    server = server_url(spec)
    if spec.role == "main":
        return _ensure_main(spec, server, ctx)
    target = spec.database
    ours = owner.of_spec(spec)
    with pg.connect(server) as conn:
        existed = pg.exists(conn, target)
        if existed:
            owner.check_ours(conn, target, ours)  # never use nor replace another clone's
    if existed and spec.adopted:
        if ctx.reseed:
            raise adopted_refusal(target, f"`DROP DATABASE {target}`")
        ctx.reporter.message(adopted_note(target))
        return False
    if existed:
        tables = pg.table_count(spec.url)
        if tables and not ctx.reseed:
            ctx.reporter.message(f"{target}: {tables} tables already; not seeding "
                                 "(--reseed to start over)")
            return False
        with pg.connect(server) as conn:  # empty, or --reseed: ours to replace
            pg.drop(conn, target)
    _seed(spec, server, ctx)
    with pg.connect(server) as conn:
        owner.record(conn, target, ours)
    _run_setup(spec, ctx)
    return True


def _ensure_main(spec: PostgresSpec, server: str, ctx: PlanContext) -> bool:
    """The main worktree uses the main database itself; branchyard creates it only
    on the managed cluster, and never drops it."""
    with pg.connect(server) as conn:
        if pg.exists(conn, spec.main):
            return False
        if not spec.managed:
            raise _main_missing(spec)
        pg.create(conn, spec.main)
    ctx.reporter.message(f"created the main database {spec.main!r} on the managed server")
    _run_setup(spec, ctx)
    return True


def _main_missing(spec: PostgresSpec) -> DatabaseError:
    from branchyard.db.urls import parse_url

    return DatabaseError(
        f"[[database]] {spec.name!r}: the main database {spec.main!r} does not exist "
        f"on the Postgres server at {parse_url(spec.server).address}",
        hint="create it (e.g. run your project's migrations in the main worktree), fix "
             "`source`, or set seed = \"empty\"")


def _seed(spec: PostgresSpec, server: str, ctx: PlanContext) -> None:
    seed = spec.seed
    if clones(spec):
        _clone(spec, server, ctx)
    elif seed == "empty" or seed.startswith("command:"):
        with pg.connect(server) as conn:
            pg.create(conn, spec.database)
        if seed.startswith("command:"):
            run_database_hook(seed[len("command:"):], spec, ctx, "seed")
    else:
        raise DatabaseError(f"[[database]] {spec.name!r}: unknown seed {seed!r}",
                            hint="use clone, empty, dump:<url-or-env:VAR> or command:<cmd>")


def clones(spec: PostgresSpec) -> bool:
    """Whether the database is seeded from a snapshot (clone and dump: seeds)."""
    return spec.seed == "clone" or spec.seed.startswith("dump:")


def snapshot_source(spec: PostgresSpec, server: str) -> SnapshotSource:
    from branchyard.db.snapshot import SnapshotSource

    clone = owner.of_spec(spec).clone if spec.shared else ""
    return SnapshotSource(Path(spec.common_dir), server, spec.seed_source or spec.main_url,
                          spec.pool, clone)


def _clone(spec: PostgresSpec, server: str, ctx: PlanContext) -> None:
    from branchyard.db import pool, snapshot

    src = snapshot_source(spec, server)
    if not spec.seed_source:
        _require_main(spec, server)
    if spec.managed:
        _note_upgrade(ctx)
    before = snapshot.current(src)
    snap = snapshot.ensure(src, ctx.reporter, refresh=spec.refresh == "auto")
    if before is not None and snap.name == before.name:
        _note_freshness(src, snap, spec.main, ctx)
    target = spec.database
    if src.pool and pool.claim(src.common_dir, snap, target):
        ctx.reporter.message(f"{target}: claimed a warm clone of {spec.main!r}")
    else:
        ctx.reporter.message(f"{target}: cloning the snapshot of {spec.main!r}")
        with pg.connect(server) as conn:
            pg.create(conn, target, template=snap.name)
    if src.pool:
        pool.spawn_refill(src.common_dir, snap.name)


def _note_freshness(src: SnapshotSource, snap: SnapshotRecord, main: str,
                    ctx: PlanContext) -> None:
    """Say how old the snapshot cloned is and whether main has changed since."""
    from branchyard.db import freshness

    fresh = freshness.of(src, snap)
    hint = " (`branchyard db snapshot` refreshes it)" if fresh.stale else ""
    ctx.reporter.message(f"snapshot of {main!r}: {fresh.text()}{hint}")


def _note_upgrade(ctx: PlanContext) -> None:
    from branchyard.db import managed, serverstate

    state = serverstate.load_state()
    note = managed.upgrade_note(state) if state is not None else ""
    if note:
        ctx.reporter.message(f"note: {note}")


def _require_main(spec: PostgresSpec, server: str) -> None:
    with pg.connect(server) as conn:
        if pg.exists(conn, spec.main):
            return
        if not spec.managed:
            raise _main_missing(spec)
        pg.create(conn, spec.main)  # a fresh managed project starts empty


def _run_setup(spec: PostgresSpec, ctx: PlanContext) -> None:
    for command in spec.setup:
        run_database_hook(command, spec, ctx, "database setup")


def drop_worktree_database(spec: PostgresSpec) -> None:
    """Drop the database of a ledger record; never a main or an adopted one, nor
    one whose comment names another clone (:class:`owner.HeldElsewhereError`)."""
    if spec.role == "main" or spec.database == spec.main or spec.adopted:
        return
    if spec.managed:
        from branchyard.db import serverstate

        if serverstate.load_state() is None:
            return  # the managed cluster was removed, and its databases with it
    server = server_url(spec)
    with pg.connect(server) as conn:
        _wait_for_creators(conn, spec.database)
        if pg.exists(conn, spec.database):
            owner.check_ours(conn, spec.database, owner.of_spec(spec))
        pg.drop(conn, spec.database)


CREATOR_WAIT = 120.0


def _wait_for_creators(conn: psycopg.Connection[Any], name: str) -> None:
    """Wait for a statement still creating ``name`` (a clone whose branchyard
    process was killed: the server finishes it anyway), so that the drop comes
    after it and no database is left behind without an owner."""
    import time

    deadline = time.monotonic() + CREATOR_WAIT
    query = ("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
             "AND state = 'active' AND position(%s in query) > 0")
    while (row := conn.execute(query, (name,)).fetchone()) and row[0]:
        if time.monotonic() > deadline:
            raise DatabaseError(
                f"database {name!r} is still being created by another session after "
                f"{CREATOR_WAIT:g} s", hint="run the command again once it has finished")
        time.sleep(0.05)
