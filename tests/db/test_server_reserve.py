"""The managed server's first reservation, from several processes at once, and
what it writes (no cluster is started here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

_RACER = """
import json, sys, time
from branchyard.config.model import ServerConfig
from branchyard.db import managed
go = float(sys.argv[1])
while time.time() < go:
    pass
state = managed.reserve(ServerConfig())
print(json.dumps([state.port, state.password]))
"""


def test_parallel_first_reservations_agree(tmp_path: Path) -> None:
    """Six processes reserve the never-used server at the same instant: one
    port and one password come out, the ones written to server.json."""
    env = {**os.environ, "BRANCHYARD_STATE_DIR": str(tmp_path / "state"),
           "PYTHONPATH": os.pathsep.join(sys.path)}
    go = time.time() + 1.5
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(go)], env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(6)]
    results = {tuple(json.loads(p.communicate(timeout=60)[0])) for p in procs}
    assert all(p.returncode == 0 for p in procs)
    saved = json.loads((tmp_path / "state" / "server" / "server.json").read_text())
    assert results == {(saved["port"], saved["password"])}
