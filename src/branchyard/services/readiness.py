"""Readiness checks: is a service answering on its port yet?"""

from __future__ import annotations

import socket

CHECK_TIMEOUT = 0.5


def is_ready(check: str, port: int) -> bool:
    """``tcp``: the port accepts a connection; ``http:/path``: a GET of the path gets
    an HTTP response below 500. Nothing to check (``""``) is ready."""
    if not check:
        return True
    if not port:
        return False
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=CHECK_TIMEOUT) as sock:
            if check == "tcp":
                return True
            path = check.removeprefix("http:") or "/"
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
                         "User-Agent: branchyard-readiness\r\n\r\n".encode())
            head = sock.recv(64).decode("latin-1")
    except OSError:
        return False
    parts = head.split(" ", 2)
    return (len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit()
            and int(parts[1]) < 500)
