"""Conflict markers for ``ls``: the last radar result, kept in the ledger and
trusted only while every worktree's HEAD and every base tip are unchanged.

``ls`` must stay cheap, so it never runs the radar; uncommitted edits made
since the last ``branchyard conflicts`` are not reflected until it runs again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchyard.ledger import Ledger, LedgerState
from branchyard.merge.scratch import is_scratch
from branchyard.repo import git

if TYPE_CHECKING:  # `ls` reads markers; only `conflicts` needs the radar itself
    from branchyard.merge.radar import RadarReport

SECTION = "radar"


@dataclass(frozen=True)
class Marker:
    conflicts_with: tuple[str, ...] = ()  # worktree names, or "base:<branch>"
    migrations_with: tuple[str, ...] = ()
    locked_paths: tuple[str, ...] = ()  # paths it edits that another worktree locked
    files: tuple[str, ...] = ()  # the files that conflict, over all its pairs

    @property
    def clear(self) -> bool:
        return not (self.conflicts_with or self.migrations_with or self.locked_paths)

    def text(self) -> str:
        parts = [f"{label}: {', '.join(items)}" for label, items in (
            ("conflicts", self.conflicts_with), ("migrations", self.migrations_with),
            ("locked", self.locked_paths)) if items]
        return "; ".join(parts)


def markers_of(report: RadarReport) -> dict[str, Marker]:
    """One marker per worktree path."""
    found: dict[str, Marker] = {}
    for side in report.sides:
        name = side.name
        pairs = report.conflicts_of(name)
        found[str(side.snapshot.worktree.path)] = Marker(
            tuple(_other(p.ours, p.theirs, name) for p in pairs if p.files or p.error),
            tuple(_other(p.ours, p.theirs, name) for p in pairs if p.migrations),
            tuple(h.path for h in report.lock_hits if h.worktree == name),
            tuple(sorted({f for p in pairs for f in p.files})))
    return found


def _other(ours: str, theirs: str, name: str) -> str:
    return theirs if ours == name else ours


def remember(common_dir: Path, report: RadarReport) -> None:
    """Keep ``report``'s markers with the state of the repository they hold for."""
    key = {"heads": {str(s.snapshot.worktree.path): s.snapshot.worktree.head
                     for s in report.sides},
           "bases": {s.snapshot.worktree.base: s.base_commit for s in report.sides}}
    markers = {path: asdict(m) for path, m in markers_of(report).items()}
    with Ledger(common_dir).update() as state:
        state.sections[SECTION] = {"key": key, "markers": markers}


def forget_worktree(state: LedgerState, path: str) -> None:
    """A worktree is gone: the last radar result no longer describes the
    repository (it would not be trusted again), so it goes with it."""
    stored: Mapping[str, Any] = state.sections.get(SECTION, {})
    paths = {*stored.get("key", {}).get("heads", {}), *stored.get("markers", {})}
    if os.path.normpath(path) in {os.path.normpath(p) for p in paths}:
        del state.sections[SECTION]


def conflict_markers(common_dir: Path, entries: Sequence[git.WorktreeEntry] | None = None,
                     state: LedgerState | None = None) -> dict[str, Marker]:
    """Markers of the last radar run by worktree path, or ``{}`` when a HEAD or a
    base moved since (then ``branchyard conflicts`` has to run again). ``entries``
    and ``state``: git's worktrees and the ledger, when the caller has them."""
    state = state if state is not None else Ledger(common_dir).read()
    stored: Mapping[str, Any] = state.sections.get(SECTION, {})
    key = stored.get("key")
    if not key:
        return {}
    live = entries if entries is not None else git.worktrees(common_dir)
    heads = {str(e.path): e.head for e in live[1:]
             if not e.prunable and not e.bare and e.head and not is_scratch(common_dir, e.path)}
    if heads != key["heads"] or _tips(common_dir, list(key["bases"])) != key["bases"]:
        return {}
    return {os.path.normpath(path): Marker(**{k: tuple(v) for k, v in fields.items()})
            for path, fields in stored.get("markers", {}).items()}


def _tips(common_dir: Path, bases: list[str]) -> dict[str, str]:
    if not bases:
        return {}
    done = git.git(["rev-parse", *(f"refs/heads/{b}" for b in bases)], common_dir, check=False)
    return dict(zip(bases, done.stdout.split(), strict=False))
