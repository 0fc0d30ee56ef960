"""`ls`, `status`, `env`, `path`: reading what is there, cheaply."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from branchyard.api.targets import Target, record_for, resolve
from branchyard.api.views import WorktreeView, databases_of, url_of
from branchyard.context import Context, open_context
from branchyard.core.errors import BranchyardError, WorktreeError
from branchyard.envfiles.files import main_env_files, read_env_files
from branchyard.ledger import LedgerState, WorktreeRecord
from branchyard.repo import git

if TYPE_CHECKING:
    from branchyard.db.snapshot import SnapshotInfo
    from branchyard.envfiles.shared import SharedFile
    from branchyard.system.processes import ProcInfo


def list_worktrees(start: Path | str | None = None, *, check_dirty: bool = True,
                   ctx: Context | None = None, lease_main: bool = True,
                   state: LedgerState | None = None) -> list[WorktreeView]:
    """Every worktree of the repository (main first), plus ledger entries whose
    directory is gone (state ``missing``). ``lease_main=False`` (doctor) shows
    main's lease only if it has one already; ``state``: the ledger as the caller
    read it already (`ls` reads it once)."""
    ctx = ctx or open_context(start)
    state = state if state is not None else ctx.ledger.read()
    entries = [e for e in git.worktrees(ctx.repo.common_dir) if not e.bare]
    # each spelling of a path (git's, the ledger's: mostly the same) resolved once
    resolved = {p: os.path.realpath(p) for p in dict.fromkeys(
        [*(str(e.path) for e in entries), *(w.path for w in state.worktrees.values())])}
    from concurrent.futures import ThreadPoolExecutor  # `env` never pays for these

    from branchyard.api.ownership import processes_by_worktree

    # The process table is read before the dirty checks start: a git command of
    # ours between fork and exec, or ending, shows no git command line and would
    # count as its worktree's process. Everything else is read while they run.
    procs = processes_by_worktree(state, entries)
    with ThreadPoolExecutor(max_workers=8) as pool:
        pending = {resolved[str(e.path)]: pool.submit(_dirty, e.path) for e in entries
                   if check_dirty and not e.prunable and e.path.is_dir()}
        views, keys = _views(ctx, entries, resolved, state, procs, lease_main)
        views = _with_strays(ctx, views, keys, procs)
        views = _with_services(_with_merge_state(ctx, views, entries, state))
        dirty = {r: f.result() for r, f in pending.items()}
    # the first views are git's worktrees, in its order; the rest are missing
    return [dataclasses.replace(v, dirty=dirty[key]) if i < len(entries) and key in dirty
            else v for i, (v, key) in enumerate(zip(views, keys, strict=True))]


def _views(ctx: Context, entries: list[git.WorktreeEntry], resolved: dict[str, str],
           state: LedgerState, procs: dict[str, list[ProcInfo]], lease_main: bool
           ) -> tuple[list[WorktreeView], list[str]]:
    """A view of each worktree git lists, then of each ledger entry it does not
    (gone), and the real path of each view (``resolved``: path → real path)."""
    main = os.path.realpath(ctx.repo.main_path)
    by_real = {resolved[w.path]: w for w in state.worktrees.values()}
    views: list[WorktreeView] = []
    seen: set[str] = set()
    keys = [resolved[str(e.path)] for e in entries]
    for entry, here in zip(entries, keys, strict=True):
        record = by_real.get(here)
        if record is not None:
            seen.add(record.slug)
        pids = [p.pid for p in procs.get(here, [])]
        views.append(_main_view(ctx, entry, pids, lease_main)
                     if record is None and here == main
                     else _view(ctx, entry, record, pids, here == main))
    for record in state.worktrees.values():
        if record.slug not in seen:
            keys.append(resolved[record.path])
            views.append(_missing_view(ctx, record, [p.pid for p in procs.get(keys[-1], [])]))
    return views, keys


def _with_services(views: list[WorktreeView]) -> list[WorktreeView]:
    """Each worktree's supervised services, from their state files (no process scan)."""
    from branchyard.services import none_recorded

    if none_recorded():  # the machine never ran any: nothing to read or import
        return [dataclasses.replace(v, extra={**v.extra, "services": []}) for v in views]
    from branchyard.services.status import list_services

    return [dataclasses.replace(v, extra={**v.extra, "services": [
        s.to_json() for s in list_services(v.path)]}) for v in views]


