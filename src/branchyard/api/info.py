"""`ls`, `status`, `env`, `path`: reading what is there, cheaply."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from branchyard import git
from branchyard.api.targets import Target, record_for, resolve
from branchyard.api.views import WorktreeView, databases_of, url_of
from branchyard.context import Context, open_context
from branchyard.envfile import main_env_files, read_env_files
from branchyard.errors import BranchyardError, WorktreeError
from branchyard.ledger import WorktreeRecord
from branchyard.providers import get_provider

if TYPE_CHECKING:
    from branchyard.db.snapshot import SnapshotInfo
    from branchyard.processes import ProcInfo
    from branchyard.sharedenv import SharedFile


def list_worktrees(start: Path | str | None = None, *, check_dirty: bool = True,
                   ctx: Context | None = None, lease_main: bool = True) -> list[WorktreeView]:
    """Every worktree of the repository (main first), plus ledger entries whose
    directory is gone (state ``missing``). ``lease_main=False`` (doctor) shows
    main's lease only if it has one already."""
    ctx = ctx or open_context(start)
    state = ctx.ledger.read()
    entries = [e for e in git.worktrees(ctx.repo.common_dir) if not e.bare]
    live = [e for e in entries if not e.prunable and e.path.is_dir()]
    roots = [e.path for e in live]
    from concurrent.futures import ThreadPoolExecutor  # `env` never pays for these

    from branchyard.api.ownership import processes_by_worktree

    # the dirty checks (one `git status` each) run while the process table is read
    with ThreadPoolExecutor(max_workers=8) as pool:
        pending = [pool.submit(_dirty, root) for root in roots] if check_dirty else []
        procs = processes_by_worktree(state, entries)
        dirty = dict(f.result() for f in pending)
    by_real = {os.path.realpath(w.path): w for w in state.worktrees.values()}
    views: list[WorktreeView] = []
    seen: set[str] = set()
    for entry in entries:
        real = os.path.realpath(entry.path)
        record = by_real.get(real)
        if record is not None:
            seen.add(record.slug)
        pids = [p.pid for p in procs.get(real, [])]
        views.append(_main_view(ctx, entry, pids, dirty.get(real), lease_main)
                     if record is None and _same_path(real, ctx.repo.main_path)
                     else _view(ctx, entry, record, pids, dirty.get(real)))
    for record in state.worktrees.values():
        if record.slug not in seen:
            pids = [p.pid for p in procs.get(os.path.realpath(record.path), [])]
            views.append(_missing_view(ctx, record, pids))
    views = _with_merge_state(ctx, _with_strays(ctx, views, procs), entries)
    return _with_services(views)


def _with_services(views: list[WorktreeView]) -> list[WorktreeView]:
    """Each worktree's supervised services, from their state files (no process scan)."""
    from branchyard.services.status import list_services

    return [dataclasses.replace(v, extra={**v.extra, "services": [
        s.to_json() for s in list_services(v.path)]}) for v in views]


def _with_strays(ctx: Context, views: list[WorktreeView],
                 procs: dict[str, list[ProcInfo]]) -> list[WorktreeView]:
    """Add each worktree's dev servers that listen on another port than its own."""
    from branchyard.api.strays import Owner, stray_rows

    owners = [Owner(v.path, "the main worktree" if v.main else (v.branch or v.path), v.ports)
              for v in views if v.state != "missing"]
    rows = stray_rows(owners, procs, ctx.config)
    return [dataclasses.replace(v, extra={**v.extra, "strays": rows.get(
        os.path.realpath(v.path), [])}) for v in views]


def _with_merge_state(ctx: Context, views: list[WorktreeView],
                      entries: list[git.WorktreeEntry]) -> list[WorktreeView]:
    """Add each worktree's hotspot locks and its conflict marker from the last
    `branchyard conflicts` run (None when it is out of date)."""
    from branchyard.merge.locks import read_locks
    from branchyard.merge.markers import conflict_markers

    locks = read_locks(ctx.repo.common_dir)
    markers = conflict_markers(ctx.repo.common_dir, entries)
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


def _dirty(root: Path) -> tuple[str, bool]:
    done = git.git(DIRTY_ARGS, root, check=False)
    return os.path.realpath(root), done.returncode == 0 and bool(done.stdout.strip("\0"))


def _view(ctx: Context, entry: git.WorktreeEntry, record: WorktreeRecord | None,
          pids: list[int], dirty: bool | None) -> WorktreeView:
    cfg = ctx.config
    is_main = os.path.realpath(entry.path) == os.path.realpath(ctx.repo.main_path)
    gone = entry.prunable or not entry.path.is_dir()
    if record is None:
        return WorktreeView(entry.branch, str(entry.path), None, None, None, False,
                            "missing" if gone else "unmanaged", None, processes=pids,
                            dirty=dirty)
    return WorktreeView(
        entry.branch, str(entry.path), record.slug, record.subdomain, record.index, is_main,
        "missing" if gone and record.state != "removing" else record.state,
        url_of(record, ctx.repo, cfg.proxy),
        ports=dict(record.ports), databases=databases_of(record), processes=pids,
        dirty=dirty, frozen_branch=record.branch)


def _same_path(real: str, path: Path) -> bool:
    return real == os.path.realpath(path)


def _main_view(ctx: Context, entry: git.WorktreeEntry, pids: list[int],
               dirty: bool | None, lease: bool = True) -> WorktreeView:
    """Main like any worktree: its ports (env files, else its lease) and databases
    (its ``[[database]]`` sources, masked)."""
    from branchyard.api.mainworktree import main_files_env
    from branchyard.mainports import main_ports

    try:
        ports = main_ports(ctx.repo.common_dir, main_files_env(ctx), ctx.config,
                           lease=lease)
    except BranchyardError:  # a busy or broken lease registry must not break `ls`
        ports = {}
    return WorktreeView(entry.branch, str(entry.path), None, None, 0, True, "main",
                        url_of(None, ctx.repo, ctx.config.proxy), ports=ports,
                        databases=_main_databases(ctx), processes=pids, dirty=dirty)


def _main_databases(ctx: Context) -> list[dict[str, object]]:
    if not ctx.config.database:
        return []
    from branchyard.api.databases import main_allocations

    try:
        allocs = main_allocations(ctx)
    except BranchyardError as err:  # e.g. main's env file lacks DATABASE_URL
        return [{"error": err.message}]
    return [get_provider(a.kind).describe(a) for a in allocs]


def _missing_view(ctx: Context, record: WorktreeRecord, pids: list[int]) -> WorktreeView:
    cfg = ctx.config
    return WorktreeView(
        record.branch, record.path, record.slug, record.subdomain, record.index, False,
        "removing" if record.state == "removing" else "missing",
        url_of(record, ctx.repo, cfg.proxy), ports=dict(record.ports),
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


def project_snapshots(ctx: Context) -> list[SnapshotInfo]:
    """The golden snapshots the ledger records, with their size (`ls`); a project
    without any pays neither the database tools' import nor a connection."""
    from branchyard.db.records import snapshots as recorded

    if not recorded(ctx.ledger.read()):
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
