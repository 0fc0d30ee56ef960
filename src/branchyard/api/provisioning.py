"""`setup`: provision the worktree a path is in — idempotent, undone on failure."""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from branchyard.api import intents
from branchyard.api.claims import claim_identity, forget, worktree_name
from branchyard.api.envcopies import refresh_env_files
from branchyard.api.resources import ensure_resource, planned_kinds, resource_env
from branchyard.config.model import DATABASE_ENGINES
from branchyard.context import Context, open_context
from branchyard.core.errors import WorktreeError
from branchyard.core.events import NullReporter, PhaseTime, PhaseTimer, Reporter
from branchyard.core.faults import fault
from branchyard.db import sessions
from branchyard.envfiles.files import (
    base_vars,
    check_name,
    main_env_files,
    override_text,
    read_env_files,
    render,
    secret_mode,
    template_values,
    write_if_changed,
)
from branchyard.envfiles.shared import EDITED, SharedFile, describe
from branchyard.ledger import WorktreeRecord
from branchyard.providers import get_provider
from branchyard.proxy.sites import url_env
from branchyard.repo import git
from branchyard.resources.plan import PlanContext
from branchyard.system import ports as portlib


def phase_of(kind: str) -> str:
    """The setup phase a resource kind is timed in: ``databases``, else the kind."""
    return "databases" if kind in DATABASE_ENGINES else kind


@dataclass(frozen=True)
class SetupRequest:
    worktree: Path | None = None  # default: the worktree the cwd is in
    reseed: bool = False
    rerun_hooks: bool = False
    run_hooks: bool = True
    base: str = ""  # recorded by `up`: the branch this one was made from
    created_branch: bool = False
    created_worktree: bool = False
    force: bool = False  # replace generated env copies edited in the worktree


@dataclass(frozen=True)
class SetupResult:
    slug: str
    subdomain: str
    branch: str
    path: str
    ports: dict[str, int]
    url: str
    env_file: str
    changed: bool
    actions: tuple[str, ...]
    phases: tuple[PhaseTime, ...]
    url_note: str = ""  # why the dev URL will not answer now (the proxy is down)
    env_files: tuple[SharedFile, ...] = ()


def setup(request: SetupRequest, reporter: Reporter | None = None) -> SetupResult:
    """Provision the worktree; a second run changes nothing and says so."""
    start = request.worktree or Path.cwd()
    ctx = open_context(start)
    worktree = ctx.loc.worktree
    if worktree is not None and not ctx.loc.in_linked_worktree:
        raise WorktreeError(
            f"{worktree} is the main worktree: it needs no setup",
            hint="`branchyard run` starts its dev server with its env (`branchyard env` "
                 "shows it); `branchyard up BRANCH` makes a worktree to set up")
    if worktree is None:
        raise WorktreeError(
            f"{start} is not in a worktree (it is the git dir)",
            hint="run `branchyard setup` inside a worktree made by `git worktree add`, "
                 "Conductor or another tool, or use `branchyard up BRANCH`",
        )
    timer = PhaseTimer(reporter or NullReporter())
    intent = intents.new_intent("setup", worktree)
    done = _Done()
    with intents.recorded(ctx.ledger, intent), ExitStack() as undo:
        record = _provision(ctx, worktree, request, timer, undo, done)
        undo.pop_all()
        fault("setup.ready")
    return SetupResult(record.slug, record.subdomain, record.branch, str(worktree),
                       dict(record.ports), record.env.get("BRANCHYARD_URL", ""),
                       str(worktree / ctx.config.env.override_file), bool(done.actions),
                       tuple(done.actions), tuple(timer.times), _url_note(ctx),
                       tuple(done.env_files))


@dataclass
class _Done:
    """What a setup run did, gathered as it goes."""

    actions: list[str] = field(default_factory=list)
    env_files: list[SharedFile] = field(default_factory=list)


def _url_note(ctx: Context) -> str:
    from branchyard.proxy.daemon import url_note

    return url_note(ctx.config.proxy)


def _provision(ctx: Context, worktree: Path, request: SetupRequest, timer: PhaseTimer,
               undo: ExitStack, done: _Done) -> WorktreeRecord:
    cfg = ctx.config
    actions = done.actions
    with timer.phase("identity"):
        name = worktree_name(ctx, worktree, git.current_branch(worktree))
        record, created = claim_identity(ctx, worktree, name, request)
        if created:
            undo.callback(forget, ctx, record.slug)
            actions.append(f"identity {record.slug} ({record.subdomain})")
        fault("setup.identity")
    with timer.phase("ports"):
        owner = portlib.owner_key(ctx.repo.common_dir, record.slug)
        ports = portlib.lease_ports(owner, cfg.ports.names, cfg.ports,
                                    fixed_base=portlib.conductor_base())
        if ports != record.ports:
            undo.callback(portlib.release_ports, owner)
            actions.append("ports " + ", ".join(f"{k}={v}" for k, v in ports.items()))
            with ctx.ledger.update() as state:
                state.worktrees[record.slug].ports = ports
        fault("setup.ports")
    urls = url_env(record.subdomain, ctx.repo.project, ports, cfg)
    url = urls["BRANCHYARD_URL"]
    base = base_vars(record.identity, repo=ctx.repo.name, project=ctx.repo.project,
                     ports=ports, urls=urls)
    plan_ctx = PlanContext(
        repo=ctx.repo, config=cfg, identity=record.identity, worktree=worktree,
        ports=ports, url=url, base_env=base, reseed=request.reseed, reporter=timer,
        main_env=read_env_files(main_env_files(ctx.repo.main_path, cfg.env.shared)))
    _register_repo(ctx)
    _exclude_generated(ctx)
    _ensure_resources(ctx, record.slug, plan_ctx, undo, actions)
    with timer.phase("env"):
        env = _write_env(ctx, record.slug, worktree, plan_ctx)
        if env is not None:
            actions.append(f"wrote {cfg.env.override_file}")
        done.env_files += _refresh_shared(ctx, record.slug, request.force, timer, actions)
        fault("setup.env")
    if ctx.config.proxy.auto_start:
        with timer.phase("proxy"):
            _start_proxy(ctx, actions)
    if request.run_hooks:
        with timer.phase("hooks"):
            if _run_setup_hooks(ctx, record.slug, worktree, request.rerun_hooks, timer):
                actions.append("ran setup hooks")
    with ctx.ledger.update() as state:
        state.worktrees[record.slug].state = "ready"
        return state.worktrees[record.slug]


