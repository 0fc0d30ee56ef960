"""The proxy's own responses: 400, 404, 502, 508 — short HTML a person can act on."""

from __future__ import annotations

import os
from collections.abc import Sequence
from html import escape

from branchyard.proxy.backends import Backend

REASONS = {400: "Bad Request", 404: "Not Found", 408: "Request Timeout",
           431: "Request Header Fields Too Large", 502: "Bad Gateway",
           508: "Loop Detected"}


def response(status: int, title: str, body_html: str) -> bytes:
    """A complete ``Connection: close`` response with an HTML page."""
    page = (f"<!doctype html><html><head><meta charset=utf-8><title>{escape(title)}</title>"
            "<style>body{font:15px system-ui,sans-serif;margin:3em auto;max-width:46em;"
            "color:#222}code{background:#f2f2f2;padding:.1em .3em}</style></head>"
            f"<body><h1>{escape(title)}</h1>{body_html}"
            "<p><small>branchyard proxy</small></p></body></html>\n").encode()
    head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(page)}\r\nConnection: close\r\n"
            "Cache-Control: no-store\r\nX-Branchyard-Proxy-Error: "
            f"{status}\r\n\r\n").encode()
    return head + page


def bad_request(reason: str) -> bytes:
    return response(400, "Bad request", f"<p>The proxy could not parse the request: "
                                        f"{escape(reason)}.</p>")


def not_found(host: str, sites: Sequence[tuple[str, str]]) -> bytes:
    """``sites``: (url, branch) of every live worktree."""
    items = "".join(f'<li><a href="{escape(url)}">{escape(url)}</a> — {escape(branch)}</li>'
                    for url, branch in sites)
    listing = f"<ul>{items}</ul>" if items else "<p>No worktree is registered yet: run " \
        "<code>branchyard up BRANCH</code> or <code>branchyard setup</code>.</p>"
    return response(404, f"No worktree at {host}",
                    f"<p>No live worktree answers to <code>{escape(host)}</code>. "
                    f"Live worktrees:</p>{listing}")


def bad_gateway(backend: Backend, detail: str) -> bytes:
    service = f" (service {escape(backend.service)})" if backend.service else ""
    strays = "".join(f"<p><b>Found:</b> {escape(line)}</p>" for line in strays_of(backend))
    return response(502, f"Nothing is listening on port {backend.port}", (
        f"<p>Worktree <b>{escape(backend.worktree)}</b>, branch <b>{escape(backend.branch)}"
        f"</b>{service}: port <b>{backend.port}</b> did not answer ({escape(detail)}).</p>"
        + strays + (_service_failure(backend) or
           f"<p>Start it with:</p><pre><code>{escape(backend.run_hint)}</code></pre>")
        + f"<p>Worktree path: <code>{escape(backend.path)}</code></p>"))


def _service_failure(backend: Backend) -> str:
    """How the supervised service on the port is doing, and its last log lines."""
    from branchyard.services.status import failure_of

    found = failure_of(backend.path, backend.port)
    if found is None:
        return ""
    how = f", {found.exit_text}" if found.exit_text else ""
    lines = "\n".join(f"{line.stream:>3} {line.text}" for line in found.lines)
    return (f"<p>Service <b>{escape(found.service)}</b> is <b>{escape(found.state)}</b>"
            f"{escape(how)}. Its last log lines:</p><pre><code>{escape(lines)}</code></pre>"
            f"<p>More: <code>branchyard logs {escape(backend.branch)} "
            f"{escape(found.service)}</code>; again: <code>branchyard restart "
            f"{escape(backend.branch)} {escape(found.service)}</code></p>")


def strays_of(backend: Backend) -> list[str]:
    """The servers of the backend's worktree that listen on another port than its
    own (a plain `npm run dev`): one scan, only when a 502 is being answered."""
    from branchyard.system.listeners import stray_listeners

    ports = {path: {str(i): p for i, p in enumerate(owned)} for path, _, owned, _ in
             backend.site}
    apps = {path: app for path, _, _, app in backend.site if app}
    names = {os.path.realpath(path): name for path, name, _, _ in backend.site}
    here = os.path.realpath(backend.path)
    return [s.message(names) for s in stray_listeners(ports, apps) if s.root == here]


def loop_detected(host: str) -> bytes:
    return response(508, "Request loop detected", (
        f"<p>The request for <code>{escape(host)}</code> came back into the branchyard "
        "proxy. A worktree's port points at the proxy itself, or the app forwards "
        "requests to its own dev URL.</p>"))
