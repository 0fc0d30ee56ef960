"""The dashboard's services section against the real supervisor: a good POST
starts a service, its state and log lines reach the page."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashkit import EventReader, Session, service_state, services_worktrees
from proxykit import ProxyThread, wait_for

from branchyard import api


@pytest.fixture
def services_yard(repo: Path) -> Iterator[list[Path]]:
    yield from services_worktrees(repo)


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
        wait_for(lambda: service_state(alpha) == "ready", timeout=20, what="web to be ready")
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
    wait_for(lambda: service_state(alpha) == "ready", timeout=20, what="web to be ready")
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
