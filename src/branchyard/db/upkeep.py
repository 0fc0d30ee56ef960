"""What `doctor` needs from the database area: snapshot and pool databases left
behind by a crash (recorded in the ledger, never finished), and their removal.

Only names recorded in the ledger are ever reported or dropped.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.errors import BranchyardError
from branchyard.db import postgres as pg
from branchyard.db import records
from branchyard.db.urls import mask_url
from branchyard.ledger import Ledger

STALE_AFTER = 900.0  # seconds: no clone or refill takes this long on a sane machine


@dataclass(frozen=True)
class DbOrphan:
    kind: str  # snapshot | pool
    name: str
    server: str  # masked
    reason: str


def find_orphans(common_dir: Path, *, now: float | None = None,
                 stale_after: float = STALE_AFTER) -> list[DbOrphan]:
    """Snapshot/pool records whose work never finished, and superseded snapshots."""
    state = Ledger(common_dir).read()
    clock = time.time() if now is None else now
    found = []
    for snap in records.snapshots(state):
        current = records.current_snapshot(state, snap.key)
        if snap.state == "pending" and clock - snap.created > stale_after:
            found.append(DbOrphan("snapshot", snap.name, mask_url(snap.server),
                                  "its creation never finished"))
        elif snap.state == "ready" and current is not None and \
                snap.generation < current.generation:
            found.append(DbOrphan("snapshot", snap.name, mask_url(snap.server),
                                  f"superseded by {current.name}"))
    for spare in records.pool(state):
        if clock - spare.created > stale_after and spare.state in ("pending", "claimed"):
            what = "refill" if spare.state == "pending" else f"claim by {spare.target}"
            found.append(DbOrphan("pool", spare.name, mask_url(spare.server),
                                  f"its {what} never finished"))
        elif not any(s.name == spare.snapshot for s in records.snapshots(state)):
            found.append(DbOrphan("pool", spare.name, mask_url(spare.server),
                                  f"its snapshot {spare.snapshot} is gone"))
    return found


def remove_orphans(common_dir: Path, orphans: list[DbOrphan]) -> list[str]:
    """Drop each orphan's database (if it still exists) and forget its record;
    the names removed. Unreachable servers leave the record for the next run."""
    state = Ledger(common_dir).read()
    servers = {s.name: s.server for s in records.snapshots(state)}
    servers.update({p.name: p.server for p in records.pool(state)})
    removed = []
    for orphan in orphans:
        server = servers.get(orphan.name)
        if server is None:
            continue
        with contextlib.suppress(BranchyardError), pg.connect(server) as conn:
            pg.drop(conn, orphan.name)
            with Ledger(common_dir).update() as current:
                forget = (records.forget_snapshot if orphan.kind == "snapshot"
                          else records.forget_pool)
                forget(current, orphan.name)
            removed.append(orphan.name)
    return removed


def remove_project_databases(common_dir: Path) -> list[str]:
    """Drop every snapshot and pool database this repository's ledger records
    (before a throw-away repository such as the demo's is deleted)."""
    from branchyard.db import snapshot

    keys = {s.key for s in records.snapshots(Ledger(common_dir).read())}
    gone = [name for key in sorted(keys) for name in snapshot.drop_all(common_dir, key)]
    for spare in records.pool(Ledger(common_dir).read()):
        if spare.state != "claimed":
            with contextlib.suppress(BranchyardError), pg.connect(spare.server) as conn:
                pg.drop(conn, spare.name)
                with Ledger(common_dir).update() as state:
                    records.forget_pool(state, spare.name)
                gone.append(spare.name)
    return gone
