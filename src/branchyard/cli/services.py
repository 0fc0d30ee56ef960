"""`start`, `restart`, `logs`, `attach`: supervised dev servers."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from branchyard.cli.output import Reply, json_option, respond

if TYPE_CHECKING:
    from branchyard.api.services import ServicesResult
    from branchyard.services.logs import LogLine
    from branchyard.services.status import ServiceState

WAIT_HELP = "Wait up to SECONDS for the services to be ready (or to fail)."


@click.command()
@click.argument("words", nargs=-1, metavar="[NAME] [SERVICE…]")
@click.option("--wait", type=float, default=0.0, metavar="SECONDS", help=WAIT_HELP)
@click.option("--tmux", "use_tmux", is_flag=True,
              help="Also open a tmux session: a window per service (its log) and one for "
                   "[agent] command; `branchyard attach` enters it.")
@json_option
def start(words: tuple[str, ...], wait: float, use_tmux: bool, as_json: bool) -> None:
    """Start the worktree's services in the background, supervised (all of them,
    or the SERVICEs named); they outlive this terminal. `logs` shows their output,
    `stop` ends them."""
    from branchyard.api.services import ServicesRequest, start_services

    def body() -> Reply:
        result = start_services(ServicesRequest(words, wait=wait))
        notes = [tmux_session(result.path)] if use_tmux else []
        return services_reply(result, "started", notes)

    respond("start", as_json, body)


@click.command()
@click.argument("words", nargs=-1, metavar="[NAME] [SERVICE…]")
@click.option("--wait", type=float, default=0.0, metavar="SECONDS", help=WAIT_HELP)
@json_option
def restart(words: tuple[str, ...], wait: float, as_json: bool) -> None:
    """Restart the worktree's services (all, or the SERVICEs named); those not
    running are started."""
    from branchyard.api.services import ServicesRequest, restart_services

    def body() -> Reply:
        return services_reply(restart_services(ServicesRequest(words, wait=wait)),
                              "restarted")

    respond("restart", as_json, body)


def tmux_session(path: str) -> str:
    """``--tmux``: the services run either way; without tmux, a note says so."""
    import shutil

    from branchyard.api.services import open_tmux

    if shutil.which("tmux") is None:
        return "tmux is not installed: no session opened (`branchyard logs -f` follows them)"
    return open_tmux(path)


def services_reply(result: ServicesResult, verb: str, notes: list[str] | None = None) -> Reply:
    lines = [f"{result.branch}: {verb} {', '.join(result.acted) or 'nothing'}"
             + (f" (already running: {', '.join(result.unchanged)})" if result.unchanged
                else "")]
    width = max((len(s.name) for s in result.services), default=0)
    lines += [f"  {service_line(s, width)}" for s in result.services]
    lines += [f"note: {n}" for n in notes or [] if n]
    lines.append(f"logs: branchyard logs {result.branch} -f")
    data = {"branch": result.branch, "path": result.path, "acted": list(result.acted),
            "unchanged": list(result.unchanged), "supervisor_pid": result.supervisor_pid,
            "services": [s.to_json() for s in result.services]}
    return Reply(data, "\n".join(lines))


def service_line(svc: ServiceState, width: int = 0) -> str:
    """``web  ready  port 41230  pid 123  up 5m  2 restart(s)``."""
    parts = [svc.name.ljust(width), state_text(svc)]
    if svc.port:
        parts.append(f"port {svc.port}")
    if svc.pid:
        parts.append(f"pid {svc.pid}")
    if svc.uptime is not None:
        parts.append(f"up {duration(svc.uptime)}")
    if svc.restarts:
        parts.append(f"{svc.restarts} restart(s)")
    if svc.env_action:
        parts.append(f"env changed: {svc.env_action}")
    return "  ".join(parts)


def state_text(svc: ServiceState) -> str:
    if svc.state in ("crashed", "exited") and svc.exit_text:
        return f"{svc.state} ({svc.exit_text})"
    if svc.state == "lost":
        return "lost (its supervisor died: `branchyard doctor --fix`)"
    return svc.state


def services_rows(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """`status` rows from the services' JSON: state, readiness, uptime, restarts."""
    from branchyard.services.status import ServiceState

    rows = []
    width = max(len(item["name"]) for item in items)
    for i, item in enumerate(items):
        svc = ServiceState(item["name"], item["state"], item["pid"], item["port"],
                           item["ready"], item["exit_code"], item["restarts"],
                           item["started_at"], item["log_path"], item["exit_signal"] or "",
                           item["env_changed_at"], item["env_action"] or "")
        rows.append(("services" if i == 0 else "", service_line(svc, width)))
    return rows


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    return f"{int(seconds // 86400)}d{int(seconds % 86400 // 3600)}h"


@click.command()
@click.argument("words", nargs=-1, metavar="[NAME] [SERVICE]")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C ends).")
@click.option("-n", "--lines", "last", type=int, default=50, show_default=True,
              help="How many of the last lines to print first.")
@click.option("--since", help="Only lines since then: 10m, 2h, 1d, or an ISO time.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per line: time, service, stream, text.")
def logs(words: tuple[str, ...], follow: bool, last: int, since: str | None,
         as_json: bool) -> None:
    """Print the services' output kept on disk (all services merged by time, or
    SERVICE's); streams: out, err, and supervisor (starts, exits, restarts, env
    changes)."""
    from branchyard.api.logs import (
        LogsRequest,
        follow_logs,
        logs_target,
        open_followers,
        parse_since,
        read_logs,
    )
    from branchyard.cli.output import render
    from branchyard.core.errors import BranchyardError

    def body() -> Reply:
        try:
            request = LogsRequest(words, last=last,
                                  since=parse_since(since) if since else 0.0)
            target = logs_target(request)
            followers = open_followers(target) if follow else []
            target, lines = read_logs(request, target)
        except BranchyardError as err:
            if not as_json:
                raise
            render("logs", True, Reply(exit_code=err.exit_code, errors=(err,)))
            sys.exit(err.exit_code)
        width = max((len(s) for s in target.services), default=3)
        for line in lines:
            _print_line(line, as_json, width)
        if follow:
            try:
                for line in follow_logs(followers, set(lines)):
                    _print_line(line, as_json, width)
            except KeyboardInterrupt:
                pass
        return Reply()

    respond("logs", False, body)  # --json: JSON lines, not one document


def _print_line(line: LogLine, as_json: bool, width: int) -> None:
    if as_json:
        text = json.dumps(line.to_json(), ensure_ascii=False)
    else:
        mark = {"err": "!", "supervisor": "#"}.get(line.stream, " ")
        text = f"{line.service:<{width}} {mark} {line.text}"
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@click.command()
@click.argument("name", required=False)
def attach(name: str | None) -> None:
    """Enter the worktree's tmux session (a window per service showing its log,
    one for [agent] command), creating it when needed. Needs tmux."""
    from branchyard.api.services import attach_tmux

    def body() -> Reply:
        attach_tmux(name)
        return Reply()

    respond("attach", False, body)


