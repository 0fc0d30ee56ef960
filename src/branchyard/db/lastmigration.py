"""Naming the last migration applied to a database, whatever tool applied it.

Each known tool keeps a table; the first one found answers. A project can give
its own query (``migrations_query``) returning one text column.
"""

from __future__ import annotations

from collections.abc import Callable

# (tool, table, query returning the last migration's name). The table names
# are matched in any schema on the search path.
KNOWN: tuple[tuple[str, str, str], ...] = (
    ("prisma", "_prisma_migrations",
     "SELECT migration_name FROM _prisma_migrations WHERE finished_at IS NOT NULL "
     "ORDER BY finished_at DESC, migration_name DESC LIMIT 1"),
    ("drizzle", "__drizzle_migrations",
     "SELECT hash FROM __drizzle_migrations ORDER BY created_at DESC LIMIT 1"),
    ("django", "django_migrations",
     "SELECT app || '.' || name FROM django_migrations ORDER BY applied DESC, id DESC LIMIT 1"),
    ("alembic", "alembic_version", "SELECT version_num FROM alembic_version LIMIT 1"),
    ("rails", "schema_migrations_rails",
     "SELECT version FROM schema_migrations ORDER BY version DESC LIMIT 1"),
    ("knex", "knex_migrations",
     "SELECT name FROM knex_migrations ORDER BY id DESC LIMIT 1"),
    ("golang-migrate", "schema_migrations_golang",
     "SELECT version::text || CASE WHEN dirty THEN ' (dirty)' ELSE '' END "
     "FROM schema_migrations LIMIT 1"),
)


def last_migration(tables: set[str], columns: Callable[[str], set[str]],
                   query: Callable[[str], str | None], custom: str = "") -> tuple[str, str]:
    """``(tool, last migration)`` or ``("", "")``.

    ``tables`` are the table names in the database; ``columns(table)`` gives a
    table's column names (to tell Rails' ``schema_migrations`` from golang-migrate's,
    which has a ``dirty`` column); ``query(sql)`` runs SQL returning one value.
    """
    if custom:
        return "custom", query(custom) or ""
    for tool, table, sql in KNOWN:
        if _present(tool, table, tables, columns):
            return tool, query(sql) or ""
    return "", ""


def _present(tool: str, table: str, tables: set[str],
             columns: Callable[[str], set[str]]) -> bool:
    if table.startswith("schema_migrations"):
        if "schema_migrations" not in tables:
            return False
        dirty = "dirty" in columns("schema_migrations")
        return dirty if tool == "golang-migrate" else not dirty
    return table in tables


def postgres_last_migration(url: str, custom: str = "") -> tuple[str, str]:
    """:func:`last_migration` against a Postgres database."""
    from branchyard.db.postgres import connect

    with connect(url) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = ANY (current_schemas(false))").fetchall()}

        def columns(table: str) -> set[str]:
            return {r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                (table,)).fetchall()}

        def query(sql: str) -> str | None:
            from psycopg import Error
            from psycopg import sql as pgsql

            try:
                row = conn.execute(pgsql.SQL(sql)).fetchone()
            except Error:
                return None
            return None if row is None or row[0] is None else str(row[0])

        return last_migration(tables, columns, query, custom)
