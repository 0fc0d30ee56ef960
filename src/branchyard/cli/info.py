"""`ls`, `status`, `env`, `path`, `cd`."""

from __future__ import annotations

import click

from branchyard.cli.output import Reply, json_option, respond


@click.command()
@click.option("--no-dirty", is_flag=True, help="Skip the (slower) uncommitted-changes check.")
@json_option
def ls(no_dirty: bool, as_json: bool) -> None:
    """List the worktrees with their identity, ports, URL and state."""
    from branchyard.api.info import list_worktrees, project_snapshots
    from branchyard.cli.render import snapshot_lines, stray_lines, table
    from branchyard.context import open_context

    def body() -> Reply:
        ctx = open_context()
        state = ctx.ledger.read()
        views = list_worktrees(check_dirty=not no_dirty, ctx=ctx, state=state)
        snaps = project_snapshots(ctx, state)
        rows = [[v.branch or "(detached)", v.state, v.url or "-",
                 " ".join(f"{k}={p}" for k, p in v.ports.items()) or "-",
                 str(len(v.databases)), str(len(v.processes)),
                 "-" if v.dirty is None else ("*" if v.dirty else ""),
                 _radar(v.extra.get("conflicts")), _services(v.extra.get("services")),
                 v.path] for v in views]
        text = table(rows, ["BRANCH", "STATE", "URL", "PORTS", "DBS", "PROCS", "DIRTY",
                            "RADAR", "SERVICES", "PATH"])
        extra = [*stray_lines(views), *snapshot_lines(snaps, unused_only=True)]
        warnings = [s["message"] for v in views for s in v.extra.get("strays", [])]
        return Reply({"worktrees": [v.to_json() for v in views], "warnings": warnings,
                      "snapshots": [s.as_json() for s in snaps]},
                     "\n".join([text, *extra]) if extra else text)

    respond("ls", as_json, body)


def _services(items: object) -> str:
    """``web:ready`` per service (``web:crashed(3)`` with its exit code)."""
    if not isinstance(items, list) or not items:
        return "-"
    return " ".join(f"{s['name']}:{s['state']}" + (f"({s['exit_code']})" if s["state"] in (
        "crashed", "exited") and s.get("exit_code") is not None else "") for s in items)


def _radar(marker: object) -> str:
    """`!` conflicts with another worktree or its base, `ok` clear, `?` not checked
    since the last change (run `branchyard conflicts`)."""
    if not isinstance(marker, dict):
        return "?"
    return "!" if any(marker.values()) else "ok"


@click.command()
@click.argument("name", required=False)
@json_option
def status(name: str | None, as_json: bool) -> None:
    """Show one worktree (default: the one you are in)."""
    from branchyard.api.info import status_of
    from branchyard.cli.render import view_text

    def body() -> Reply:
        view = status_of(name=name)
        return Reply({"worktree": view.to_json()}, view_text(view))

    respond("status", as_json, body)


@click.command()
@click.argument("name", required=False)
@click.option("--format", "fmt", type=click.Choice(["dotenv", "shell", "json"]),
              default="dotenv", show_default=True)
@json_option
def env(name: str | None, fmt: str, as_json: bool) -> None:
    """Print the environment the worktree's app gets (its env files plus the
    derived variables), unmasked."""
    from branchyard.cli.envcmd import print_env

    print_env(name, fmt, as_json)


@click.command()
@click.argument("name")
@json_option
def path(name: str, as_json: bool) -> None:
    """Print the path of NAME's worktree."""
    from branchyard.api.info import worktree_path

    def body() -> Reply:
        found = worktree_path(name)
        return Reply({"path": str(found)}, str(found))

    respond("path", as_json, body)


@click.command()
@click.argument("name")
def cd(name: str) -> None:
    """Change the shell's directory to NAME's worktree (needs `branchyard shell init`)."""
    from branchyard.api.info import worktree_path
    from branchyard.cli.render import write_cd_target

    def body() -> Reply:
        found = worktree_path(name)
        if not write_cd_target(str(found)):
            return Reply({"path": str(found)}, str(found))
        return Reply({"path": str(found)})

    respond("cd", False, body)
