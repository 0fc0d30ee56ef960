"""Snapshot and pool databases, as recorded in the ledger before they exist.

They live in ``ledger.sections["postgres"]`` so that a crash always leaves an
owner: ``doctor`` can drop whatever is recorded here and is not needed, and
nothing else is ever dropped.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from branchyard.ledger import LedgerState

SECTION = "postgres"


@dataclass(frozen=True)
class SnapshotRecord:
    """The golden copy worktree clones are made from (connections refused)."""

    name: str
    server: str  # admin URL of the server holding it
    source: str  # where it was copied from (URL, password masked)
    key: str  # identifies (project, server, main database); one current per key
    generation: int
    state: str = "pending"  # pending → ready
    method: str = ""  # template | dump
    pool: int = 0  # spare clones to keep
    created: float = field(default_factory=time.time)
    main_writes: int = -1  # main's rows written (pg_stat_database) before the copy; -1 unknown


@dataclass(frozen=True)
class PoolRecord:
    """A spare clone of a snapshot, waiting to be claimed by a rename."""

    name: str
    server: str
    snapshot: str
    state: str = "pending"  # pending → ready → claimed (by ``target``)
    target: str = ""
    created: float = field(default_factory=time.time)


def _section(state: LedgerState) -> dict[str, Any]:
    data: dict[str, Any] = state.sections.setdefault(SECTION, {})
    data.setdefault("snapshots", {})
    data.setdefault("pool", {})
    return data


def snapshots(state: LedgerState) -> list[SnapshotRecord]:
    raw = state.sections.get(SECTION, {}).get("snapshots", {})
    return [SnapshotRecord(**v) for v in raw.values()]


def pool(state: LedgerState) -> list[PoolRecord]:
    raw = state.sections.get(SECTION, {}).get("pool", {})
    return [PoolRecord(**v) for v in raw.values()]


def put_snapshot(state: LedgerState, record: SnapshotRecord) -> None:
    _section(state)["snapshots"][record.name] = asdict(record)


def put_pool(state: LedgerState, record: PoolRecord) -> None:
    _section(state)["pool"][record.name] = asdict(record)


def forget_snapshot(state: LedgerState, name: str) -> None:
    _section(state)["snapshots"].pop(name, None)


def forget_pool(state: LedgerState, name: str) -> None:
    _section(state)["pool"].pop(name, None)


def current_snapshot(state: LedgerState, key: str) -> SnapshotRecord | None:
    """The newest ready snapshot for ``key``."""
    ready = [s for s in snapshots(state) if s.key == key and s.state == "ready"]
    return max(ready, key=lambda s: s.generation, default=None)


def next_generation(state: LedgerState, key: str) -> int:
    return 1 + max((s.generation for s in snapshots(state) if s.key == key), default=0)
