"""`doctor` and `gc`: find drift between the ledger and the world, and repair it.

``doctor`` reports every finding; ``doctor --fix`` repairs those that have a
fix; ``gc`` repairs only what belongs to worktrees (or repositories) that are
gone. Nothing with an owner is removed, and nothing the ledger did not record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from branchyard.api.drift import Finding, repo_findings, take_survey
from branchyard.api.repair import REPAIRS, Repair, repair
from branchyard.context import Context, open_context
from branchyard.errors import LedgerError


@dataclass(frozen=True)
class DoctorRequest:
    start: Path | None = None
    fix: bool = False
    gone_only: bool = False  # `gc`: only what belongs to worktrees that are gone


@dataclass(frozen=True)
class DoctorReport:
    repo: str
    findings: tuple[Finding, ...]
    repairs: tuple[Repair, ...] = ()

    @property
    def unresolved(self) -> tuple[Finding, ...]:
        """Findings with a fix that was not applied or failed."""
        fixed = {id(r.finding) for r in self.repairs if r.error is None}
        return tuple(f for f in self.findings if f.fix and id(f) not in fixed)

    @property
    def healthy(self) -> bool:
        return not self.unresolved and not any(f.kind == "ledger_unreadable"
                                               for f in self.findings)


def doctor(request: DoctorRequest) -> DoctorReport:
    ctx = open_context(request.start, main_config=True)
    findings = diagnose(ctx)
    if request.gone_only:  # an unreadable ledger stops `gc` too: it says what is gone
        findings = [f for f in findings if f.gone or f.kind == "ledger_unreadable"]
    if not request.fix:
        return DoctorReport(str(ctx.repo.main_path), tuple(findings))
    actions = repair_actions()
    repairs = tuple(repair(ctx, f, actions) for f in findings if f.fix)
    return DoctorReport(str(ctx.repo.main_path), tuple(findings), repairs)


def diagnose(ctx: Context) -> list[Finding]:
    """Every finding for the repository of ``ctx`` and the machine-wide state."""
    from branchyard.api import orphans

    try:
        survey = take_survey(ctx)
    except LedgerError as err:
        return [Finding("ledger_unreadable", str(ctx.ledger.path), "branchyard", err.message,
                        hint=err.hint), *orphans.lease_findings()]
    return [*repo_findings(survey), *orphans.scratch_findings(survey),
            *orphans.lock_findings(survey), *orphans.database_findings(survey),
            *orphans.lease_findings(), *orphans.redis_lease_findings(),
            *orphans.deps_findings(survey), *orphans.tempfile_findings(survey),
            *orphans.daemon_findings(survey)]


def repair_actions() -> dict[str, Callable[[Context, Finding], str]]:
    from branchyard.api import cleanup

    return {**REPAIRS, **cleanup.REPAIRS}
