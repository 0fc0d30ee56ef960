"""Seed and setup commands of a ``[[database]]`` entry (shell strings the user wrote)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from branchyard.resources.plan import PlanContext


def run_database_hook(command: str, spec: Mapping[str, Any], ctx: PlanContext, label: str,
                      *, value_key: str = "url") -> None:
    """Run ``command`` in the worktree with its env and the new database's
    ``spec[value_key]`` in ``spec["env"]``, streaming its output."""
    from branchyard.external import run_hook

    env = dict(os.environ)
    env.update(ctx.base_env)
    env[spec["env"]] = spec[value_key]
    run_hook(command, cwd=ctx.worktree, env=env, label=f"[[database]] {spec['name']} {label}",
             on_line=ctx.reporter.output)
