"""How old the golden snapshot is, whether main has changed since, and refreshing
a stale one when main is idle (``[[database]] refresh = "auto"``).

"Changed" compares main's rows written — ``tup_inserted + tup_updated +
tup_deleted`` of its ``pg_stat_database`` row, which counts every DML and DDL
(catalog rows) in that database — with the figure recorded just before the
snapshot was copied. One indexed read of a statistics view: no scan of main,
no session on it. Reads do not count; the statistics reach the view within a
second or so of a commit (at the latest when the writing session goes idle or
ends). A statistics reset (the counter went down) reads as "changed".
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from branchyard.core.errors import BranchyardError
from branchyard.db import postgres as pg
from branchyard.db.records import SnapshotRecord
from branchyard.db.urls import parse_url

if TYPE_CHECKING:
    from branchyard.db.snapshot import SnapshotSource

WRITES_SQL = ("SELECT tup_inserted + tup_updated + tup_deleted FROM pg_stat_database "
              "WHERE datname = %s")


@dataclass(frozen=True)
class Freshness:
    """The snapshot's age, and whether main has changed since it was made."""

    age: float  # seconds
    changed: bool | None  # None: unknown (counter not recorded, main unreachable)

    @property
    def stale(self) -> bool:
        return self.changed is True

    def text(self) -> str:
        since = {True: "main has changed since", False: "main is unchanged since",
                 None: "whether main changed since is unknown"}[self.changed]
        return f"{age_text(self.age)} old; {since}"

    def as_json(self) -> dict[str, Any]:
        return {"age_seconds": round(self.age, 1), "main_changed": self.changed}


def age_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def main_writes(src: SnapshotSource) -> int | None:
    """Main's rows written so far (None when its server cannot say, and for a
    `dump:` seed's remote, which is not asked on every `up`)."""
    from psycopg import Error

    if not src.same_server:
        return None
    try:
        with pg.connect(src.server) as conn:
            row = conn.execute(WRITES_SQL, (parse_url(src.source).database,)).fetchone()
    except (BranchyardError, Error):
        return None
    return int(row[0]) if row and row[0] is not None else None


def of(src: SnapshotSource, record: SnapshotRecord, *, now: float | None = None) -> Freshness:
    age = (time.time() if now is None else now) - record.created
    if record.main_writes < 0:
        return Freshness(age, None)
    writes = main_writes(src)
    return Freshness(age, None if writes is None else writes != record.main_writes)
