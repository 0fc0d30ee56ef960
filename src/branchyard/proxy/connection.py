"""A client connection's lifetime, whatever its requests carry: its states,
reading paused and resumed both ways, replies that end it, half-closes, and the
close of an idle keep-alive connection.

What it does with each request is :class:`~branchyard.proxy.client.ClientConnection`'s.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from branchyard.proxy.backends import Backend
    from branchyard.proxy.hooks import Exchange
    from branchyard.proxy.http import Request
    from branchyard.proxy.server import ProxyServer
    from branchyard.proxy.splice import Splice
    from branchyard.proxy.upstream import Upstream

IDLE_TIMEOUT_TICKS = 30  # an idle keep-alive connection is closed after ~5 min (ticks of 10 s)

HEAD, BODY, WAIT, CONNECTING, TUNNEL, CLOSED, HANDED = range(7)  # HANDED: to a handler


class Connection(asyncio.Protocol):
    """One browser/client connection, from its transport to its end."""

    __slots__ = ("active", "backend", "buf", "eof", "handed", "head_timer", "idle_ticks", "ip",
                 "mark", "paused_buffer", "paused_upstream", "req", "req_done", "server",
                 "splice", "state", "transport", "upstream", "write_paused")

    def __init__(self, server: ProxyServer, transport: asyncio.Transport) -> None:
        self.server = server
        self.transport = transport
        transport.set_write_buffer_limits(high=1 << 20)
        peer = transport.get_extra_info("peername")
        self.ip = str(peer[0]).encode() if peer else b"127.0.0.1"
        self.state = HEAD
        self.buf = b""
        self.upstream: Upstream | None = None
        self.req: Request | None = None
        self.backend: Backend | None = None
        self.req_done = True
        self.write_paused = self.paused_buffer = self.paused_upstream = False
        self.active = True
        self.eof = False
        self.idle_ticks = 0
        self.splice: Splice | None = None
        self.head_timer: asyncio.TimerHandle | None = None
        self.handed: Exchange | None = None  # a request a handler (the dashboard) answers
        self.mark = b""  # the loop mark of the request at the app
        server.connections.add(self)

    def _abandon_upstream(self) -> None:
        up, self.upstream = self.upstream, None
        # part of the app's answer went out already: a 400 after it would corrupt it
        if up is not None and up.cut():
            self.transport.abort()

    def _reply(self, page: bytes) -> None:
        if self.state == CLOSED or self.transport.is_closing():
            return
        self.transport.write(page)
        self._close()

    def _forget_mark(self) -> None:
        if self.mark:
            self.server.marks.release(self.mark)
            self.mark = b""

    def _close(self) -> None:
        self._end()
        self.buf = b""
        self.transport.close()

    def _end(self) -> None:
        """What ends with the connection: a splice, its loop mark, the head timer."""
        self._cancel_splice()
        self._forget_mark()
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None
        self.state = CLOSED

    def _cancel_splice(self) -> None:
        if self.splice is not None:
            self.splice.cancel()
            self.splice = None

    def eof_received(self) -> bool:
        """The client half-closed: finish the exchange in flight, then close."""
        self.eof = True
        if self.state == TUNNEL and self.upstream is not None:
            if self.upstream.transport.can_write_eof():
                self.upstream.transport.write_eof()
            return True
        return self.state in (WAIT, CONNECTING) and self.req_done

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()
        self.server.connections.discard(self)
        if self.handed is not None:
            self.handed.lost()
        up, self.upstream = self.upstream, None
        if up is not None:  # the exchange is abandoned: the app connection cannot be reused
            up.abandon()

    def pause_writing(self) -> None:
        self.write_paused = True
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.upstream is not None:
            self.upstream.resume_reading()

    def pause_for_upstream(self) -> None:
        self.paused_upstream = True
        self._update_reading()

    def resume_for_upstream(self) -> None:
        self.paused_upstream = False
        self._update_reading()

    def _update_reading(self) -> None:
        if self.state == CLOSED or self.transport.is_closing() or self.splice is not None:
            return
        if self.paused_buffer or self.paused_upstream:
            self.transport.pause_reading()
        else:
            self.transport.resume_reading()

    def tick(self) -> None:
        """Called every ``SWEEP_INTERVAL``: close idle keep-alive connections."""
        if self.active:
            self.active, self.idle_ticks = False, 0
            return
        self.idle_ticks += 1
        if self.state == HEAD and not self.buf and self.idle_ticks >= IDLE_TIMEOUT_TICKS:
            self._close()
