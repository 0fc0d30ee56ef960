"""Server-level Postgres operations: connect, create/clone, rename, drop, inspect
(the client tools, pg_dump and friends: :mod:`branchyard.db.pgclient`).

Every identifier goes through ``psycopg.sql.Identifier``. psycopg is imported
inside functions so that importing this module stays cheap.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from branchyard.core.errors import DatabaseError
from branchyard.db import sessions
from branchyard.db.urls import parse_url

if TYPE_CHECKING:
    import psycopg

NAME_MAX = 63
CONNECT_TIMEOUT = 5
START_HINT = ("start the server; if it is branchyard's managed one: "
              "`branchyard server start`")


@dataclass(frozen=True)
class DatabaseInfo:
    name: str
    size: int  # bytes
    connections: int
    allow_connections: bool


def check_name(name: str) -> str:
    """Refuse a database name Postgres would truncate."""
    size = len(name.encode("utf-8"))
    if size > NAME_MAX:
        raise DatabaseError(
            f"database name {name!r} is {size} bytes; Postgres allows at most {NAME_MAX}",
            hint="shorten the `database` name template in [[database]] "
                 "(e.g. \"{main}_{slug}\" with a shorter main name) or the branch name")
    return name


def truncate_bytes(text: str, size: int) -> str:
    """At most ``size`` UTF-8 bytes of ``text``, never splitting a character."""
    return text.encode("utf-8")[:size].decode("utf-8", "ignore")


@contextmanager
def connect(url: str, *, dbname: str | None = None) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection; failures become :class:`DatabaseError` naming
    host:port and what to do. Inside :func:`sessions.sharing`, the one connection
    to a shared admin URL, kept open for the next call."""
    if dbname is None and sessions.is_shared(url):
        with sessions.reused(url, lambda: _open(url, None)) as conn:
            yield conn
        return
    conn = _open(url, dbname)
    try:
        yield conn
    finally:
        conn.close()


def _open(url: str, dbname: str | None) -> psycopg.Connection[Any]:
    import psycopg

    target = parse_url(url)
    kwargs: dict[str, Any] = {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT}
    if dbname is not None:
        kwargs["dbname"] = dbname
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        raise connect_error(exc, target.address, dbname or target.database,
                            target.user) from None


def connect_error(exc: Exception, address: str, dbname: str, user: str) -> DatabaseError:
    """Name the cause: a missing role, a refused password or pg_hba rule, a missing
    database — the server answered; only when it did not is it "cannot reach"."""
    text = str(exc)
    # libpq's connection errors carry no SQLSTATE: read the server's FATAL line
    fatal = text.partition("FATAL:")[2].strip().splitlines()[0] if "FATAL:" in text else ""
    if fatal.startswith("role ") and fatal.endswith("does not exist"):
        return DatabaseError(f"Postgres at {address} has no role {user!r}",
                             hint=f"create it (CREATE ROLE {user} LOGIN CREATEDB) or fix the "
                                  "user in the database URL")
    if "authentication failed" in fatal or "authentication failed" in text:
        return DatabaseError(f"Postgres at {address} refused user {user!r}: "
                             "authentication failed",
                             hint="fix the user/password in the database URL")
    if fatal.startswith("database ") and fatal.endswith("does not exist"):
        return DatabaseError(f"database {dbname!r} does not exist on the Postgres server "
                             f"at {address}",
                             hint="create it, fix the URL, or set seed = \"empty\"")
    if fatal:
        return DatabaseError(f"Postgres at {address} refused the connection: {fatal}",
                             hint="fix the database URL, or the server's pg_hba.conf / role")
    return DatabaseError(f"cannot reach the Postgres server at {address}: {_reason(text, exc)}",
                         hint=START_HINT)


