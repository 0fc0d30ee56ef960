"""`doctor` and `gc`: find drift between the ledger and the world, and repair it.

``doctor`` reports every finding; ``doctor --fix`` repairs those that have a
fix; ``gc`` repairs only what belongs to worktrees (or repositories) that are
gone. Nothing with an owner is removed, and nothing the ledger did not record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from branchyard.api.drift import Finding, repo_findings, take_survey
from branchyard.api.repair import REPAIRS, Repair, repair
from branchyard.context import Context, open_context
from branchyard.core.errors import LedgerError


@dataclass(frozen=True)
class DoctorRequest:
    start: Path | None = None
    fix: bool = False
    gone_only: bool = False  # `gc`: only what belongs to worktrees that are gone
    all_repos: bool = False  # every repository branchyard has set worktrees up in


@dataclass(frozen=True)
class DoctorReport:
    repo: str  # the main worktree; "" for the machine-wide part of `--all`
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
    """One repository (the one ``start`` is in) and the machine-wide state."""
    ctx = open_context(request.start, main_config=True)
    return _examine(ctx, [*diagnose(ctx), *machine_findings()], request)


def doctor_all(request: DoctorRequest) -> tuple[DoctorReport, ...]:
    """Every repository the proxy's registry knows (each with its own config; the
    one ``start`` is in too), then the machine-wide state once."""
    from branchyard.proxy.registry import known_repos

    contexts = {str(c.repo.common_dir): c for c in map(_context_of, known_repos()) if c}
    here = _context_of(request.start)
    if here is not None:
        contexts.setdefault(str(here.repo.common_dir), here)
    reports = [_examine(ctx, diagnose(ctx), request) for _, ctx in sorted(contexts.items())]
    reports.append(_examine(None, machine_findings(), request))
    return tuple(reports)


def _context_of(start: Path | None) -> Context | None:
    from branchyard.core.errors import NotARepoError

    try:
        return open_context(start, main_config=True)
    except NotARepoError:
        return None


def _examine(ctx: Context | None, findings: list[Finding],
             request: DoctorRequest) -> DoctorReport:
    if request.gone_only:  # an unreadable ledger stops `gc` too: it says what is gone
        findings = [f for f in findings if f.gone or f.kind == "ledger_unreadable"]
    repo = str(ctx.repo.main_path) if ctx is not None else ""
    if not request.fix:
        return DoctorReport(repo, tuple(findings))
    actions = repair_actions(ctx)
    repairs = tuple(repair(f, actions.get(f.kind)) for f in findings if f.fix)
    return DoctorReport(repo, tuple(findings), repairs)


def diagnose(ctx: Context) -> list[Finding]:
    """Every finding for the repository of ``ctx`` (machine-wide ones aside)."""
    from branchyard.api import envcopies, orphans
    from branchyard.api.strays import stray_findings
    from branchyard.api.supervision import service_findings

    try:
        survey = take_survey(ctx)
    except LedgerError as err:
        return [Finding("ledger_unreadable", str(ctx.ledger.path), "branchyard", err.message,
                        hint=err.hint)]
    return [*repo_findings(survey), *orphans.scratch_findings(survey),
            *orphans.lock_findings(survey), *orphans.database_findings(survey),
            *orphans.deps_findings(survey), *orphans.ledger_tempfiles(survey),
            *orphans.daemon_findings(survey), *envcopies.findings(survey),
            *service_findings(survey), *stray_findings(ctx)]


def machine_findings() -> list[Finding]:
    from branchyard.api.machine import machine_findings as found

    return found()


def repair_actions(ctx: Context | None) -> dict[str, Callable[[Finding], str]]:
    """finding kind → its repair; a repository's own only when there is one."""
    from branchyard.api import cleanup, envcopies, supervision
    from branchyard.api.sweep import MACHINE_REPAIRS

    actions = dict(MACHINE_REPAIRS)
    if ctx is not None:
        actions.update({kind: partial(fix, ctx) for kind, fix in
                        {**REPAIRS, **cleanup.REPAIRS, **envcopies.REPAIRS,
                         **supervision.REPAIRS}.items()})
    return actions
