"""`branchyard db …`, `branchyard psql` (`branchyard server …`: :mod:`branchyard.cli.server`)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from branchyard.cli.output import EXIT_FAILED, Reply, json_option, respond
from branchyard.core.events import Reporter

if TYPE_CHECKING:
    from branchyard.api.dbstatus import DbStatus


F = TypeVar("F", bound=Any)


def _reporter(as_json: bool) -> Reporter:
    from branchyard.cli.render import reporter_for

    return reporter_for(as_json)


@click.group()
def db() -> None:
    """Worktree-aware database tools (status, url, snapshot, pull, reset)."""


@db.command("status")
@click.argument("branch", required=False)
@json_option
def db_status(branch: str | None, as_json: bool) -> None:
    """Each database of the worktree: name, masked URL, size, tables, last
    migration, connections against the server's ceiling."""
    from branchyard.api.dbstatus import status

    def body() -> Reply:
        st = status(branch)
        data = {"worktree": {"path": st.worktree, "branch": st.branch, "slug": st.slug,
                             "subdomain": st.subdomain, "main": st.main},
                "databases": list(st.databases), "warnings": list(st.warnings),
                "snapshots": [s.as_json() for s in st.snapshots]}
        return Reply(data, _status_text(st))

    respond("db status", as_json, body)


def _create_hint(main: bool, row: dict[str, Any]) -> str:
    """What makes a missing database: setup in a worktree; in main (which has no
    setup), the managed server's start, or the user's own tools."""
    if not main:
        return "run `branchyard setup`"
    if row.get("managed"):
        return "`branchyard server start` creates main's databases"
    return "create it (or run your migrations), or fix the `[[database]]` source"


def _status_text(st: DbStatus) -> str:
    head = "main worktree" if st.main else f"{st.branch}  (slug {st.slug}, {st.subdomain})"
    lines = [f"{head}\n  {st.worktree}"]
    for row in st.databases:
        lines.append(f"  {row['name']} [{row['engine']}] {row['database']}")
        lines.append(f"    url          {row['url']}")
        if not row.get("exists", True):
            lines.append(f"    (does not exist: {_create_hint(st.main, row)})")
            continue
        if "keys" in row:
            lines.append(f"    keys         {row['keys']}")
        if "size" in row:
            lines.append(f"    size         {row['size'] / 1e6:.1f} MB, {row['tables']} tables")
        if "migration_tool" in row:
            migration = (f"{row['last_migration']} ({row['migration_tool']})"
                         if row["migration_tool"] else "none found")
            lines.append(f"    migration    {migration}")
            lines.append(f"    connections  {row['connections']} here; server "
                         f"{row['server_connections']}/{row['max_connections']}")
        if "clone" in row:
            lines.append(f"    clone        {row['clone']['label']}")
        if "snapshot" in row:
            lines.append(f"    snapshot     {row['snapshot']['text']}")
    from branchyard.cli.render import snapshot_lines

    lines.extend(snapshot_lines(st.snapshots))
    lines.extend(f"warning: {w}" for w in st.warnings)
    return "\n".join(lines)


def _worktree_and_db(func: F) -> F:
    """``[NAME]`` (the worktree, as in every command) and ``--db DB`` (the
    ``[[database]]`` entry); ``--branch`` stays as an old spelling of NAME."""
    func = click.option("--branch", "-b", "old_branch", hidden=True)(func)
    func = click.option("--db", "db_name", metavar="DB",
                        help="The [[database]] entry (default: the first, or all).")(func)
    return click.argument("name", required=False)(func)


@db.command("url")
@_worktree_and_db
@click.option("--raw", is_flag=True, help="Print the password too (for scripts).")
@json_option
def db_url(name: str | None, db_name: str | None, old_branch: str | None, raw: bool,
           as_json: bool) -> None:
    """The URL of a database of worktree NAME (default: the one you are in; the
    password masked unless --raw)."""
    from branchyard.api import databases as tools
    from branchyard.db.urls import mask_url

    def body() -> Reply:
        url, alloc = tools.url_of(db_name, name or old_branch)
        shown = url if raw else mask_url(url)
        return Reply({"name": alloc.spec.name, "engine": alloc.kind, "url": shown}, shown)

    respond("db url", as_json, body)


