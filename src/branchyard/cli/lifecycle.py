"""`up`, `setup`, `down`, `teardown`, `stop`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from branchyard import api
from branchyard.cli.output import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, Reply, json_option, respond
from branchyard.cli.render import (
    reporter_for,
    setup_json,
    setup_text,
    write_cd_target,
)

if TYPE_CHECKING:  # `down` and `teardown` import them: `up` and `setup` need neither
    from branchyard.api.release import TeardownResult
    from branchyard.core.errors import PartialError
    from branchyard.system.processes import ProcInfo

START_HELP = "Then start its services in the background (see `branchyard start`)."


@click.command()
@click.argument("name")
@click.option("--base", help="Branch or commit to start from (default: the main branch).")
@click.option("--path", type=click.Path(path_type=Path),
              help="Where to put the worktree (default: [project] worktree_path).")
@click.option("--reseed", is_flag=True, help="Seed databases even if they have tables.")
@click.option("--cd", "cd_", is_flag=True,
              help="cd into the worktree afterwards (needs `branchyard shell init`).")
@click.option("--start", "start_", is_flag=True, help=START_HELP)
@json_option
def up(name: str, base: str | None, path: Path | None, reseed: bool, cd_: bool,
       start_: bool, as_json: bool) -> None:
    """Create branch NAME (or reuse it) in a new worktree and set it up.

    Pre-flight checks run before any work; if any step fails, everything this
    run created is undone.
    """
    def body() -> Reply:
        result = api.up(api.UpRequest(name, base=base, path=path, reseed=reseed),
                        reporter_for(as_json))
        if cd_:
            write_cd_target(result.path)
        data = setup_json(result.setup)
        data.update(base=result.base, created_branch=result.created_branch,
                    notes=list(result.notes))
        verb = "created from " + result.base if result.created_branch else "existing branch"
        text = setup_text(result.setup, f"{result.branch} is up ({verb})")
        text += "".join(f"\nnote: {n}" for n in result.notes)
        return _started(Reply(data, text), result.path, start_)

    respond("up", as_json, body)


@click.command()
@click.option("--reseed", is_flag=True, help="Seed databases even if they have tables.")
@click.option("--rerun-hooks", is_flag=True, help="Run the setup hooks even if they ran.")
@click.option("--no-hooks", is_flag=True, help="Do not run the setup hooks.")
@click.option("--force", is_flag=True,
              help="Replace generated env file copies edited in the worktree.")
@click.option("--start", "start_", is_flag=True, help=START_HELP)
@json_option
def setup(reseed: bool, rerun_hooks: bool, no_hooks: bool, force: bool, start_: bool,
          as_json: bool) -> None:
    """Provision the worktree you are in (made by branchyard, Conductor, Claude
    Code, Codex or git). Idempotent: a second run changes nothing."""
    def body() -> Reply:
        result = api.setup(api.SetupRequest(reseed=reseed, rerun_hooks=rerun_hooks,
                                            run_hooks=not no_hooks, force=force),
                           reporter_for(as_json))
        head = (f"{result.branch} is set up" if result.changed
                else f"{result.branch} was already set up; nothing changed")
        return _started(Reply(setup_json(result), setup_text(result, head)), result.path,
                        start_)

    respond("setup", as_json, body)


@click.command()
@click.argument("name")
@click.option("--force", is_flag=True,
              help="Remove even with uncommitted changes; delete an unmerged branch.")
@click.option("--keep-branch", is_flag=True, help="Never delete the branch.")
@json_option
def down(name: str, force: bool, keep_branch: bool, as_json: bool) -> None:
    """Stop NAME's processes, remove its worktree, release everything it had,
    and delete its branch if it is merged."""
    def body() -> Reply:
        from branchyard.api.release import partly_done

        res = api.down(api.DownRequest(name, force=force, keep_branch=keep_branch),
                       reporter_for(as_json))
        data: dict[str, Any] = {
            "branch": res.branch, "path": res.path, "removed_worktree": res.removed_worktree,
            "was_missing": res.was_missing, "branch_deleted": res.branch_deleted,
            "branch_note": res.branch_kept_reason, "stopped": _procs(res.stopped),
            **_teardown_json(res.teardown)}
        lines = [f"{res.branch or res.path} is down"
                 + (" (its directory was already gone)" if res.was_missing else "")]
        lines += _teardown_lines(res.teardown, res.stopped)
        lines.append(f"  branch     {'deleted' if res.branch_deleted else 'not deleted'}: "
                     f"{res.branch_kept_reason}")
        return _partial_reply(data, lines, partly_done(
            f"{res.branch or res.path} is down", res.teardown), res.teardown)

    respond("down", as_json, body)


@click.command()
@click.argument("name", required=False)
@json_option
def teardown(name: str | None, as_json: bool) -> None:
    """Release the resources of the worktree you are in (or NAME), leaving its
    directory and branch: the agent app's "archive" hook."""
    def body() -> Reply:
        from branchyard.api.release import partly_done

        res = api.teardown(name=name, reporter=reporter_for(as_json))
        if not res.slug:
            return Reply({"released": [], "ports": [], "kept": [], "partial": False},
                         f"{res.path} was not set up by branchyard; nothing to release")
        return _partial_reply(_teardown_json(res),
                              [f"released {res.branch}", *_teardown_lines(res, ())],
                              partly_done(f"{res.branch} is torn down", res), res)

    respond("teardown", as_json, body)


