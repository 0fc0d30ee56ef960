"""MysqlProvider against the machine's MariaDB at 127.0.0.1:3306."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import pymysql
import pytest

from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import DatabaseError
from branchyard.core.events import NullReporter
from branchyard.db.mysql import quote_ident
from branchyard.providers.mysql import MysqlProvider
from branchyard.repo.locate import RepoInfo

from .conftest import plan_ctx

PROVIDER = MysqlProvider()
SERVER = "mysql://root@127.0.0.1:3306/"
ENTRY = DatabaseConfig(name="shop", engine="mysql", source="env:DATABASE_URL")


def admin() -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)


def databases(prefix: str) -> set[str]:
    with admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata "
                    "WHERE schema_name LIKE %s", (prefix + "%",))
        return {r[0] for r in cur.fetchall()}


@pytest.fixture
def mysql_main(uid: str) -> Iterator[str]:
    name = f"{uid}_shop"
    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quote_ident(name)}")
        cur.execute(f"USE {quote_ident(name)}")
        cur.execute("CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40))")
        cur.execute("CREATE TABLE orders (id INT PRIMARY KEY, customer INT, total INT, "
                    "FOREIGN KEY (customer) REFERENCES customers(id))")
        cur.execute("INSERT INTO customers VALUES (1, 'ada'), (2, 'bob')")
        cur.execute("INSERT INTO orders VALUES (10, 1, 5), (11, 2, 7), (12, 2, 9)")
        cur.execute("CREATE VIEW totals AS SELECT customer, SUM(total) AS t FROM orders "
                    "GROUP BY customer")
    yield name
    with admin() as conn, conn.cursor() as cur:
        for leftover in databases(uid):
            cur.execute(f"DROP DATABASE {quote_ident(leftover)}")


def test_clone_copies_tables_views_and_keys_then_destroy_drops(
        project: RepoInfo, mysql_main: str, uid: str) -> None:
    ctx = plan_ctx(project, ENTRY, main_env={"DATABASE_URL": SERVER + mysql_main})
    [alloc] = PROVIDER.plan(ctx)
    target = alloc.spec.database
    assert target == f"{mysql_main}_{ctx.identity.slug}"
    assert PROVIDER.create(alloc, ctx) is True
    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"SELECT t FROM {quote_ident(target)}.totals ORDER BY customer")
        assert [int(r[0]) for r in cur.fetchall()] == [5, 16]
        cur.execute(f"INSERT INTO {quote_ident(target)}.orders VALUES (13, 1, 1)")
        with pytest.raises(pymysql.err.IntegrityError):
            cur.execute(f"INSERT INTO {quote_ident(target)}.orders VALUES (14, 99, 1)")
    assert PROVIDER.create(alloc, ctx) is False  # has tables: kept
    PROVIDER.destroy(alloc)
    PROVIDER.destroy(alloc)
    assert databases(uid) == {mysql_main}


def test_main_missing_and_server_down_are_clear(project: RepoInfo, uid: str) -> None:
    ctx = plan_ctx(project, ENTRY, main_env={"DATABASE_URL": SERVER + f"{uid}_none"})
    [alloc] = PROVIDER.plan(ctx)
    with pytest.raises(DatabaseError, match="does not exist"):
        PROVIDER.create(alloc, ctx)
    assert databases(uid) == set()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = plan_ctx(project, ENTRY,
                    main_env={"DATABASE_URL": f"mysql://root@127.0.0.1:{port}/x"})
    [alloc] = PROVIDER.plan(down)
    with pytest.raises(DatabaseError, match=f"127.0.0.1:{port}"):
        PROVIDER.create(alloc, down)


def test_auth_failure_is_clear(project: RepoInfo) -> None:
    ctx = plan_ctx(project, ENTRY,
                   main_env={"DATABASE_URL": "mysql://nobody_here:wrong@127.0.0.1:3306/x"})
    [alloc] = PROVIDER.plan(ctx)
    with pytest.raises(DatabaseError, match="Access denied") as info:
        PROVIDER.create(alloc, ctx)
    assert "user/password" in info.value.hint


def test_plain_tables_are_copied_inside_the_server(project: RepoInfo, uid: str) -> None:
    main = f"{uid}_plain"
    with admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quote_ident(main)}")
        cur.execute(f"USE {quote_ident(main)}")
        cur.execute("CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, price INT, "
                    "doubled INT AS (price * 2) STORED)")
        cur.execute("CREATE TABLE b (id INT PRIMARY KEY, a_id INT, "
                    "FOREIGN KEY (a_id) REFERENCES a(id))")
        cur.execute("INSERT INTO a (price) VALUES (1), (2), (3)")
        cur.execute("INSERT INTO b VALUES (1, 3)")
    try:
        ctx = plan_ctx(project, ENTRY, main_env={"DATABASE_URL": SERVER + main})
        [alloc] = PROVIDER.plan(ctx)
        messages: list[str] = []
        ctx = dataclasses.replace(ctx, reporter=_Collect(messages))
        PROVIDER.create(alloc, ctx)
        assert any("inside the server" in m for m in messages)
        target = quote_ident(alloc.spec.database)
        with admin() as conn, conn.cursor() as cur:
            cur.execute(f"SELECT id, doubled FROM {target}.a ORDER BY id")
            assert cur.fetchall() == ((1, 2), (2, 4), (3, 6))
            cur.execute(f"INSERT INTO {target}.a (price) VALUES (10)")
            cur.execute(f"SELECT max(id) FROM {target}.a")
            assert cur.fetchone() == (4,)  # AUTO_INCREMENT carried over
            with pytest.raises(pymysql.err.IntegrityError):
                cur.execute(f"INSERT INTO {target}.b VALUES (2, 99)")
        PROVIDER.destroy(alloc)
    finally:
        with admin() as conn, conn.cursor() as cur:
            for leftover in databases(uid):
                cur.execute(f"DROP DATABASE {quote_ident(leftover)}")


class _Collect(NullReporter):
    def __init__(self, sink: list[str]) -> None:
        self.sink = sink

    def message(self, text: str) -> None:
        self.sink.append(text)
