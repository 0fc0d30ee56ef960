"""A project with a resource of every kind (Postgres, MySQL, SQLite, Redis, a
browser session, a shared env file and a copied file, a dependency tree) on the
machine's real servers: the world ``tests/core/fixtures/ledger-schema2.json`` was written
in, by the branchyard of ledger schema 2.

The fixture is that ledger as it was written, with what differs between runs
replaced by tokens (``@ROOT@``, ``@UID@``, ``@CLONE@``,
``@MACHINE@``, ``@PROFILES@``, ``@PORT@``, and for numbers ``"@PORT_NUMBER@"``,
``"@REDIS_INDEX@"``, ``"@REDIS_MAIN@"``): :func:`render` puts this run's values back.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pymysql

from branchyard.db import postgres as pg
from branchyard.db import redisdb
from branchyard.db.mysql import quote_ident
from tests.conftest import git, make_repo, quiet_port_range
from tests.db.conftest import PG_ADMIN, RedisIndex, RedisLeases, pg_url, redis_owner

BRANCH = "feat/legacy"
FIXTURE = Path(__file__).parents[1] / "core" / "fixtures" / "ledger-schema2.json"
MYSQL = "mysql://root@127.0.0.1:3306/"

CONFIG = """\
[ports]
names = ["PORT"]
range = [{low}, {high}]

[env]
shared = [".env.local"]

[files]
copy = [".vercel/project.json"]

[browser]
session_file = "agent-browser.json"

[[database]]
name = "app"
source = "env:DATABASE_URL"

[[database]]
name = "shop"
engine = "mysql"
source = "env:MYSQL_URL"
env = "MYSQL_URL"

[[database]]
name = "agent"
engine = "sqlite"
source = "env:SQLITE_URL"
env = "SQLITE_URL"

[[database]]
name = "cache"
engine = "redis"
source = "env:REDIS_URL"
env = "REDIS_URL"

[[deps]]
dir = "node_modules"
lockfiles = ["package-lock.json"]
install = "mkdir -p node_modules && touch node_modules/installed"
"""


@dataclass(frozen=True)
class World:
    root: Path  # the project is root/app, its worktrees beside it
    uid: str  # the prefix of every database this world has
    redis_main: RedisIndex
    redis_target: RedisIndex

    @property
    def main(self) -> Path:
        return self.root / "app"


def mysql_admin() -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", autocommit=True)


def build(root: Path, uid: str, leases: RedisLeases) -> World:
    """The main worktree with its config, env files and main databases."""
    root = Path(os.path.realpath(root))
    main = make_repo(root / "app")
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, f"{uid}_main")
    pg.run_sql(pg_url(f"{uid}_main"), "CREATE TABLE items (id int PRIMARY KEY)",
               "INSERT INTO items SELECT generate_series(1, 10)")
    with mysql_admin() as conn, conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {quote_ident(uid + '_shop')}")
        cur.execute(f"CREATE TABLE {quote_ident(uid + '_shop')}.orders (id INT PRIMARY KEY)")
        cur.execute(f"INSERT INTO {quote_ident(uid + '_shop')}.orders VALUES (1), (2)")
    (main / "data").mkdir()
    with sqlite3.connect(main / "data" / "agent.db") as db:
        db.execute("CREATE TABLE runs (id INTEGER)")
    db.close()
    redis_main = leases.take()
    target = leases.take(redisdb.MARKER, redis_owner(main / ".git", BRANCH, "cache"))
    leases.steer(target)
    (main / ".env").write_text(f"DATABASE_URL={pg_url(uid + '_main')}\n"
                               f"MYSQL_URL={MYSQL}{uid}_shop\n"
                               "SQLITE_URL=file:./data/agent.db\n"
                               f"REDIS_URL={redis_main.url}\n")
    (main / ".env.local").write_text("SECRET=main-secret\n")
    (main / ".vercel").mkdir()
    (main / ".vercel" / "project.json").write_text('{"projectId": "p1"}\n')
    (main / "node_modules").mkdir()
    (main / "node_modules" / "left-pad.js").write_text("module.exports = 1\n")
    with (main / ".gitignore").open("a") as ignore:
        ignore.write(".vercel/\ndata/\n")
    low, high = quiet_port_range()
    (main / "branchyard.toml").write_text(CONFIG.format(low=low, high=high))
    (main / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
    git("add", "-A", cwd=main)
    git("commit", "-qm", "every kind of resource", cwd=main)
    return World(root, uid, redis_main, target)


def tokens(world: World, port: int) -> dict[str, str]:
    """Each token of the fixture and this run's value for it (quoted ones first:
    they stand for numbers)."""
    from branchyard.db.owner import clone_id
    from branchyard.system.browser import profiles_root

    return {
        '"@PORT_NUMBER@"': str(port),
        "@PORT@": str(port),
        '"@REDIS_INDEX@"': str(world.redis_target.index),
        '"@REDIS_MAIN@"': str(world.redis_main.index),
        "@REDIS_INDEX@": str(world.redis_target.index),
        "@REDIS_MAIN@": str(world.redis_main.index),
        "@PROFILES@": str(profiles_root(world.main / ".git")),
        "@ROOT@": str(world.root),
        "@UID@": world.uid,
        "@CLONE@": clone_id(world.main / ".git"),
        "@MACHINE@": socket.gethostname(),
    }


def render(template: str, world: World, port: int) -> str:
    """The fixture for this run (``port``: the one its worktree leased)."""
    for token, value in tokens(world, port).items():
        template = template.replace(token, value)
    return template


def drop_databases(uid: str) -> None:
    """Every database of this world, on both servers (they all start with ``uid``)."""
    with pg.connect(PG_ADMIN) as conn:
        for name in [r[0] for r in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (uid + "%",))]:
            pg.drop(conn, name)
    with mysql_admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT schema_name FROM information_schema.schemata "
                    "WHERE schema_name LIKE %s", (uid + "%",))
        for (name,) in cur.fetchall():
            cur.execute(f"DROP DATABASE {quote_ident(name)}")
