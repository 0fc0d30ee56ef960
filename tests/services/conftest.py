"""A project whose dev server is a tiny real Python HTTP server, in a real
worktree; every test ends whatever it started."""

from __future__ import annotations

import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from branchyard import api
from branchyard.services.status import ServiceState, list_services
from tests.conftest import git

SERVER = """\
import http.server, os, sys
port = int(os.environ["PORT"])
shared = open(".env.local").read().strip() if os.path.exists(".env.local") else ""
print(f"listening on {port} env={os.environ.get('SECRET')} file={shared}", flush=True)
print("a line on stderr", file=sys.stderr, flush=True)

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from the service"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        print("request", self.path, flush=True)

http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

BASE_CONFIG = f"""\
[project]
name = "svc"
[env]
shared = [".env.local"]
[hooks]
run = "{sys.executable} server.py"
[services]
backoff = 0.05
backoff_max = 0.2
stop_grace = 2
"""


@dataclass(frozen=True)
class Yard:
    main: Path
    worktree: Path
    branch: str

    def services(self) -> list[ServiceState]:
        return list_services(self.worktree)

    def service(self, name: str = "web") -> ServiceState:
        return next(s for s in list_services(self.worktree, (name,)) if s.name == name)

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0,
                 what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}: {self.services()}")

    def port(self) -> int:
        return int(api.env_of(self.worktree)["PORT"])


def http_get(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as resp:
        return resp.read().decode()


def make_yard(repo: Path, extra: str = "", branch: str = "feat/svc") -> Yard:
    (repo / "branchyard.toml").write_text(BASE_CONFIG + extra)
    (repo / "server.py").write_text(SERVER)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "service", cwd=repo)
    (repo / ".env.local").write_text("SECRET=one\n")
    result = api.up(api.UpRequest(branch, cwd=repo))
    return Yard(repo, Path(result.path), branch)


@pytest.fixture
def yard_factory(repo: Path) -> Iterator[Callable[..., Yard]]:
    made: list[Yard] = []

    def make(extra: str = "") -> Yard:
        made.append(make_yard(repo, extra))
        return made[-1]

    yield make
    for yard in made:
        api.stop_worktree(yard.worktree, grace=1.0)


@pytest.fixture
def yard(yard_factory: Callable[..., Yard]) -> Yard:
    return yard_factory()
