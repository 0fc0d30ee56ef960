"""What the proxy hands requests to besides the apps: the dashboard, plugged in
by whoever starts the proxy (``branchyard proxy run``), so the proxy itself
stays below the command families it does not import."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from branchyard.proxy.client import ClientConnection
    from branchyard.proxy.http import Request
    from branchyard.proxy.server import ProxyServer


class Exchange(Protocol):
    """One request the proxy handed over: it gets the connection's bytes."""

    def feed(self, data: bytes) -> None: ...

    def lost(self) -> None: ...


class RequestHandler(Protocol):
    def claims(self, req: Request) -> Any | None:
        """A scope when this handler answers ``req`` (None: the apps' request)."""
        ...

    def open(self, conn: ClientConnection, req: Request, rest: bytes,
             scope: Any) -> Exchange: ...


HandlerFactory = Callable[["ProxyServer"], RequestHandler]
