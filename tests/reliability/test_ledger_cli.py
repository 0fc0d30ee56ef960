"""A corrupt or newer-version ledger, as every command sees it: a clear error,
a backup kept, the file itself untouched — never a silent reset."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchyard.ledger import Ledger

from .conftest import cli

COMMANDS = [("ls",), ("up", "feat/x"), ("status", "feat/a"), ("env", "feat/a"),
            ("down", "feat/a"), ("doctor",), ("doctor", "--fix"), ("gc",)]


@pytest.fixture
def app(repo: Path) -> Path:
    cli(repo, "up", "feat/a", check=True)
    return repo


@pytest.mark.parametrize(("content", "says"), [
    ("{not json", "is corrupt"),
    (json.dumps({"schema": 7, "worktrees": {}}), "was written by a newer branchyard"),
    (json.dumps({"schema": 1, "worktrees": {"x": {"slug": "x"}}}), "has an invalid entry"),
])
def test_every_command_refuses_a_bad_ledger_and_keeps_it(app: Path, content: str,
                                                         says: str) -> None:
    ledger = Ledger(app / ".git")
    ledger.path.write_text(content)
    for args in COMMANDS:
        done = cli(app, *args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        if args[0] in ("doctor", "gc"):  # a finding, with everything else it found
            assert "ledger_unreadable" in done.stdout and says in done.stdout
        else:
            error = next(x for x in done.stderr.splitlines() if x.startswith("error: "))
            assert says in error and "a copy is kept at" in error, (args, done.stderr)
        assert ledger.path.read_text() == content  # untouched
    backups = [p for p in ledger.dir.glob("ledger.*.json") if p.name != "ledger.json"]
    assert backups and all(p.read_text() == content for p in backups)
    assert (app.parent / next(p.name for p in app.parent.iterdir()
                              if p.name.startswith("app.feat_a"))).is_dir()


def test_doctor_reports_the_unreadable_ledger_with_its_backup(app: Path) -> None:
    ledger = Ledger(app / ".git")
    good = ledger.path.read_text()
    ledger.path.write_text("[1, 2")
    done = cli(app, "doctor", "--json")
    assert done.returncode == 1
    doc = json.loads(done.stdout)
    [finding] = [f for f in doc["findings"] if f["kind"] == "ledger_unreadable"]
    assert finding["subject"] == str(ledger.path)
    assert "a copy is kept at" in finding["why"] and "will not reset it" in finding["hint"]
    assert doc["healthy"] is False
    # once repaired by hand, everything works again and nothing was lost
    backup = next(ledger.dir.glob("ledger.corrupt.*.json"))
    assert backup.read_text() == "[1, 2"
    ledger.path.write_text(good)
    cli(app, "down", "feat/a", check=True)
    assert not Ledger(app / ".git").read().worktrees
