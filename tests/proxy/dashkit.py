"""A yard for the dashboard tests: a repository with two real worktrees set up in
the ledger, and a client for the dashboard's pages, forms and event streams."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

from proxykit import add_worktree, listen_port, read_response, request

from branchyard.ledger import WorktreeRecord


def two_worktrees(repo: Path, common_dir: Path) -> list[WorktreeRecord]:
    """``feat/alpha`` and ``feat/beta``: real git worktrees, recorded as `setup` does."""
    made = []
    for branch in ("feat/alpha", "feat/beta"):
        path = repo.parent / f"app.{branch.split('/')[1]}"
        subprocess.run(["git", "worktree", "add", "-q", "-b", branch, str(path)], cwd=repo,
                       check=True)
        made.append(add_worktree(common_dir, branch, {"PORT": listen_port()}, path=path))
    return made


class Session:
    """One browser-like session on a dashboard host: its cookie and token."""

    def __init__(self, port: int, host: str = "app.localhost",
                 base: str = "/_branchyard") -> None:
        self.port, self.host, self.base = port, host, base
        self.origin = f"http://{host}:{port}"
        self.cookie = ""
        self.token = ""

    def get(self, path: str = "/") -> tuple[int, dict[str, str], str]:
        headers = {"Cookie": self.cookie} if self.cookie else {}
        status, head, body = request(self.port, f"{self.host}:{self.port}",
                                     self.base + path, headers=headers)
        if "set-cookie" in head:
            self.cookie = head["set-cookie"].split(";")[0]
        found = re.search(r"name=branchyard-token content='([^']*)'", body.decode())
        if found:
            self.token = found.group(1)
        return status, head, body.decode()

    def post(self, fields: dict[str, str], *, origin: str | None = None,
             cookie: bool = True, accept: str = "application/json"
             ) -> tuple[int, dict[str, str], str]:
        headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": accept,
                   "Origin": self.origin if origin is None else origin}
        if not headers["Origin"]:
            del headers["Origin"]
        if cookie and self.cookie:
            headers["Cookie"] = self.cookie
        status, head, body = request(self.port, f"{self.host}:{self.port}",
                                     self.base + "/action", method="POST",
                                     body=urlencode(fields).encode(), headers=headers)
        return status, head, body.decode()


class EventReader:
    """A raw event-stream client: (event, data) as they arrive."""

    def __init__(self, port: int, host: str, path: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                          "Accept: text/event-stream\r\n\r\n".encode())
        self.reader = self.sock.makefile("rb")
        self.status = int(self.reader.readline().split()[1])
        while self.reader.readline() not in (b"\r\n", b""):
            pass

    def next(self, timeout: float = 10.0) -> tuple[str, str]:
        self.sock.settimeout(timeout)
        name, data = "message", []
        while True:
            line = self.reader.readline().decode().rstrip("\n")
            if line == "" and (data or name != "message"):
                return name, "\n".join(data)
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])

    def until(self, check: str, timeout: float) -> float:
        """Seconds until an event whose data contains ``check`` arrived."""
        start = time.monotonic()
        while True:
            left = timeout - (time.monotonic() - start)
            assert left > 0, f"no event with {check!r} within {timeout} s"
            _, data = self.next(left)
            if check in data:
                return time.monotonic() - start

    def close(self) -> None:
        self.reader.close()  # the socket's file object holds the connection open too
        self.sock.close()


SERVER = """\
import http.server, os, sys, time
port = int(os.environ["PORT"])
print(f"listening on {port}", flush=True)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print(f"saw {self.path}", flush=True)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

CONFIG = f"""\
[project]
name = "svc"
[hooks]
run = "{sys.executable} server.py"
[services]
backoff = 0.05
backoff_max = 0.2
stop_grace = 2
[services.web]
command = "{sys.executable} server.py"
port = "PORT"
ready = "http:/"
"""


def service_state(path: Path, name: str = "web") -> str:
    from branchyard.services.status import list_services

    return next((s.state for s in list_services(path, (name,)) if s.name == name), "")


def services_worktrees(repo: Path) -> Iterator[list[Path]]:
    """Two worktrees made by `up` in a project whose `web` service is a tiny
    real HTTP server that prints what it serves; every service ends afterwards."""
    from branchyard import api
    from tests.conftest import git

    (repo / "branchyard.toml").write_text(CONFIG)
    (repo / "server.py").write_text(SERVER)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "a service", cwd=repo)
    paths = [Path(api.up(api.UpRequest(b, cwd=repo)).path) for b in ("feat/alpha", "feat/beta")]
    yield paths
    for path in paths:
        api.stop_worktree(path, grace=1.0)


__all__ = ["EventReader", "Session", "read_response", "service_state", "services_worktrees",
           "two_worktrees"]
