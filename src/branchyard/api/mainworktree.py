"""The main worktree as a worktree: its port, env and runs, for `env`, `run`, `stop`,
`status` and `url`.

Main has no ledger entry (it is never set up nor removed), so its record is built
on each call: its ports (``mainports``), the derived variables on top of its own
env files (its databases' variables where those files do not set them), and the
processes ``branchyard run`` started in it, which live in the ledger section
``main``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from branchyard.context import Context
from branchyard.core.identity import Identity
from branchyard.envfiles.files import (
    base_vars,
    check_name,
    main_env_files,
    read_env_files,
    render,
    template_values,
)
from branchyard.ledger import LedgerState, ProcessRecord, WorktreeRecord

MAIN_SLUG = "main"  # its identity's slug; never a worktree's (those end in a hash)
SECTION = "main"


def is_main(ctx: Context, path: Path | str) -> bool:
    return os.path.realpath(path) == os.path.realpath(ctx.repo.main_path)


def main_branch(ctx: Context) -> str:
    """The branch checked out in main, read from its HEAD (no git call)."""
    try:
        head = (ctx.repo.common_dir / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else ""


def main_files_env(ctx: Context) -> dict[str, str]:
    """Main's own env files, override file included (it is main's, not generated)."""
    return read_env_files(main_env_files(ctx.repo.main_path, ctx.config.env.shared))


def main_record(ctx: Context, state: LedgerState | None = None) -> WorktreeRecord:
    """Main as a record: its ports (leased when its env files set none), derived
    env and recorded runs. Not stored: main has no ledger entry."""
    from branchyard.proxy.sites import url_env
    from branchyard.system.mainports import main_ports  # `env` in a worktree never pays for it

    cfg = ctx.config
    files = main_files_env(ctx)
    ports = main_ports(ctx.repo.common_dir, files, cfg)
    ident = Identity(main_branch(ctx), MAIN_SLUG, "", 0)
    urls = url_env(None, ctx.repo.project, ports, cfg)
    env = base_vars(ident, repo=ctx.repo.name, project=ctx.repo.project, ports=ports,
                    urls=urls)
    env.pop("COMPOSE_PROJECT_NAME")  # main keeps the compose project it always had
    env.update({k: v for k, v in _database_env(ctx).items() if k not in files})
    values = template_values(ident, repo=ctx.repo.name, project=ctx.repo.project,
                             ports=ports, env={**files, **env})
    for name, template in cfg.env.vars.items():
        check_name(name, f"env.vars.{name}")
        env[name] = render(template, values, f"env.vars.{name}")
    state = state if state is not None else ctx.ledger.read()
    return WorktreeRecord(MAIN_SLUG, "", ident.branch, 0, str(ctx.repo.main_path),
                          state="main", ports=ports, env=env,
                          processes=main_runs(state))


def _database_env(ctx: Context) -> dict[str, str]:
    """Each ``[[database]]`` entry's variable with main's own database (its source),
    for the entries main's env files do not set themselves (a literal source URL)."""
    if not ctx.config.database:
        return {}
    from branchyard.api.databases import main_allocations
    from branchyard.core.errors import BranchyardError
    from branchyard.providers import get_provider

    try:
        allocs = main_allocations(ctx)
    except BranchyardError:  # e.g. the source names a variable main's files lack
        return {}
    env: dict[str, str] = {}
    for alloc in allocs:
        env.update(get_provider(alloc.kind).env(alloc))
    return env


def main_runs(state: LedgerState) -> list[ProcessRecord]:
    raw: list[dict[str, Any]] = state.sections.get(SECTION, {}).get("processes", [])
    return [ProcessRecord(**p) for p in raw]


def remember_run(state: LedgerState, run: ProcessRecord) -> None:
    section = state.sections.setdefault(SECTION, {})
    section.setdefault("processes", []).append(asdict(run))


def forget_run(state: LedgerState, pid: int) -> None:
    section = state.sections.setdefault(SECTION, {})
    section["processes"] = [p for p in section.get("processes", []) if p["pid"] != pid]
