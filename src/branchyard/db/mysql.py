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

from branchyard.db.pipeline import run_pipe
from branchyard.db.urls import DbUrl, parse_url
from branchyard.errors import CommandError, DatabaseError

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
    import pymysql

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