def _ensure_resources(ctx: Context, slug: str, plan: PlanContext, undo: ExitStack,
                      actions: list[str]) -> None:
    """Every resource of the config, in setup order, each timed in its phase; one
    connection per database server for all of them (closed before the hooks run)."""
    with sessions.sharing():
        for kind in planned_kinds(ctx.config):
            provider = get_provider(kind)
            with plan.reporter.phase(phase_of(kind)):
                for alloc in provider.plan(plan):
                    if ensure_resource(ctx, slug, provider, alloc, plan, undo):
                        actions.append(f"{kind} {alloc.key.partition(':')[2]}")


def _write_env(ctx: Context, slug: str, worktree: Path, plan: PlanContext) -> dict[str, str] | None:
    """Compute the worktree's env, record it, write the override file; None if unchanged."""
    cfg = ctx.config
    with ctx.ledger.update() as state:
        record = state.worktrees[slug]
        env = {**plan.base_env, **resource_env(record)}
        values = template_values(record.identity, repo=ctx.repo.name, project=ctx.repo.project,
                                 ports=plan.ports, env=env)
        for name, template in cfg.env.vars.items():
            check_name(name, f"env.vars.{name}")
            env[name] = render(template, values, f"env.vars.{name}")
        record.env = env
    # it carries database passwords: never more readable than main's shared files
    mode = secret_mode(ctx.repo.main_path / rel for rel in cfg.env.shared)
    written = write_if_changed(worktree / cfg.env.override_file,
                               override_text(record.identity, env), mode=mode)
    return env if written else None


def _refresh_shared(ctx: Context, slug: str, force: bool, reporter: Reporter,
                    actions: list[str]) -> list[SharedFile]:
    """Shared env files that set one of the worktree's variables become copies
    with the worktree's values (before the hooks: a migration reads them)."""
    found = refresh_env_files(ctx, ctx.ledger.read().worktrees[slug], force=force)
    for item in found:
        if item.refreshed:
            actions.append(describe(item))
        elif item.state == EDITED:
            reporter.message(f"kept {describe(item)}")
    return found


def _run_setup_hooks(ctx: Context, slug: str, worktree: Path, rerun: bool,
                     reporter: Reporter) -> bool:
    hooks = ctx.config.hooks.setup
    digest = hashlib.sha1(json.dumps(hooks).encode(), usedforsecurity=False).hexdigest()
    record = ctx.ledger.read().worktrees[slug]
    if not hooks or (record.hooks_done == digest and not rerun):
        return False
    from branchyard.api.info import full_env
    from branchyard.system import external

    env = {**os.environ, **full_env(ctx, record)}
    for hook in hooks:
        reporter.message(f"$ {hook}")
        external.run_hook(external.Hook(hook, worktree, env, "setup"), on_line=reporter.output)
    with ctx.ledger.update() as state:
        state.worktrees[slug].hooks_done = digest
    return True


def _register_repo(ctx: Context) -> None:
    """Let machine-wide readers (the proxy, `doctor`) find this repository's ledger."""
    from branchyard.proxy.registry import register_repo

    register_repo(ctx.repo.common_dir)


def _start_proxy(ctx: Context, actions: list[str]) -> None:
    from branchyard.proxy.daemon import ensure_proxy, proxy_status

    if ctx.config.proxy.auto_start and proxy_status().state != "running":
        ensure_proxy(ctx.config.proxy)
        actions.append(f"started the proxy on port {ctx.config.proxy.port}")


EXCLUDE_MARK = "# branchyard: generated per worktree (do not commit)"


def _exclude_generated(ctx: Context) -> None:
    """Keep generated files out of `git status` in every worktree."""
    cfg = ctx.config
    names = [cfg.env.override_file, *cfg.env.shared, *cfg.files.symlink, *cfg.files.copy]
    if cfg.browser.session_file:
        names.append(cfg.browser.session_file)
    exclude = ctx.repo.common_dir / "info" / "exclude"
    try:
        text = exclude.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    present = set(text.splitlines())
    missing = [f"/{n}" for n in dict.fromkeys(names) if f"/{n}" not in present]
    if not missing:
        return
    block = ("" if not text or text.endswith("\n") else "\n")
    block += ("" if EXCLUDE_MARK in present else EXCLUDE_MARK + "\n") + "\n".join(missing) + "\n"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    with exclude.open("a", encoding="utf-8") as fh:
        fh.write(block)
