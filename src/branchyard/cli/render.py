"""Text and JSON shapes shared by several commands."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # `ls`/`status` must not pay for importing setup's modules
    from branchyard.api.provisioning import SetupResult
    from branchyard.api.views import WorktreeView
    from branchyard.core.events import PhaseTime, Reporter
    from branchyard.db.snapshot import SnapshotInfo


def reporter_for(as_json: bool) -> Reporter:
    from branchyard.cli.progress import make_reporter

    return make_reporter(as_json)


def phases_json(phases: Iterable[PhaseTime]) -> list[dict[str, Any]]:
    return [{"phase": p.name, "seconds": round(p.seconds, 3)} for p in phases]


def setup_json(result: SetupResult) -> dict[str, Any]:
    return {
        "worktree": {"branch": result.branch, "path": result.path, "slug": result.slug,
                     "subdomain": result.subdomain, "ports": result.ports, "url": result.url,
                     "env_file": result.env_file},
        "url_note": result.url_note,
        "changed": result.changed, "actions": list(result.actions),
        "env_files": [asdict(f) for f in result.env_files],
        "phases": phases_json(result.phases),
    }


def setup_text(result: SetupResult, headline: str) -> str:
    ports = " ".join(f"{k}={v}" for k, v in result.ports.items()) or "-"
    lines = [headline,
             f"  path       {result.path}",
             f"  slug       {result.slug}",
             f"  subdomain  {result.subdomain}",
             f"  url        {result.url}" + (f"  (note: {result.url_note})"
                                                  if result.url_note else ""),
             f"  ports      {ports}",
             f"  env file   {result.env_file}"]
    if result.actions:
        lines.append("  made       " + "; ".join(result.actions))
    if result.phases:
        from branchyard.cli.progress import summary

        lines.append(summary(result.phases))
    return "\n".join(lines)


def view_text(view: WorktreeView) -> str:
    ports = " ".join(f"{k}={v}" for k, v in view.ports.items()) or "-"
    dbs = ", ".join(f"{d.get('name')}: {d.get('database')} ({d.get('engine')})"
                    for d in view.databases) or "-"
    state = view.state
    if state == "missing":
        state += (" (its directory is gone; `branchyard down "
                  f"{view.frozen_branch or view.branch}` or `branchyard gc` releases it)")
    elif state == "removing":
        state += (" (being removed; if no `branchyard down` is running, it was interrupted: "
                  "`branchyard doctor --fix` finishes it)")
    rows = [("branch", view.branch or "(detached)"), ("path", view.path),
            ("state", state), ("slug", view.slug or "-"),
            ("subdomain", view.subdomain or "-"), ("url", view.url or "-"),
            ("ports", ports), ("databases", dbs),
            ("processes", ", ".join(map(str, view.processes)) or "-"),
            ("dirty", "-" if view.dirty is None else ("yes" if view.dirty else "no"))]
    if view.frozen_branch and view.frozen_branch != view.branch:
        rows.insert(1, ("identity of", view.frozen_branch))
    if view.extra.get("services"):
        from branchyard.cli.services import services_rows

        rows += services_rows(view.extra["services"])
    if "locks" in view.extra:
        rows.append(("locks", ", ".join(view.extra["locks"]) or "-"))
    if "conflicts" in view.extra:
        rows.append(("conflicts", _marker_text(view.extra["conflicts"])))
    if view.extra.get("env_files"):
        from branchyard.envfiles.shared import describe

        rows.append(("env files", "; ".join(map(describe, view.extra["env_files"]))))
    text = "\n".join(f"{k:<11} {v}" for k, v in rows)
    return "\n".join([text, *stray_lines([view])])


def stray_lines(views: list[WorktreeView]) -> list[str]:
    """`warning:` lines for dev servers listening on another port than their own."""
    return [f"warning: {s['message']}" for v in views for s in v.extra.get("strays", [])]


def _marker_text(marker: object) -> str:
    if not isinstance(marker, dict):
        return "not checked since the last change (run `branchyard conflicts`)"
    parts = [f"{label}: {', '.join(marker[key])}" for key, label in (
        ("conflicts_with", "conflicts with"), ("migrations_with", "migrations collide with"),
        ("locked_paths", "edits locked paths")) if marker.get(key)]
    return "; ".join(parts) or "none"


def table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = ["  ".join(str(h).ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    out += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]
    return "\n".join(out)


def write_cd_target(path: str) -> bool:
    """Tell the shell function from `branchyard shell init` where to cd."""
    target = os.environ.get("BRANCHYARD_CD_FILE")
    if not target:
        sys.stderr.write("note: `--cd` needs the shell function: "
                         'eval "$(branchyard shell init bash)"\n')
        return False
    with open(target, "w", encoding="utf-8") as fh:
        fh.write(path)
    return True


def snapshot_lines(found: Sequence[SnapshotInfo], *, unused_only: bool = False) -> list[str]:
    """One line per snapshot: size, age, users; how to drop one no worktree uses."""
    if not found:  # `ls` of a project without snapshots never imports the db tools
        return []
    import time

    from branchyard.db.freshness import age_text

    lines = []
    for snap in found:
        if unused_only and snap.in_use:
            continue
        size = "size unknown" if snap.size < 0 else f"{snap.size / 1e6:.1f} MB"
        spares = f" + {snap.spares} warm spare(s)" if snap.spares else ""
        users = (f"{snap.in_use} worktree(s) cloned from it" if snap.in_use else
                 "no worktree uses it: `branchyard gc --snapshots` drops it")
        lines.append(f"snapshot {snap.name}: {size}{spares}, "
                     f"{age_text(time.time() - snap.created)} old; {users}")
    return lines
