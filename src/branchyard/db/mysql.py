"""MySQL/MariaDB: create, clone (a streamed ``mysqldump | mysql`` inside one
consistent snapshot), drop. Identifiers are backtick-quoted with doubled
backticks; PyMySQL is imported inside functions."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from branchyard.core.errors import CommandError, DatabaseError
from branchyard.db.drivers import require
from branchyard.db.pipeline import run_pipe
from branchyard.db.urls import DbUrl, parse_url

if TYPE_CHECKING:
    import pymysql

NAME_MAX = 64
_HINTS = {
    1045: "fix the user/password in the database URL",
    1049: "create it, fix the URL, or set seed = \"empty\"",
    2003: "start the MySQL/MariaDB server, or fix the host/port in the URL",
}


def quote_ident(name: str) -> str:
    """A backtick-quoted identifier (backticks doubled), as MySQL requires."""
    return "`" + name.replace("`", "``") + "`"


def check_name(name: str) -> str:
    if len(name) > NAME_MAX:
        raise DatabaseError(f"database name {name!r} is {len(name)} characters; MySQL "
                            f"allows at most {NAME_MAX}",
                            hint="shorten the `database` name template in [[database]]")
    return name


@contextmanager
def connect(url: str, database: str | None = None) -> Iterator[pymysql.Connection[Any]]:
    pymysql = require("pymysql")
    p = parse_url(url)
    try:
        conn = pymysql.connect(host=p.host, port=p.port, user=p.user or "root",
                               password=p.password, database=database, autocommit=True,
                               connect_timeout=5, charset="utf8mb4")
    except pymysql.MySQLError as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
        reason = exc.args[1] if len(exc.args) > 1 else str(exc)
        raise DatabaseError(f"MySQL at {p.address}: {reason}",
                            hint=_HINTS.get(code, "check the server and the URL")) from None
    try:
        yield conn
    finally:
        conn.close()


def _query(conn: pymysql.Connection[Any], sql: str, args: tuple[Any, ...] = ()
           ) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return list(cur.fetchall())


def exists(conn: pymysql.Connection[Any], name: str) -> bool:
    return bool(_query(conn, "SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                       (name,)))


def table_count(conn: pymysql.Connection[Any], name: str) -> int:
    rows = _query(conn, "SELECT count(*) FROM information_schema.tables "
                        "WHERE table_schema = %s", (name,))
    return int(rows[0][0]) if rows else 0


def create(conn: pymysql.Connection[Any], name: str) -> None:
    check_name(name)
    _query(conn, f"CREATE DATABASE {quote_ident(name)}")


def drop(conn: pymysql.Connection[Any], name: str) -> bool:
    """Drop ``name`` if it exists (callers pass only ledger-owned names)."""
    if not exists(conn, name):
        return False
    _query(conn, f"DROP DATABASE {quote_ident(name)}")
    return True


def charset_of(conn: pymysql.Connection[Any], name: str) -> tuple[str, str]:
    rows = _query(conn, "SELECT default_character_set_name, default_collation_name FROM "
                        "information_schema.schemata WHERE schema_name = %s", (name,))
    return (str(rows[0][0]), str(rows[0][1])) if rows else ("utf8mb4", "")


def create_like(conn: pymysql.Connection[Any], name: str, main: str) -> None:
    """Create ``name`` with the character set and collation of ``main``."""
    check_name(name)
    charset, collation = charset_of(conn, main)
    sql = f"CREATE DATABASE {quote_ident(name)} CHARACTER SET {_word(charset)}"
    if collation:
        sql += f" COLLATE {_word(collation)}"
    _query(conn, sql)


def _word(value: str) -> str:
    """A charset/collation name (they are bare words, not string literals)."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", value):
        raise DatabaseError(f"unexpected character set or collation name {value!r}")
    return value


