"""Idle keep-alive connections to the apps, by port, so a request rarely connects."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import cast

from branchyard.proxy.handover import Handover
from branchyard.proxy.upstream import Upstream

MAX_IDLE_PER_PORT = 64
IDLE_TIMEOUT = 30.0
HOSTS = ("127.0.0.1", "::1")  # dev servers on Node often listen on ::1 only


class UpstreamPool:
    """Idle keep-alive connections to apps, by port, so a request rarely connects."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._idle: dict[int, list[Upstream]] = {}
        self._hosts: dict[int, str] = {}

    def acquire(self, port: int) -> Upstream | None:
        idle = self._idle.get(port)
        while idle:
            conn = idle.pop()
            if not conn.transport.is_closing():
                conn.reused = True
                return conn
        return None

    def release(self, conn: Upstream, keep: bool) -> None:
        idle = self._idle.setdefault(conn.port, [])
        if not keep or conn.transport.is_closing() or len(idle) >= MAX_IDLE_PER_PORT:
            conn.transport.close()
            return
        conn.resume_reading()
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def discard(self, conn: Upstream) -> None:
        idle = self._idle.get(conn.port)
        if idle and conn in idle:
            idle.remove(conn)

    async def connect(self, port: int) -> Upstream:
        """A new connection to ``port`` on loopback (IPv4, then IPv6); OSError if none."""
        known = self._hosts.get(port)
        hosts = (known, *[h for h in HOSTS if h != known]) if known else HOSTS
        error: OSError = ConnectionRefusedError(f"connection to port {port} refused")
        for host in hosts:
            try:
                transport, _ = await self.loop.create_connection(
                    lambda: Handover(lambda t: Upstream(self, port, t)), host, port)
            except OSError as exc:
                error = exc
                continue
            self._hosts[port] = host
            return cast(Upstream, transport.get_protocol())  # what the handover made
        raise error

    def sweep(self) -> None:
        """Close connections idle for longer than ``IDLE_TIMEOUT``."""
        cutoff = time.monotonic() - IDLE_TIMEOUT
        for idle in self._idle.values():
            for conn in [c for c in idle if c.idle_since < cutoff]:
                idle.remove(conn)
                conn.transport.close()

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                with contextlib.suppress(RuntimeError):
                    conn.transport.close()
            idle.clear()
