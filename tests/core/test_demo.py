"""`branchyard demo` end to end: a managed Postgres, two worktrees, nothing left."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchyard.core.events import NullReporter
from branchyard.demo import _clean, database_available, run_demo
from branchyard.system import ports


def test_demo_without_database_leaves_nothing() -> None:
    result = run_demo(with_database=False)
    assert [w.branch for w in result.worktrees] == ["feat/checkout", "fix/login-bug"]
    first, second = result.worktrees
    assert first.slug != second.slug
    assert first.url == "http://feat-checkout.shop.localhost:1355"
    assert not set(first.ports.values()) & set(second.ports.values())
    assert first.env["STRIPE_KEY"] == "sk_test_demo"  # shared env file from main
    assert first.env["BETTER_AUTH_URL"] == first.url
    assert not Path(result.root).exists()
    assert ports.all_leases() == []


@pytest.mark.skipif(not database_available(), reason="PostgreSQL binaries are not installed")
def test_demo_clones_the_main_database_into_each_worktree() -> None:
    from branchyard.db import managed, serverstate
    from branchyard.db import postgres as pg

    result = run_demo(with_database=True, keep=True)
    try:
        names = [str(w.databases[0]["database"]) for w in result.worktrees]
        assert names[0] != names[1]
        assert [w.rows for w in result.worktrees] == [2, 2]
        assert all("****" in w.env["DATABASE_URL"] for w in result.worktrees)
    finally:
        _clean(Path(result.repo), Path(result.root), NullReporter(), stop_server=False)
    admin = serverstate.load_state()
    assert admin is not None
    with pg.connect(admin.url) as conn:
        left = {row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'shop%'")}
    managed.remove_cluster()  # as root the cluster lives outside the test's state dir
    assert left == set()
    assert not Path(result.root).exists()
