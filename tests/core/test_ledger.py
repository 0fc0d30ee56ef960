from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from branchyard.core.errors import LedgerError
from branchyard.ledger import SCHEMA, Ledger, ResourceRecord, WorktreeRecord
from branchyard.resources.specs import FilesSpec


def _bump(common: str, n: int) -> None:
    for _ in range(n):
        with Ledger(Path(common)).update() as state:
            count = state.sections.get("counter", 0)
            state.sections["counter"] = count + 1


def test_round_trip_keeps_records_and_order(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    with ledger.update() as state:
        rec = WorktreeRecord("s_1", "s", "feat/s", 1, "/w", ports={"PORT": 2, "API_PORT": 3})
        rec.resources.append(ResourceRecord("files", "copy:.vercel", FilesSpec(
            op="copy", rel=".vercel", src="/m/.vercel", dst="/w/.vercel", required=True)))
        state.worktrees["s_1"] = rec
    again = ledger.read().worktrees["s_1"]
    assert again == rec
    assert list(again.ports) == ["PORT", "API_PORT"]
    assert json.loads(ledger.path.read_text())["version"] == SCHEMA == 3


def test_a_ledger_of_the_first_format_is_read(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.dir.mkdir()
    rec = {"slug": "s_1", "subdomain": "s", "branch": "feat/s", "index": 1, "path": "/w"}
    ledger.path.write_text(json.dumps({"schema": 1, "worktrees": {"s_1": rec}}))
    assert ledger.read().worktrees["s_1"].branch == "feat/s"
    with ledger.update():
        pass
    written = json.loads(ledger.path.read_text())
    assert (written["version"], written["schema"]) == (SCHEMA, SCHEMA)  # what an older one reads


def test_parallel_processes_never_lose_an_update(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_bump, args=(str(tmp_path), 25)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert Ledger(tmp_path).read().sections["counter"] == 100


def test_corrupt_ledger_is_an_error_with_a_backup(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.dir.mkdir()
    ledger.path.write_text("{not json")
    with pytest.raises(LedgerError, match="is corrupt") as err:
        ledger.read()
    backups = list(ledger.dir.glob("ledger.corrupt.*.json"))
    assert len(backups) == 1 and backups[0].read_text() == "{not json"
    assert str(backups[0]) in str(err.value)
    assert ledger.path.read_text() == "{not json"  # never silently reset


def test_newer_ledger_is_refused_with_a_backup(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.dir.mkdir()
    ledger.path.write_text(json.dumps({"schema": 99, "worktrees": {}}))
    with pytest.raises(LedgerError, match="newer branchyard") as err:
        ledger.read()
    assert "upgrade" in err.value.hint
    assert list(ledger.dir.glob("ledger.schema99.*.json"))
