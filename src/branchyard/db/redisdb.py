"""Redis: a logical database (index) leased per worktree, machine-wide.

Leases live in ``<state dir>/redis-leases.json`` under a file lock, keyed by
server address, because every project on the machine shares the same Redis.
When a server has a single database, worktrees share index 0 and are told a
key prefix instead; teardown then deletes only keys under that prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchyard.core import statefile
from branchyard.core.errors import DatabaseError
from branchyard.core.paths import state_dir
from branchyard.db.drivers import require
from branchyard.db.urls import parse_url

if TYPE_CHECKING:
    import redis

DEFAULT_DATABASES = 16
MARKER = "__branchyard_lease__"  # in every leased index: who it belongs to
SCAN_BATCH = 500


def lease_owner(common_dir: Path | str, slug: str, name: str) -> str:
    """Who holds an index: ``<git common dir>|<slug>|<database name>``."""
    return f"{common_dir}|{slug}|{name}"


def owner_parts(owner: str) -> tuple[str, str, str]:
    """:func:`lease_owner`'s common dir, slug and database name (an owner in no
    known form: itself, "", "")."""
    parts = owner.rsplit("|", 2)
    return (parts[0], parts[1], parts[2]) if len(parts) == 3 else (owner, "", "")


def _lease_file() -> Path:
    return state_dir() / "redis-leases.json"


@contextmanager
def _leases() -> Iterator[dict[str, Any]]:
    """The leases by server address, locked for an update."""
    from filelock import FileLock

    path = _lease_file()
    statefile.private_dir(path.parent, tighten=False)
    with FileLock(str(path) + ".lock", timeout=30):
        try:
            data = _servers(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            data = {}
        yield data
        statefile.write_json(path, {"servers": data}, version=1, sort_keys=True)


def _servers(doc: dict[str, Any]) -> dict[str, Any]:
    """Server address → its leases; files written before the version field held
    the addresses at the top level."""
    if statefile.version_of(doc) is None:
        return doc
    servers: dict[str, Any] = doc.get("servers", {})
    return servers


def lease_index(address: str, owner: str, main_index: int) -> int:
    """The index leased to ``owner`` on the server at ``address`` (the same one
    every time); ``main_index`` when the server is known to have a single database."""
    with _leases() as data:
        server = data.setdefault(address, {"databases": DEFAULT_DATABASES, "leases": {}})
        leases: dict[str, str] = server["leases"]
        for key, holder in leases.items():
            if holder == owner:
                return int(key)
        count = int(server["databases"])
        if count <= 1:
            return main_index  # shared with main: the worktree gets a key prefix
        foreign = set(server.get("foreign", []))
        # From the top down, never 0: low indexes are what apps use by default.
        for index in range(count - 1, 0, -1):
            if index != main_index and str(index) not in leases and index not in foreign:
                leases[str(index)] = owner
                return index
    raise DatabaseError(f"every Redis database index on {address} is leased "
                        f"({server['databases']} databases)",
                        hint="raise `databases` in redis.conf, or tear down unused worktrees")


def leased_indexes() -> dict[str, dict[str, str]]:
    """Every lease on the machine: server address → {index: owner} (for ``doctor``;
    read without the lock, since writes replace the file atomically)."""
    try:
        data = _servers(json.loads(_lease_file().read_text(encoding="utf-8")))
    except (FileNotFoundError, ValueError, AttributeError):
        return {}
    return {address: dict(server.get("leases", {})) for address, server in data.items()}


def release_index(address: str, owner: str) -> None:
    with _leases() as data:
        leases = data.get(address, {}).get("leases", {})
        for index in [i for i, holder in leases.items() if holder == owner]:
            del leases[index]


def mark_foreign(address: str, index: int, owner: str) -> None:
    """Index ``index`` holds data branchyard did not put there: never lease it again."""
    with _leases() as data:
        server = data.setdefault(address, {"databases": DEFAULT_DATABASES, "leases": {}})
        server["foreign"] = sorted({*server.get("foreign", []), index})
        if server["leases"].get(str(index)) == owner:
            del server["leases"][str(index)]


def owns(client: redis.Redis, owner: str) -> bool:
    """Whether the selected index carries ``owner``'s lease marker."""
    value = client.get(MARKER)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value == owner


def record_database_count(address: str, count: int) -> None:
    with _leases() as data:
        data.setdefault(address, {"databases": count, "leases": {}})["databases"] = count


@contextmanager
def connect(url: str) -> Iterator[redis.Redis]:
    redislib = require("redis")

    client = redislib.Redis.from_url(url, socket_connect_timeout=5)
    try:
        client.ping()
    except redislib.AuthenticationError as exc:
        raise DatabaseError(f"Redis at {parse_url(url).address} refused the credentials: "
                            f"{exc}", hint="fix the user/password in the Redis URL") from None
    except redislib.ConnectionError as exc:
        raise DatabaseError(f"cannot reach the Redis server at {parse_url(url).address}: "
                            f"{exc}", hint="start Redis, or fix the URL") from None
    try:
        yield client
    finally:
        client.close()


def database_count(client: redis.Redis) -> int:
    import redis as redislib

    try:
        reply = client.config_get("databases")
    except redislib.ResponseError:  # CONFIG may be disabled (managed services)
        return DEFAULT_DATABASES
    return int(reply.get("databases") or DEFAULT_DATABASES)


def copy_keys(source_url: str, target: int) -> int:
    """Copy every key of the database at ``source_url`` into index ``target`` of the
    same server (server-side COPY, Redis >= 6.2)."""
    copied = 0
    with connect(source_url) as reader:
        for key in reader.scan_iter(count=SCAN_BATCH):
            if reader.copy(key, key, destination_db=str(target), replace=True):
                copied += 1
    return copied


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete the keys under ``prefix`` (never an empty prefix)."""
    if not prefix:
        raise DatabaseError("refusing to delete Redis keys without a prefix")
    gone = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=_glob_escape(prefix) + "*", count=SCAN_BATCH):
        batch.append(key)
        if len(batch) >= SCAN_BATCH:
            gone += int(client.unlink(*batch))
            batch.clear()
    if batch:
        gone += int(client.unlink(*batch))
    return gone


def _glob_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
