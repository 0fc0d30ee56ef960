"""One connection per server for a command (`db.sessions`), on the machine's Postgres."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psycopg
import pytest

from branchyard import api
from branchyard.db import postgres as pg
from branchyard.db import sessions

from .conftest import PG_ADMIN, pg_url


def backend(url: str) -> int:
    with pg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def backend_alive(pid: int) -> bool:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s",
                           (pid,)).fetchone()
    return bool(row and row[0])


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while backend_alive(pid):
        assert time.monotonic() < deadline, f"backend {pid} is still there"
        time.sleep(0.02)


def test_a_shared_admin_url_gets_one_session_until_the_block_ends(main_db: str) -> None:
    with sessions.sharing():
        sessions.share(PG_ADMIN)
        first = backend(PG_ADMIN)
        assert backend(PG_ADMIN) == first
        with sessions.sharing():  # nested: the outer block's connection
            assert backend(PG_ADMIN) == first
        assert backend(PG_ADMIN) == first
        database = backend(pg_url(main_db))  # not shared: its own, closed at once
        assert database != first
        wait_gone(database)
        assert backend_alive(first)
    wait_gone(first)


def test_without_a_sharing_block_every_connect_is_its_own() -> None:
    sessions.share(PG_ADMIN)  # outside `sharing`: nothing to share with
    first = backend(PG_ADMIN)
    assert backend(PG_ADMIN) != first
    wait_gone(first)


def test_a_shared_session_the_server_ended_is_replaced() -> None:
    with sessions.sharing():
        sessions.share(PG_ADMIN)
        first = backend(PG_ADMIN)
        with psycopg.connect(PG_ADMIN, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s)", (first,))
        wait_gone(first)
        second = backend(PG_ADMIN)
        assert second != first
        assert backend(PG_ADMIN) == second


def begin_and_fail(pids: list[int]) -> None:
    with pg.connect(PG_ADMIN) as conn:
        pids.append(int(conn.execute("SELECT pg_backend_pid()").fetchone()[0]))  # type: ignore[index]
        conn.execute("BEGIN")
        raise RuntimeError("interrupted mid-way")


def test_a_session_left_in_a_transaction_by_an_error_is_not_reused() -> None:
    with sessions.sharing():
        sessions.share(PG_ADMIN)
        pids: list[int] = []
        with pytest.raises(RuntimeError, match="mid-way"):
            begin_and_fail(pids)
        wait_gone(pids[0])
        assert backend(PG_ADMIN) != pids[0]


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How many connections each database got (psycopg's own connect, counted)."""
    seen: Counter[str] = Counter()
    real = psycopg.connect

    def counting(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
        seen[kwargs.get("dbname") or url.rsplit("/", 1)[-1]] += 1
        return real(url, **kwargs)

    monkeypatch.setattr(psycopg, "connect", counting)
    return seen


@pytest.mark.parametrize("pool", [0, 1])
def test_up_asks_its_server_over_one_connection(repo: Path, main_db: str, pool: int,
                                                connects: Counter[str]) -> None:
    (repo / ".env").write_text(f"DATABASE_URL={pg_url(main_db)}\n")
    (repo / "branchyard.toml").write_text(
        f'[[database]]\nname = "app"\nsource = "env:DATABASE_URL"\npool = {pool}\n')
    os.chdir(repo)
    api.up(api.UpRequest("feat/warm"))  # makes the snapshot (and the pool's spare)
    if pool:
        from .conftest import wait_for_refills

        wait_for_refills()
    connects.clear()
    result = api.up(api.UpRequest("feat/one"))
    assert connects == {"postgres": 1}
    with pg.connect(PG_ADMIN) as conn:
        assert pg.exists(conn, f"{main_db}_{result.setup.slug}")
    for branch in ("feat/warm", "feat/one"):
        api.down(api.DownRequest(branch, force=True))
