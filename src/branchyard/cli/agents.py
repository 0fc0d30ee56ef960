"""`agents init` (and its alias `conductor init`) and the hook commands agent
apps call: `agents hook claude worktree-create|worktree-remove`."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import click

from branchyard.cli.output import Reply, json_option, note, respond

ONLY_HELP = "Comma-separated apps to wire: claude, codex, cursor, conductor (default: all)."


@click.group()
def agents() -> None:
    """Wiring for agent apps (Claude Code, Codex, Cursor, Conductor), and the hook
    commands they run."""


@agents.command("init")
@click.option("--only", metavar="APPS", help=ONLY_HELP)
@click.option("--force", is_flag=True, help="Replace settings of yours that conflict.")
@json_option
def agents_init(only: str | None, force: bool, as_json: bool) -> None:
    """Write each app's wiring, merged into files that exist: a worktree the app
    creates gets set up, an archived one released. A second run changes nothing."""
    respond("agents init", as_json, lambda: init_reply(only, force))


def init_reply(only: str | None, force: bool) -> Reply:
    from branchyard.agents.wiring import init_agents, parse_only
    from branchyard.context import open_context

    names = parse_only(only)
    ctx = open_context(main_config=True)
    changes = init_agents(ctx.repo.main_path, ctx.config, names, force=force)
    files = [{"app": c.app, "path": str(c.path), "changed": c.changed, "created": c.created}
             for c in changes]
    lines = [f"{'created' if c.created else 'updated' if c.changed else 'unchanged'}  "
             f"{c.app:<9}  {c.path}" for c in changes]
    if not any(c.changed for c in changes):
        lines.append("nothing changed: the wiring was already in place")
    return Reply({"apps": list(names), "files": files,
                  "changed": any(c.changed for c in changes)}, "\n".join(lines))


@agents.group("hook")
def hook() -> None:
    """Commands the agent apps run (wired by `agents init`); not for typing."""


@hook.group("claude")
def claude() -> None:
    """Claude Code's WorktreeCreate / WorktreeRemove command hooks."""


@claude.command("worktree-create")
@json_option
def worktree_create(as_json: bool) -> None:
    """Read Claude Code's WorktreeCreate payload on stdin, create and set up the
    worktree, and print its absolute path as the only line on stdout."""
    from branchyard.agents.claude_hooks import create, create_request
    from branchyard.agents.payload import read_object
    from branchyard.cli.render import reporter_for

    def body() -> Reply:
        request = create_request(read_object())
        with _stdout_to_stderr():
            path = create(request, reporter_for(as_json))
        note(f"branchyard: worktree ready at {path}")
        return Reply({"path": path}, path)

    respond("agents hook claude worktree-create", as_json, body)


@claude.command("worktree-remove")
@json_option
def worktree_remove(as_json: bool) -> None:
    """Read Claude Code's WorktreeRemove payload on stdin: release the worktree's
    resources, and remove it when it has no changes (kept otherwise)."""
    from branchyard.agents.claude_hooks import remove
    from branchyard.agents.payload import read_object
    from branchyard.cli.render import reporter_for

    def body() -> Reply:
        payload = read_object()
        with _stdout_to_stderr():
            result = remove(payload, reporter_for(as_json))
        note(f"branchyard: {result.note}")
        return Reply({"path": result.path, "removed": result.removed, "note": result.note})

    respond("agents hook claude worktree-remove", as_json, body)


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """While the worktree is made, anything written to stdout — by branchyard or
    by a setup hook it runs — goes to stderr: the app reads stdout as the path."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
