"""Repairs for a repository's orphans outside its worktree entries: merge locks
and scratch worktrees, snapshot and pool databases."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from branchyard.api.drift import Finding
from branchyard.context import Context
from branchyard.core.errors import RepairDeferredError
from branchyard.db.records import PoolRecord
from branchyard.ledger import LedgerState


def _later(why: str) -> RepairDeferredError:
    return RepairDeferredError(f"not now: {why}",
                               hint="run `branchyard doctor --fix` again once it has finished")


def _lock(ctx: Context, finding: Finding) -> str:
    from branchyard.merge.locks import release_locks

    slug = finding.ref[0]
    if slug in ctx.ledger.read().worktrees:
        return "skipped: the worktree is back"
    return f"released {release_locks(ctx.repo.common_dir, slug)} lock(s)"


def _being_built(server: str, name: str) -> bool:
    """Whether a session is connected to ``name`` or running a statement naming it
    (a CREATE DATABASE … TEMPLATE, a pg_restore into it)."""
    from branchyard.db import postgres as pg

    with pg.connect(server) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND (datname = %s OR (state = 'active' AND position(%s in query) > 0))",
            (name, name)).fetchone()
    return bool(row and row[0])


def _drop_and_forget(ctx: Context, server: str, name: str,
                     forget: Callable[[LedgerState, str], None]) -> str:
    """Drop the database ``name`` no session is building, then ``forget`` its record."""
    from branchyard.db import postgres as pg

    if _being_built(server, name):
        raise _later("a session is still building it")
    with pg.connect(server) as conn:
        dropped = pg.drop(conn, name)
    with ctx.ledger.update() as state:
        forget(state, name)
    return f"{'dropped' if dropped else 'it did not exist;'} {name} and forgot it"


def _snapshot(ctx: Context, finding: Finding) -> str:
    from branchyard.db import records

    name = finding.ref[0]
    record = next((s for s in records.snapshots(ctx.ledger.read()) if s.name == name), None)
    if record is None:
        return "already resolved"
    if record.state == "ready":
        return _retire(ctx, name)
    return _drop_and_forget(ctx, record.server, name, records.forget_snapshot)


def _retire(ctx: Context, name: str) -> str:
    from branchyard.db import pool, upkeep

    orphans = [o for o in upkeep.find_orphans(ctx.repo.common_dir) if o.name == name]
    if not orphans:
        return "skipped: it is the current snapshot again"
    spares = pool.drain(ctx.repo.common_dir, name)
    removed = upkeep.remove_orphans(ctx.repo.common_dir, orphans)
    if not removed:
        raise _later("its server is unreachable (the record is kept)")
    return f"dropped {name}" + (f" and its spares {', '.join(spares)}" if spares else "")


@contextlib.contextmanager
def _refill_paused(common_dir: Path, snapshot: str) -> Iterator[bool]:
    """Hold the pool's refill lock (True), or say a refill runs (False)."""
    from filelock import Timeout

    from branchyard.db.pool import refill_lock

    lock = refill_lock(common_dir, snapshot)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _pool(ctx: Context, finding: Finding) -> str:
    from branchyard.db import records

    name = finding.ref[0]
    spare = next((p for p in records.pool(ctx.ledger.read()) if p.name == name), None)
    if spare is None:
        return "already resolved"
    with _refill_paused(ctx.repo.common_dir, spare.snapshot) as free:
        if not free:
            raise _later("a refill of its pool is running")
        if spare.state == "claimed":
            return _unclaim(ctx, spare)
        return _drop_and_forget(ctx, spare.server, name, records.forget_pool)


def _unclaim(ctx: Context, spare: PoolRecord) -> str:
    from branchyard.db import postgres as pg
    from branchyard.db import records

    with pg.connect(spare.server) as conn:
        present = pg.exists(conn, spare.name)
    with ctx.ledger.update() as state:
        if present:
            records.put_pool(state, replace(spare, state="ready", target=""))
        else:
            records.forget_pool(state, spare.name)
    return ("put it back in the pool" if present else
            "forgot it (it was renamed to the worktree's database)")


def _scratch(ctx: Context, finding: Finding) -> str:
    from branchyard.merge.scratch import prune_scratch

    removed = [str(p) for p in prune_scratch(ctx.repo.common_dir)]
    return f"removed {', '.join(removed)}" if removed else "already resolved"


REPAIRS: dict[str, Callable[[Context, Finding], str]] = {
    "scratch_worktree": _scratch,
    "orphan_lock": _lock,
    "orphan_snapshot": _snapshot,
    "orphan_pool": _pool,
}
