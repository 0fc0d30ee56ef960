"""The dashboard's HTML, rendered on the server: it is complete without JavaScript.

The same fragment (:func:`yard_html`) is the first page and every live update;
the script only swaps it in. Forms carry the session token when rendered for one
page; updates are rendered once for every viewer, without it, and the script
fills it in from the page's ``<meta>`` when a form is sent.
"""

from __future__ import annotations

import time
from html import escape
from urllib.parse import quote

from branchyard.dashboard.model import DatabaseCard, RepoCard, WorktreeCard, Yard
from branchyard.dashboard.services_view import LIVE, ServiceCard
from branchyard.services.logs import LogLine


def page(title: str, base: str, token: str, body: str, *, stream: str) -> str:
    """A whole page; ``stream`` is the URL of its event stream."""
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>{escape(title)}</title><meta name=branchyard-token "
            f"content='{escape(token)}'><link rel=stylesheet href='{base}/dashboard.css'>"
            f"<script defer src='{base}/dashboard.js'></script></head>"
            f"<body data-stream='{escape(stream)}' data-base='{escape(base)}'>"
            f"<header class=top><h1>{escape(title)}</h1><span id=live class=live "
            f"title='live updates'>static</span><span id=note role=status></span></header>"
            f"{body}<footer>branchyard dashboard · removing and merging stay with the CLI: "
            f"<code>branchyard down</code>, <code>branchyard merge</code></footer>"
            f"</body></html>")


def yard_html(yard: Yard, base: str, token: str) -> str:
    if not yard.repos:
        return ("<main id=yard><p class=empty>No repository is registered yet: run "
                "<code>branchyard setup</code> in one.</p></main>")
    return "<main id=yard>" + "".join(_repo(r, base, token) for r in yard.repos) + "</main>"


def _repo(repo: RepoCard, base: str, token: str) -> str:
    head = (f"<section class=repo data-repo='{escape(repo.common_dir)}'>"
            f"<h2>{escape(repo.project)} <small>{escape(repo.main_path)}</small></h2>")
    if repo.error:
        return head + f"<p class=error>{escape(repo.error)}</p></section>"
    cards = "".join(_worktree(w, base, token) for w in repo.worktrees)
    return head + f"<div class=cards>{cards}</div>{_queue(repo)}{_locks(repo)}</section>"


def _worktree(wt: WorktreeCard, base: str, token: str) -> str:
    url = (f"<a class=url href='{escape(wt.url)}' target=_blank rel=noopener>"
           f"{escape(wt.url)}</a>" if wt.url else "")
    rows = [("base", _git_line(wt)), ("ports", _ports(wt)), ("dirty", _dirty(wt)),
            ("radar", _radar(wt)), ("locks", ", ".join(map(escape, wt.locks)) or "none"),
            ("processes", str(wt.processes))]
    # the main worktree has no base, and the radar compares the others with it
    skip = {"base", "radar"} | ({"ports"} if not wt.ports else set()) if wt.main else set()
    facts = "".join(f"<dt>{k}</dt><dd class='f-{k}'>{v}</dd>" for k, v in rows
                    if k not in skip)
    return (f"<article class=wt data-worktree='{escape(wt.path)}' data-slug='{escape(wt.slug)}'>"
            f"<h3><span class=branch>{escape(wt.branch)}</span> "
            f"<span class='state s-{escape(wt.state)}'>{escape(wt.state)}</span></h3>"
            f"<p class=where>{url}<br><code>{escape(wt.path)}</code></p><dl>{facts}</dl>"
            f"{_services(wt, base, token)}{_databases(wt.databases)}</article>")


def _git_line(wt: WorktreeCard) -> str:
    if wt.ahead is None or wt.behind is None:
        return escape(wt.base)
    return (f"{escape(wt.base)} · <span title='commits not in {escape(wt.base)}'>"
            f"{wt.ahead} ahead</span>, <span title='commits of {escape(wt.base)} it lacks'>"
            f"{wt.behind} behind</span>")


def _ports(wt: WorktreeCard) -> str:
    return " ".join(f"<code>{escape(k)}={v}</code>" for k, v in wt.ports) or "none"


def _dirty(wt: WorktreeCard) -> str:
    if not wt.dirty_count:
        return "clean"
    more = wt.dirty_count - len(wt.dirty_files)
    items = "".join(f"<li><code>{escape(f)}</code></li>" for f in wt.dirty_files)
    extra = f"<li>… {more} more</li>" if more > 0 else ""
    return (f"<details><summary>{wt.dirty_count} file{'s' * (wt.dirty_count != 1)}"
            f"</summary><ul>{items}{extra}</ul></details>")


