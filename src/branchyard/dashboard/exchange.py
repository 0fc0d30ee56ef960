"""One dashboard request on a proxy connection: read it, answer it, close.

Pages and event streams are GETs; the only POST is an action on a service,
refused unless it comes from the dashboard itself (see :mod:`.guard`).
"""

from __future__ import annotations

import asyncio
import json
import time
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode, urlsplit

from branchyard.core.errors import BranchyardError
from branchyard.dashboard import assets, render, services_view
from branchyard.dashboard.guard import refusal, set_cookie
from branchyard.dashboard.hub import Stream, event
from branchyard.proxy.framing import LengthFramer
from branchyard.proxy.http import Request

if TYPE_CHECKING:
    from branchyard.dashboard.app import Dashboard, Scope
    from branchyard.proxy.client import ClientConnection

MAX_BODY = 16 * 1024
LOG_LINES = 200
PAGE_AGE = 0.25  # seconds a page may show an older reading (many tabs, one reading)
LOOPBACK = (b"127.0.0.1", b"::1", b"::ffff:127.0.0.1")
REASONS = {200: "OK", 303: "See Other", 400: "Bad Request", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           411: "Length Required", 413: "Content Too Large"}
SECURITY = ("Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
            "X-Frame-Options: DENY\r\nReferrer-Policy: same-origin\r\n"
            "Content-Security-Policy: default-src 'self'; frame-ancestors 'none'\r\n")


