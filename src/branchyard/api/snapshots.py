"""The project's golden Postgres snapshots: `db snapshot` (make, refresh, drop),
their listing with the worktrees cloned from each, `gc --snapshots`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from branchyard.api.databases import MAIN, plan_context
from branchyard.context import Context, open_context
from branchyard.core.errors import DatabaseError
from branchyard.core.events import Reporter
from branchyard.providers import get_provider
from branchyard.resources.specs import PostgresSpec

if TYPE_CHECKING:
    from branchyard.db.snapshot import SnapshotInfo


def _cloned_entries(name: str | None) -> tuple[Context, list[PostgresSpec]]:
    """The config's cloned Postgres databases (``name``: that one), as main plans them."""
    from branchyard.db.provision import clones

    ctx = open_context()
    plan = plan_context(ctx, ctx.repo.main_path, MAIN)
    specs: list[PostgresSpec] = [a.spec for a in get_provider("postgres").plan(plan)]
    found = [s for s in specs if (name is None or s.name == name) and clones(s)]
    if name is not None and not found:
        raise DatabaseError(f"no cloned Postgres database named {name!r} in the config",
                            hint="`branchyard db status` lists the databases")
    return ctx, found


def drop_snapshots(name: str | None = None) -> list[str]:
    """`db snapshot --drop`: drop the project's snapshots and warm pools (ledger-owned;
    the next clone makes a new snapshot)."""
    from branchyard.db import snapshot
    from branchyard.db.provision import server_url, snapshot_source

    ctx, specs = _cloned_entries(name)
    gone = []
    for spec in specs:
        src = snapshot_source(spec, server_url(spec))
        gone.extend(snapshot.drop_all(ctx.repo.common_dir, src.key))
    return gone


def refresh_snapshots(name: str | None = None, *, exclusive: bool = False,
                      reporter: Reporter | None = None) -> list[dict[str, Any]]:
    """`db snapshot`: a new snapshot of each cloned Postgres database's main."""
    from branchyard.db import pool, snapshot
    from branchyard.db.provision import server_url, snapshot_source

    ctx, specs = _cloned_entries(name)
    made = []
    for spec in specs:
        src = snapshot_source(spec, server_url(spec))
        record = snapshot.make(src, exclusive=exclusive, reporter=reporter)
        if src.pool:
            pool.spawn_refill(ctx.repo.common_dir, record.name)
        made.append({"name": spec.name, "snapshot": record.name, "method": record.method})
    return made


def snapshot_uses(ctx: Context) -> dict[str, int]:
    """How many of the ledger's worktrees clone from each snapshot key."""
    from branchyard.db.provision import clones, snapshot_source

    uses: dict[str, int] = {}
    for record in ctx.ledger.read().worktrees.values():
        for res in record.resources:
            spec = res.spec
            if isinstance(spec, PostgresSpec) and spec.role == "worktree" and clones(spec):
                key = snapshot_source(spec, spec.server).key
                uses[key] = uses.get(key, 0) + 1
    return uses


def snapshots(ctx: Context | None = None) -> list[SnapshotInfo]:
    """The project's snapshots with their size and the worktrees cloned from them."""
    from branchyard.db import snapshot

    ctx = ctx or open_context()
    return snapshot.inventory(ctx.repo.common_dir, snapshot_uses(ctx))


def drop_unused_snapshots(ctx: Context | None = None) -> list[str]:
    """`gc --snapshots`: drop the snapshots (and warm pools) no worktree uses."""
    from branchyard.db import snapshot

    ctx = ctx or open_context()
    gone: list[str] = []
    for info in snapshots(ctx):
        if info.in_use == 0:
            gone.extend(snapshot.drop_all(ctx.repo.common_dir, info.key))
    return gone
