"""State files: atomic, private, versioned."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from branchyard.core import statefile


def test_a_state_file_is_private_versioned_and_leaves_no_temp_file(tmp_path: Path) -> None:
    old = os.umask(0)  # even with the most permissive umask
    try:
        path = statefile.private_dir(tmp_path / "a" / "b") / "state.json"
        statefile.write_json(path, {"leases": {"1": "x"}}, version=3)
    finally:
        os.umask(old)
    assert json.loads(path.read_text()) == {"version": 3, "leases": {"1": "x"}}
    assert path.stat().st_mode & 0o777 == 0o600
    assert [(tmp_path / d).stat().st_mode & 0o777 for d in ("a", "a/b")] == [0o700, 0o700]
    assert sorted(p.name for p in path.parent.iterdir()) == ["state.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    statefile.write_json(path, {"n": 1}, version=1)
    with pytest.raises(TypeError):
        statefile.write_json(path, {"n": object()}, version=1)
    assert json.loads(path.read_text()) == {"version": 1, "n": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


WRITER = """
import sys
from pathlib import Path
from branchyard.core import statefile
text = "x" * 20_000_000
while True:
    statefile.write_text(Path(sys.argv[1]), text)
"""


def test_what_a_killed_writer_leaves_is_found_by_doctor(tmp_path: Path) -> None:
    from branchyard.api.machine import stale_tempfiles

    for _ in range(10):  # the kill may land between two writes: then try again
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path / "ports.json")])
        deadline = time.monotonic() + 30
        while not list(tmp_path.glob(".*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.001)
        child.kill()
        child.wait()
        left = sorted(tmp_path.glob(".*.tmp"))
        if left:
            break
    [temp] = left
    assert temp.name.startswith(".ports.json.") and temp.name.endswith(f".{child.pid}.tmp")
    assert [f.subject for f in stale_tempfiles(tmp_path)] == [str(temp)]


def test_older_documents_tell_their_version() -> None:
    assert statefile.version_of({"schema": 1, "worktrees": {}}) == 1
    assert statefile.version_of({"version": 2, "schema": 1}) == 2
    assert statefile.version_of({"127.0.0.1:6379": {}}) is None
    assert statefile.payload({"version": 2, "schema": 1, "port": 5}) == {"port": 5}