def _with_strays(ctx: Context, views: list[WorktreeView], keys: list[str],
                 procs: dict[str, list[ProcInfo]]) -> list[WorktreeView]:
    """Add each worktree's dev servers that listen on another port than its own
    (``keys``: the real path of each view)."""
    from branchyard.api.strays import Owner, stray_rows

    owners = [Owner(v.path, "the main worktree" if v.main else (v.branch or v.path), v.ports)
              for v in views if v.state != "missing"]
    rows = stray_rows(owners, procs, ctx.config)
    return [dataclasses.replace(v, extra={**v.extra, "strays": rows.get(key, [])})
            for v, key in zip(views, keys, strict=True)]


def _with_merge_state(ctx: Context, views: list[WorktreeView],
                      entries: list[git.WorktreeEntry], state: LedgerState
                      ) -> list[WorktreeView]:
    """Add each worktree's hotspot locks and its conflict marker from the last
    `branchyard conflicts` run (None when it is out of date)."""
    from branchyard.merge.locks import read_locks
    from branchyard.merge.markers import conflict_markers

    locks = read_locks(ctx.repo.common_dir, state)
    markers = conflict_markers(ctx.repo.common_dir, entries, state)
    out: list[WorktreeView] = []
    for view in views:
        marker = markers.get(os.path.normpath(view.path))
        extra = {**view.extra,
                 "locks": [lock.pattern for lock in locks if lock.slug == view.slug],
                 "conflicts": None if marker is None else {
                     "conflicts_with": list(marker.conflicts_with),
                     "migrations_with": list(marker.migrations_with),
                     "locked_paths": list(marker.locked_paths),
                     "files": list(marker.files)}}
        out.append(dataclasses.replace(view, extra=extra))
    return out


# Eight of these run at once: git's own index-preload threads only add contention,
# and rename detection cannot change whether a worktree is dirty.
DIRTY_ARGS = ("-c", "core.preloadIndex=false", "status", "--porcelain=v1", "-z",
              "--untracked-files=normal", "--no-renames")


def _dirty(root: Path) -> bool:
    done = git.git(DIRTY_ARGS, root, check=False)
    return done.returncode == 0 and bool(done.stdout.strip("\0"))


def _view(ctx: Context, entry: git.WorktreeEntry, record: WorktreeRecord | None,
          pids: list[int], is_main: bool) -> WorktreeView:
    gone = entry.prunable or not entry.path.is_dir()
    if record is None:
        return WorktreeView(entry.branch, str(entry.path), None, None, None, False,
                            "missing" if gone else "unmanaged", None, processes=pids)
    return WorktreeView(
        entry.branch, str(entry.path), record.slug, record.subdomain, record.index, is_main,
        "missing" if gone and record.state != "removing" else record.state,
        url_of(record, ctx.repo, ctx.config.proxy),
        ports=dict(record.ports), databases=databases_of(record), processes=pids,
        frozen_branch=record.branch)


def _main_view(ctx: Context, entry: git.WorktreeEntry, pids: list[int],
               lease: bool = True) -> WorktreeView:
    """Main like any worktree: its ports (env files, else its lease) and databases
    (its ``[[database]]`` sources, masked)."""
    from branchyard.api.mainworktree import main_files_env
    from branchyard.system.mainports import main_ports

    try:
        ports = main_ports(ctx.repo.common_dir, main_files_env(ctx), ctx.config,
                           lease=lease)
    except BranchyardError:  # a busy or broken lease registry must not break `ls`
        ports = {}
    return WorktreeView(entry.branch, str(entry.path), None, None, 0, True, "main",
                        url_of(None, ctx.repo, ctx.config.proxy), ports=ports,
                        databases=_main_databases(ctx), processes=pids)


def _main_databases(ctx: Context) -> list[dict[str, object]]:
    if not ctx.config.database:
        return []
    from branchyard.api.databases import main_allocations
    from branchyard.providers import get_provider

    try:
        allocs = main_allocations(ctx)
    except BranchyardError as err:  # e.g. main's env file lacks DATABASE_URL
        return [{"error": err.message}]
    return [get_provider(a.kind).describe(a) for a in allocs]


def _missing_view(ctx: Context, record: WorktreeRecord, pids: list[int]) -> WorktreeView:
    return WorktreeView(
        record.branch, record.path, record.slug, record.subdomain, record.index, False,
        "removing" if record.state == "removing" else "missing",
        url_of(record, ctx.repo, ctx.config.proxy), ports=dict(record.ports),
        databases=databases_of(record), processes=pids, frozen_branch=record.branch)


