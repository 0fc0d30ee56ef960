"""What ``server.json`` records of the managed cluster (:mod:`branchyard.db.managed`):
its fixed facts, read and written atomically, and the lock its changes take."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING

from branchyard.core import statefile
from branchyard.core.errors import DatabaseError
from branchyard.core.paths import state_dir
from branchyard.db.cow import CowHome

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


def server_lock() -> FileLock:
    """Held while the cluster is initialised, started, stopped or upgraded."""
    from filelock import FileLock

    return FileLock(str(server_home() / "server.lock"), timeout=START_TIMEOUT * 4)
