"""The dashboard's side of the proxy: which requests are its own, and the shared
state behind them (the last reading of the yard, the sessions, the watchers)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from branchyard.dashboard.collect import SizeCache, collect_yard
from branchyard.dashboard.guard import Sessions
from branchyard.dashboard.hub import Hub
from branchyard.dashboard.model import Yard
from branchyard.proxy.http import Request
from branchyard.proxy.registry import registry_path
from branchyard.proxy.routes import normalize_host

if TYPE_CHECKING:
    from branchyard.dashboard.exchange import Exchange
    from branchyard.proxy.client import ClientConnection
    from branchyard.proxy.server import ProxyServer

PREFIX = "/_branchyard"
MACHINE_LABEL = "branchyard"


@dataclass(frozen=True)
class Scope:
    """What one dashboard host shows: one repository, or (``common_dir`` "") all."""

    title: str
    base: str  # path prefix of the dashboard's own URLs
    common_dir: str = ""
    host: str = ""  # the dashboard host (no port)

    def filter(self, yard: Yard) -> Yard:
        if not self.common_dir:
            return yard
        return replace(yard, repos=tuple(r for r in yard.repos
                                         if r.common_dir == self.common_dir))


class Dashboard:
    def __init__(self, server: ProxyServer) -> None:
        self.server = server
        self.sessions = Sessions()
        self.sizes = SizeCache()
        self.hub = Hub(self)
        self.registry_file = registry_path()
        self.yard: Yard | None = None
        self._read_at = 0.0
        self._reading = asyncio.Lock()

    def claims(self, req: Request) -> Scope | None:
        """The scope of a dashboard request; None for every request of an app.

        Cheap for those: a string test on the host and the request line."""
        host = normalize_host(req.host)
        if host.startswith(MACHINE_LABEL + "."):
            tld = host[len(MACHINE_LABEL) + 1:]
            if tld in self._tlds():
                return Scope("branchyard", "", host=host)
        if not req.target.startswith(PREFIX.encode()):
            return None  # an app's path (an absolute-form target has none of ours either)
        target = req.target.decode("latin-1")
        if not (target == PREFIX or target.startswith((PREFIX + "/", PREFIX + "?"))):
            return None
        for site in self.server.routes.sites():
            backend = site.hosts.get(host)
            if backend is not None and not backend.subdomain and not backend.service:
                return Scope(f"{site.project} · branchyard", PREFIX, str(site.common_dir),
                             host)
        return None

    def _tlds(self) -> set[str]:
        return {"localhost", *(s.tld for s in self.server.routes.sites())}

    def open(self, conn: ClientConnection, req: Request, rest: bytes,
             scope: Scope) -> Exchange:
        from branchyard.dashboard.exchange import Exchange

        return Exchange(self, conn, req, rest, scope)

    async def current(self, max_age: float = 1.0) -> Yard:
        """The yard as read at most ``max_age`` seconds ago (reads run one at a time,
        in a thread: the proxy's loop never waits on git or a database)."""
        async with self._reading:
            if self.yard is not None and time.monotonic() - self._read_at <= max_age:
                return self.yard
            dirs = [Path(s.common_dir) for s in self.server.routes.sites()]
            self.yard = await asyncio.to_thread(collect_yard, dirs, self.sizes)
            self._read_at = time.monotonic()
            return self.yard
