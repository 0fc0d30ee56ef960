"""`branchyard server …`: the managed local Postgres."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from branchyard.cli.output import Reply, json_option, respond

if TYPE_CHECKING:
    from branchyard.config.model import ServerConfig
    from branchyard.db.serverstate import ServerStatus


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
    from branchyard.config.model import Config
    from branchyard.context import open_context
    from branchyard.core.errors import NotARepoError
    from branchyard.db import managed
    from branchyard.db.mainenv import prepare_main
    from branchyard.db.urls import mask_url

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
        from branchyard.cli.render import reporter_for
        from branchyard.db import upgrade

        if remove_old:
            gone = upgrade.remove_old()
            return Reply({"removed": gone or None},
                         f"removed {gone}" if gone else "no old cluster is kept")
        done = upgrade.upgrade(_server_config(), reporter=reporter_for(as_json))
        info = upgrade.describe(done)
        text = (f"upgraded the managed server from PostgreSQL {done.old_version} to "
                f"{done.new_version}: {len(done.databases)} databases copied\n"
                f"  the old cluster is kept at {done.old_cluster_dir} until "
                "`branchyard server upgrade --remove-old`")
        return Reply(info, text)

    respond("server upgrade", as_json, body)


def _server_config() -> ServerConfig:
    from branchyard.config.model import Config
    from branchyard.context import open_context
    from branchyard.core.errors import NotARepoError

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
