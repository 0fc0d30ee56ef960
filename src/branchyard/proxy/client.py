"""One client connection's requests: parse each head, pick a backend, forward.

Requests are parsed only as far as routing and framing need; bodies and
responses are forwarded as they arrive, with flow control both ways, and after
a ``101 Switching Protocols`` bytes are spliced untouched (WebSockets).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from branchyard.proxy import pages
from branchyard.proxy.connection import (
    BODY,
    CLOSED,
    CONNECTING,
    HANDED,
    HEAD,
    TUNNEL,
    WAIT,
    Connection,
)
from branchyard.proxy.framing import BadMessageError, BodyFramer, LengthFramer
from branchyard.proxy.http import MAX_HEAD, Request, check_partial_head, parse_request
from branchyard.proxy.rewrite import forwarded_head
from branchyard.proxy.splice import SPLICE_MIN, Splice, can_splice
from branchyard.proxy.upstream import Upstream

if TYPE_CHECKING:
    from branchyard.proxy.hooks import Exchange

MAX_BUFFER = 1 << 20  # bytes of a pipelined next request held before reading pauses
HEAD_DEADLINE = 10.0  # seconds a request head may take in all, however it trickles in


class ClientConnection(Connection):
    """Reads a client's requests and relays each to its app, or to a handler."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        self.active = True
        state = self.state
        if state == BODY:
            self._body(data)
        elif state == TUNNEL:
            cast(Upstream, self.upstream).transport.write(data)
        elif state == HEAD:
            if self.buf:
                self._heads(self.buf + data, len(self.buf))
            else:
                self._heads(data)
        elif state == HANDED:
            cast("Exchange", self.handed).feed(data)  # imported for type checking only
        elif state != CLOSED:
            self.buf += data
            if len(self.buf) > MAX_BUFFER:
                self.paused_buffer = True
                self._update_reading()

    def _heads(self, data: bytes, seen: int = 0) -> None:
        """``seen``: bytes of ``data`` that arrived before (and were checked then)."""
        if data[:1] in (b"\r", b"\n"):  # stray CRLFs between requests are allowed
            data, seen = data.lstrip(b"\r\n"), 0
        end = data.find(b"\r\n\r\n", seen - 3 if seen > 3 else 0)
        if end < 0:
            self._partial_head(data, seen)
            return
        self.buf = b""
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        try:
            req = parse_request(data[:end + 4])
        except BadMessageError as err:
            self._reply(pages.bad_request(str(err)))
            return
        self._route(req, data[end + 4:])

    def _partial_head(self, data: bytes, seen: int) -> None:
        try:
            check_partial_head(data, seen)
        except BadMessageError as err:
            self._reply(pages.bad_request(str(err)))
            return
        if len(data) > MAX_HEAD:
            self._reply(pages.response(431, "Request head too large",
                                       "<p>The request head exceeds 64 KiB.</p>"))
            return
        self.buf = data
        if data and self.head_timer is None:  # one deadline for the whole head, not per read
            self.head_timer = self.server.loop.call_later(self.server.head_deadline,
                                                          self._head_expired)

    def _head_expired(self) -> None:
        self.head_timer = None
        if self.state == HEAD and self.buf:
            self._reply(pages.response(408, "Request timeout", (
                f"<p>The request head took longer than {self.server.head_deadline:g} s "
                "to arrive.</p>")))

    def _route(self, req: Request, rest: bytes) -> None:
        server = self.server
        handler = server.handler
        scope = handler.claims(req) if handler is not None else None
        if handler is not None and scope is not None:
            self.state = HANDED
            self.handed = handler.open(self, req, rest, scope)
            return
        backend = server.routes.resolve(req.host)
        if (req.loop_marks and server.marks.looped(req.loop_marks)) or (
                backend is not None and backend.port == server.port):
            self._reply(pages.loop_detected(req.host))
            return
        if backend is None:
            self._reply(pages.not_found(req.host, server.site_list()))
            return
        self.req, self.backend = req, backend
        self.req_done = req.body is None
        up = server.pool.acquire(backend.port)
        if up is None:
            self.state = CONNECTING
            self.buf = rest
            server.spawn(self._connect(req, backend.port))
        else:
            self._send(up, req, rest)

    async def _connect(self, req: Request, port: int) -> None:
        try:
            up = await self.server.pool.connect(port)
        except OSError as exc:
            if self.state == CONNECTING and self.backend is not None:
                self._reply(pages.bad_gateway(self.backend, exc.strerror or str(exc)))
            return
        if self.state != CONNECTING:  # the client went away meanwhile
            self.server.pool.release(up, keep=True)
            return
        rest, self.buf = self.buf, b""
        self._send(up, req, rest)

    def _send(self, up: Upstream, req: Request, rest: bytes) -> None:
        self.upstream = up
        up.begin(self, req.method, req.upgrade, req.close)
        server = self.server
        if self.mark:
            server.marks.release(self.mark)
        self.mark, line = server.marks.take()
        up.transport.write(forwarded_head(req, self.ip, server.proto, line))
        if self.req_done:
            self.state = WAIT
            self.buf = rest
        else:
            self.state = BODY
            if rest:
                self._body(rest)
            self._start_upload_splice(up, req.body)
        if self.paused_buffer and len(self.buf) <= MAX_BUFFER:  # held while connecting
            self.paused_buffer = False
            self._update_reading()

    def _start_upload_splice(self, up: Upstream, body: BodyFramer | None) -> None:
        if (self.state == BODY and isinstance(body, LengthFramer)
                and body.remaining >= SPLICE_MIN and can_splice(self.transport,
                                                               up.transport)):
            self.splice = Splice(self.server.loop, self.transport, up.transport,
                                 body.remaining, partial(self._spliced, body))

    def _spliced(self, body: LengthFramer, ok: bool) -> None:
        """A large upload went to the app without passing through Python."""
        self.splice = None
        if not ok:
            self._abandon_upstream()
            self.transport.abort()
            return
        body.remaining = 0
        self.req_done = True
        self.state = WAIT
        self._update_reading()

    def _body(self, data: bytes) -> None:
        req = cast(Request, self.req)
        up = cast(Upstream, self.upstream)
        try:
            end = cast(BodyFramer, req.body).consume(data, 0)
        except BadMessageError as err:
            self._abandon_upstream()
            self._reply(pages.bad_request(str(err)))
            return
        if end < 0:
            up.transport.write(data)
            return
        up.transport.write(data[:end] if end < len(data) else data)
        self.req_done = True
        self.state = WAIT
        self.buf = data[end:]

    def response_done(self, keep: bool) -> None:
        """The app finished its response; the upstream went back to the pool."""
        self.upstream = None
        self._forget_mark()
        req = self.req
        if not keep or not self.req_done or req is None or not req.keep_alive or self.eof:
            self._close()
            return
        self.state = HEAD
        if self.paused_buffer or self.paused_upstream:
            self.paused_buffer = self.paused_upstream = False
            self._update_reading()
        if self.buf:
            data, self.buf = self.buf, b""
            self._heads(data)

    def upstream_failed(self, up: Upstream, reason: str, head_sent: bool) -> None:
        self.upstream = None
        self._forget_mark()
        req = self.req
        if self.state == CLOSED or req is None:
            return
        if head_sent:
            self.transport.abort()
        elif up.reused and not up.got_bytes and req.body is None and not req.upgrade:
            # a pooled connection the app had just closed: retry once, fresh
            self.state = CONNECTING
            self.server.spawn(self._connect(req, up.port))
        elif self.backend is not None:
            self._reply(pages.bad_gateway(self.backend, reason))

    def upstream_closed(self, clean: bool) -> None:
        self.upstream = None
        if clean:
            self._close()
        else:
            self.transport.abort()

    def start_tunnel(self) -> None:
        self.state = TUNNEL
        if self.buf and self.upstream is not None:
            self.upstream.transport.write(self.buf)
        self.buf = b""
        if self.paused_buffer:
            self.paused_buffer = False
            self._update_reading()
