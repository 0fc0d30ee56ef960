"""A clone that runs out of disk space leaves nothing behind (real ENOSPC: the
source lives in a tablespace on a small tmpfs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchyard.core.errors import DatabaseError
from branchyard.db import postgres as pg

from .conftest import PG_ADMIN, pg_names, pg_url

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mount") is None,
                                reason="mounting a small filesystem needs root")


@pytest.fixture
def small_tablespace(uid: str) -> Iterator[str]:
    mount = Path(tempfile.mkdtemp(prefix="bytfs-", dir="/tmp"))
    mount.chmod(0o755)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24M", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        mount.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    shutil.chown(mount, "postgres", "postgres")
    name = f"{uid}_small"
    try:
        pg.run_sql(PG_ADMIN, f"CREATE TABLESPACE {name} LOCATION '{mount}'")
        yield name
    finally:
        with pg.connect(PG_ADMIN) as conn:
            for leftover in pg_names(uid):
                pg.drop(conn, leftover)
        pg.run_sql(PG_ADMIN, f"DROP TABLESPACE IF EXISTS {name}")
        subprocess.run(["umount", str(mount)], capture_output=True, check=False)
        mount.rmdir()


def test_disk_full_mid_clone_removes_the_partial_database(uid: str,
                                                          small_tablespace: str) -> None:
    source = f"{uid}_full_src"
    pg.run_sql(PG_ADMIN, f"CREATE DATABASE {source} TABLESPACE {small_tablespace}")
    pg.run_sql(pg_url(source), "CREATE TABLE pad AS SELECT g, repeat('x', 500) AS filler "
                               "FROM generate_series(1, 14000) g")
    target = f"{uid}_full_clone"
    with pytest.raises(DatabaseError) as info, pg.connect(PG_ADMIN) as conn:
        pg.create(conn, target, template=source)
    assert "No space left on device" in info.value.message, info.value.message
    assert info.value.hint.startswith("the disk is full")
    assert target not in pg_names(uid)