@db.command("snapshot")
@click.option("--db", "name", metavar="DB", help="The [[database]] entry (default: all).")
@click.option("--exclusive", is_flag=True,
              help="End the main database's sessions so a fast template copy can run.")
@click.option("--drop", is_flag=True,
              help="Drop the snapshots and warm pools instead (the next clone remakes them).")
@json_option
def db_snapshot(name: str | None, exclusive: bool, drop: bool, as_json: bool) -> None:
    """Make or refresh the golden snapshot(s) worktrees clone from (and refill pools)."""
    from branchyard.api import snapshots as tools

    def body() -> Reply:
        if drop:
            gone = tools.drop_snapshots(name)
            return Reply({"dropped": gone}, "dropped: " + (", ".join(gone) or "nothing"))
        made = tools.refresh_snapshots(name, exclusive=exclusive, reporter=_reporter(as_json))
        text = "\n".join(f"{m['name']}: snapshot {m['snapshot']} ({m['method']} copy)"
                         for m in made) or "no cloned Postgres databases in the config"
        return Reply({"snapshots": made}, text)

    respond("db snapshot", as_json, body)


@db.command("pull")
@_worktree_and_db
@click.option("--exclusive", is_flag=True, help="As for `db snapshot`.")
@json_option
def db_pull(name: str | None, db_name: str | None, old_branch: str | None, exclusive: bool,
            as_json: bool) -> None:
    """Refresh the snapshot from main (or the remote of a dump: seed), then
    re-seed worktree NAME's database from it. Its current data is replaced."""
    from branchyard.api import databases as tools

    def body() -> Reply:
        done = tools.reseed(db_name, name or old_branch, refresh=True, exclusive=exclusive,
                            reporter=_reporter(as_json))
        return Reply({"databases": done}, "pulled: " + ", ".join(done))

    respond("db pull", as_json, body)


@db.command("reset")
@_worktree_and_db
@json_option
def db_reset(name: str | None, db_name: str | None, old_branch: str | None,
             as_json: bool) -> None:
    """Drop worktree NAME's database and seed it again (from the current snapshot)."""
    from branchyard.api import databases as tools

    def body() -> Reply:
        done = tools.reseed(db_name, name or old_branch, reporter=_reporter(as_json))
        return Reply({"databases": done}, "reset: " + ", ".join(done))

    respond("db reset", as_json, body)


@db.command("_refill", hidden=True)
@click.option("--common-dir", required=True, type=click.Path(path_type=Path))
@click.argument("snapshot")
def db_refill(common_dir: Path, snapshot: str) -> None:
    """Top up a snapshot's warm pool (started detached by `up`)."""
    from branchyard.db import pool

    def body() -> Reply:
        made = pool.run_detached_refill(common_dir, snapshot)
        return Reply({"created": made}, f"pool of {snapshot}: {made} created")

    respond("db _refill", False, body)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@json_option
def psql(args: tuple[str, ...], as_json: bool) -> None:
    """psql on the worktree's database (in main: main's): `branchyard psql [BRANCH] [-- ARGS]`.

    With --json, psql runs non-interactively and its output is returned.
    """
    from branchyard.api import databases as tools
    from branchyard.system.external import run

    branch, rest = (args[0], args[1:]) if args and not args[0].startswith("-") else (None, args)

    def body() -> Reply:
        argv, env = tools.psql_argv(branch, rest)
        if not as_json:
            return Reply(exit_code=subprocess.call(argv, env=env))
        done = run([*argv, "--no-psqlrc"], env=env, timeout=300, check=False)
        return Reply({"exit_code": done.returncode, "stdout": done.stdout,
                      "stderr": done.stderr},
                     exit_code=EXIT_FAILED if done.returncode else 0)

    respond("psql", as_json, body)
