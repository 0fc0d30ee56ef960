"""The dashboard over real HTTP: a real proxy on a free port, real worktrees."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest
from dashkit import EventReader, Session, two_worktrees
from proxykit import ProxyThread, add_worktree, read_response, request

from branchyard.dashboard.app import Dashboard


def test_page_lists_both_worktrees_with_their_state(
        repo: Path, common_dir: Path, proxy: ProxyThread) -> None:
    alpha, beta = two_worktrees(repo, common_dir)
    (Path(alpha.path) / "notes.txt").write_text("draft\n")
    session = Session(proxy.port)
    status, head, body = session.get("/")
    assert status == 200, body
    assert head["content-type"] == "text/html; charset=utf-8"
    assert head["x-frame-options"] == "DENY"  # no clickjacking of the buttons
    assert "frame-ancestors 'none'" in head["content-security-policy"]
    for rec in (alpha, beta):
        assert f"data-worktree='{rec.path}'" in body
        assert f"<span class=branch>{rec.branch}</span>" in body
        assert f"href='http://{rec.subdomain}.app.localhost:1355'" in body
        assert f"<code>PORT={rec.ports['PORT']}</code>" in body
    assert "<summary>1 file</summary><ul><li><code>notes.txt</code>" in body
    assert "main · <span title='commits not in main'>0 ahead</span>" in body
    assert "SameSite=Strict" in head["set-cookie"] and "HttpOnly" in head["set-cookie"]
    assert len(session.token) > 20 and session.cookie == f"branchyard_dashboard={session.token}"
    # the same session keeps its token; a new one gets another
    assert session.get("/")[1].get("set-cookie") is None
    assert Session(proxy.port).get("/")[1]["set-cookie"] != head["set-cookie"]


def test_machine_wide_dashboard_shows_every_repository(
        repo: Path, common_dir: Path, proxy: ProxyThread, tmp_path: Path) -> None:
    from tests.conftest import make_repo

    two_worktrees(repo, common_dir)
    other = make_repo(tmp_path / "shop")
    add_worktree((other / ".git").resolve(), "feat/cart", {"PORT": 41999},
                 path=other)
    status, _, body = Session(proxy.port, "branchyard.localhost", "").get("/")
    assert status == 200
    assert "<h2>app <small>" in body and "<h2>shop <small>" in body
    assert body.count("<article class=wt") == 4  # app: main + 2; shop: its entry
    # a project's own dashboard shows only that project
    _, _, own = Session(proxy.port).get("/")
    assert "<h2>shop" not in own and own.count("<article class=wt") == 3


def test_an_app_keeps_its_own_paths(repo: Path, common_dir: Path,
                                    proxy: ProxyThread) -> None:
    alpha, _ = two_worktrees(repo, common_dir)
    # a worktree's host is the app's, even under /_branchyard: nothing listens → 502
    status, head, _ = request(proxy.port, f"{alpha.subdomain}.app.localhost",
                              "/_branchyard/")
    assert status == 502 and head["x-branchyard-proxy-error"] == "502"
    status, _, _ = request(proxy.port, "app.localhost", "/_branchyardish")
    assert status == 502


def test_a_ledger_change_reaches_an_open_page_within_a_second(
        repo: Path, common_dir: Path, proxy: ProxyThread) -> None:
    two_worktrees(repo, common_dir)
    events = EventReader(proxy.port, "app.localhost", "/_branchyard/events")
    try:
        assert events.status == 200
        name, first = events.next()
        assert name == "yard" and "feat/alpha" in first and "feat/gamma" not in first
        gamma = repo.parent / "app.gamma"
        subprocess.run(["git", "worktree", "add", "-q", "-b", "feat/gamma", str(gamma)],
                       cwd=repo, check=True)
        add_worktree(common_dir, "feat/gamma", {"PORT": 41998}, path=gamma)
        events.until("<span class=branch>feat/gamma</span>", timeout=1.0)
    finally:
        events.close()


def test_cross_site_posts_are_refused(repo: Path, common_dir: Path,
                                      proxy: ProxyThread) -> None:
    alpha, _ = two_worktrees(repo, common_dir)
    session = Session(proxy.port)
    session.get("/")
    form = {"token": session.token, "wt": alpha.path, "svc": "web", "op": "start"}
    refusals = {
        "another site": session.post(form, origin="http://evil.example"),
        "another port": session.post(form, origin=f"http://app.localhost:{proxy.port + 1}"),
        "an app's origin": session.post(
            form, origin=f"http://{alpha.subdomain}.app.localhost:{proxy.port}"),
        "no Origin": session.post(form, origin=""),
        "no token": session.post({**form, "token": ""}),
        "a wrong token": session.post({**form, "token": "x" + session.token}),
        "no cookie": session.post(form, cookie=False),
    }
    for why, (status, _, body) in refusals.items():
        assert status == 403, (why, body)
        assert '"ok": false' in body and "refused" in body, why
    # a token of the right shape from another session is no better
    other = Session(proxy.port)
    other.get("/")
    status, _, _ = session.post({**form, "token": other.token})
    assert status == 403


def test_a_form_whose_body_comes_after_its_head_is_answered(
        repo: Path, common_dir: Path, proxy: ProxyThread) -> None:
    alpha, _ = two_worktrees(repo, common_dir)
    session = Session(proxy.port)
    session.get("/")
    body = urlencode({"token": session.token, "wt": alpha.path, "svc": "web",
                      "op": "start"}).encode()
    head = (f"POST /_branchyard/action HTTP/1.1\r\nHost: app.localhost:{proxy.port}\r\n"
            f"Origin: {session.origin}\r\nAccept: application/json\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as sock:
        sock.sendall(head)
        for i in range(0, len(body), 8):  # a slow client: the body in pieces, after the head
            time.sleep(0.01)
            sock.sendall(body[i:i + 8])
        status, _, answer = read_response(sock)
    assert status == 403 and b"refused" in answer  # no cookie: read whole, then refused


def test_a_get_cannot_act_and_unknown_paths_are_404(
        repo: Path, common_dir: Path, proxy: ProxyThread) -> None:
    two_worktrees(repo, common_dir)
    session = Session(proxy.port)
    assert session.get("/action")[0] == 405
    assert session.get("/nothing")[0] == 404
    assert session.get("/logs?wt=/etc&svc=web")[0] == 404
    status, head, _ = session.get("/dashboard.js")
    assert status == 200 and head["content-type"].startswith("text/javascript")


def test_radar_result_locks_and_queue_are_shown(
        repo: Path, common_dir: Path, proxy: ProxyThread, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from branchyard.cli.main import main
    from tests.conftest import git

    alpha, beta = two_worktrees(repo, common_dir)
    for rec, text in ((alpha, "alpha\n"), (beta, "beta\n")):
        (Path(rec.path) / "README.md").write_text(text)
        git("commit", "-qam", f"{rec.branch} edits", cwd=Path(rec.path))
    monkeypatch.chdir(alpha.path)
    assert main(["lock", "docs/", "--reason", "rewriting"]) == 0
    monkeypatch.chdir(repo)
    assert main(["conflicts"]) == 3
    assert main(["queue", "add", "feat/beta"]) == 0
    capsys.readouterr()

    _, _, body = Session(proxy.port).get("/")
    card = body.split(f"data-worktree='{alpha.path}'")[1].split("</article>")[0]
    assert ("<dd class='f-radar'><span class=bad>conflicts with feat/beta</span>"
            "<ul class=files><li><code>README.md</code></li></ul></dd>") in card
    assert "<dd class='f-locks'>docs/</dd>" in card
    assert "1 ahead</span>, <span title='commits of main it lacks'>0 behind" in card
    assert ("<tr><td><code>docs/</code></td><td>feat/alpha</td><td>rewriting</td></tr>"
            in body)
    assert "<tr><td>1</td><td>feat/beta</td><td class='q-queued'>queued</td>" in body


def test_databases_show_engine_name_and_size(repo: Path, proxy: ProxyThread) -> None:
    import sqlite3

    from branchyard import api

    (repo / "branchyard.toml").write_text('[[database]]\nname = "app"\nengine = "sqlite"\n'
                                          'source = "data/app.db"\n')
    (repo / "data").mkdir()
    with sqlite3.connect(repo / "data" / "app.db") as db:
        db.execute("CREATE TABLE t (x TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [("y" * 100,)] * 1000)
    made = Path(api.up(api.UpRequest("feat/db", cwd=repo)).path)
    clone = next(made.rglob("app-feat_db_*.db"))
    _, _, body = Session(proxy.port).get("/")
    card = body.split(f"data-worktree='{made}'")[1].split("</article>")[0]
    size = clone.stat().st_size
    assert size > 100_000
    assert (f"<tr><td>app</td><td>sqlite</td><td><code>{clone.name}</code></td>"
            f"<td class=num>{size / 1024:.1f} KiB</td></tr>") in card


def test_the_watcher_runs_only_while_a_page_is_open(
        repo: Path, common_dir: Path, proxy: ProxyThread) -> None:
    from proxykit import wait_for

    two_worktrees(repo, common_dir)
    dashboard = proxy.server.handler
    assert isinstance(dashboard, Dashboard)
    hub = dashboard.hub
    pages = [EventReader(proxy.port, "app.localhost", "/_branchyard/events")
             for _ in range(2)]
    for page in pages:
        assert page.next()[0] == "yard"
    assert len(hub.streams) == 2 and hub._task is not None
    for page in pages:
        page.close()
    wait_for(lambda: not hub.streams and hub._task is None, timeout=5,
             what="the closed pages to be forgotten")