def _headers(head: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        name, sep, value = line.partition(":")
        if sep:
            fields.setdefault(name.strip().lower(), value.strip())
    return fields


class Exchange:
    def __init__(self, dashboard: Dashboard, conn: ClientConnection, req: Request,
                 rest: bytes, scope: Scope) -> None:
        self.dashboard, self.conn, self.scope = dashboard, conn, scope
        self.method = req.method.decode()
        url = urlsplit(req.target.decode("latin-1"))
        path = url.path[len(scope.base):] if url.path.startswith(scope.base) else url.path
        if not scope.base and path.startswith("/_branchyard"):  # the machine host takes both
            path = path[len("/_branchyard"):]
        self.path = path or "/"
        self.query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.headers = _headers(req.head)
        self.stream: Stream | None = None
        self.body = b""
        self.started = False
        if req.body is not None and not isinstance(req.body, LengthFramer):
            self.need = -1  # chunked: not accepted
        else:
            self.need = req.body.remaining if req.body is not None else 0
        self.feed(rest)

    def feed(self, data: bytes) -> None:
        if self.started:
            return  # pipelined requests are not read: every answer closes the connection
        self.body += data
        if self.need < 0 or self.need > MAX_BODY or len(self.body) >= self.need:
            self.started = True
            self.body = self.body[:max(self.need, 0)]
            self.dashboard.server.spawn(self._answer())

    def lost(self) -> None:
        if self.stream is not None:
            self.dashboard.hub.remove(self.stream)
            self.stream = None

    async def _answer(self) -> None:
        try:
            await self._dispatch()
        except _NotFoundError as err:
            self._reply(404, "text/plain; charset=utf-8", str(err).encode())
        except (BranchyardError, OSError) as err:
            self._reply(409, "text/plain; charset=utf-8", str(err).encode())

    async def _dispatch(self) -> None:
        if self.conn.ip not in LOOPBACK:
            return self._reply(403, "text/plain", b"the dashboard answers loopback only")
        if self.need < 0:
            return self._reply(411, "text/plain", b"send a Content-Length")
        if self.need > MAX_BODY:
            return self._reply(413, "text/plain", b"request body too large")
        route = (self.method, self.path.rstrip("/") or "/")
        if route == ("POST", "/action"):
            return await self._action()
        if self.method not in ("GET", "HEAD") or route[1] == "/action":
            return self._reply(405, "text/plain", b"only GET, and POST for actions")
        if route[1] == "/dashboard.css":
            return self._reply(200, "text/css; charset=utf-8", assets.CSS.encode())
        if route[1] == "/dashboard.js":
            return self._reply(200, "text/javascript; charset=utf-8", assets.JS.encode())
        handlers = {"/": self._page, "/events": self._events, "/logs": self._logs,
                    "/logs/events": self._log_events}
        handler = handlers.get(route[1])
        if handler is None:
            return self._reply(404, "text/plain", b"no such dashboard page")
        await handler()

    async def _page(self) -> None:
        yard = self.scope.filter(await self.dashboard.current(max_age=PAGE_AGE))
        token, new = self.dashboard.sessions.token_for(self.headers.get("cookie", ""))
        base = self.scope.base
        html = render.page(self.scope.title, base, token,
                           render.yard_html(yard, base, token), stream=f"{base}/events")
        self._reply(200, "text/html; charset=utf-8", html.encode(),
                    f"Set-Cookie: {set_cookie(token)}\r\n" if new else "")

    async def _events(self) -> None:
        yard = self.scope.filter(await self.dashboard.current())
        stream = self._open_stream()
        stream.last = render.yard_html(yard, self.scope.base, "")
        self._write(event("yard", stream.last))

    async def _logs(self) -> None:
        wt, svc = await self._service()
        base = self.scope.base
        lines = await asyncio.to_thread(services_view.log_tail, wt, svc, LOG_LINES)
        token, new = self.dashboard.sessions.token_for(self.headers.get("cookie", ""))
        since = lines[-1].time if lines else time.time()
        query = urlencode({"wt": wt, "svc": svc, "since": f"{since:.3f}"})
        html = render.page(f"{svc} · {self.scope.title}", base, token,
                           render.logs_html(wt, svc, lines, f"{base}/"),
                           stream=f"{base}/logs/events?{query}")
        self._reply(200, "text/html; charset=utf-8", html.encode(),
                    f"Set-Cookie: {set_cookie(token)}\r\n" if new else "")

    async def _log_events(self) -> None:
        wt, svc = await self._service()
        try:
            since = float(self.query.get("since", "0"))
        except ValueError:
            since = 0.0
        follower = await asyncio.to_thread(services_view.LogFollower, wt, svc)
        # what came between the page and this stream (the follower starts at the end)
        missed = [x for x in await asyncio.to_thread(services_view.log_tail, wt, svc,
                                                     LOG_LINES, since) if x.time > since]
        stream = self._open_stream(follower)
        stream.after = max([since, *(x.time for x in missed)])
        if missed:
            self._write(event("line", "".join(render.log_line(x) for x in missed)))

    async def _service(self) -> tuple[str, str]:
        wt, svc = self.query.get("wt", ""), self.query.get("svc", "")
        yard = self.scope.filter(await self.dashboard.current())
        found = yard.worktree(wt)
        if found is None or not svc or "/" in svc or svc.startswith("."):
            raise _NotFoundError(f"no worktree {wt!r} with a service {svc!r} here")
        return wt, svc

    def _open_stream(self, follower: services_view.LogFollower | None = None) -> Stream:
        head = ("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                f"{SECURITY}Connection: close\r\n\r\nretry: 1000\n\n")
        self._write(head.encode())
        self.stream = Stream(self.scope, self._write, follower)
        self.dashboard.hub.add(self.stream)
        return self.stream

    async def _action(self) -> None:
        why = refusal(self.headers.get("origin", ""), self.headers.get("host", ""),
                      self.dashboard.server.proto.decode(),
                      self.headers.get("sec-fetch-site", ""))
        form = {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}
        if not why and not self.dashboard.sessions.check(self.headers.get("cookie", ""),
                                                         form.get("token", "")):
            why = "the session token is missing or wrong (reload the dashboard)"
        if why:
            return self._result(403, False, f"refused: {why}")
        wt, op, svc = form.get("wt", ""), form.get("op", ""), form.get("svc", "")
        yard = self.scope.filter(await self.dashboard.current())
        found = yard.worktree(wt)
        if found is None or not found[1].slug or op not in services_view.OPS:
            return self._result(400, False, f"no worktree {wt!r} with services here, or "
                                            f"no action {op!r}")
        try:
            message = await asyncio.to_thread(services_view.act, wt, found[1].slug, op, svc)
        except BranchyardError as err:
            return self._result(409, False, str(err))
        self._result(200, True, message)

    def _result(self, status: int, ok: bool, message: str) -> None:
        if "application/json" in self.headers.get("accept", ""):
            body = json.dumps({"ok": ok, "message": message}).encode()
            return self._reply(status, "application/json", body)
        if ok:
            return self._reply(303, "text/plain", message.encode(),
                               f"Location: {self.scope.base}/\r\n")
        page = render.page(self.scope.title, self.scope.base, "",
                           f"<main><p class=error>{escape(message)}</p><p><a href="
                           f"'{self.scope.base}/'>back to the dashboard</a></p></main>",
                           stream="")
        self._reply(status, "text/html; charset=utf-8", page.encode())

    def _reply(self, status: int, ctype: str, body: bytes, extra: str = "") -> None:
        head = (f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n{SECURITY}{extra}"
                "Connection: close\r\n\r\n").encode()
        self._write(head + (b"" if self.method == "HEAD" else body))
        self.conn.transport.close()

    def _write(self, data: bytes) -> bool:
        transport = self.conn.transport
        if transport.is_closing():
            return False
        if transport.get_write_buffer_size() > (1 << 20):
            transport.abort()  # a page that stopped reading
            return False
        transport.write(data)
        return True


class _NotFoundError(BranchyardError):
    code = "dashboard_not_found"
