"""One connection from the proxy to an app: the app's responses framed and
relayed to the client connection that asked, a tunnel after ``101``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from branchyard.proxy.framing import (
    BadMessageError,
    BodyFramer,
    LengthFramer,
    UntilCloseFramer,
)
from branchyard.proxy.http import MAX_HEAD, parse_response
from branchyard.proxy.rewrite import closing_head
from branchyard.proxy.splice import SPLICE_MIN, Splice, can_splice

if TYPE_CHECKING:
    from branchyard.proxy.pool import UpstreamPool


class Downstream(Protocol):
    """What an upstream connection relays to and reports to: the client side."""

    transport: asyncio.Transport
    write_paused: bool  # the client is not taking our writes: do not read meanwhile

    def response_done(self, keep: bool) -> None:
        """The whole response went out; ``keep``: the app's connection goes on, so the
        client's may too."""

    def upstream_failed(self, up: Upstream, reason: str, head_sent: bool) -> None:
        """No (complete) response will come; ``head_sent``: part of one went out."""

    def upstream_closed(self, clean: bool) -> None:
        """The app closed the connection after part of an answer went out; ``clean``:
        that close is the answer's end (a tunnel's, an until-close body's)."""

    def start_tunnel(self) -> None:
        """The app switched protocols: from now on bytes go both ways untouched."""

    def pause_for_upstream(self) -> None:
        """The app is not taking the request's bytes: stop reading them."""

    def resume_for_upstream(self) -> None: ...


class Upstream(asyncio.Protocol):
    """One connection to an app; forwards its responses to the attached client."""

    __slots__ = ("body", "buf", "client", "client_close", "got_bytes", "head_sent",
                 "idle_since", "method", "paused", "pool", "port", "response_keep", "reused",
                 "splice", "transport", "tunnel", "upgrade")

    def __init__(self, pool: UpstreamPool, port: int, transport: asyncio.Transport) -> None:
        self.pool = pool
        self.port = port
        self.transport = transport
        transport.set_write_buffer_limits(high=1 << 20)
        self.client: Downstream | None = None
        self.buf = b""
        self.body: BodyFramer | None = None
        self.method = b"GET"
        self.upgrade = False
        self.client_close = False
        self.tunnel = False
        self.head_sent = False
        self.got_bytes = False
        self.response_keep = True
        self.reused = False
        self.paused = False
        self.idle_since = 0.0
        self.splice: Splice | None = None

    def begin(self, client: Downstream, method: bytes, upgrade: bool,
              close: bool) -> None:
        """Attach to a client for one request/response exchange; ``close``: the
        client's last (its ``Connection: close`` was not passed on)."""
        self.client = client
        self.method = method
        self.upgrade = upgrade
        self.client_close = close
        self.body = None
        self.buf = b""
        self.head_sent = self.got_bytes = False
        if client.write_paused:  # the client is not reading yet: neither do we
            self.pause_reading()

    def pause_reading(self) -> None:
        """The client is not taking what we relay: stop reading the app meanwhile."""
        if not self.paused:
            self.paused = True
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.paused:
            self.paused = False
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client is None:  # an idle pooled connection must not talk
            self.transport.close()
            return
        self.got_bytes = True
        if self.tunnel:
            client.transport.write(data)
            return
        body = self.body
        if body is not None:
            try:
                end = body.consume(data, 0)
            except BadMessageError as err:
                self._fail(client, str(err))
                return
            if end < 0:
                client.transport.write(data)
                return
            client.transport.write(data[:end] if end < len(data) else data)
            self._done(client, end < len(data))
            return
        self._head_received(client, self.buf + data if self.buf else data)

    def _head_received(self, client: Downstream, data: bytes) -> None:
        pos = 0
        while True:
            end = data.find(b"\r\n\r\n", pos)
            if end < 0:
                self.buf = data[pos:]
                if len(self.buf) > MAX_HEAD:
                    self._fail(client, "response head too large")
                return
            head_end = end + 4
            try:
                resp = parse_response(data[pos:head_end], self.method)
            except BadMessageError as err:
                self._fail(client, str(err))
                return
            self.buf = b""
            self.head_sent = True
            if resp.status == 101 and self.upgrade:
                self.tunnel = True
                client.transport.write(data[pos:] if pos else data)
                client.start_tunnel()
                return
            if 100 <= resp.status < 200:  # interim (100 Continue…): another head follows
                client.transport.write(data[pos:head_end])
                pos = head_end
                continue
            self.response_keep = resp.keep_alive
            if self.client_close:  # the app was asked to keep its connection open
                head = closing_head(data[pos:head_end])
                data, head_end, pos = head + data[head_end:], len(head), 0
            self.body = resp.body
            if resp.body is None:
                client.transport.write(data[pos:head_end])
                self._done(client, head_end < len(data))
                return
            self.body = None  # consumed below via the body path
            self._body_start(client, resp.body, data[pos:], head_end - pos)
            return

    def _body_start(self, client: Downstream, body: BodyFramer, data: bytes,
                    start: int) -> None:
        try:
            end = body.consume(data, start)
        except BadMessageError as err:
            self._fail(client, str(err))
            return
        if end < 0:
            self.body = body
            client.transport.write(data)
            if (isinstance(body, LengthFramer) and body.remaining >= SPLICE_MIN
                    and can_splice(self.transport, client.transport)):
                self.splice = Splice(self.pool.loop, self.transport, client.transport,
                                     body.remaining, self._spliced)
            return
        client.transport.write(data[:end] if end < len(data) else data)
        self._done(client, end < len(data))

    def _spliced(self, ok: bool) -> None:
        self.splice = None
        client = self.client
        if client is None:
            return
        if ok:
            self._done(client, extra=False)
        else:
            self._fail(client, "the app closed the connection mid-body")

    def cut(self) -> bool:
        """Drop the exchange at once (the client's request went wrong); True when part
        of the answer went out already, so the client's connection must go too."""
        self.client = None
        self.transport.abort()
        return self.head_sent

    def abandon(self) -> None:
        """The client went away mid-exchange: this connection cannot be reused."""
        self.client = None
        if self.splice is not None:
            self.splice.cancel()
            self.splice = None
        self.transport.close()

    def _done(self, client: Downstream, extra: bool) -> None:
        keep = self.response_keep and not extra
        self.body = None
        self.client = None
        self.pool.release(self, keep)
        client.response_done(keep)

    def _fail(self, client: Downstream, reason: str) -> None:
        self.client = None
        self.transport.abort()
        client.upstream_failed(self, reason, self.head_sent)

    def eof_received(self) -> bool:
        """In a tunnel, pass a half-close on to the client and keep the other way open."""
        client = self.client
        if self.tunnel and client is not None and client.transport.can_write_eof():
            client.transport.write_eof()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self.splice is not None:
            self.splice.cancel()
            self.splice = None
        client, self.client = self.client, None
        self.pool.discard(self)
        if client is None:
            return
        if self.tunnel or (self.body is not None and self.head_sent):
            client.upstream_closed(clean=self.tunnel or isinstance(self.body, UntilCloseFramer))
            return
        client.upstream_failed(self, "the app closed the connection"
                               if exc is None else str(exc), self.head_sent)

    def pause_writing(self) -> None:
        if self.client is not None:
            self.client.pause_for_upstream()

    def resume_writing(self) -> None:
        if self.client is not None:
            self.client.resume_for_upstream()
