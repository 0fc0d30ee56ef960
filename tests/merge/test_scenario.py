"""The issue's scenario end to end through the CLI: five worktrees, the radar,
then the queue."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from yard import add_worktree, commit, git, subjects, write

from branchyard.cli.main import main

REGEN = "open('deps.lock', 'w').write(open('deps.txt').read().upper())\n"
CHECK = ("import sys\n"
         "lock = [x for x in open('deps.lock').read().splitlines() if not x.startswith('#')]\n"
         "ok = lock == open('deps.txt').read().upper().splitlines()\n"
         "sys.exit(0 if ok else 'deps.lock is stale')\n")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def yard(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    py = sys.executable
    commit(repo, {
        "app.py": "def greet():\n    return 'hello'\n",
        "deps.txt": "left-pad\n", "deps.lock": "LEFT-PAD\n",
        "migrations/0001_init.sql": "create table users();\n",
        "tools/regen.py": REGEN, "tools/check.py": CHECK,
        "branchyard.toml": "[merge]\nstrategy = \"rebase\"\n"
                           f"checks = ['{py} tools/check.py']\n"
                           f"lockfiles = {{'deps.lock' = '{py} tools/regen.py'}}\n",
    }, "base")
    a, b, deps, mig, clean = (add_worktree(repo, f"feat/{n}")
                              for n in ("a", "b", "deps", "mig", "clean"))
    commit(a, {"app.py": "def greet():\n    return 'hello from a'\n"}, "a: greet")
    commit(b, {"app.py": "def greet():\n    return 'hello from b'\n"}, "b: greet")
    commit(deps, {"deps.txt": "left-pad\nzod\n", "deps.lock": "hand-edited\n"}, "deps: zod")
    commit(mig, {"migrations/0002_orders.sql": "create table orders();\n"}, "mig: orders")
    commit(clean, {"docs.md": "# docs\n"}, "clean: docs")
    write(clean, {"notes.txt": "uncommitted, untracked\n"})
    # Meanwhile main relocked its dependencies and got its own migration 0002.
    commit(repo, {"deps.lock": "# relocked\nLEFT-PAD\n",
                  "migrations/0002_users.sql": "alter table users;\n"}, "main: relock, 0002")
    monkeypatch.chdir(repo)
    return repo


def test_radar_then_queue(yard: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, radar = _run(capsys, "conflicts")

    assert code == 3
    assert radar["conflict"] is True
    found = sorted((p["ours"], p["theirs"], p["files"],
                    [(m["framework"], m["key"]) for m in p["migrations"]])
                   for p in radar["pairs"] if p["conflict"])
    assert found == [
        ("feat/a", "feat/b", ["app.py"], []),
        ("feat/deps", "base:main", ["deps.lock"], []),
        ("feat/mig", "base:main", [], [("sql", "2")]),
    ]
    assert len(radar["pairs"]) == 10 + 5
    radar_heads = {w["branch"]: w["head"] for w in radar["worktrees"]}
    assert {w["branch"] for w in radar["worktrees"] if w["dirty"]} == {"feat/clean"}

    code, _ = _run(capsys, "queue", "add", "feat/a", "feat/b", "feat/deps", "feat/mig",
                   "feat/clean")
    assert code == 0
    code, ran = _run(capsys, "queue", "run")

    assert code == 1  # some entries failed
    states = [(e["branch"], e["state"], e["reason"]) for e in ran["entries"]]
    assert states == [
        ("feat/a", "merged", ""),
        ("feat/b", "failed", "feat/b conflicts with main in: app.py"),
        ("feat/deps", "merged", ""),
        ("feat/mig", "failed", "feat/mig collides with main on migrations: sql: both add "
                               "migration number 2 in migrations (migrations/0002_orders.sql, "
                               "migrations/0002_users.sql)"),
        ("feat/clean", "merged", ""),
    ]
    assert subjects(yard) == ["clean: docs", "deps: zod", "a: greet", "main: relock, 0002",
                              "base", "initial"]
    assert git("show", "main:deps.lock", cwd=yard) == "LEFT-PAD\nZOD"  # regenerated
    assert git("rev-parse", "feat/b", cwd=yard) == radar_heads["feat/b"]  # never rewritten
    merged_log = Path(ran["entries"][2]["log"]).read_text()
    assert "tools/check.py" in merged_log and "# built" in merged_log  # checks ran, passed
    assert git("status", "--porcelain", cwd=yard) == ""
    assert (yard / "docs.md").exists() and not (yard / "notes.txt").exists()
