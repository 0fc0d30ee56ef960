"""`doctor` for supervised services: a supervisor that died (SIGKILL, a crash)
without ending its services, and the repair that starts a new one."""

from __future__ import annotations

import dataclasses

from branchyard.api.drift import Finding, Survey
from branchyard.context import Context
from branchyard.services import control
from branchyard.services.state import read_plan, read_state, service_dir
from branchyard.services.status import supervisor_of


def service_findings(survey: Survey) -> list[Finding]:
    findings = []
    for record in survey.state.worktrees.values():
        info = supervisor_of(record.path)
        if info is None or not info.crashed:
            continue
        findings.append(Finding(
            "supervisor_crashed", f"services of worktree {record.branch!r} at {record.path}",
            f"ledger entry {record.slug}",
            f"their supervisor (pid {info.pid}) is gone without stopping them (killed, or "
            "it crashed): nothing restarts a service that fails, and their state is stale",
            fix="end what is left of its services and start a new supervisor, which "
                "starts them again",
            hint=f"or `branchyard stop {record.branch}` to end them; see "
                 f"{service_dir(record.path) / 'supervisor.log'}",
            ref=(record.path,)))
    return findings


def _restart_supervisor(ctx: Context, finding: Finding) -> str:
    path = finding.ref[0]
    directory = service_dir(path)
    if control.supervisor_alive(read_state(directory)):
        return "already resolved: a supervisor runs"
    ended = control.shutdown(path)
    plan = read_plan(directory)
    wanted = [s.name for s in plan.services if s.want == "running"] if plan else []
    if plan is None or not wanted:
        return "ended what was left; no service is meant to run"
    state = control.apply_plan(dataclasses.replace(plan, generation=plan.generation + 1))
    done = f"ended {len(ended)} leftover process(es); " if ended else ""
    return f"{done}started supervisor pid {state.pid}, which starts {', '.join(wanted)}"


REPAIRS = {"supervisor_crashed": _restart_supervisor}
