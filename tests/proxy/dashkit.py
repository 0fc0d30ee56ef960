"""A yard for the dashboard tests: a repository with two real worktrees set up in
the ledger, and a client for the dashboard's pages, forms and event streams."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

from proxykit import add_worktree, read_response, request

from branchyard.ledger import WorktreeRecord


def two_worktrees(repo: Path, common_dir: Path) -> list[WorktreeRecord]:
    made = []
    for branch, port in (("feat/alpha", 0), ("feat/beta", 0)):
        path = repo.parent / f"app.{branch.split('/')[1]}"
        subprocess.run(["git", "worktree", "add", "-q", "-b", branch, str(path)], cwd=repo,
                       check=True)
        made.append(add_worktree(common_dir, branch, {"PORT": port or free_port()},
                                 path=path))
    return made


def free_port() -> int:
    from proxykit import listen_port

    return listen_port()


class Session:
    """One browser-like session on a dashboard host: its cookie and token."""

    def __init__(self, port: int, host: str = "app.localhost", base: str = "/_branchyard"):
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
        self.sock.close()


__all__ = ["EventReader", "Session", "read_response", "two_worktrees"]
