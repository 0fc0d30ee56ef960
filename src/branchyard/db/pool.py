"""The warm pool: spare clones of a snapshot, claimed by an instant rename.

``up`` claims a ready spare (``ALTER DATABASE … RENAME``) instead of copying,
then starts :func:`spawn_refill`, a detached process, so ``up`` returns at once
while the pool is topped up again. Every spare is recorded in the ledger before
it is created and accepts no connections until claimed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from branchyard.core.errors import BranchyardError
from branchyard.core.faults import fault
from branchyard.core.paths import state_dir
from branchyard.db import postgres as pg
from branchyard.db import records
from branchyard.db.records import PoolRecord, SnapshotRecord
from branchyard.ledger import Ledger
from branchyard.system.processes import pid_alive

if TYPE_CHECKING:
    from filelock import FileLock


def claim(common_dir: Path, snapshot: SnapshotRecord, target: str) -> bool:
    """Rename a ready spare of ``snapshot`` to ``target``; False when none is left."""
    while True:
        spare = _reserve(common_dir, snapshot.name, target)
        if spare is None:
            return False
        try:
            with pg.connect(snapshot.server) as conn:
                if not pg.exists(conn, spare.name):
                    _forget(common_dir, spare.name)
                    continue
                pg.rename(conn, spare.name, target)
                pg.set_allow_connections(conn, target, True)
        except BaseException:
            _release(common_dir, spare)
            raise
        _forget(common_dir, spare.name)
        return True


def _reserve(common_dir: Path, snapshot: str, target: str) -> PoolRecord | None:
    with Ledger(common_dir).update() as state:
        ready = sorted((p for p in records.pool(state)
                        if p.snapshot == snapshot and p.state == "ready"),
                       key=lambda p: p.created)
        if not ready:
            return None
        spare = replace(ready[0], state="claimed", target=target)
        records.put_pool(state, spare)
    return spare


def _release(common_dir: Path, spare: PoolRecord) -> None:
    with Ledger(common_dir).update() as state:
        records.put_pool(state, replace(spare, state="ready", target=""))


def _forget(common_dir: Path, name: str) -> None:
    with Ledger(common_dir).update() as state:
        records.forget_pool(state, name)


QUIET_FOR = 2.0  # seconds without a clone running before a spare is made
QUIET_WAIT = 600.0  # …waited for at most this long (then the spare is made anyway)
SETTING_UP_FOR = 300.0  # a worktree "provisioning" for longer is a crashed `up`: not waited for


def refill(common_dir: Path, snapshot_name: str, *, quiet_for: float = QUIET_FOR) -> int:
    """Top the pool of ``snapshot_name`` up to its size; the number created.

    Spares are made one at a time, each after no clone of the snapshot has run
    and no `up` has been setting up for ``quiet_for`` seconds: a burst of `up`s
    clones first, the pool refills after it instead of contending with it. Only
    one refill per snapshot runs at a time; a second returns 0 at once (the first
    sees its claim before it ends).
    """
    from filelock import Timeout

    lock = refill_lock(common_dir, snapshot_name)
    made = 0
    while True:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return made
        try:
            while (spare := _next_spare(common_dir, snapshot_name)) is not None:
                fault("pool.pending")
                try:
                    _wait_for_quiet(common_dir, spare.server, snapshot_name, quiet_for)
                except BaseException:
                    _forget(common_dir, spare.name)
                    raise
                _create_spare(common_dir, snapshot_name, spare)
                made += 1
        finally:
            lock.release()
        if not _short(common_dir, snapshot_name):  # a claim between the last check
            return made                            # and the release: go round again


def _short(common_dir: Path, snapshot_name: str) -> bool:
    state = Ledger(common_dir).read()
    snap = next((s for s in records.snapshots(state) if s.name == snapshot_name), None)
    if snap is None or records.current_snapshot(state, snap.key) != snap:
        return False
    have = [p for p in records.pool(state) if p.snapshot == snapshot_name
            and p.state in ("pending", "ready")]
    return len(have) < snap.pool


def _setting_up(common_dir: Path) -> bool:
    """Whether an `up`/`setup` of this repository is under way (a worktree entry
    still "provisioning", made in the last :data:`SETTING_UP_FOR` s)."""
    import time

    now = time.time()
    return any(w.state == "provisioning" and now - w.created_at < SETTING_UP_FOR
               for w in Ledger(common_dir).read().worktrees.values())


def _wait_for_quiet(common_dir: Path, server: str, snapshot_name: str,
                    quiet_for: float) -> None:
    """Wait until, for ``quiet_for`` s, no other session has cloned ``snapshot_name``
    (a ``CREATE DATABASE`` naming it) and no `up` of the repository is setting up."""
    import time

    if quiet_for <= 0:
        return
    query = ("SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
             "AND state = 'active' AND query ILIKE 'CREATE DATABASE%%' "
             "AND position(%s in query) > 0")
    deadline = time.monotonic() + QUIET_WAIT
    # First the ledger alone: the driver's import (~0.1 s of CPU) waits for the
    # burst to end too, instead of taking a core from it.
    while time.monotonic() < deadline and _setting_up(common_dir):
        time.sleep(0.25)
    with pg.connect(server) as conn:
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            row = conn.execute(query, (snapshot_name,)).fetchone()
            now = time.monotonic()
            if (row and row[0]) or _setting_up(common_dir):
                quiet_since = now
            elif now - quiet_since >= quiet_for:
                return
            time.sleep(0.25)  # a poll costs the burst next to nothing


def _next_spare(common_dir: Path, snapshot_name: str) -> PoolRecord | None:
    """Record the next spare to create, or None when the pool is full (or the
    snapshot is no longer current)."""
    with Ledger(common_dir).update() as state:
        snap = next((s for s in records.snapshots(state) if s.name == snapshot_name), None)
        if snap is None or snap.state != "ready" or \
                records.current_snapshot(state, snap.key) != snap:
            return None
        have = [p for p in records.pool(state) if p.snapshot == snapshot_name
                and p.state in ("pending", "ready")]
        if len(have) >= snap.pool:
            return None
        stem = pg.truncate_bytes(snapshot_name.split("__snap_", maxsplit=1)[0], 20)
        spare = PoolRecord(name=f"{stem}__pool_{secrets.token_hex(4)}", server=snap.server,
                           snapshot=snapshot_name)
        records.put_pool(state, spare)
    return spare


def _create_spare(common_dir: Path, snapshot_name: str, spare: PoolRecord) -> None:
    try:
        with pg.connect(spare.server) as conn:
            pg.create(conn, spare.name, template=snapshot_name, allow_connections=False)
    except BaseException:
        _forget(common_dir, spare.name)
        raise
    fault("pool.created")
    with Ledger(common_dir).update() as state:
        if any(s.name == snapshot_name for s in records.snapshots(state)):
            records.put_pool(state, replace(spare, state="ready"))
            return
    # the snapshot was retired while this spare was copied: it is stale
    drain(common_dir, snapshot_name)


def drain(common_dir: Path, snapshot_name: str) -> list[str]:
    """Drop every unclaimed spare of ``snapshot_name``; the names dropped."""
    gone = []
    for spare in records.pool(Ledger(common_dir).read()):
        if spare.snapshot != snapshot_name or spare.state == "claimed":
            continue
        with contextlib.suppress(BranchyardError), pg.connect(spare.server) as conn:
            pg.drop(conn, spare.name)
            _forget(common_dir, spare.name)
            gone.append(spare.name)
    return gone


def refill_lock(common_dir: Path, snapshot_name: str) -> FileLock:
    """Held by the refill of ``snapshot_name``'s pool (one at a time)."""
    from filelock import FileLock

    return FileLock(str(common_dir / "branchyard" / f"pool-{snapshot_name}.lock"))


