"""The proxy process itself (`branchyard proxy run`): serves until SIGTERM or
SIGINT, and owns the pid file meanwhile."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

from branchyard.proxy.bind import bind_error
from branchyard.proxy.daemon import (
    ProxySettings,
    proxy_dir,
    remove_own_pid_file,
    write_pid_file,
)

if TYPE_CHECKING:
    from branchyard.proxy.hooks import HandlerFactory


def run_proxy(settings: ProxySettings, handler: HandlerFactory | None = None) -> None:
    """Serve in the foreground until SIGTERM/SIGINT; owns the pid file meanwhile.
    ``handler``: what answers the requests that are not the apps' (the dashboard)."""
    from branchyard.proxy.loop import new_event_loop

    loop = new_event_loop()
    try:
        loop.run_until_complete(_serve(settings, handler))
    finally:
        loop.close()


async def _serve(settings: ProxySettings, handler: HandlerFactory | None) -> None:
    from branchyard.proxy.registry import known_repos, registry_path
    from branchyard.proxy.routes import RouteTable
    from branchyard.proxy.server import ProxyServer

    routes = RouteTable(known_repos, registry_path())
    tls = None
    if settings.https:
        from branchyard.proxy.tls import server_context

        tls = server_context(proxy_dir() / "tls", routes.serves_name)
    server = ProxyServer(routes, settings.port, host=settings.host, tls=tls, handler=handler)
    try:
        await server.start()
    except OSError as exc:
        raise bind_error(settings.port, exc) from exc
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    write_pid_file(server.port, settings.https)
    try:
        await stop.wait()
    finally:
        remove_own_pid_file()
        await server.close()
