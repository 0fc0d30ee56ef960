"""`branchyard db …`, `branchyard psql`, `branchyard server …`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from branchyard.cli.output import EXIT_FAILED, Reply, json_option, respond
from branchyard.events import Reporter

if TYPE_CHECKING:
    from branchyard.api.dbstatus import DbStatus
    from branchyard.config import ServerConfig
    from branchyard.db.managed import ServerStatus


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
        made = pool.refill(common_dir, snapshot)
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
    from branchyard.external import run

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


@click.group()
def server() -> None:
    """branchyard's managed local Postgres (used when no server is configured)."""


COW_IMAGE = "\0image"  # `--cow` with no PATH


@server.command("start")
@click.option("--cow", "cow", metavar="[PATH]", is_flag=False, flag_value=COW_IMAGE,
              default=None, help="Linux: put the cluster on a copy-on-write filesystem "
              "(reflink clones): in PATH, a directory on XFS or btrfs, or, as root with no "
              "PATH, on a loop-mounted XFS image branchyard makes.")
@json_option
def server_start(cow: str | None, as_json: bool) -> None:
    """Start the managed server (initialising it the first time). Inside a
    repository, also create its main databases and write their URLs to the main
    worktree's env override file."""
    def body() -> Reply:
        from dataclasses import replace

        from branchyard.db import managed

        if cow is not None:
            path = "" if cow in (None, COW_IMAGE) else str(cow)
            base = _server_config()
            managed.move_to_cow(replace(base, cow=True, cow_path=path or base.cow_path))
        prepared = _prepare_main()
        info = _server_json(managed.status())
        info["main"] = prepared
        text = _server_text(info)
        if prepared.get("kept_user_file"):
            text += (f"\nnote: {prepared['env_file']} is yours, so it was not changed; "
                     "add: " + ", ".join(f"{k}=…" for k in prepared["urls"]))
        return Reply(info, text)

    respond("server start", as_json, body)


def _prepare_main() -> dict[str, Any]:
    from branchyard.config import Config
    from branchyard.context import open_context
    from branchyard.db import managed
    from branchyard.db.mainenv import prepare_main
    from branchyard.db.urls import mask_url
    from branchyard.errors import NotARepoError

    try:
        ctx = open_context()
    except NotARepoError:
        managed.start(Config().server)
        return {}
    managed.start(ctx.config.server)
    result = prepare_main(ctx.repo, ctx.config)
    return {"urls": {k: mask_url(v) for k, v in result.urls.items()},
            "created": list(result.created), "env_file": result.env_file,
            "written": result.written, "kept_user_file": result.kept_user_file}


@server.command("stop")
@click.option("--remove", is_flag=True, help="Also delete the cluster and its data (and "
              "the disk image `--cow` made); refused while it holds databases, unless --force.")
@click.option("--force", is_flag=True, help="With --remove: even when it holds databases.")
@json_option
def server_stop(remove: bool, force: bool, as_json: bool) -> None:
    """Stop the managed server (its data is kept, unless --remove)."""
    def body() -> Reply:
        from branchyard.db import managed

        if remove:
            gone = managed.remove(force=force)
            if gone is None:
                return Reply({"removed": None}, "there is no managed cluster")
            info = {"removed": gone.cluster_dir, "image": gone.cow_image or None}
            return Reply(info, f"removed the managed cluster {gone.cluster_dir}" +
                         (f" and its disk image {gone.cow_image}" if gone.cow_image else ""))
        stopped = managed.stop()
        return Reply({"stopped": stopped},
                     "stopped" if stopped else "the managed server was not running")

    respond("server stop", as_json, body)


@server.command("upgrade")
@click.option("--remove-old", is_flag=True,
              help="Delete the cluster an earlier upgrade moved from (check your data first).")
@json_option
def server_upgrade(remove_old: bool, as_json: bool) -> None:
    """Move the managed server's databases to PostgreSQL 18 (dump/restore into a new
    cluster on the same port and password); the old cluster is kept until
    --remove-old."""
    def body() -> Reply:
        from branchyard.db import upgrade

        if remove_old:
            gone = upgrade.remove_old()
            return Reply({"removed": gone or None},
                         f"removed {gone}" if gone else "no old cluster is kept")
        done = upgrade.upgrade(_server_config(), reporter=_reporter(as_json))
        info = upgrade.describe(done)
        text = (f"upgraded the managed server from PostgreSQL {done.old_version} to "
                f"{done.new_version}: {len(done.databases)} databases copied\n"
                f"  the old cluster is kept at {done.old_cluster_dir} until "
                "`branchyard server upgrade --remove-old`")
        return Reply(info, text)

    respond("server upgrade", as_json, body)


def _server_config() -> ServerConfig:
    from branchyard.config import Config
    from branchyard.context import open_context
    from branchyard.errors import NotARepoError

    try:
        return open_context().config.server
    except NotARepoError:
        return Config().server


@server.command("status")
@json_option
def server_status(as_json: bool) -> None:
    """Whether the managed server runs, where, and how many connections it has."""
    def body() -> Reply:
        from branchyard.db import managed

        info = _server_json(managed.status())
        return Reply(info, _server_text(info))

    respond("server status", as_json, body)


def _server_json(st: ServerStatus) -> dict[str, Any]:
    from branchyard.db.urls import mask_url

    data: dict[str, Any] = {"configured": st.configured, "running": st.running, "pid": st.pid}
    if st.state is not None:
        data.update(port=st.state.port, url=mask_url(st.state.url),
                    data_dir=str(st.state.data_dir), log=str(st.state.log_file),
                    run_as=st.state.user or None, bin_dir=st.state.bin_dir,
                    cow_image=st.state.cow_image or None)
    if st.running and st.state is not None:
        from branchyard.db import cloning
        from branchyard.db import postgres as pg

        with pg.connect(st.state.url) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            data.update(version=row[0] if row else "",
                        connections=pg.total_connections(conn),
                        max_connections=pg.max_connections(conn),
                        clone=cloning.of_server(conn, st.state.data_dir).as_json())
    if st.state is not None:
        from branchyard.db import managed

        found = managed.notes(st.state)
        if found:
            data["notes"] = found
    return data


def _server_text(info: dict[str, Any]) -> str:
    if not info["configured"]:
        return "the managed server is not set up (`branchyard server start`)"
    state = "running" if info["running"] else "stopped"
    lines = [f"managed Postgres: {state} on 127.0.0.1:{info['port']}",
             f"  url   {info['url']}", f"  data  {info['data_dir']}",
             f"  bin   {info['bin_dir']}"]
    if info.get("cow_image"):
        lines.append(f"  disk  {info['cow_image']} (XFS image, loop-mounted; "
                     "`server stop --remove` deletes it)")
    if info["running"]:
        lines.append(f"  connections {info['connections']}/{info['max_connections']}, "
                     f"version {info['version']}")
        lines.append(f"  clone {info['clone']['label']}")
    lines.extend(f"note: {n}" for n in info.get("notes", []))
    return "\n".join(lines)
