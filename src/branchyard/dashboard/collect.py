"""Reading the yard for the dashboard: blocking work, run off the proxy's loop.

Everything comes from what the CLI reads too — :func:`~branchyard.api.info.list_worktrees`
(state, URL, ports, databases, processes, locks, the radar's last result), the
ledger's queue and locks, the services' own records — plus, per worktree, one
``git status`` (the dirty files) and one ``git rev-list`` (ahead/behind its base).
Database sizes cost a server round trip, so each is fetched at most every
``SIZE_TTL`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from branchyard.core.errors import BranchyardError
from branchyard.dashboard import services_view
from branchyard.dashboard.model import DatabaseCard, Radar, RepoCard, WorktreeCard, Yard
from branchyard.ledger import LedgerState
from branchyard.repo import git
from branchyard.resources.specs import (
    DatabaseSpec,
    MysqlSpec,
    PostgresSpec,
    ServerDatabaseSpec,
    SqliteSpec,
)

MAX_DIRTY = 20
SIZE_TTL = 10.0


class SizeCache:
    """Database sizes, each re-fetched at most every ``SIZE_TTL`` seconds."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sizes: dict[tuple[str, str, str], tuple[float, int | None]] = {}
        self._lock = threading.Lock()

    def size(self, spec: DatabaseSpec) -> int | None:
        key = (spec.kind, *_where(spec))
        now = self._clock()
        with self._lock:
            known = self._sizes.get(key)
        if known is not None and now - known[0] < SIZE_TTL:
            return known[1]
        value = _fetch_size(spec)
        with self._lock:
            self._sizes[key] = (now, value)
        return value


def _where(spec: DatabaseSpec) -> tuple[str, str]:
    """The server (or file) and the database a size is of."""
    if isinstance(spec, ServerDatabaseSpec):
        return spec.server, spec.database
    return (spec.path if isinstance(spec, SqliteSpec) else ""), ""


def _fetch_size(spec: DatabaseSpec) -> int | None:
    try:
        if isinstance(spec, PostgresSpec):
            from branchyard.db import postgres as pg

            with pg.connect(spec.server) as conn:
                info = pg.database_info(conn, spec.database)
            return None if info is None else info.size
        if isinstance(spec, MysqlSpec | SqliteSpec):
            from branchyard.api.dbstatus import INSPECTORS
            from branchyard.resources.plan import Allocation

            size = INSPECTORS[spec.kind](Allocation(spec.kind, "", spec)).get("size")
            return int(size) if size is not None else None
    except (BranchyardError, OSError):
        return None  # a server that is down shows no size, not an error page
    return None  # redis: a key count, not a size


def collect_yard(common_dirs: Sequence[Path], sizes: SizeCache) -> Yard:
    return Yard(tuple(collect_repo(c, sizes) for c in common_dirs), time.time())


def collect_repo(common_dir: Path, sizes: SizeCache) -> RepoCard:
    from branchyard.api.info import list_worktrees
    from branchyard.context import open_context
    from branchyard.merge.locks import read_locks
    from branchyard.merge.queue import read_queue
    from branchyard.proxy.backends import main_path_of, repo_name

    main = main_path_of(common_dir)
    try:
        ctx = open_context(main, main_config=True)
        views = list_worktrees(ctx=ctx, check_dirty=False)
        state = ctx.ledger.read()
        default = git.base_branch("", ctx.config.project.base, main)  # once per repository
        names = services_view.configured(ctx.config)
        with ThreadPoolExecutor(max_workers=4) as pool:
            cards = list(pool.map(
                lambda v: _card(v, state, ctx.config, (default, names), sizes), views))
        return RepoCard(ctx.repo.project, str(common_dir), str(main), tuple(cards),
                        read_queue(common_dir), read_locks(common_dir))
    except (BranchyardError, OSError) as err:  # one unreadable repository, not the page
        return RepoCard(repo_name(common_dir), str(common_dir), str(main), error=str(err))


def _card(view: Any, state: LedgerState, config: Any,
          base_and_services: tuple[str, tuple[str, ...]],
          sizes: SizeCache) -> WorktreeCard:
    default_base, names = base_and_services
    record = state.worktrees.get(view.slug) if view.slug else None
    base = git.base_branch(record.base if record else "", default_base, "")
    live = view.state != "missing"
    dirty = _dirty_files(view.path) if live else ()
    ahead, behind = (None, None) if view.main or not live else _ahead_behind(view.path, base)
    conflicts = view.extra.get("conflicts")
    radar = None if conflicts is None else Radar(
        *(tuple(conflicts.get(k, ())) for k in ("conflicts_with", "migrations_with",
                                               "locked_paths", "files")))
    return WorktreeCard(
        view.branch or "(detached)", view.path, view.slug or "", view.main, view.state,
        view.url or "", "" if view.main else base, tuple(view.ports.items()),
        len(view.processes), dirty[:MAX_DIRTY], len(dirty), ahead, behind, radar,
        tuple(view.extra.get("locks", ())),
        services_view.services_of(view.path, names if view.slug else ()) if live else (),
        tuple(_database(d, record, state, sizes) for d in view.databases))


def _dirty_files(path: str) -> tuple[str, ...]:
    from branchyard.api.info import DIRTY_ARGS

    try:
        done = git.git(DIRTY_ARGS, path, check=False)
    except BranchyardError:  # removed a moment ago
        return ()
    if done.returncode != 0:
        return ()
    return tuple(item[3:] for item in done.stdout.split("\0") if len(item) > 3)


def _ahead_behind(path: str, base: str) -> tuple[int | None, int | None]:
    try:
        done = git.git(["rev-list", "--left-right", "--count", f"refs/heads/{base}...HEAD"],
                       path, check=False)
    except BranchyardError:
        return None, None
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 2:
        return None, None
    return int(parts[1]), int(parts[0])


def _database(row: dict[str, Any], record: Any, state: LedgerState,
              sizes: SizeCache) -> DatabaseCard:
    kind = str(row.get("engine", ""))
    spec = next((r.spec for r in record.resources if r.kind == kind
                 and isinstance(r.spec, DatabaseSpec) and r.spec.name == row.get("name")),
                None) if record else None
    return DatabaseCard(str(row.get("name", "")), kind, str(row.get("database", "")),
                        sizes.size(spec) if spec else None, _snapshot_age(spec, state))


def _snapshot_age(spec: DatabaseSpec | None, state: LedgerState) -> float | None:
    if not isinstance(spec, PostgresSpec):
        return None
    from branchyard.db import provision, records

    try:
        if not provision.clones(spec):
            return None
        key = provision.snapshot_source(spec, spec.server).key
    except (ValueError, BranchyardError):
        return None
    snap = records.current_snapshot(state, key)
    return None if snap is None else max(0.0, time.time() - snap.created)
