"""`logs`: the output of a worktree's supervised services, kept on disk by the
supervisor: the last lines, then new ones as they are written."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from branchyard.api.services import configured_services, split_words
from branchyard.context import open_context
from branchyard.core.errors import UsageError
from branchyard.services.logs import Follower, LogLine, log_file, read_lines
from branchyard.services.state import log_dir, service_dir


@dataclass(frozen=True)
class LogsRequest:
    words: tuple[str, ...] = ()  # [NAME] [SERVICE]
    last: int = 50
    since: float = 0.0  # Unix time
    cwd: Path | None = None


@dataclass(frozen=True)
class LogsTarget:
    path: str
    services: tuple[str, ...]
    files: int


def logs_target(request: LogsRequest) -> LogsTarget:
    ctx = open_context(request.cwd)
    record, names = split_words(ctx, request.words)
    if len(names) > 1:
        raise UsageError("usage: branchyard logs [NAME] [SERVICE] [-f] [-n N] [--since T]")
    wt_ctx = open_context(record.path)
    services = configured_services(wt_ctx.config)
    directory = log_dir(service_dir(record.path))
    recorded = sorted(p.name.removesuffix(".log") for p in directory.glob("*.log"))
    known = list(dict.fromkeys([*services, *recorded]))
    if names and names[0] not in known:
        raise UsageError(f"no service named {names[0]!r}",
                         hint=f"the services are: {', '.join(known) or 'none'}")
    return LogsTarget(record.path, tuple(names or known), wt_ctx.config.services.log_files)


def read_logs(request: LogsRequest, target: LogsTarget | None = None
              ) -> tuple[LogsTarget, list[LogLine]]:
    target = target or logs_target(request)
    lines = read_lines(log_dir(service_dir(target.path)), target.services,
                       last=request.last, since=request.since, files=target.files)
    return target, lines


def open_followers(target: LogsTarget) -> list[Follower]:
    """Open before reading the last lines, so no line falls between the two."""
    directory = log_dir(service_dir(target.path))
    return [Follower(log_file(directory, s), s) for s in target.services]


def follow_logs(followers: list[Follower], seen: set[LogLine],
                poll: float = 0.2) -> Iterator[LogLine]:
    """New lines as they are written (less those in ``seen``, printed already),
    until the caller stops iterating (Ctrl-C)."""
    try:
        while True:
            batch = sorted((line for f in followers for line in f.poll() if line not in seen),
                           key=lambda line: line.time)
            yield from batch
            if not batch:
                time.sleep(poll)
    finally:
        for follower in followers:
            follower.close()


def parse_since(text: str, now: float | None = None) -> float:
    """``30s``, ``10m``, ``2h``, ``1d`` ago, or an ISO 8601 time → Unix time."""
    from datetime import datetime

    now = time.time() if now is None else now
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text and text[-1] in units and text[:-1].replace(".", "", 1).isdigit():
        return now - float(text[:-1]) * units[text[-1]]
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--since {text!r}: not a duration or a time",
                         hint="e.g. --since 10m, --since 2h, --since 2026-01-31T09:00") from exc
    return when.timestamp() if when.tzinfo else time.mktime(when.timetuple())
