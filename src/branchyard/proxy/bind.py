"""Whether the proxy's port can be bound, and what a failed bind tells the user:
the process holding the port, or the privilege a low port needs."""

from __future__ import annotations

import errno
import socket
import sys

from branchyard.core.errors import ProxyError


def check_port_free(host: str, port: int) -> None:
    """Raise ProxyError naming the process that holds the port, or the privilege needed."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise bind_error(port, exc) from exc


def bind_error(port: int, exc: OSError) -> ProxyError:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ProxyError(
            f"binding port {port} needs privileges this user does not have",
            hint="keep the default port 1355, or allow low ports once with "
                 "`sudo sysctl -w net.ipv4.ip_unprivileged_port_start=80` (Linux) "
                 f"or `sudo setcap cap_net_bind_service=+ep {sys.executable}`")
    if exc.errno == errno.EADDRINUSE:
        return ProxyError(f"port {port} is already in use by {port_holder(port)}",
                          hint="stop that process, or set another port under [proxy] "
                               "port in branchyard.toml")
    return ProxyError(f"cannot listen on port {port}: {exc.strerror or exc}")


def port_holder(port: int) -> str:
    """``pid 123 (python3 -m http.server)`` for whatever listens on ``port``."""
    import psutil

    try:
        conns = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return "another process (not visible to this user)"
    for conn in conns:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if not conn.pid:
                return "another user's process"
            try:
                cmd = " ".join(psutil.Process(conn.pid).cmdline()) or "?"
            except psutil.Error:
                cmd = "?"
            return f"pid {conn.pid} ({cmd[:120]})"
    return "another process"
