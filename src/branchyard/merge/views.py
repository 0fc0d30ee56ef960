"""The JSON and text shapes of the merge area's results, for the CLI."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from branchyard.merge.landing import MergeResult
from branchyard.merge.locks import Lock
from branchyard.merge.migrations import MigrationCollision
from branchyard.merge.queue import QueueEntry
from branchyard.merge.radar import PairResult, RadarReport


def radar_json(report: RadarReport) -> dict[str, Any]:
    return {
        "conflict": report.conflict,
        "worktrees": [{"name": s.name, "branch": s.snapshot.worktree.branch,
                       "path": str(s.snapshot.worktree.path), "slug": s.snapshot.worktree.slug,
                       "base": s.snapshot.worktree.base, "head": s.snapshot.worktree.head,
                       "snapshot": s.snapshot.commit, "dirty": s.snapshot.dirty,
                       "changed": len(s.changes)} for s in report.sides],
        "pairs": [_pair_json(p) for p in report.pairs],
        "locked_edits": [{"worktree": h.worktree, "path": h.path, "lock": lock_json(h.lock)}
                         for h in report.lock_hits],
        "locks": [lock_json(lk) for lk in report.locks],
        "merges_run": report.merges_run,
    }


def _pair_json(pair: PairResult) -> dict[str, Any]:
    return {"ours": pair.ours, "theirs": pair.theirs, "against_base": pair.against_base,
            "conflict": pair.conflict, "files": list(pair.files),
            "migrations": [_migration_json(m) for m in pair.migrations], "error": pair.error}


def _migration_json(m: MigrationCollision) -> dict[str, Any]:
    return {"framework": m.framework, "scope": m.scope, "key": m.key, "ours": list(m.ours),
            "theirs": list(m.theirs), "message": m.describe()}


def radar_text(report: RadarReport) -> str:
    lines: list[str] = []
    for pair in (p for p in report.pairs if p.conflict):
        link = f"{pair.ours} <-> {pair.theirs}"
        if pair.files:
            lines.append(f"conflict   {link}: {', '.join(pair.files)}")
        lines.extend(f"migration  {link}: {m.describe()} ({', '.join(m.ours + m.theirs)})"
                     for m in pair.migrations)
        if pair.error:
            lines.append(f"error      {link}: {pair.error}")
    lines.extend(f"locked     {h.worktree} edits {h.path} (locked by {h.lock.holder}"
                 f"{': ' + h.lock.reason if h.lock.reason else ''})" for h in report.lock_hits)
    lines.extend(f"lock       {lk.pattern} held by {lk.holder}"
                 f"{': ' + lk.reason if lk.reason else ''}" for lk in report.locks)
    conflicts = sum(1 for p in report.pairs if p.files or p.error)
    migrations = sum(1 for p in report.pairs if p.migrations)
    lines.append(f"{len(report.sides)} worktrees, {len(report.pairs)} pairs checked: "
                 f"{conflicts} conflicting, {migrations} with migration collisions, "
                 f"{len(report.lock_hits)} locked edits")
    return "\n".join(lines)


def merge_json(result: MergeResult) -> dict[str, Any]:
    return asdict(result)


def merge_text(result: MergeResult) -> str:
    if result.already_merged:
        return f"{result.branch} is already in {result.base}; nothing to do"
    text = (f"merged {result.branch} into {result.base} ({result.strategy}): "
            f"{result.old_base[:10]} -> {result.new_base[:10]}")
    if result.regenerated:
        text += f"\nregenerated: {', '.join(result.regenerated)}"
    if result.checks:
        text += f"\nchecks passed: {', '.join(result.checks)}"
    if result.checkout_updated:
        text += f"\nupdated the checkout at {result.checkout_updated}"
    if result.left_behind:
        text += f"\nnote: uncommitted changes in {result.branch}'s worktree were not merged"
    if result.branch_note:
        text += f"\n{result.branch} was not updated: {result.branch_note}"
    return text


def entry_json(entry: QueueEntry) -> dict[str, Any]:
    return asdict(entry)


def queue_text(entries: tuple[QueueEntry, ...]) -> str:
    if not entries:
        return "the merge queue is empty"
    lines = []
    for e in entries:
        detail = e.reason.splitlines()[0] if e.reason else ""
        if e.state == "failed":
            detail += f" (log: {e.log})"
        lines.append(f"{e.id:>4}  {e.state:<8} {e.branch}  {detail}".rstrip())
    return "\n".join(lines)


def lock_json(lock: Lock) -> dict[str, Any]:
    return asdict(lock)


def locks_text(locks: tuple[Lock, ...]) -> str:
    if not locks:
        return "no locks"
    return "\n".join(f"{lk.pattern}  held by {lk.holder}"
                     f"{': ' + lk.reason if lk.reason else ''}" for lk in locks)
