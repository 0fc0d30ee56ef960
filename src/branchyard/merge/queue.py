"""The local merge queue: branches merged one at a time onto the newest base.

Entries live in the ledger under ``sections["queue"]``. One runner at a time
(a file lock) takes the first queued entry, marks it running, merges it with
:func:`merge_branch` — whose only effect on the base is one guarded
``update-ref`` — and marks it merged or failed. A runner that dies leaves the
entry "running"; the next runner retries it, and an entry already in the base
is then simply marked merged, so the base is always before or after an entry.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from branchyard.core.errors import BranchyardError, MergeError
from branchyard.ledger import Ledger, LedgerState
from branchyard.merge.landing import EnvFor, MergeRequest, merge_branch, no_env
from branchyard.merge.scratch import new_log, prune_scratch
from branchyard.merge.targets import Repo

SECTION = "queue"
QUEUED, RUNNING, MERGED, FAILED = "queued", "running", "merged", "failed"


@dataclass(frozen=True)
class QueueEntry:
    id: int
    branch: str
    strategy: str = ""  # "" = [merge] strategy
    update_branch: bool = False
    state: str = QUEUED
    reason: str = ""  # why it failed, or a note
    log: str = ""
    added: float = 0.0
    finished: float = 0.0
    old_base: str = ""
    new_base: str = ""


def read_queue(common_dir: Path) -> tuple[QueueEntry, ...]:
    return _entries(Ledger(common_dir).read())


def _entries(state: LedgerState) -> tuple[QueueEntry, ...]:
    section: dict[str, Any] = state.sections.get(SECTION, {})
    return tuple(QueueEntry(**item) for item in section.get("entries", []))


def _store(state: LedgerState, entries: Sequence[QueueEntry]) -> None:
    section = dict(state.sections.get(SECTION, {}))
    section["entries"] = [asdict(e) for e in entries]
    state.sections[SECTION] = section


def add_entries(common_dir: Path, branches: Sequence[str], strategy: str = "",
                update_branch: bool = False) -> tuple[QueueEntry, ...]:
    """Queue ``branches`` in order; a branch already waiting keeps its place."""
    with Ledger(common_dir).update() as state:
        entries = list(_entries(state))
        section = state.sections.setdefault(SECTION, {})
        waiting = {e.branch: e for e in entries if e.state in (QUEUED, RUNNING)}
        added: list[QueueEntry] = []
        for branch in dict.fromkeys(branches):
            if branch in waiting:
                added.append(waiting[branch])
                continue
            section["next_id"] = int(section.get("next_id", 1)) + 1
            entry = QueueEntry(section["next_id"] - 1, branch, strategy, update_branch,
                               added=time.time())
            entries.append(entry)
            added.append(entry)
        _store(state, entries)
    return tuple(added)


def remove_entries(common_dir: Path, names: Sequence[str]) -> tuple[QueueEntry, ...]:
    """Remove entries by id or branch (all finished ones for ``done``); a running
    entry cannot be removed."""
    with Ledger(common_dir).update() as state:
        entries = _entries(state)
        gone = tuple(e for e in entries if _named(e, names))
        running = [e for e in gone if e.state == RUNNING]
        if running:
            raise MergeError(f"entry {running[0].id} ({running[0].branch}) is being merged now",
                             hint="wait for it to finish, then remove it")
        _store(state, [e for e in entries if e not in gone])
    return gone


def _named(entry: QueueEntry, names: Sequence[str]) -> bool:
    done = "done" in names and entry.state in (MERGED, FAILED)
    return done or str(entry.id) in names or entry.branch in names


@dataclass(frozen=True)
class RunOptions:
    watch: bool = False  # keep waiting for new entries
    poll: float = 1.0  # seconds between looks at the ledger when watching
    stop: threading.Event | None = None  # set to end a watching run
    on_entry: Callable[[QueueEntry], None] | None = None  # each state change
    env_for: EnvFor = no_env  # a worktree's environment, for the checks


def run_queue(load: Callable[[], Repo], options: RunOptions = RunOptions()
              ) -> tuple[QueueEntry, ...]:
    """Process queued entries in order; returns the entries it finished."""
    repo = load()
    lock = FileLock(str(repo.common_dir / "branchyard" / "queue.lock"), timeout=0)
    stop = options.stop or threading.Event()
    finished: list[QueueEntry] = []
    try:
        with lock:
            prune_scratch(repo.common_dir)  # what a killed runner left behind
            while not stop.is_set():
                entry = _claim_next(repo.common_dir)
                if entry is None:
                    if not options.watch:
                        break
                    stop.wait(options.poll)
                    continue
                _tell(options, entry)
                done = _process(load(), entry, options.env_for)
                finished.append(done)
                _tell(options, done)
    except Timeout as exc:
        raise MergeError("another `branchyard queue run` is already processing the queue",
                         hint="let it finish; `branchyard queue status` shows its progress",
                         ) from exc
    return tuple(finished)


def _tell(options: RunOptions, entry: QueueEntry) -> None:
    if options.on_entry is not None:
        options.on_entry(entry)


def _claim_next(common_dir: Path) -> QueueEntry | None:
    """Mark the first entry to do as running. A "running" entry found here was
    left by a runner that died (we hold the runner lock): it goes first."""
    with Ledger(common_dir).update() as state:
        entries = list(_entries(state))
        todo = next((i for i, e in enumerate(entries) if e.state == RUNNING), None)
        if todo is None:
            todo = next((i for i, e in enumerate(entries) if e.state == QUEUED), None)
        if todo is None:
            return None
        log = entries[todo].log or str(new_log(common_dir, f"queue-{entries[todo].id}"))
        entries[todo] = replace(entries[todo], state=RUNNING, log=log)
        _store(state, entries)
        return entries[todo]


def _process(repo: Repo, entry: QueueEntry, env_for: EnvFor) -> QueueEntry:
    request = MergeRequest(entry.branch, entry.strategy, update_branch=entry.update_branch,
                           log=Path(entry.log))
    try:
        result = merge_branch(repo, request, env_for)
    except BranchyardError as err:
        done = replace(entry, state=FAILED, reason=str(err), finished=time.time())
    else:
        note = "already in the base" if result.already_merged else result.branch_note
        done = replace(entry, state=MERGED, reason=note, finished=time.time(),
                       old_base=result.old_base, new_base=result.new_base)
    _save(repo.common_dir, done)
    return done


def _save(common_dir: Path, entry: QueueEntry) -> None:
    with Ledger(common_dir).update() as state:
        _store(state, [entry if e.id == entry.id else e for e in _entries(state)])
