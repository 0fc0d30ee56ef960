"""The per-repo ledger: what branchyard made, recorded before it is made.

It lives in ``<git-common-dir>/branchyard/ledger.json``, shared by all worktrees of
the repository: versioned JSON written by :mod:`branchyard.core.statefile` (atomic,
mode 0600, in a 0700 directory) under a file lock, so parallel agents never see a
half-written file. What it holds: :mod:`~branchyard.ledger.records`; following
moved worktrees: :mod:`~branchyard.ledger.moves`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from branchyard.core import statefile
from branchyard.core.errors import LedgerError
from branchyard.ledger.moves import find_moves, rehome
from branchyard.ledger.records import (
    LedgerState,
    Move,
    ProcessRecord,
    ResourceRecord,
    WorktreeRecord,
    worktree_json,
    worktree_of,
)
from branchyard.repo import git

__all__ = ["LOCK_TIMEOUT", "REPAIR_HINT", "SCHEMA", "Ledger", "LedgerState", "Move",
           "ProcessRecord", "ResourceRecord", "WorktreeRecord"]

# 2: worktree git ids, the `removing` state, run records with their wrapper, adopted
# and owned resources, main's runs. 3: resource specs are typed
# (branchyard.resources), written field by field. An older ledger reads as it is
# (new fields have defaults, specs are read by resources.codec); a branchyard
# that reads only up to N refuses N + 1 clearly.
SCHEMA = 3
LOCK_TIMEOUT = 30.0
# Never reset silently: it is the only record of what to drop on teardown.
REPAIR_HINT = ("repair the JSON by hand (or put back an older copy), then run the command "
               "again; branchyard will not reset it, because it records what to release")


class Ledger:
    """Access to one repository's ledger file."""

    def __init__(self, common_dir: Path) -> None:
        self.common_dir = common_dir
        self.dir = common_dir / "branchyard"
        self.path = self.dir / "ledger.json"
        self.lock_path = self.dir / "ledger.lock"

    def read(self, *, store_moves: bool = True) -> LedgerState:
        """A consistent snapshot (writes are atomic, so no lock is needed).

        A worktree moved since (``git worktree move``, ``mv`` + ``git worktree
        repair``) is re-homed in the snapshot, and stored when the lock is free at
        once (a holder of the lock stores it itself: every update re-homes), so
        every command sees it at its new path. Reading never waits for the lock;
        ``store_moves=False`` (the proxy) never even takes it.
        """
        state = self._load()
        admins = git.worktree_admins(self.common_dir)
        if not find_moves(state, admins):
            return state
        if store_moves:
            from filelock import FileLock, Timeout

            try:
                with FileLock(str(self.lock_path), timeout=0):
                    state = self._load()
                    state.moved = rehome(state, admins)
                    self._write(state)
                    return state
            except Timeout:
                pass  # busy, perhaps by this very process: it stores the move itself
        state.moved = rehome(state, admins)
        return state

    def _load(self) -> LedgerState:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return LedgerState()
        return self._parse(text)

    @contextmanager
    def update(self) -> Iterator[LedgerState]:
        """Lock, read, let the caller change the state, write it back atomically.

        Keep the block short: never hold it across a clone or a hook.
        """
        from filelock import FileLock, Timeout  # only writers pay for the import

        statefile.private_dir(self.dir)
        try:
            with FileLock(str(self.lock_path), timeout=LOCK_TIMEOUT):
                state = self._load()
                state.moved = rehome(state, git.worktree_admins(self.common_dir))
                yield state
                self._write(state)
        except Timeout as exc:
            raise LedgerError(
                f"the ledger {self.path} is locked by another branchyard process "
                f"for more than {LOCK_TIMEOUT:g} s",
                hint="wait for the other command to finish; if none runs, "
                     f"remove {self.lock_path}",
            ) from exc

    def _write(self, state: LedgerState) -> None:
        statefile.write_json(self.path, {
            # what branchyard read before "version": an older one still reads the file
            statefile.LEGACY_VERSION_KEY: SCHEMA,
            "worktrees": {k: worktree_json(v) for k, v in sorted(state.worktrees.items())},
            "sections": state.sections}, version=SCHEMA)

    def _parse(self, text: str) -> LedgerState:
        try:
            data = json.loads(text)
            schema = statefile.version_of(data)
            if schema is None:
                raise KeyError("version")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            backup = self._backup("corrupt")
            raise LedgerError(
                f"the ledger {self.path} is corrupt ({exc}); a copy is kept at {backup}",
                hint=REPAIR_HINT,
            ) from exc
        if not isinstance(schema, int) or schema > SCHEMA:
            backup = self._backup(f"schema{schema}")
            raise LedgerError(
                f"the ledger {self.path} was written by a newer branchyard "
                f"(schema {schema}, this one reads {SCHEMA}); a copy is kept at {backup}",
                hint="upgrade branchyard (pip install -U branchyard)",
            )
        try:
            return LedgerState(
                worktrees={k: worktree_of(v) for k, v in data.get("worktrees", {}).items()},
                sections=dict(data.get("sections", {})),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            backup = self._backup("corrupt")
            raise LedgerError(
                f"the ledger {self.path} has an invalid entry ({exc!r}); "
                f"a copy is kept at {backup}",
                hint=REPAIR_HINT,
            ) from exc

    def _backup(self, tag: str) -> Path:
        import shutil  # only a broken ledger needs it

        backup = self.path.with_name(f"ledger.{tag}.{int(time.time())}.json")
        if not backup.exists():
            shutil.copy2(self.path, backup)
        return backup