def server_side_copyable(conn: pymysql.Connection[Any], main: str) -> bool:
    """Whether main holds only base tables (no views, triggers, routines or events),
    so :func:`copy_server_side` reproduces it exactly."""
    rows = _query(conn, """
        SELECT (SELECT count(*) FROM information_schema.tables
                WHERE table_schema = %s AND table_type <> 'BASE TABLE')
             + (SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = %s)
             + (SELECT count(*) FROM information_schema.routines WHERE routine_schema = %s)
             + (SELECT count(*) FROM information_schema.events WHERE event_schema = %s)""",
                  (main, main, main, main))
    return bool(rows) and int(rows[0][0]) == 0


def copy_server_side(conn: pymysql.Connection[Any], main: str, target: str) -> int:
    """Copy main's tables into ``target`` inside the server: each table's own
    ``SHOW CREATE TABLE`` (keys, foreign keys, AUTO_INCREMENT kept), then one
    transaction ``WITH CONSISTENT SNAPSHOT`` of ``INSERT … SELECT`` (generated
    columns left to the server). Much faster than dump | load: no client round
    trip, no SQL text. Returns the number of tables."""
    tables = [r[0] for r in _query(conn, "SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = %s ORDER BY table_name",
                                   (main,))]
    _query(conn, "SET SESSION foreign_key_checks = 0, SESSION unique_checks = 0")
    _query(conn, f"USE {quote_ident(target)}")  # the DDL names tables unqualified
    for table in tables:  # DDL first: it would end the snapshot transaction
        ddl = _query(conn, f"SHOW CREATE TABLE {quote_ident(main)}.{quote_ident(table)}")
        _query(conn, str(ddl[0][1]))
    _query(conn, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    _query(conn, "START TRANSACTION WITH CONSISTENT SNAPSHOT")
    for table in tables:
        cols = ", ".join(quote_ident(c) for c in _plain_columns(conn, main, table))
        _query(conn, f"INSERT INTO {quote_ident(target)}.{quote_ident(table)} ({cols}) "  # noqa: S608 - quoted identifiers
                     f"SELECT {cols} FROM {quote_ident(main)}.{quote_ident(table)}")
    _query(conn, "COMMIT")
    return len(tables)


def _plain_columns(conn: pymysql.Connection[Any], schema: str, table: str) -> list[str]:
    rows = _query(conn, "SELECT column_name FROM information_schema.columns WHERE "
                        "table_schema = %s AND table_name = %s AND extra NOT LIKE %s "
                        "ORDER BY ordinal_position", (schema, table, "%GENERATED%"))
    return [str(r[0]) for r in rows]


def _client(name: str) -> str:
    for candidate in (name, name.replace("mysql", "mariadb")):
        found = shutil.which(candidate)
        if found:
            return found
    raise DatabaseError(f"{name} is not installed",
                        hint="install the MySQL or MariaDB client tools")


def _conn_args(p: DbUrl) -> list[str]:
    return ["--protocol=TCP", "-h", p.host, "-P", str(p.port), "-u", p.user or "root"]


def clone(main_url: str, target_url: str) -> None:
    """Stream ``mysqldump main | mysql target`` (one consistent snapshot of main;
    routines, triggers and events included). The target database exists."""
    src, dst = parse_url(main_url), parse_url(target_url)
    if src.password != dst.password:
        raise DatabaseError("cloning between MySQL accounts with different passwords is "
                            "not supported", hint="use the same account for source and server")
    env = dict(os.environ)
    if src.password:
        env["MYSQL_PWD"] = src.password
    dump = [_client("mysqldump"), *_conn_args(src), "--single-transaction", "--quick",
            "--routines", "--triggers", "--events", "--hex-blob", "--no-tablespaces",
            "--skip-lock-tables", src.database]
    load = [_client("mysql"), *_conn_args(dst), dst.database]
    try:
        run_pipe(dump, load, env=env)
    except CommandError as exc:
        raise DatabaseError(f"cloning MySQL database {src.database!r} failed: {exc.message}",
                            hint="check the server, its free disk space, and that the "
                                 "user may read routines/events") from None