def status_of(start: Path | str | None = None, *, name: str | None = None) -> WorktreeView:
    """One worktree (default: the current one; the main worktree when run there)."""
    ctx = open_context(start)
    if name is None and not ctx.loc.in_linked_worktree:
        name = str(ctx.repo.main_path)
    target = resolve(ctx, name)
    real = os.path.realpath(target.path)
    for view in list_worktrees(ctx=ctx, check_dirty=False):
        if os.path.realpath(view.path) == real:
            dirty = None if target.missing else git.is_dirty(target.path)
            extra = {**view.extra, "env_files": _env_files(ctx, target)}
            return dataclasses.replace(view, dirty=dirty, extra=extra)
    raise WorktreeError(f"no worktree at {target.path}")


def _env_files(ctx: Context, target: Target) -> list[SharedFile]:
    """The target's shared env files: brought up to date when `status` runs in
    that worktree (a command in it), only looked at otherwise."""
    if target.record is None or target.missing:
        return []
    here = ctx.loc.worktree is not None and \
        os.path.realpath(ctx.loc.worktree) == os.path.realpath(target.path)
    from branchyard.api.envcopies import env_files_of, refresh_env_files

    return (refresh_env_files if here else env_files_of)(ctx, target.record)


def full_env(ctx: Context, record: WorktreeRecord) -> dict[str, str]:
    """What the app gets: the worktree's env files (shared ones included), then
    the derived variables on top."""
    from branchyard.api.mainworktree import MAIN_SLUG, main_files_env

    cfg = ctx.config
    if record.slug == MAIN_SLUG:  # main's override file is its own, not generated
        return {**main_files_env(ctx), **record.env}
    files = [p for p in main_env_files(Path(record.path), cfg.env.shared)
             if p.name != cfg.env.override_file]
    return {**read_env_files(files), **record.env}


def live_record_for(ctx: Context, name: str | None) -> WorktreeRecord:
    """:func:`record_for`, refusing a worktree whose directory is gone (one stat);
    the main worktree's record (:func:`~branchyard.api.mainworktree.main_record`)
    when ``name`` is main or the command runs in main."""
    from branchyard.api.mainworktree import is_main, main_record

    if name is None and ctx.loc.worktree is not None and not ctx.loc.in_linked_worktree:
        return main_record(ctx)
    try:
        record = record_for(ctx, name)
    except WorktreeError:
        if name is not None and is_main(ctx, resolve(ctx, name).path):
            return main_record(ctx)
        raise
    if not os.path.isdir(record.path):  # removed behind branchyard's back
        raise WorktreeError(f"the worktree of {name or record.branch!r} is gone ({record.path})",
                            hint=f"`branchyard down {record.branch}` (or `branchyard gc`) "
                                 "releases what it left")
    return record


def env_of(start: Path | str | None = None, *, name: str | None = None) -> dict[str, str]:
    """The worktree's env (its shared env files brought up to date first)."""
    ctx = open_context(start)
    record = live_record_for(ctx, name)
    if ctx.config.env.shared:  # only shared files can be copies to bring up to date
        from branchyard.api.envcopies import refresh_env_files

        refresh_env_files(ctx, record)
    return full_env(ctx, record)


def project_snapshots(ctx: Context, state: LedgerState | None = None) -> list[SnapshotInfo]:
    """The golden snapshots the ledger records (``state``, when the caller read
    it), with their size (`ls`); a project without any pays neither the database
    tools' import nor a connection."""
    from branchyard.db.records import snapshots as recorded

    if not recorded(state if state is not None else ctx.ledger.read()):
        return []
    from branchyard.api.snapshots import snapshots

    return snapshots(ctx)


def worktree_env(path: Path) -> dict[str, str]:
    """:func:`env_of` the worktree at ``path``; {} for one branchyard did not set up
    (what merge checks run with: the merged worktree's databases and ports)."""
    try:
        return env_of(path)
    except BranchyardError:
        return {}


def worktree_path(name: str, start: Path | str | None = None) -> Path:
    ctx = open_context(start)
    state = ctx.ledger.read()
    record = next((w for w in state.worktrees.values()
                   if name in (w.branch, w.slug, w.subdomain)), None)
    if record is not None and Path(record.path).is_dir():
        return Path(record.path)
    target = resolve(ctx, name, state)
    if target.missing:
        raise WorktreeError(f"the worktree of {name!r} is gone ({target.path})",
                            hint=f"`branchyard down {name}` releases what it left")
    return target.path
