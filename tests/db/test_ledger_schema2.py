"""A worktree set up by the branchyard of ledger schema 2 keeps working: its
ledger (``tests/core/fixtures/ledger-schema2.json``, as that branchyard wrote
it) is read by `ls`, `status`, `env`, `db status` and `doctor`, rewritten as
schema 3 by the next command that writes, and `down` releases every resource it
records."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from branchyard import api
from branchyard.db import postgres as pg
from tests.conftest import run_cli

from . import legacy_world as lw
from .conftest import PG_ADMIN, RedisLeases

SLUG = "feat_legacy_34ae69"


@pytest.fixture
def world(tmp_path: Path, uid: str, redis_leases: RedisLeases) -> Iterator[lw.World]:
    """The world of the fixture, its worktree made by `up`, then its ledger
    replaced by the fixture's (with this run's paths, names and Redis index)."""
    made = lw.build(tmp_path, uid, redis_leases)
    try:
        os.chdir(made.main)
        api.up(api.UpRequest(lw.BRANCH))
        ledger = made.main / ".git" / "branchyard" / "ledger.json"
        written = json.loads(ledger.read_text())
        port = written["worktrees"][SLUG]["ports"]["PORT"]
        old = json.loads(lw.render(lw.FIXTURE.read_text(), made, port))
        # the snapshot this run made (not a resource: written the same in both schemas)
        old["sections"] = written["sections"]
        ledger.write_text(json.dumps(old, indent=2))
        yield made
    finally:
        lw.drop_databases(uid)


def run_json(capsys: pytest.CaptureFixture[str], cwd: Path, *argv: str) -> dict[str, Any]:
    code, out, _ = run_cli(capsys, cwd, *argv, "--json")
    doc: dict[str, Any] = json.loads(out)
    assert code == 0 and doc["ok"], doc
    return doc


def test_ls_status_env_and_down_of_a_schema_2_worktree(
        world: lw.World, uid: str, capsys: pytest.CaptureFixture[str]) -> None:
    import redis

    path = world.root / f"app.{SLUG}"
    ledger = world.main / ".git" / "branchyard" / "ledger.json"
    clone = f"{uid}_main_{SLUG}"
    databases = {"app": ("postgres", clone), "shop": ("mysql", f"{uid}_shop_{SLUG}"),
                 "agent": ("sqlite", f"agent-{SLUG}.db"),
                 "cache": ("redis", str(world.redis_target.index))}

    [listed] = [w for w in run_json(capsys, world.main, "ls")["worktrees"] if not w["main"]]
    port = listed["ports"]["PORT"]
    assert (listed["slug"], listed["path"]) == (SLUG, str(path))
    assert {d["name"]: (d["engine"], d["database"]) for d in listed["databases"]} == databases
    shown = run_json(capsys, world.main, "status", lw.BRANCH)["worktree"]
    assert {d["name"]: d["state"] for d in shown["databases"]} == dict.fromkeys(databases, "ready")
    env = run_json(capsys, path, "env")["env"]
    assert {k: env[k] for k in ("PORT", "DATABASE_URL", "MYSQL_URL", "SQLITE_URL",
                                "REDIS_URL", "BRANCHYARD_BROWSER_SESSION")} == {
        "PORT": str(port), "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{clone}",
        "MYSQL_URL": f"{lw.MYSQL}{uid}_shop_{SLUG}", "SQLITE_URL": f"file:./data/agent-{SLUG}.db",
        "REDIS_URL": world.redis_target.url, "BRANCHYARD_BROWSER_SESSION": f"app-{SLUG}"}
    rows = run_json(capsys, path, "db", "status")["databases"]
    assert {r["name"]: r["exists"] for r in rows} == dict.fromkeys(databases, True)
    findings = run_json(capsys, world.main, "doctor")
    assert findings["findings"] == [], findings

    api.setup(api.SetupRequest(worktree=path))  # writes the ledger: as schema 3
    doc = json.loads(ledger.read_text())
    assert doc["version"] == 3
    specs = {r["key"]: r["spec"] for r in doc["worktrees"][SLUG]["resources"]}
    assert "engine" not in specs["db:app"] and specs["db:app"]["adopted"] is False
    assert specs["db:app"]["owner"]["path"] == str(path)

    profile = Path(env["BRANCHYARD_BROWSER_PROFILE"])
    assert profile.is_dir() and (path / "agent-browser.json").is_file()
    os.chdir(world.main)
    done = api.down(api.DownRequest(lw.BRANCH, force=True))
    assert not path.exists() and not profile.exists()
    assert done.teardown is not None and not done.teardown.errors
    with pg.connect(PG_ADMIN) as conn:
        assert not pg.exists(conn, clone)
    with lw.mysql_admin() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s",
                    (f"{uid}_shop_{SLUG}",))
        assert cur.fetchone() == (0,)
    client = redis.Redis.from_url(world.redis_target.url)
    try:
        assert client.dbsize() == 0  # flushed, the lease marker with it
    finally:
        client.close()
    assert SLUG not in json.loads(ledger.read_text())["worktrees"]
