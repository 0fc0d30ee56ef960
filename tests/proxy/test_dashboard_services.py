"""The dashboard's services section against the real supervisor: a good POST
starts a service, its state and log lines reach the page."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashkit import EventReader, Session
from proxykit import ProxyThread

pytest.importorskip("branchyard.services", reason="the services feature (h/services) is "
                                                  "not in this tree")

from branchyard import api
from tests.conftest import git

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


def wait(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def services_yard(repo: Path) -> Iterator[list[Path]]:
    (repo / "branchyard.toml").write_text(CONFIG)
    (repo / "server.py").write_text(SERVER)
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "a service", cwd=repo)
    paths = [Path(api.up(api.UpRequest(b, cwd=repo)).path) for b in ("feat/alpha", "feat/beta")]
    yield paths
    for path in paths:
        api.stop_worktree(path, grace=1.0)


def test_a_good_post_starts_the_service_and_the_page_sees_it_ready(
        services_yard: list[Path], proxy: ProxyThread) -> None:
    alpha, beta = services_yard
    session = Session(proxy.port, "svc.localhost")
    status, _, body = session.get("/")
    assert status == 200
    assert body.count("<button name=op value=start>start</button>") == 2  # web, stopped
    events = EventReader(proxy.port, "svc.localhost", "/_branchyard/events")
    try:
        events.next()
        status, _, reply = session.post({"token": session.token, "wt": str(alpha),
                                         "svc": "web", "op": "start"})
        assert status == 200, reply
        assert json.loads(reply) == {"ok": True,
                                     "message": f"started web in {alpha.name}"}
        wait(lambda: service_state(alpha) == "ready", "web to be ready")
        events.until("<span class='svc-state s-ready'>ready</span>", timeout=5)
        _, _, page = session.get("/")
        card = page.split(f"data-worktree='{alpha}'")[1].split("</article>")[0]
        assert "<span class='svc-state s-ready'>ready</span>" in card
        assert service_state(beta) == "stopped"  # only the worktree asked for
    finally:
        events.close()


def test_a_refused_post_runs_nothing(services_yard: list[Path], proxy: ProxyThread) -> None:
    alpha, _ = services_yard
    session = Session(proxy.port, "svc.localhost")
    session.get("/")
    status, _, _ = session.post({"token": session.token, "wt": str(alpha), "svc": "web",
                                 "op": "start"}, origin="http://evil.example")
    assert status == 403
    time.sleep(0.5)  # what a started supervisor would take to record the service
    assert service_state(alpha) == "stopped"


def test_the_logs_view_follows_new_lines(services_yard: list[Path], proxy: ProxyThread,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import urllib.request

    from branchyard.cli.main import main

    alpha, _ = services_yard
    monkeypatch.chdir(alpha.parent / "app")
    assert main(["start", "feat/alpha"]) == 0
    wait(lambda: service_state(alpha) == "ready", "web to be ready")
    session = Session(proxy.port, "svc.localhost")
    from urllib.parse import quote

    status, _, page = session.get(f"/logs?wt={quote(str(alpha), safe='')}&svc=web")
    assert status == 200 and "listening on" in page
    stream = page.split("data-stream='")[1].split("'")[0].replace("&amp;", "&")
    events = EventReader(proxy.port, "svc.localhost", stream)
    try:
        port = int(api.env_of(alpha)["PORT"])
        urllib.request.urlopen(f"http://127.0.0.1:{port}/hello-dashboard", timeout=5).read()
        events.until("saw /hello-dashboard", timeout=5)
    finally:
        events.close()
