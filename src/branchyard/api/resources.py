"""Creating resources inside the setup transaction, ledger first."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

from branchyard.config.model import Config
from branchyard.context import Context
from branchyard.core.faults import fault
from branchyard.ledger import ResourceRecord, WorktreeRecord
from branchyard.providers import PREVIEWED, SETUP_ORDER, get_provider
from branchyard.providers.base import Provider
from branchyard.resources.plan import Allocation, PlanContext


def planned_kinds(cfg: Config) -> list[str]:
    """The provider kinds this config uses, in setup order."""
    engines = {db.engine for db in cfg.database}
    wanted = {"files", "browser", *engines}
    if cfg.deps:
        wanted.add("deps")
    return [k for k in SETUP_ORDER if k in wanted]


def preview_databases(ctx: Context, branch: str, worktree: Path) -> None:
    """Plan the databases a new worktree at ``worktree`` would get, before `up`
    makes anything: a name that cannot work (main's own, too long) fails here."""
    from branchyard.core.identity import derive_identity
    from branchyard.envfiles.files import main_env_files, read_env_files

    cfg = ctx.config
    plan = PlanContext(repo=ctx.repo, config=cfg, identity=derive_identity(branch),
                       worktree=worktree, ports={}, url="",
                       main_env=read_env_files(main_env_files(ctx.repo.main_path,
                                                              cfg.env.shared)))
    for kind in planned_kinds(cfg):
        if kind in PREVIEWED:
            get_provider(kind).plan(plan)


def ensure_resource(ctx: Context, slug: str, provider: Provider[Any], alloc: Allocation[Any],
                    plan: PlanContext, undo: ExitStack) -> bool:
    """Make sure ``alloc`` exists; returns whether anything changed.

    An allocation already in the ledger keeps its recorded spec (frozen at
    provision time). A new one is recorded as pending *before* it is created,
    so a crash leaves an owner; its undo is pushed only when this run made it.
    """
    record = ctx.ledger.read().worktrees[slug]
    existing = record.resource(alloc.key)
    if existing is not None:
        alloc = Allocation(existing.kind, existing.key, existing.spec)
        # `setup --reseed` hands ready databases back to their provider to re-seed.
        if existing.state == "ready" and not plan.reseed and provider.exists(alloc):
            return False
        if alloc.spec.adopted and not provider.exists(alloc):
            alloc = _disown(ctx, slug, alloc)
    else:
        if provider.found(alloc):  # made by hand or by another tool: used, never dropped
            alloc = Allocation(alloc.kind, alloc.key, replace(alloc.spec, adopted=True))
        with ctx.ledger.update() as state:
            state.worktrees[slug].resources.append(
                ResourceRecord(alloc.kind, alloc.key, alloc.spec))
        undo.callback(_undo, ctx, slug, provider, alloc)
        fault("resource.pending", alloc.key)
    changed = provider.create(alloc, plan)
    fault("resource.created", alloc.key)
    with ctx.ledger.update() as state:
        res = state.worktrees[slug].resource(alloc.key)
        if res is not None:
            res.state = "ready"
    return changed


def _disown(ctx: Context, slug: str, alloc: Allocation[Any]) -> Allocation[Any]:
    """An adopted resource that is gone (removed by hand): what the provider makes
    in its place is branchyard's own."""
    spec = replace(alloc.spec, adopted=False)
    with ctx.ledger.update() as state:
        res = state.worktrees[slug].resource(alloc.key)
        if res is not None:
            res.spec = spec
    return Allocation(alloc.kind, alloc.key, spec)


def _undo(ctx: Context, slug: str, provider: Provider[Any], alloc: Allocation[Any]) -> None:
    provider.destroy(alloc)
    with ctx.ledger.update() as state:
        rec = state.worktrees.get(slug)
        if rec is not None:
            rec.resources = [r for r in rec.resources if r.key != alloc.key]


def resource_env(record: WorktreeRecord) -> dict[str, str]:
    env: dict[str, str] = {}
    for res in record.resources:
        if res.state == "ready":
            env.update(get_provider(res.kind).env(Allocation(res.kind, res.key, res.spec)))
    return env