def _reason(text: str, exc: Exception) -> str:
    """``connection failed: connection to server at "h", port p failed: Connection
    refused⏎\tIs the server running…`` → ``Connection refused``."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    return lines[0].rpartition(" failed: ")[2] or lines[0]


class TemplateBusyError(DatabaseError):
    """The template database has other sessions (Postgres refuses to copy it)."""

    code = "template_busy"


def sql_error(exc: Exception, action: str) -> DatabaseError:
    """Turn a failed statement into a message saying what failed and why."""
    state = getattr(exc, "sqlstate", None)
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hints = {
        "55006": "another session is using the template database; close it, or run "
                 "`branchyard db snapshot` (clones never touch the main database)",
        "53100": "the disk is full; free space and run the command again",
        "42501": "the server user needs the CREATEDB privilege (ALTER ROLE … CREATEDB)",
        "57014": "the statement was cancelled; run the command again",
        "42P04": "a database with that name already exists",
    }
    cls = TemplateBusyError if state == "55006" else DatabaseError
    return cls(f"{action} failed: {reason}", hint=hints.get(state or "", ""))


def exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def server_version(conn: psycopg.Connection[Any]) -> int:
    return int(conn.info.server_version)


def create(conn: psycopg.Connection[Any], name: str, *, template: str | None = None,
           allow_connections: bool = True) -> None:
    """``CREATE DATABASE`` (a FILE_COPY clone of ``template`` when given).

    On any failure, including Ctrl-C (psycopg cancels the statement first), a
    database left under ``name`` by this call is dropped before re-raising.
    """
    from psycopg import Error, sql

    check_name(name)
    parts: list[sql.Composable] = [sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))]
    if template:
        from branchyard.db import cloning

        parts.append(sql.SQL("TEMPLATE {} STRATEGY FILE_COPY").format(sql.Identifier(template)))
        cloning.use(conn)  # O(1) on copy-on-write filesystems
    if not allow_connections:
        parts.append(sql.SQL("ALLOW_CONNECTIONS false"))
    if exists(conn, name):
        raise DatabaseError(f"database {name!r} already exists",
                            hint="something else made it meanwhile; run the command again")
    try:
        conn.execute(sql.SQL(" ").join(parts))
    except Error as exc:
        _drop_partial(conn, name)
        what = f"cloning {template!r} into {name!r}" if template else f"creating {name!r}"
        raise sql_error(exc, what) from None
    except BaseException:
        _drop_partial(conn, name)
        raise


def _drop_partial(conn: psycopg.Connection[Any], name: str) -> None:
    from psycopg import Error

    with contextlib.suppress(Error):
        if not conn.closed and exists(conn, name):
            drop(conn, name)


def drop(conn: psycopg.Connection[Any], name: str) -> bool:
    """``DROP DATABASE IF EXISTS … WITH (FORCE)``; True when it existed.

    Callers pass only names the ledger says branchyard created.
    """
    from psycopg import Error, sql

    if not exists(conn, name):
        return False
    try:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                     .format(sql.Identifier(name)))
    except Error as exc:
        raise sql_error(exc, f"dropping database {name!r}") from None
    return True


def rename(conn: psycopg.Connection[Any], old: str, new: str) -> None:
    from psycopg import Error, sql

    check_name(new)
    try:
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}")
                     .format(sql.Identifier(old), sql.Identifier(new)))
    except Error as exc:
        raise sql_error(exc, f"renaming database {old!r} to {new!r}") from None


def set_allow_connections(conn: psycopg.Connection[Any], name: str, allow: bool) -> None:
    from psycopg import sql

    flag = sql.SQL("true" if allow else "false")
    conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}")
                 .format(sql.Identifier(name), flag))


def other_sessions(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                       "AND pid <> pg_backend_pid()", (name,)).fetchone()
    return int(row[0]) if row else 0


def terminate_sessions(conn: psycopg.Connection[Any], name: str,
                       wait: float = 10.0) -> int:
    """End the other sessions on ``name`` and wait (up to ``wait`` s) until they are gone."""
    import time

    rows = conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,)).fetchall()
    deadline = time.monotonic() + wait
    while rows and other_sessions(conn, name) and time.monotonic() < deadline:
        time.sleep(0.02)  # a terminated backend exits within milliseconds
    return len(rows)


def database_info(conn: psycopg.Connection[Any], name: str) -> DatabaseInfo | None:
    row = conn.execute(
        "SELECT pg_database_size(d.oid), d.datallowconn, (SELECT count(*) FROM "
        "pg_stat_activity a WHERE a.datname = d.datname) FROM pg_database d "
        "WHERE d.datname = %s", (name,)).fetchone()
    if row is None:
        return None
    return DatabaseInfo(name, int(row[0]), int(row[2]), bool(row[1]))


def max_connections(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT current_setting('max_connections')::int").fetchone()
    return int(row[0]) if row else 0


def total_connections(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT count(*) FROM pg_stat_activity "
                       "WHERE backend_type = 'client backend'").fetchone()
    return int(row[0]) if row else 0


def table_count(url: str) -> int:
    """Tables outside the system schemas (a database with tables is not re-seeded)."""
    with connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
            "'information_schema') AND n.nspname NOT LIKE 'pg_toast%%'").fetchone()
    return int(row[0]) if row else 0


def run_sql(url: str, *statements: str) -> None:
    """Run trusted SQL statements (fixtures, the demo's rows) against ``url``."""
    from psycopg import Error, sql

    with connect(url) as conn:
        for statement in statements:
            try:
                conn.execute(sql.SQL(statement))
            except Error as exc:
                raise sql_error(exc, f"running SQL on {parse_url(url).database!r}") from None