def refill_running(common_dir: Path, snapshot_name: str) -> bool:
    """Whether a refill of ``snapshot_name``'s pool holds its lock now."""
    from filelock import Timeout

    lock = refill_lock(common_dir, snapshot_name)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


# The refill is background work: at the lowest priority its own startup (an
# interpreter and its imports, ~0.3 s of CPU) does not slow a burst of `up`s on
# a machine with few cores (a burst of 8 on 2 cores: 1.12x slower at niceness 0).
REFILL_NICENESS = 19


def spawn_refill(common_dir: Path, snapshot_name: str) -> int:
    """Start a detached ``branchyard db _refill`` at the lowest priority and return
    its pid at once; 0 when a refill is started or runs already (it sees the claim
    made before this call before it ends).

    "Started" is a marker file made with ``O_EXCL`` before the process exists: a
    burst of eight `up`s would otherwise start eight, each asking before the first
    one's interpreter had started and taken :func:`refill_lock`.
    """
    if refill_running(common_dir, snapshot_name):
        return 0
    marker = _spawn_marker(common_dir, snapshot_name)
    if not _take_marker(marker):
        return 0
    try:
        log_dir = state_dir() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        with (log_dir / "pool-refill.log").open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "branchyard", "db", "_refill",
                 "--common-dir", str(common_dir), snapshot_name],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True, close_fds=True, env=dict(os.environ))
    except BaseException:
        marker.unlink(missing_ok=True)
        raise
    marker.write_text(str(proc.pid), encoding="ascii")
    if hasattr(os, "setpriority"):  # lowering one's own child needs no privilege
        with contextlib.suppress(OSError):  # it has ended already
            os.setpriority(os.PRIO_PROCESS, proc.pid, REFILL_NICENESS)
    return proc.pid


def run_detached_refill(common_dir: Path, snapshot_name: str) -> int:
    """The body of ``db _refill``: :func:`refill`, then the spawn marker removed
    (a new claim may start the next refill)."""
    try:
        return refill(common_dir, snapshot_name)
    finally:
        marker = _spawn_marker(common_dir, snapshot_name)
        with contextlib.suppress(OSError, ValueError):
            if int(marker.read_text(encoding="ascii") or 0) == os.getpid():
                marker.unlink()


# A marker names a live refill for at most this long: past it (a pid reused by
# another process), a claim starts a new refill.
SPAWN_MARK_FOR = 2 * QUIET_WAIT


def _spawn_marker(common_dir: Path, snapshot_name: str) -> Path:
    return common_dir / "branchyard" / f"pool-{snapshot_name}.spawned"


def _take_marker(marker: Path) -> bool:
    """Make ``marker``; False when it names a refill that is starting or running
    (a marker left by a refill that was killed is replaced)."""
    import time

    for _ in range(2):
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return True
        except FileExistsError:
            try:
                text, age = marker.read_text(encoding="ascii"), time.time() - \
                    marker.stat().st_mtime
            except FileNotFoundError:
                continue  # its refill just ended
            # empty: the spawner has not written the pid yet
            if age < SPAWN_MARK_FOR and (not text.strip() or pid_alive(int(text))):
                return False
            marker.unlink(missing_ok=True)
    return False
