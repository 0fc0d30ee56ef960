"""Migration patterns: every default framework, user patterns, collisions."""

from __future__ import annotations

import pytest

from branchyard.merge.changes import Change
from branchyard.merge.migrations import (
    DEFAULT_PATTERNS,
    added_migrations,
    alembic_revision,
    classify,
    collisions,
    patterns_from_config,
)


@pytest.mark.parametrize(("path", "framework", "scope", "key"), [
    ("prisma/migrations/20240101120000_init/migration.sql", "prisma", "prisma/migrations",
     "20240101120000"),
    ("apps/web/drizzle/0003_brave_hulk.sql", "drizzle", "apps/web/drizzle", "0003"),
    ("shop/migrations/0002_order_total.py", "django", "shop/migrations", "0002"),
    ("db/migrate/20240101120000_create_users.rb", "rails", "db/migrate", "20240101120000"),
    ("migrations/20240101120000_users.ts", "knex", "migrations", "20240101120000"),
    ("db/migrations/000004_add_index.up.sql", "golang-migrate", "db/migrations", "000004"),
    ("sql/V2__add_orders.sql", "flyway", "sql", "2"),
    ("db/migrations/0007_add_orders.sql", "sql", "db/migrations", "0007"),
    ("alembic/versions/ab12_users.py", "alembic", "alembic/versions", None),
])
def test_default_patterns(path: str, framework: str, scope: str, key: str | None) -> None:
    hit = classify(path, DEFAULT_PATTERNS)
    assert hit is not None
    pattern, match = hit
    assert (pattern.framework, match.group("scope")) == (framework, scope)
    if key is not None:
        assert match.group("key") == key


@pytest.mark.parametrize("path", ["src/app.py", "migrations/__init__.py", "docs/0001-intro.md",
                                  "db/seeds/0001_users.rb"])
def test_other_files_are_not_migrations(path: str) -> None:
    assert classify(path, DEFAULT_PATTERNS) is None


def test_user_pattern_comes_first() -> None:
    patterns = patterns_from_config(["**/changes/{num}_*.sql", "schema/*.cql"])
    first = classify("svc/changes/12_x.sql", patterns)
    second = classify("schema/0004_tables.cql", patterns)
    assert first is not None and first[0].framework == "custom"
    assert (first[1].group("scope"), first[1].group("key")) == ("svc/changes", "12")
    assert second is not None and second[1].group("key") == "0004"


def _added(*paths: str) -> tuple[Change, ...]:
    return tuple(Change("A", p, f"blob-{p}") for p in paths)


def test_up_and_down_files_are_one_migration() -> None:
    ours = added_migrations(_added("m/0004_a.up.sql", "m/0004_a.down.sql"), DEFAULT_PATTERNS,
                            lambda blobs: {})
    same = added_migrations(_added("m/0004_a.up.sql"), DEFAULT_PATTERNS, lambda blobs: {})
    other = added_migrations(_added("m/0004_b.up.sql"), DEFAULT_PATTERNS, lambda blobs: {})
    assert collisions(ours, same) == ()
    (hit,) = collisions(ours, other)
    assert (hit.framework, hit.key, hit.theirs) == ("golang-migrate", "4", ("m/0004_b.up.sql",))


def test_numbers_compare_without_leading_zeros_and_per_folder() -> None:
    ours = added_migrations(_added("a/migrations/0002_x.sql"), DEFAULT_PATTERNS, lambda b: {})
    theirs = added_migrations(_added("a/migrations/002_y.sql", "b/migrations/0002_z.sql"),
                              DEFAULT_PATTERNS, lambda b: {})
    (hit,) = collisions(ours, theirs)
    assert (hit.scope, hit.ours, hit.theirs) == ("a/migrations", ("a/migrations/0002_x.sql",),
                                                 ("a/migrations/002_y.sql",))


def test_alembic_revision_forms() -> None:
    assert alembic_revision("revision = 'a1'\ndown_revision = 'a0'\n") == ("a1", "a0")
    assert alembic_revision('revision: str = "a1"\ndown_revision: Union[str, None] = None\n') \
        == ("a1", "<base>")
    assert alembic_revision("revision = 'm'\ndown_revision = ('a', 'b')\n") == ("m", None)