@click.command()
@click.argument("name", required=False)
@click.option("--grace", default=2.0, show_default=True,
              help="Seconds between SIGTERM and SIGKILL.")
@json_option
def stop(name: str | None, grace: float, as_json: bool) -> None:
    """Stop every process whose working directory is inside the worktree (never
    this command or the shell that runs it)."""
    def body() -> Reply:
        res = api.stop_worktree(name=name, grace=grace)
        killed = {p.pid for p in res.killed}
        lines = [f"stopped {len(res.stopped)} process(es) in {res.path}"]
        lines += [f"  {p.pid:>7}  {'killed' if p.pid in killed else 'ended '}  {p.cmdline[:70]}"
                  for p in res.stopped]
        return Reply({"path": res.path, "stopped": _procs(res.stopped),
                      "killed": [p.pid for p in res.killed]}, "\n".join(lines))

    respond("stop", as_json, body)


def _partial_reply(data: dict[str, Any], lines: list[str], partial: PartialError | None,
                   res: TeardownResult | None) -> Reply:
    """Exit 4 (partly done) when the teardown kept resources for `doctor --fix`."""
    errors = res.errors if res else ()
    data = {**data, "partial": partial is not None}
    if partial is None:
        return Reply(data, "\n".join(lines), exit_code=EXIT_FAILED if errors else EXIT_OK,
                     errors=errors)
    return Reply(data, "\n".join(lines), exit_code=EXIT_PARTIAL, errors=(partial, *errors))


def _started(reply: Reply, path: str, start_: bool) -> Reply:
    """``--start``: the services, started after the worktree is set up."""
    if not start_:
        return reply
    from branchyard.api.services import ServicesRequest, start_services
    from branchyard.cli.services import services_reply

    started = services_reply(start_services(ServicesRequest((path,))), "started")
    return Reply({**reply.data, "services": started.data}, f"{reply.text}\n{started.text}")


def _procs(procs: tuple[ProcInfo, ...]) -> list[dict[str, Any]]:
    return [{"pid": p.pid, "name": p.name, "cmdline": p.cmdline} for p in procs]


def _teardown_json(res: TeardownResult | None) -> dict[str, Any]:
    if res is None:
        return {"released": [], "ports": [], "kept": []}
    return {"slug": res.slug, "released": list(res.released), "ports": list(res.ports),
            "kept": [k.to_json() for k in res.kept]}


def _teardown_lines(res: TeardownResult | None, stopped: tuple[ProcInfo, ...]) -> list[str]:
    lines = []
    if stopped:
        lines.append(f"  stopped    {', '.join(str(p.pid) for p in stopped)}")
    if res is not None:
        lines.append(f"  released   {'; '.join(res.released) or 'nothing'}")
        lines += [f"  kept       {k.resource} ({k.database}): {k.reason}: {k.message}"
                  for k in res.kept]
        if res.ports:
            lines.append(f"  ports      {', '.join(map(str, res.ports))} freed")
    return lines