def _radar(wt: WorktreeCard) -> str:
    radar = wt.radar
    if radar is None:
        return "<span class=muted>not run since the last commit (<code>branchyard " \
               "conflicts</code>)</span>"
    if radar.clear:
        return "<span class=ok>no conflicts</span>"
    parts = [f"<span class=bad>conflicts with {escape(', '.join(radar.conflicts_with))}"
             f"</span>" if radar.conflicts_with else "",
             f"<span class=bad>migrations collide with "
             f"{escape(', '.join(radar.migrations_with))}</span>" if radar.migrations_with
             else "",
             f"edits locked {escape(', '.join(radar.locked_paths))}" if radar.locked_paths
             else ""]
    files = "".join(f"<li><code>{escape(f)}</code></li>" for f in radar.files)
    return "<br>".join(p for p in parts if p) + (f"<ul class=files>{files}</ul>"
                                                 if files else "")


def _services(wt: WorktreeCard, base: str, token: str) -> str:
    if not wt.services:
        return "" if not wt.slug else ("<p class=muted>no services: set <code>[hooks] run"
                                       "</code> or <code>[services.NAME]</code></p>")
    rows = "".join(_service(wt, s, base, token) for s in wt.services)
    return _table("services", ("service", "state", "port", "up", ""), rows)


def _service(wt: WorktreeCard, svc: ServiceCard, base: str, token: str) -> str:
    detail = f"<small>{escape(svc.exit_text)}</small>" if svc.exit_text and \
        svc.state not in LIVE else ""
    ops = ("stop", "restart") if svc.state in LIVE else ("start",)
    buttons = "".join(f"<button name=op value={op}>{op}</button>" for op in ops)
    form = "" if not wt.slug else (f"<form method=post action='{base}/action' class=act>"
            f"<input type=hidden name=token value='{escape(token)}'>"
            f"<input type=hidden name=wt value='{escape(wt.path)}'>"
            f"<input type=hidden name=svc value='{escape(svc.name)}'>{buttons}</form>")
    logs = f"{base}/logs?wt={quote(wt.path, safe='')}&amp;svc={quote(svc.name, safe='')}"
    return (f"<tr data-service='{escape(svc.name)}'><td>{escape(svc.name)}</td>"
            f"<td><span class='svc-state s-{escape(svc.state)}'>{escape(svc.state)}</span>"
            f" {detail}</td>"
            f"<td>{svc.port or ''}</td><td>{age(svc.uptime) if svc.uptime else ''}</td>"
            f"<td>{form} <a class=logs href='{logs}'>logs</a></td></tr>")


def _databases(dbs: tuple[DatabaseCard, ...]) -> str:
    if not dbs:
        return ""
    snapshots = any(d.snapshot_age is not None for d in dbs)
    rows = "".join(
        f"<tr><td>{escape(d.name)}</td><td>{escape(d.engine)}</td>"
        f"<td><code>{escape(d.database)}</code></td><td class=num>{size(d.size)}</td>"
        + (f"<td class=num>{age(d.snapshot_age) + ' old' if d.snapshot_age is not None else ''}"
           "</td>" if snapshots else "") + "</tr>" for d in dbs)
    heads = ("database", "engine", "name", "size") + (("snapshot",) if snapshots else ())
    return _table("dbs", heads, rows)


def _queue(repo: RepoCard) -> str:
    if not repo.queue:
        return "<h4>merge queue</h4><p class=muted>empty</p>"
    rows = "".join(f"<tr><td>{e.id}</td><td>{escape(e.branch)}</td>"
                   f"<td class='q-{escape(e.state)}'>{escape(e.state)}</td>"
                   f"<td>{escape(e.reason.splitlines()[0] if e.reason else '')}</td></tr>"
                   for e in repo.queue)
    return "<h4>merge queue</h4>" + _table("queue", ("#", "branch", "state", "note"), rows)


def _locks(repo: RepoCard) -> str:
    if not repo.locks:
        return "<h4>locks</h4><p class=muted>none</p>"
    rows = "".join(f"<tr><td><code>{escape(lk.pattern)}</code></td><td>{escape(lk.holder)}"
                   f"</td><td>{escape(lk.reason)}</td></tr>" for lk in repo.locks)
    return "<h4>locks</h4>" + _table("locks", ("path", "held by", "reason"), rows)


def _table(cls: str, heads: tuple[str, ...], rows: str) -> str:
    head = "".join(f"<th>{h}</th>" for h in heads)
    return f"<table class={cls}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def logs_html(worktree: str, service: str, lines: list[LogLine], back: str) -> str:
    items = "".join(log_line(x) for x in lines)
    return (f"<main id=logs><p><a href='{escape(back)}'>← all worktrees</a></p>"
            f"<h2>{escape(service)} <small>{escape(worktree)}</small></h2>"
            f"<pre id=loglines class=log>{items}</pre></main>")


def log_line(line: LogLine) -> str:
    stamp = time.strftime("%H:%M:%S", time.localtime(line.time))
    return (f"<span class='l-{escape(line.stream)}'><time>{stamp}</time> "
            f"{escape(line.text)}</span>\n")


def size(value: int | None) -> str:
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return ""


def age(seconds: float) -> str:
    whole = int(seconds)
    for limit, step, unit in ((60, 1, "s"), (3600, 60, "min"), (86400, 3600, "h")):
        if whole < limit:
            return f"{whole // step} {unit}"
    return f"{whole // 86400} d"
