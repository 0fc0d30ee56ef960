"""`doctor`, `gc`, `hooks`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from branchyard.cli.output import Reply, json_option, respond

if TYPE_CHECKING:
    from branchyard.api.doctor import DoctorReport


ALL_HELP = "Every repository branchyard has set worktrees up in, not only this one."


@click.command()
@click.option("--fix", is_flag=True, help="Repair what can be repaired safely.")
@click.option("--all", "all_repos", is_flag=True, help=ALL_HELP)
@json_option
def doctor(fix: bool, all_repos: bool, as_json: bool) -> None:
    """Find drift between the ledger and the world: worktrees removed behind
    branchyard's back, interrupted commands, orphaned leases and databases.

    Exit code 0 when nothing needs a fix (or everything was fixed), 1 otherwise.
    """
    _run("doctor", fix=fix, gone_only=False, all_repos=all_repos, as_json=as_json)


@click.command()
@click.option("--all", "all_repos", is_flag=True, help=ALL_HELP)
@click.option("--snapshots", is_flag=True,
              help="Also drop the golden snapshots (and warm pools) no worktree uses.")
@json_option
def gc(all_repos: bool, snapshots: bool, as_json: bool) -> None:
    """Release everything that belongs to worktrees that are gone (`doctor --fix`
    limited to them): stop their processes, drop their databases, free their ports."""
    if snapshots and all_repos:
        from branchyard.core.errors import UsageError

        raise UsageError("`gc --snapshots` works on one repository at a time",
                         hint="run it inside each repository, without --all")
    _run("gc", fix=True, gone_only=True, all_repos=all_repos, as_json=as_json,
         snapshots=snapshots)


def _run(command: str, *, fix: bool, gone_only: bool, all_repos: bool,
         as_json: bool, snapshots: bool = False) -> None:
    from branchyard.api.doctor import DoctorRequest, doctor_all
    from branchyard.api.doctor import doctor as run_doctor

    def body() -> Reply:
        request = DoctorRequest(fix=fix, gone_only=gone_only)
        if not all_repos:
            report = run_doctor(request)
            data, text = report_json(report), report_text(report, command)
            if snapshots:
                from branchyard.api.snapshots import drop_unused_snapshots

                dropped = drop_unused_snapshots()
                data["snapshots_dropped"] = dropped
                text += ("\ndropped the unused snapshot(s) " + ", ".join(dropped)
                         if dropped else "\nno unused snapshot to drop")
            return Reply(data, text, exit_code=0 if report.healthy else 1)
        reports = doctor_all(request)
        healthy = all(r.healthy for r in reports)
        return Reply({"healthy": healthy, "reports": [report_json(r) for r in reports]},
                     "\n".join(report_text(r, command) for r in reports),
                     exit_code=0 if healthy else 1)

    respond(command, as_json, body)


def report_json(report: DoctorReport) -> dict[str, Any]:
    return {
        "repo": report.repo,
        "healthy": report.healthy,
        "findings": [f.to_json() for f in report.findings],
        "repairs": [{"kind": r.finding.kind, "subject": r.finding.subject, "done": r.done,
                     "error": None if r.error is None else
                     {"code": r.error.code, "message": r.error.message, "hint": r.error.hint}}
                    for r in report.repairs],
    }


def report_text(report: DoctorReport, command: str) -> str:
    where = report.repo or "the machine-wide state (leases, state files, proxy)"
    if not report.findings:
        return (f"{command}: nothing to do in {where}: "
                "the ledger and the world agree")
    done = {id(r.finding): r for r in report.repairs}
    lines = [f"{command}: {len(report.findings)} finding(s) in {where}"]
    for finding in report.findings:
        lines += [f"  {finding.kind}: {finding.subject}",
                  f"      owner  {finding.owner}",
                  f"      why    {finding.why}"]
        if finding.fix:
            lines.append(f"      fix    {finding.fix}")
        if finding.hint:
            lines.append(f"      hint   {finding.hint}")
        result = done.get(id(finding))
        if result is not None:
            lines.append(f"      fixed  {result.done}" if result.error is None else
                         f"      FAILED {result.error.message}")
    if not report.repairs and report.unresolved:
        lines.append("run `branchyard doctor --fix` to repair what has a fix")
    return "\n".join(lines)


@click.group()
def hooks() -> None:
    """Git hooks that set up worktrees made by other tools."""


@hooks.command("install")
@json_option
def hooks_install(as_json: bool) -> None:
    """Install a post-checkout hook that runs `branchyard setup` in every new
    worktree (made by git, Conductor, Claude Code, Codex…). An existing hook is
    kept and chained, never overwritten."""
    from branchyard.api.githooks import install_hooks

    def body() -> Reply:
        result = install_hooks()
        return Reply({"hook": str(result.path), "action": result.action,
                      "chained": str(result.chained) if result.chained else None},
                     f"{result.action}: {result.path}"
                     + (f" (your hook is kept and runs first: {result.chained})"
                        if result.chained else ""))

    respond("hooks", as_json, body)


@hooks.command("uninstall")
@json_option
def hooks_uninstall(as_json: bool) -> None:
    """Remove branchyard's post-checkout hook (a chained hook of yours is restored)."""
    from branchyard.api.githooks import uninstall_hooks

    def body() -> Reply:
        result = uninstall_hooks()
        return Reply({"hook": str(result.path), "action": result.action},
                     f"{result.action}: {result.path}")

    respond("hooks", as_json, body)
