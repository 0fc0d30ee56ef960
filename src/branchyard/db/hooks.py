"""Seed and setup commands of a ``[[database]]`` entry (shell strings the user wrote)."""

from __future__ import annotations

import os

from branchyard.resources.plan import PlanContext
from branchyard.resources.specs import DatabaseSpec


def run_database_hook(command: str, spec: DatabaseSpec, ctx: PlanContext, label: str) -> None:
    """Run ``command`` in the worktree with its env and the new database in
    ``spec.env`` (``spec.env_value``: its URL, or SQLite's reference), streaming
    its output."""
    from branchyard.system.external import Hook, run_hook

    env = dict(os.environ)
    env.update(ctx.base_env)
    env[spec.env] = spec.env_value
    run_hook(Hook(command, ctx.worktree, env, f"[[database]] {spec.name} {label}"),
             on_line=ctx.reporter.output)
