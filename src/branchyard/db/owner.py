"""Who holds a worktree database on a server several clones of a repository share.

Each clone of a repository (another machine, another user) has a stable random
id, kept in its git common dir (``branchyard/clone-id``). Every worktree database
branchyard makes records its owner on the server (``COMMENT ON DATABASE``: the
clone id, the machine, the worktree's path), so that a clone's ``down``, ``gc``
or ``doctor`` never drops a database another clone holds. On a shared server
(not loopback, or ``[[database]] shared = true``) names also carry a short clone
id, so two clones' worktrees of the same branch get databases of their own.
"""

from __future__ import annotations

import json
import secrets
import socket
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchyard.core.errors import DatabaseError
from branchyard.resources.specs import Owner, PostgresSpec

if TYPE_CHECKING:
    import psycopg

ID_FILE = "clone-id"
TAG = "branchyard-owner:"  # the comment's prefix: the rest is JSON
_LOOPBACK = ("127.0.0.1", "::1", "localhost", "")


def clone_id(common_dir: Path) -> str:
    """This clone's id, made (random, lowercase hex) the first time it is asked for."""
    from branchyard.core import statefile

    path = common_dir / "branchyard" / ID_FILE
    try:
        found = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        found = ""
    if found:
        return found
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_suffix(".lock")), timeout=30):
        if path.is_file() and (found := path.read_text(encoding="utf-8").strip()):
            return found
        found = secrets.token_hex(8)
        statefile.write_text(path, found + "\n", mode=0o644)
    return found


def owner_for(common_dir: Path, worktree: Path) -> Owner:
    return Owner(clone_id(common_dir), socket.gethostname(), str(worktree))


def is_shared(server_url: str, forced: bool) -> bool:
    """Whether a server may be used by other clones: ``shared = true``, or any host
    but loopback (and a local socket)."""
    from branchyard.db.urls import parse_url

    host = parse_url(server_url).host
    return forced or not (host in _LOOPBACK or host.startswith("/"))


def shared_name(name: str, owner_short: str) -> str:
    """``name`` with the clone's short id (never truncated: two names cut to the
    same prefix would meet; a name over 63 bytes is refused at plan time)."""
    return f"{name}_{owner_short}"


def of_spec(spec: PostgresSpec) -> Owner:
    """The owner a ledger record names (records made before owners: this clone's)."""
    if spec.owner is not None:
        return spec.owner
    return Owner(clone_id(Path(spec.common_dir)), socket.gethostname(), "")


def read(conn: psycopg.Connection[Any], name: str) -> Owner | None:
    """The owner recorded on database ``name`` (None: no branchyard comment)."""
    row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                       "WHERE datname = %s", (name,)).fetchone()
    text = str(row[0]) if row and row[0] else ""
    if not text.startswith(TAG):
        return None
    try:
        raw = json.loads(text[len(TAG):])
        return Owner(str(raw["clone"]), str(raw["machine"]), str(raw["path"]))
    except (ValueError, KeyError, TypeError):
        return None


def record(conn: psycopg.Connection[Any], name: str, owner: Owner) -> None:
    """``COMMENT ON DATABASE name`` naming ``owner``."""
    from psycopg import Error, sql

    from branchyard.db.postgres import sql_error

    try:
        conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
            sql.Identifier(name), sql.Literal(TAG + json.dumps(asdict(owner), sort_keys=True))))
    except Error as exc:
        raise sql_error(exc, f"recording the owner of {name!r}") from None


class HeldElsewhereError(DatabaseError):
    """The database is another clone's: reported, never dropped nor used."""

    def __init__(self, name: str, holder: Owner) -> None:
        super().__init__(
            f"database {name!r} belongs to another clone of this repository "
            f"({holder.describe()}); branchyard leaves it alone",
            hint="set `shared = true` in this [[database]] so that each clone's names "
                 "carry its clone id, or put something unique in the `database` template")
        self.name = name
        self.holder = holder


def check_ours(conn: psycopg.Connection[Any], name: str, ours: Owner) -> None:
    """Raise :class:`HeldElsewhereError` when ``name`` records another clone."""
    holder = read(conn, name)
    if holder is not None and holder.clone != ours.clone:
        raise HeldElsewhereError(name, holder)
