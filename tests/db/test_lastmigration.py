"""Last-migration detection on real Postgres databases, one per tool's table layout."""

from __future__ import annotations

import pytest

from branchyard.db import postgres as pg
from branchyard.db.lastmigration import postgres_last_migration

from .conftest import PG_ADMIN, pg_url

CASES = [
    ("django", ["CREATE TABLE django_migrations (id serial, app text, name text, "
                "applied timestamptz)",
                "INSERT INTO django_migrations (app, name, applied) VALUES "
                "('auth', '0001_initial', now() - interval '1 h'), "
                "('shop', '0002_orders', now())"], "shop.0002_orders"),
    ("alembic", ["CREATE TABLE alembic_version (version_num varchar(32))",
                 "INSERT INTO alembic_version VALUES ('ae1027a6acf')"], "ae1027a6acf"),
    ("rails", ["CREATE TABLE schema_migrations (version varchar PRIMARY KEY)",
               "INSERT INTO schema_migrations VALUES ('20240101000000'), ('20240301000000')"],
     "20240301000000"),
    ("golang-migrate", ["CREATE TABLE schema_migrations (version bigint, dirty boolean)",
                        "INSERT INTO schema_migrations VALUES (42, true)"], "42 (dirty)"),
    ("knex", ["CREATE TABLE knex_migrations (id serial, name text)",
              "INSERT INTO knex_migrations (name) VALUES ('001_a.js'), ('002_b.js')"],
     "002_b.js"),
    ("drizzle", ["CREATE TABLE __drizzle_migrations (id serial, hash text, created_at bigint)",
                 "INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('abc', 1), "
                 "('def', 2)"], "def"),
]


@pytest.mark.parametrize(("tool", "statements", "expected"), CASES,
                         ids=[c[0] for c in CASES])
def test_last_migration_per_tool(uid: str, tool: str, statements: list[str],
                                 expected: str) -> None:
    name = f"{uid}_mig"
    with pg.connect(PG_ADMIN) as conn:
        pg.create(conn, name)
    try:
        assert postgres_last_migration(pg_url(name)) == ("", "")
        pg.run_sql(pg_url(name), *statements)
        assert postgres_last_migration(pg_url(name)) == (tool, expected)
        custom = postgres_last_migration(pg_url(name), "SELECT 'mine'")
        assert custom == ("custom", "mine")
    finally:
        with pg.connect(PG_ADMIN) as conn:
            pg.drop(conn, name)
