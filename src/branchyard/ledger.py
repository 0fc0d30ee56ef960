"""The per-repo ledger: what branchyard made, recorded before it is made.

It lives in ``<git-common-dir>/branchyard/ledger.json``, shared by all worktrees of
the repository: versioned JSON written by :mod:`branchyard.statefile` (atomic,
mode 0600, in a 0700 directory) under a file lock, so parallel agents never see a
half-written file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from branchyard import statefile
from branchyard.errors import LedgerError
from branchyard.identity import Identity

SCHEMA = 1
LOCK_TIMEOUT = 30.0
# Never reset silently: it is the only record of what to drop on teardown.
REPAIR_HINT = ("repair the JSON by hand (or put back an older copy), then run the command "
               "again; branchyard will not reset it, because it records what to release")


@dataclass
class ResourceRecord:
    """One resource a provider made (or is about to make) for a worktree."""

    kind: str
    key: str
    spec: dict[str, Any]
    state: str = "pending"  # pending → ready → destroying


@dataclass
class ProcessRecord:
    pid: int
    argv: list[str]
    started: float
    pgid: int = 0
    create_time: float = 0.0  # psutil's, to tell a reused pid apart


@dataclass
class WorktreeRecord:
    slug: str
    subdomain: str
    branch: str
    index: int
    path: str
    base: str = ""
    created_branch: bool = False
    created_worktree: bool = False
    state: str = "provisioning"  # provisioning → ready → tearing_down
    ports: dict[str, int] = field(default_factory=dict)
    resources: list[ResourceRecord] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    processes: list[ProcessRecord] = field(default_factory=list)
    hooks_done: str = ""
    created_at: float = field(default_factory=time.time)

    @property
    def identity(self) -> Identity:
        return Identity(self.branch, self.slug, self.subdomain, self.index)

    def resource(self, key: str) -> ResourceRecord | None:
        return next((r for r in self.resources if r.key == key), None)


@dataclass
class LedgerState:
    worktrees: dict[str, WorktreeRecord] = field(default_factory=dict)
    # Areas other than worktrees (queue, locks, pools, snapshots, proxy…) keep
    # their own JSON documents here, each under its own name.
    sections: dict[str, Any] = field(default_factory=dict)

    def by_path(self, path: Path | str) -> WorktreeRecord | None:
        wanted = os.path.realpath(path)
        return next((w for w in self.worktrees.values()
                     if os.path.realpath(w.path) == wanted), None)

    def by_branch(self, branch: str) -> WorktreeRecord | None:
        return next((w for w in self.worktrees.values() if w.branch == branch), None)


class Ledger:
    """Access to one repository's ledger file."""

    def __init__(self, common_dir: Path) -> None:
        self.dir = common_dir / "branchyard"
        self.path = self.dir / "ledger.json"
        self.lock_path = self.dir / "ledger.lock"

    def read(self) -> LedgerState:
        """A consistent snapshot (writes are atomic, so no lock is needed)."""
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
                state = self.read()
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
            "worktrees": {k: asdict(v) for k, v in sorted(state.worktrees.items())},
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
                worktrees={k: _worktree(v) for k, v in data.get("worktrees", {}).items()},
                sections=dict(data.get("sections", {})),
            )
        except (KeyError, TypeError, AttributeError) as exc:
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


def _worktree(data: dict[str, Any]) -> WorktreeRecord:
    fields = dict(data)
    fields["resources"] = [ResourceRecord(**r) for r in fields.get("resources", [])]
    fields["processes"] = [ProcessRecord(**p) for p in fields.get("processes", [])]
    return WorktreeRecord(**fields)
