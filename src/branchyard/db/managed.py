"""branchyard's own local Postgres cluster: the default when a database has no
server configured and PostgreSQL binaries are installed.

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
import re
import secrets
import shutil
import socket
import stat
from dataclasses import asdict, dataclass
from pathlib import Path

from branchyard import statefile
from branchyard.config import ServerConfig
from branchyard.errors import CommandError, DatabaseError
from branchyard.paths import state_dir
from branchyard.proc import run

SUPERUSER = "postgres"
HOST = "127.0.0.1"
START_TIMEOUT = 60
_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin",
           "/usr/local/opt/postgresql@*/bin", "/Applications/Postgres.app/Contents/Versions/*/bin")


@dataclass(frozen=True)
class ServerState:
    """What ``server.json`` records: fixed once the cluster is first reserved."""

    port: int
    password: str
    cluster_dir: str  # holds data/ and server.log
    bin_dir: str
    user: str = ""  # OS user the server runs as; "" = the current user
    max_connections: int = 200  # from [server] when the cluster was first reserved

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
    """Where ``initdb``/``pg_ctl`` live: ``BRANCHYARD_PG_BIN``, PATH, then the
    usual install locations (newest version first)."""
    override = os.environ.get("BRANCHYARD_PG_BIN")
    if override:
        return Path(override)
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = [p for pattern in _SEARCH for p in Path("/").glob(pattern.lstrip("/"))
                  if (p / "initdb").exists()]
    candidates.sort(key=_version_key, reverse=True)
    return candidates[0] if candidates else None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", str(path))) or (0,)


def load_state() -> ServerState | None:
    path = server_home() / "server.json"
    try:
        return ServerState(**statefile.payload(json.loads(path.read_text(encoding="utf-8"))))
    except FileNotFoundError:
        return None
    except (ValueError, TypeError, AttributeError) as exc:
        raise DatabaseError(f"{path} is unreadable ({exc})",
                            hint=f"stop the managed server and remove {path}") from exc


def reserve(cfg: ServerConfig) -> ServerState:
    """The cluster's fixed facts (port, password, location), chosen once and
    written to ``server.json``; nothing is started. Cheap after the first call."""
    existing = load_state()
    if existing is not None:
        return existing
    bin_dir = find_bin_dir()
    if bin_dir is None or not cfg.enabled:
        raise DatabaseError(
            "no Postgres server is configured and branchyard cannot run its own "
            + ("(the managed server is disabled in [server])" if bin_dir else
               "(no PostgreSQL binaries: initdb not found)"),
            hint="set `source`/`server` in [[database]], or install PostgreSQL "
                 "(apt install postgresql, brew install postgresql)")
    user = _run_as_user()
    state = ServerState(port=cfg.port or _free_port(), password=secrets.token_urlsafe(18),
                        cluster_dir=str(_cluster_dir(user)), bin_dir=str(bin_dir), user=user,
                        max_connections=cfg.max_connections)
    home = statefile.private_dir(server_home(), tighten=False)
    statefile.write_json(home / "server.json", asdict(state), version=1)
    return state


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _run_as_user() -> str:
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
    home = server_home()
    if not user or _traversable(home.parent):
        return home / "cluster"
    digest = hashlib.sha1(str(home).encode(), usedforsecurity=False).hexdigest()[:12]
    return Path("/var/lib/branchyard") / f"server-{digest}"


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


def start(cfg: ServerConfig) -> ServerState:
    """Start the cluster (initialising it the first time); idempotent."""
    from filelock import FileLock

    state = reserve(cfg)
    with FileLock(str(server_home() / "server.lock"), timeout=START_TIMEOUT * 2):
        if _postmaster_pid(state):
            return state
        _check_port_free(state)
        if not (state.data_dir / "PG_VERSION").exists():
            _initdb(state)
        _pg_ctl(state, "start", "-l", str(state.log_file), "-w", "-t", str(START_TIMEOUT))
    _enable_stat_statements(state)
    return state


def stop() -> bool:
    """Stop the cluster (fast shutdown: sessions are ended); False if not running."""
    state = load_state()
    if state is None or not _postmaster_pid(state):
        return False
    _pg_ctl(state, "stop", "-m", "fast", "-w", "-t", str(START_TIMEOUT))
    return True


def ensure_running(cfg: ServerConfig) -> str:
    """The admin URL of the managed cluster, started if it was not running."""
    return start(cfg).url


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


def remove_cluster() -> None:
    """Stop the cluster and delete its data and state (``server destroy``, tests)."""
    state = load_state()
    if state is None:
        return
    stop()
    shutil.rmtree(state.cluster_dir, ignore_errors=True)
    (server_home() / "server.json").unlink(missing_ok=True)
