"""The deps provider inside the real `up` / `setup` / `down`, with the plain
progress reporter a pipe gets."""

from __future__ import annotations

import io
from pathlib import Path

from depskit import git
from nodetree import generate_node_modules

from branchyard import api
from branchyard.cli.progress import make_reporter
from branchyard.deps.lockstamp import read_stamp
from branchyard.ledger import Ledger

CONFIG = """\
[[deps]]
dir = "node_modules"
lockfiles = ["package-lock.json"]
install = "mkdir -p node_modules && touch node_modules/installed"
smoke = "test -x node_modules/.bin/tool0"
"""


def test_up_reuses_the_main_tree_and_shows_it_happening(tmp_path: Path) -> None:
    main = tmp_path / "app"
    main.mkdir()
    git("init", "-q", "-b", "main", cwd=main)
    (main / ".gitignore").write_text("node_modules/\n")
    (main / "branchyard.toml").write_text(CONFIG)
    (main / "package-lock.json").write_text('{"lockfileVersion": 3}\n')
    git("add", "-A", cwd=main)
    git("commit", "-qm", "init", cwd=main)
    generate_node_modules(main / "node_modules", files=3000)
    out = io.StringIO()

    result = api.up(api.UpRequest("feat/deps", cwd=main), make_reporter(False, out, False))

    worktree = Path(result.path)
    stamp = read_stamp(worktree / "node_modules")
    assert stamp is not None and (stamp.action, stamp.method) == ("reused", "copy")
    assert not (worktree / "node_modules" / "installed").exists()
    log = out.getvalue()
    assert "deps: node_modules: reusing the main worktree's tree by copy" in log
    assert "deps: node_modules: reused by copy: 3000 files" in log
    assert "deps done in" in log
    assert "deps" in [p.name for p in result.setup.phases]
    record = Ledger(main / ".git").read().by_path(worktree)
    assert record is not None
    res = record.resource("deps:node_modules")
    assert res is not None and res.state == "ready" and len(res.spec.lock_hash) == 64

    again = api.setup(api.SetupRequest(worktree=worktree))
    assert not any(a.startswith("deps") for a in again.actions)

    api.down(api.DownRequest("feat/deps", cwd=main, force=True))
    assert not worktree.exists()
    assert (main / "node_modules" / ".bin" / "tool0").exists()
