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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from branchyard import git, statefile
from branchyard.errors import LedgerError
from branchyard.identity import Identity
from branchyard.paths import is_inside
from branchyard.resources.codec import from_json, to_json
from branchyard.resources.specs import Spec

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


@dataclass
class ResourceRecord:
    """One resource a provider made (or is about to make) for a worktree."""

    kind: str
    key: str
    spec: Spec  # of the class resources.specs.SPECS names for ``kind``
    state: str = "pending"  # pending → ready → destroying


@dataclass
class ProcessRecord:
    pid: int
    argv: list[str]
    started: float
    pgid: int = 0
    create_time: float = 0.0  # psutil's, to tell a reused pid apart
    runner: int = 0  # the `branchyard run` wrapper waiting for it: branchyard's own
    runner_create_time: float = 0.0


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
    git_id: str = ""  # git's worktree id (<git-common-dir>/worktrees/<id>): survives a move

    @property
    def identity(self) -> Identity:
        return Identity(self.branch, self.slug, self.subdomain, self.index)

    def resource(self, key: str) -> ResourceRecord | None:
        return next((r for r in self.resources if r.key == key), None)

    def move_to(self, new: str) -> None:
        """Re-home the entry: its path, and every recorded path inside the old one
        (the files it made, a database file, a session file) now under ``new``."""
        old, self.path = self.path, new
        for res in self.resources:
            res.spec = from_json(res.kind, _moved(to_json(res.spec), old, new))
        self.env = _moved(self.env, old, new)


def _moved(value: Any, old: str, new: str) -> Any:
    if isinstance(value, str):
        if is_inside(value, old):
            return new + value[len(old):]
        return value
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_moved(v, old, new) for v in value]
    return value


@dataclass(frozen=True)
class Move:
    """A worktree git now records at another path, with the same id and branch."""

    slug: str
    branch: str
    old: str
    new: str
    git_id: str


@dataclass
class LedgerState:
    worktrees: dict[str, WorktreeRecord] = field(default_factory=dict)
    # Areas other than worktrees (queue, locks, pools, snapshots, proxy…) keep
    # their own JSON documents here, each under its own name.
    sections: dict[str, Any] = field(default_factory=dict)
    moved: list[Move] = field(default_factory=list)  # re-homed by this read; not stored

    def by_path(self, path: Path | str) -> WorktreeRecord | None:
        wanted = os.path.realpath(path)
        return next((w for w in self.worktrees.values()
                     if os.path.realpath(w.path) == wanted), None)

    def by_branch(self, branch: str) -> WorktreeRecord | None:
        return next((w for w in self.worktrees.values() if w.branch == branch), None)


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
        if not _find_moves(state, admins):
            return state
        if store_moves:
            from filelock import FileLock, Timeout

            try:
                with FileLock(str(self.lock_path), timeout=0):
                    state = self._load()
                    state.moved = _rehome(state, admins)
                    self._write(state)
                    return state
            except Timeout:
                pass  # busy, perhaps by this very process: it stores the move itself
        state.moved = _rehome(state, admins)
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
                state.moved = _rehome(state, git.worktree_admins(self.common_dir))
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
            "worktrees": {k: _worktree_json(v) for k, v in sorted(state.worktrees.items())},
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


def _worktree(data: dict[str, Any]) -> WorktreeRecord:
    fields = dict(data)
    fields["resources"] = [_resource(r) for r in fields.get("resources", [])]
    fields["processes"] = [ProcessRecord(**p) for p in fields.get("processes", [])]
    return WorktreeRecord(**fields)


def _resource(data: dict[str, Any]) -> ResourceRecord:
    kind = data["kind"]
    return ResourceRecord(kind, data["key"], from_json(kind, data["spec"]),
                          data.get("state", "pending"))


def _worktree_json(record: WorktreeRecord) -> dict[str, Any]:
    data = asdict(record)
    data["resources"] = [{"kind": r.kind, "key": r.key, "spec": to_json(r.spec),
                          "state": r.state} for r in record.resources]
    return data


def _find_moves(state: LedgerState, admins: list[git.WorktreeAdmin]
                ) -> list[tuple[WorktreeRecord, git.WorktreeAdmin]]:
    """Entries whose worktree git now records elsewhere: the same git id (when the
    entry has one) and the same branch, at a directory no other entry holds."""
    if not state.worktrees:
        return []
    at = {a.path: a for a in admins}  # already normalised
    unplaced = [r for r in state.worktrees.values() if not _placed(r, at)]
    if unplaced:  # rare: only now pay for resolving every path
        real_at = {os.path.realpath(a.path): a for a in admins}
        unplaced = [r for r in unplaced if not _placed(r, real_at, os.path.realpath)]
    if not unplaced:
        return []
    held = {os.path.realpath(r.path) for r in state.worktrees.values()}
    free = [a for real, a in real_at.items() if real not in held and os.path.isdir(a.path)]
    moves = []
    for record in unplaced:
        matches = [a for a in free if _same_worktree(record, a)]
        if len(matches) == 1:
            moves.append((record, matches[0]))
            free.remove(matches[0])
    return moves


def _placed(record: WorktreeRecord, at: dict[str, git.WorktreeAdmin],
            spell: Callable[[str], str] = os.path.normpath) -> bool:
    """Whether the entry is where git has its worktree (or where no git record can
    say otherwise: the main worktree, or one git forgot, which `doctor` reports)."""
    admin = at.get(spell(record.path))
    if admin is not None:
        return not record.git_id or admin.id == record.git_id
    return not record.git_id and os.path.isdir(record.path)


def _same_worktree(record: WorktreeRecord, admin: git.WorktreeAdmin) -> bool:
    if record.git_id and admin.id != record.git_id:
        return False  # git reuses an id only after the worktree was removed
    branch = git.admin_branch(admin)
    if branch is None:  # detached: only git's id tells it apart
        return bool(record.git_id)
    return branch == record.branch


def _rehome(state: LedgerState, admins: list[git.WorktreeAdmin]) -> list[Move]:
    """Apply the moves found (under the lock), and record git's id of every entry
    at a worktree git knows, so that a later move is followed by id."""
    moves = []
    for record, admin in _find_moves(state, admins):
        new = os.path.realpath(admin.path)
        moves.append(Move(record.slug, record.branch, record.path, new, admin.id))
        record.move_to(new)
    at = {a.path: a for a in admins}
    for record in state.worktrees.values():
        known = at.get(os.path.normpath(record.path))
        if known is not None:
            record.git_id = known.id
    return moves
