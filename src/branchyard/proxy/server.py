"""The reverse proxy itself: a listener on loopback and its route table.

Each client connection is one :class:`~branchyard.proxy.client.ClientConnection`;
each app connection one :class:`~branchyard.proxy.upstream.Upstream`, pooled.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Coroutine
from typing import Any

from branchyard.proxy.client import HEAD_DEADLINE, ClientConnection
from branchyard.proxy.connection import Connection
from branchyard.proxy.handover import Handover
from branchyard.proxy.hooks import HandlerFactory, RequestHandler
from branchyard.proxy.marks import LoopMarks
from branchyard.proxy.pool import UpstreamPool
from branchyard.proxy.routes import RouteTable

SWEEP_INTERVAL = 10.0


class ProxyServer:
    """Listens on loopback and routes each request by its Host header."""

    def __init__(self, routes: RouteTable, port: int, *, host: str = "127.0.0.1",
                 tls: ssl.SSLContext | None = None,
                 handler: HandlerFactory | None = None) -> None:
        """Made on the running loop it is to serve on. ``handler`` makes what answers
        the requests that are not the apps' (the dashboard's); without one, every
        request goes to an app."""
        self.loop = asyncio.get_running_loop()
        self.routes = routes
        self.host = host
        self.port = port
        self.tls = tls
        self.proto = b"https" if tls else b"http"
        self.head_deadline = HEAD_DEADLINE
        self.marks = LoopMarks()
        self.pool = UpstreamPool(self.loop)
        self.connections: set[Connection] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._server_v6: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.handler: RequestHandler | None = handler(self) if handler is not None else None

    async def start(self) -> None:
        """Bind and start serving; OSError if the port cannot be bound."""
        self._server = await self._listen(self.host)
        self.port = self._server.sockets[0].getsockname()[1]
        if self.host == "127.0.0.1":  # browsers may try ::1 first for *.localhost
            with contextlib.suppress(OSError):  # no IPv6 loopback here: IPv4 is enough
                self._server_v6 = await self._listen("::1")
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL, self._sweep)

    async def _listen(self, host: str) -> asyncio.Server:
        return await self.loop.create_server(
            lambda: Handover(self._connection), host, self.port, ssl=self.tls,
            backlog=2048, reuse_address=True)

    def _connection(self, transport: asyncio.Transport) -> ClientConnection:
        return ClientConnection(self, transport)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        servers = [s for s in (self._server, self._server_v6) if s is not None]
        for server in servers:
            server.close()
        for conn in list(self.connections):
            conn.transport.abort()
        self.pool.close()
        for server in servers:
            await server.wait_closed()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def site_list(self) -> list[tuple[str, str]]:
        """(url, branch) of every live worktree, for the 404 page."""
        from branchyard.core.identity import worktree_url

        out: list[tuple[str, str]] = []
        for site in self.routes.sites():
            for backend in site.hosts.values():
                if backend.service:
                    continue
                url = worktree_url(backend.subdomain or None, site.project,
                                   port=self.port, https=self.tls is not None, tld=site.tld)
                out.append((url, backend.branch))
        return out

    def _sweep(self) -> None:
        for conn in list(self.connections):
            conn.tick()
        self.pool.sweep()
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL, self._sweep)
