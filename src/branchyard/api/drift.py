"""Finding drift between the ledger and the world: what `doctor` reports.

Every finding says what it is about, who owns it according to the ledger, why it
is wrong, and what ``doctor --fix`` will do about it (nothing, for findings that
only a person should resolve). Finding never changes anything.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from branchyard.api.intents import Intent, intents, is_alive
from branchyard.context import Context
from branchyard.core.paths import is_inside
from branchyard.ledger import LedgerState, Move, WorktreeRecord
from branchyard.repo import git

UNFINISHED = ("pending", "destroying")


@dataclass(frozen=True)
class Finding:
    kind: str
    subject: str  # what it is about, for people
    owner: str  # who owns it according to the ledger ("nobody" for orphans)
    why: str
    fix: str = ""  # what `doctor --fix` does; "" = report only
    hint: str = ""  # what a person may do instead
    gone: bool = False  # it belongs to a worktree or repository that is gone (`gc`)
    ref: tuple[str, ...] = ()  # what a repair acts on (slug, intent key, port owner…)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ref"] = list(self.ref)
        return data


@dataclass(frozen=True)
class Survey:
    """One consistent look at a repository: its ledger, git's worktrees, and
    which worktrees a running branchyard command is working on."""

    ctx: Context
    state: LedgerState
    entries: tuple[git.WorktreeEntry, ...]
    busy: frozenset[str]  # real paths with a live intent
    dead: tuple[Intent, ...]  # intents whose process is gone

    def git_entry(self, path: str) -> git.WorktreeEntry | None:
        real = os.path.realpath(path)
        return next((e for e in self.entries if os.path.realpath(e.path) == real), None)

    def is_busy(self, path: str) -> bool:
        return os.path.realpath(path) in self.busy


def take_survey(ctx: Context) -> Survey:
    state = ctx.ledger.read()
    entries = tuple(git.worktrees(ctx.repo.common_dir))
    found = intents(state)
    live = [i for i in found if is_alive(i)]
    return Survey(ctx, state, entries, frozenset(os.path.realpath(i.path) for i in live),
                  tuple(i for i in found if i not in live))


def repo_findings(survey: Survey) -> list[Finding]:
    """Drift inside one repository, in the order ``--fix`` resolves it."""
    interrupted = [i for i in survey.dead if _is_interrupted_up(survey, i)]
    removals = [i for i in survey.dead if _is_interrupted_removal(survey, i)]
    covered = {os.path.realpath(i.path) for i in interrupted + removals}
    findings = [_rehomed(m) for m in survey.state.moved]
    findings += [_interrupted_up(survey, i) for i in interrupted]
    findings += [_interrupted_down(survey, i, survey.state.by_path(i.path))
                 for i in removals]
    settled = []
    for record in survey.state.worktrees.values():
        real = os.path.realpath(record.path)
        if real not in covered and not survey.is_busy(record.path):
            found = _entry_findings(survey, record)
            findings += found
            if not found and record.state == "ready":
                settled.append(record)
    findings += _database_findings(settled)
    findings += _git_findings(survey, covered)
    # the `setup` an interrupted `up` ran is part of it (same process, same path)
    done = {(i.pid, os.path.realpath(i.path)) for i in interrupted + removals}
    findings += [_stale_intent(i) for i in survey.dead
                 if (i.pid, os.path.realpath(i.path)) not in done]
    return findings


def _is_interrupted_up(survey: Survey, intent: Intent) -> bool:
    if intent.op != "up" or survey.is_busy(intent.path):
        return False
    record = survey.state.by_path(intent.path)
    return record is None or record.state != "ready"


def _interrupted_up(survey: Survey, intent: Intent) -> Finding:
    record = survey.state.by_path(intent.path)
    steps = []
    if record is not None:
        steps.append(f"release what ledger entry {record.slug} holds "
                     f"({_holdings(record)})")
    if Path(intent.path).is_dir():
        steps.append(f"remove the worktree {intent.path} if it has no changes")
    if intent.created_branch:
        steps.append(f"delete branch {intent.branch!r} if it has no commits of its own")
    steps.append("clear the intent")
    return Finding(
        "interrupted_up", f"`up {intent.branch}` at {intent.path}",
        f"intent of pid {intent.pid}",
        f"`branchyard up` (pid {intent.pid}) stopped before it finished"
        + (f"; its ledger entry is still {record.state!r}" if record else ""),
        fix="; ".join(steps), hint=f"then run `branchyard up {intent.branch}` again",
        ref=(intent.key,))


def _rehomed(move: Move) -> Finding:
    return Finding(
        "rehomed_worktree", f"worktree {move.branch!r} at {move.new}",
        f"ledger entry {move.slug}", f"it was moved from {move.old} (git worktree id "
        f"{move.git_id})", hint="nothing to do: the ledger follows it, with its ports, "
                               "databases and files", ref=(move.slug,))


def _is_interrupted_removal(survey: Survey, intent: Intent) -> bool:
    return intent.op == "down" and intent.removing and not survey.is_busy(intent.path)


def _interrupted_down(survey: Survey, intent: Intent | None,
                      record: WorktreeRecord | None) -> Finding:
    """A `down` that stopped while removing the worktree (from its intent, or from
    an entry still 'removing' when the intent is gone)."""
    path = intent.path if intent else record.path if record else ""
    branch = intent.branch if intent and intent.branch else record.branch if record else ""
    steps = [f"remove what is left of {path}"
             + ("" if intent and intent.force else " if nothing left there has changed")]
    if record is not None:
        steps.append(f"release what ledger entry {record.slug} holds ({_holdings(record)}) "
                     "and drop it")
    if intent is not None and intent.created_branch:
        steps.append(f"delete branch {intent.branch!r} if it is merged")
    steps.append("clear the intent")
    who = f"`branchyard down` (pid {intent.pid})" if intent else "a `branchyard down`"
    return Finding(
        "interrupted_down", f"`down {branch}` at {path}",
        f"intent of pid {intent.pid}" if intent else f"ledger entry {record.slug}"
        if record else "nobody",
        f"{who} stopped while removing the worktree; it is half removed"
        + (f" and its ledger entry says {record.state!r}" if record else ""),
        fix="; ".join(steps), hint=f"or `branchyard down {branch}` again", gone=True,
        ref=(intent.key if intent else "", record.slug if record else ""))


def _holdings(record: WorktreeRecord) -> str:
    parts = [f"{r.kind} {r.key.partition(':')[2] or r.key}" for r in record.resources]
    if record.ports:
        parts.append("ports " + ", ".join(str(p) for p in record.ports.values()))
    return "; ".join(parts) or "nothing yet"


def _entry_findings(survey: Survey, record: WorktreeRecord) -> list[Finding]:
    entry = survey.git_entry(record.path)
    if record.state == "removing" and Path(record.path).exists():
        return [_interrupted_down(survey, None, record)]
    if entry is None or entry.prunable or not Path(record.path).is_dir():
        return [_missing_worktree(record)]
    if record.state in STUCK:
        return [_stuck_worktree(record)]
    return [_stuck_resource(record, r.key, r.state) for r in record.resources
            if r.state in UNFINISHED]


def _missing_worktree(record: WorktreeRecord) -> Finding:
    how = ("its directory is gone" if not Path(record.path).exists()
           else "git no longer lists it as a worktree")
    return Finding(
        "missing_worktree", f"worktree {record.branch!r} at {record.path}",
        f"ledger entry {record.slug}",
        f"{how} (removed outside branchyard: `git worktree remove`, rm -rf, "
        "an agent app's archive)",
        fix=f"stop processes still inside it; release {_holdings(record)}; "
            "drop the ledger entry; `git worktree prune`",
        hint=f"or `branchyard down {record.branch}`; moved it with `mv`? run `git worktree "
             "repair` in its new place instead, and branchyard follows it",
        gone=True, ref=(record.slug,))


# entry state → (what was interrupted, what --fix does, what to do next)
STUCK = {
    "provisioning": ("setup", "undo the setup: release {holdings} and drop the ledger entry "
                     "(the worktree and its files stay)",
                     "then run `branchyard setup` in {path}"),
    "tearing_down": ("teardown", "finish the teardown: release {holdings} and drop the "
                     "ledger entry", ""),
}


def _stuck_worktree(record: WorktreeRecord) -> Finding:
    what, fix, hint = STUCK[record.state]
    return Finding(
        "stuck_worktree", f"worktree {record.branch!r} at {record.path}",
        f"ledger entry {record.slug}",
        f"its {what} was interrupted (state {record.state!r}, no branchyard process "
        "working on it)",
        fix=fix.format(holdings=_holdings(record)), hint=hint.format(path=record.path),
        ref=(record.slug,))


def _stuck_resource(record: WorktreeRecord, key: str, state: str) -> Finding:
    verb = "creating" if state == "pending" else "destroying"
    return Finding(
        "stuck_resource", f"{key} of worktree {record.branch!r}",
        f"ledger entry {record.slug}",
        f"{verb} it was interrupted (state {state!r})",
        fix="destroy what may exist of it (only what the ledger recorded) and "
            "remove it from the ledger",
        hint=f"then run `branchyard setup` in {record.path} to create it again",
        ref=(record.slug, key))


def _database_findings(records: list[WorktreeRecord]) -> list[Finding]:
    """Databases of live worktrees gone from their server (dropped by hand), and
    servers that could not be asked."""
    from branchyard.db.presence import absent
    from branchyard.db.urls import parse_url
    from branchyard.resources.plan import Allocation
    from branchyard.resources.specs import DatabaseSpec, ServerDatabaseSpec, SqliteSpec

    owners = {}
    allocs: list[Allocation[DatabaseSpec]] = []
    for record in records:
        for res in record.resources:
            if res.state == "ready" and isinstance(res.spec, DatabaseSpec):
                alloc = Allocation(res.kind, res.key, res.spec)
                owners[id(alloc)] = record
                allocs.append(alloc)
    if not any(a.spec.role == "worktree" for a in allocs):
        return []
    presence = absent(allocs)
    findings = []
    for alloc in presence.gone:
        record = owners[id(alloc)]
        spec = alloc.spec
        if isinstance(spec, ServerDatabaseSpec):
            shown, where = spec.database, f"from the server at {parse_url(spec.server).address}"
        else:  # SQLite's file (Redis is never gone: presence does not check it)
            shown, where = spec.path if isinstance(spec, SqliteSpec) else spec.name, "from disk"
        findings.append(Finding(
            "missing_database", f"{alloc.kind} {alloc.key.partition(':')[2]} of worktree "
            f"{record.branch!r}", f"ledger entry {record.slug}",
            f"database {shown!r} is gone {where} (dropped outside branchyard)",
            fix=f"run `branchyard setup` in {record.path}: it makes the database again, "
                "seeded as configured", ref=(record.slug, alloc.key)))
    findings += [Finding(
        "database_unreachable", f"database server at {address}", "branchyard",
        f"cannot check the worktree databases on it: {err.message}", hint=err.hint)
        for address, err in presence.unreachable]
    return findings


def _git_findings(survey: Survey, covered: set[str]) -> list[Finding]:
    findings: list[Finding] = []
    scratch = os.path.realpath(survey.ctx.repo.common_dir / "branchyard" / "scratch")
    main = os.path.realpath(survey.ctx.repo.main_path)
    for entry in survey.entries:
        real = os.path.realpath(entry.path)
        if entry.bare or real == main or real in covered or survey.is_busy(str(entry.path)):
            continue
        if survey.state.by_path(entry.path) is not None:
            continue
        if entry.prunable:
            findings.append(Finding(
                "prunable_worktree", f"git worktree metadata for {entry.path}", "git",
                "the directory is gone but git still lists the worktree",
                fix="`git worktree prune`", gone=True, ref=(str(entry.path),)))
        elif is_inside(real, scratch):
            continue  # a merge's scratch worktree: see orphans.scratch_findings
        else:
            findings.append(Finding(
                "unmanaged_worktree", f"worktree {entry.branch or '(detached)'!r} at "
                f"{entry.path}", "nobody", "git has it, but branchyard never set it up",
                hint=f"run `branchyard setup` in {entry.path} (or `branchyard hooks "
                     "install` to set up new worktrees automatically)"))
    return findings


def _stale_intent(intent: Intent) -> Finding:
    fix = "clear the intent"
    if intent.op == "down" and intent.created_branch:
        fix = (f"delete branch {intent.branch!r} if it is merged and no worktree has it "
               "(as the interrupted `down` would have); " + fix)
    return Finding(
        "stale_intent", f"`{intent.op}` of {intent.path}", f"intent of pid {intent.pid}",
        f"branchyard (pid {intent.pid}) stopped during `{intent.op}`; what it left is "
        "reported separately", fix=fix, ref=(intent.key,))
