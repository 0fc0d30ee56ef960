"""The managed cluster: one real cluster for this module, stopped and removed after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from branchyard.config.model import Config, DatabaseConfig, ServerConfig
from branchyard.core.errors import DatabaseError
from branchyard.db import managed
from branchyard.db import postgres as pg
from branchyard.db.mainenv import HEADER, drop_managed_mains, prepare_main, seed_demo_rows
from branchyard.db.serverstate import ServerState
from branchyard.db.upkeep import remove_project_databases
from branchyard.providers.postgres import PostgresProvider
from branchyard.repo.locate import RepoInfo

from .conftest import managed_state_home, plan_ctx


@pytest.fixture(scope="module")
def cluster_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from managed_state_home(tmp_path_factory, "managed")


@pytest.fixture
def cluster(cluster_home: Path, monkeypatch: pytest.MonkeyPatch) -> ServerState:
    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(cluster_home))
    return managed.start(ServerConfig())


def test_start_is_loopback_with_the_configured_ceiling(cluster: ServerState) -> None:
    st = managed.status()
    assert st.running and st.pid > 0
    with pg.connect(cluster.url) as conn:
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                    for name in ("listen_addresses", "max_connections", "port")}
        extensions = {r[0] for r in conn.execute("SELECT extname FROM pg_extension")}
    assert settings == {"listen_addresses": "127.0.0.1", "max_connections": "200",
                        "port": str(cluster.port)}
    assert "pg_stat_statements" in extensions
    owner = psutil.Process(st.pid).username()
    assert owner == (cluster.user or psutil.Process().username())
    if os.geteuid() == 0:
        assert owner != "root"


def test_stop_then_start_keeps_port_and_data(cluster: ServerState) -> None:
    with pg.connect(cluster.url) as conn:
        if not pg.exists(conn, "kept"):
            pg.create(conn, "kept")
    assert managed.stop() is True
    assert managed.status().running is False
    assert managed.stop() is False
    again = managed.start(ServerConfig())
    assert again.port == cluster.port
    with pg.connect(again.url) as conn:
        assert pg.exists(conn, "kept")
        pg.drop(conn, "kept")


def test_wrong_password_is_an_auth_failure(cluster: ServerState) -> None:
    bad = cluster.url.replace(cluster.password, "wrong")
    with pytest.raises(DatabaseError, match="authentication failed"), pg.connect(bad):
        pass


def test_auth_failures_name_their_cause_not_the_server(cluster: ServerState) -> None:
    from branchyard.db.urls import parse_url

    address = parse_url(cluster.url).address
    user = parse_url(cluster.url).user
    with pytest.raises(DatabaseError) as wrong, pg.connect(
            cluster.url.replace(cluster.password, "wrong")):
        pass
    assert (wrong.value.message, wrong.value.hint) == (
        f"Postgres at {address} refused user {user!r}: authentication failed",
        "fix the user/password in the database URL")
    ghost = cluster.url.replace(f"//{user}:", "//nosuchrole:")
    with pytest.raises(DatabaseError) as missing, pg.connect(ghost):
        pass
    # with password auth the server does not say whether the role exists
    assert missing.value.message == (f"Postgres at {address} refused user 'nosuchrole': "
                                     "authentication failed")


def test_managed_entry_end_to_end(cluster: ServerState, project: RepoInfo) -> None:
    """No source, no server: the main database lives on the managed cluster, the
    main worktree learns its URL from a generated env file, worktrees get clones."""
    config = Config(database=(DatabaseConfig(name="app"),))
    done = prepare_main(project, config)
    assert done.created == ("app_app",) and done.written
    env_file = project.main_path / ".env.development.local"
    assert env_file.read_text().startswith(HEADER)
    main_url = done.urls["DATABASE_URL"]
    seed_demo_rows(main_url)
    ctx = plan_ctx(project, DatabaseConfig(name="app"))
    provider = PostgresProvider()
    [alloc] = provider.plan(ctx)
    assert alloc.spec.managed and alloc.spec.database.startswith("app_app_feat_x")
    provider.create(alloc, ctx)
    with pg.connect(alloc.spec.url) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (2,)
    provider.destroy(alloc)
    with pg.connect(cluster.url) as conn:
        assert not pg.exists(conn, alloc.spec.database)
        assert pg.exists(conn, "app_app")
    [snap] = remove_project_databases(project.common_dir)
    assert snap.startswith("app_app__snap_")
    assert drop_managed_mains(project, config) == ["app_app"]
    with pg.connect(cluster.url) as conn:
        left = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
    assert left == {"postgres", "template0", "template1"}


def test_prepare_main_never_overwrites_a_users_env_file(
        cluster: ServerState, project: RepoInfo) -> None:
    mine = project.main_path / ".env.development.local"
    mine.write_text("DATABASE_URL=postgres://me@elsewhere/mine\n")
    done = prepare_main(project, Config(database=(DatabaseConfig(name="other"),)))
    assert done.kept_user_file and not done.written
    assert mine.read_text() == "DATABASE_URL=postgres://me@elsewhere/mine\n"
    with pg.connect(cluster.url) as conn:
        pg.drop(conn, "app_other")


def test_server_commands_never_show_the_password(
        cluster: ServerState, repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from branchyard.cli.main import main

    (repo / "branchyard.toml").write_text('[[database]]\nname = "web"\n')
    os.chdir(repo)
    assert main(["server", "start", "--json"]) == 0
    out = capsys.readouterr().out
    doc = json.loads(out)
    assert cluster.password not in out
    assert doc["running"] is True and doc["port"] == cluster.port
    assert doc["max_connections"] == 200
    assert doc["main"]["created"] == ["app_web"]
    assert doc["main"]["urls"] == {
        "DATABASE_URL": f"postgresql://postgres:****@127.0.0.1:{cluster.port}/app_web"}
    assert cluster.password in (repo / ".env.development.local").read_text()
    assert main(["server", "status"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"managed Postgres: running on 127.0.0.1:{cluster.port}")
    assert cluster.password not in text
    with pg.connect(cluster.url) as conn:
        pg.drop(conn, "app_web")


def test_a_busy_port_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(tmp_path / "state"))
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        try:
            with pytest.raises(DatabaseError, match=f"port {port} on 127.0.0.1"):
                managed.start(ServerConfig(port=port))
            assert managed.status().running is False
        finally:
            managed.remove_cluster()
