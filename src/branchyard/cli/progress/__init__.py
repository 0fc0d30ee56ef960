"""Drawing progress: the concrete :class:`branchyard.core.events.Reporter` s.

- :class:`RichReporter` on a terminal: a live line with a spinner, the phase,
  its elapsed time, a bar when the phase reports progress, and the last line of
  hook output; finished phases stay above it with their times.
- :class:`PlainReporter` otherwise: timestamped lines
  (``[  0.42s] databases: cloning app…``).
- :class:`JsonReporter` with ``--json``: one JSON object per line on stderr
  (stdout carries the command's one JSON document).

Plain and JSON reporters (:mod:`~branchyard.cli.progress.lines`) run a heartbeat
thread during a phase, so that nothing stays silent for more than ``heartbeat``
seconds (the rich display, :mod:`~branchyard.cli.progress.live`, redraws itself).
:func:`make_reporter` picks one; :func:`summary` says where the time went.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TextIO

from branchyard.cli.progress.lines import JsonReporter, PlainReporter
from branchyard.cli.progress.live import RichReporter
from branchyard.cli.progress.phases import secs
from branchyard.core.events import PhaseTime, Reporter

__all__ = ["JsonReporter", "PlainReporter", "RichReporter", "make_reporter", "summary"]


def make_reporter(as_json: bool, stream: TextIO | None = None,
                  is_tty: bool | None = None) -> Reporter:
    """The reporter a command should use: JSON lines with ``--json``, rich on a
    terminal, plain lines otherwise. ``is_tty`` overrides terminal detection."""
    out = stream if stream is not None else sys.stderr
    if as_json:
        return JsonReporter(out)
    tty = _isatty(out) if is_tty is None else is_tty
    if tty and os.environ.get("TERM") != "dumb":
        return RichReporter(out)
    return PlainReporter(out)


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def summary(times: Sequence[PhaseTime]) -> str:
    """Where the time went, one line per phase, with a bar for its share."""
    if not times:
        return "no phases ran"
    total = sum(t.seconds for t in times)
    width = max(len(t.name) for t in times)
    lines = [f"where the time went ({secs(total)} in all):"]
    for t in times:
        share = t.seconds / total if total > 0 else 0.0
        bar = "█" * max(1 if t.seconds > 0 else 0, round(share * 24))
        lines.append(f"  {t.name:<{width}}  {secs(t.seconds):>8}  {share:4.0%}  {bar}")
    return "\n".join(lines)
