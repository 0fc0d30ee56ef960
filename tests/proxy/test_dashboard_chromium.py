"""The dashboard in a real headless Chromium (DevTools protocol, as in
test_chromium): it lists the worktrees, stays useful without JavaScript, and —
with the services feature — follows a service the CLI starts and its log."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashkit import service_state, services_worktrees, two_worktrees
from proxykit import ProxyThread, wait_for
from test_chromium import CHROMIUM, DevTools

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install "
                                                          "chromium)")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    tools = DevTools(tmp_path / "chromium-profile")
    tools.call("Page.enable")
    yield tools
    tools.close()


def open_page(tools: DevTools, url: str) -> None:
    tools.call("Page.navigate", url=url)
    wait_for(lambda: tools.evaluate("document.readyState + ' ' + location.href")
             == f"complete {url}", timeout=20, what=f"{url} to load")


def cards(tools: DevTools) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = tools.evaluate(
        "[...document.querySelectorAll('article.wt')].map(a => ({path: a.dataset.worktree,"
        " branch: a.querySelector('.branch').textContent,"
        " services: Object.fromEntries([...a.querySelectorAll('tr[data-service]')].map("
        "   r => [r.dataset.service, r.querySelector('.svc-state').textContent]))}))")
    return found


def test_the_page_lists_both_worktrees_and_goes_live(
        repo: Path, common_dir: Path, proxy: ProxyThread, browser: DevTools) -> None:
    alpha, beta = two_worktrees(repo, common_dir)
    open_page(browser, f"http://app.localhost:{proxy.port}/_branchyard/")
    assert [c["branch"] for c in cards(browser)] == ["main", "feat/alpha", "feat/beta"]
    assert [c["path"] for c in cards(browser)][1:] == [alpha.path, beta.path]
    wait_for(lambda: browser.evaluate("document.getElementById('live').textContent")
             == "live", what="the event stream to connect")


def test_the_page_renders_without_javascript(
        repo: Path, common_dir: Path, proxy: ProxyThread, browser: DevTools) -> None:
    two_worktrees(repo, common_dir)
    browser.call("Emulation.setScriptExecutionDisabled", value=True)
    open_page(browser, f"http://branchyard.localhost:{proxy.port}/")
    # evaluate still runs (DevTools), the page's own script did not
    assert [c["branch"] for c in cards(browser)] == ["main", "feat/alpha", "feat/beta"]
    assert browser.evaluate("document.getElementById('live').textContent") == "static"
    assert browser.evaluate("getComputedStyle(document.querySelector('article.wt'))"
                            ".borderRadius") == "8px"  # the stylesheet is served


@pytest.fixture
def svc_yard(repo: Path) -> Iterator[list[Path]]:
    yield from services_worktrees(repo)


def test_a_service_started_from_the_cli_turns_ready_without_a_reload(
        svc_yard: list[Path], proxy: ProxyThread, browser: DevTools,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from branchyard.cli.main import main

    alpha, _ = svc_yard
    open_page(browser, f"http://svc.localhost:{proxy.port}/_branchyard/")
    wait_for(lambda: browser.evaluate("document.getElementById('live').textContent")
             == "live", what="the event stream to connect")
    browser.evaluate("window.sameDocument = true")
    assert [c["services"] for c in cards(browser)][1:] == [{"web": "stopped"}] * 2
    monkeypatch.chdir(alpha)
    assert main(["start"]) == 0
    wait_for(lambda: cards(browser)[1]["services"] == {"web": "ready"}, timeout=20,
             what="web to turn ready on the page")
    assert browser.evaluate("window.sameDocument") is True  # no reload
    assert cards(browser)[2]["services"] == {"web": "stopped"}


def test_a_log_line_appears_in_the_logs_view(
        svc_yard: list[Path], proxy: ProxyThread, browser: DevTools,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from branchyard import api
    from branchyard.cli.main import main

    alpha, _ = svc_yard
    monkeypatch.chdir(alpha)
    assert main(["start"]) == 0
    wait_for(lambda: "listening" in "".join(
        x.text for x in api_last_lines(alpha)), timeout=20, what="the service to print")
    open_page(browser, f"http://svc.localhost:{proxy.port}/_branchyard/")
    browser.evaluate("document.querySelector('a.logs').click()")
    wait_for(lambda: browser.evaluate("location.pathname") == "/_branchyard/logs",
             what="the logs view")
    wait_for(lambda: browser.evaluate("document.getElementById('live').textContent")
             == "live", what="the log stream to connect")
    assert "listening on" in browser.evaluate("document.getElementById('loglines')"
                                              ".textContent")
    port = int(api.env_of(alpha)["PORT"])
    urllib.request.urlopen(f"http://127.0.0.1:{port}/printed-while-watching", timeout=5).read()
    wait_for(lambda: "saw /printed-while-watching" in browser.evaluate(
        "document.getElementById('loglines').textContent"), timeout=10,
        what="the new log line on the page")


def test_a_cross_site_post_is_refused_and_the_dashboard_s_own_runs(
        svc_yard: list[Path], proxy: ProxyThread, browser: DevTools) -> None:
    alpha, _ = svc_yard
    dash = f"http://svc.localhost:{proxy.port}/_branchyard/"
    open_page(browser, dash)
    token = browser.evaluate("document.querySelector('meta[name=branchyard-token]').content")
    # another site in the same browser, even knowing the token, sends the form
    open_page(browser, f"http://evil.localhost:{proxy.port}/")
    browser.evaluate(f"""fetch({json.dumps(dash + 'action')}, {{method: 'POST',
        mode: 'no-cors', credentials: 'include', body: new URLSearchParams({{
        token: {json.dumps(token)}, wt: {json.dumps(str(alpha))}, svc: 'web',
        op: 'start'}})}}).then(() => window.sent = true, () => window.sent = true)""")
    wait_for(lambda: browser.evaluate("window.sent") is True, what="the cross-site POST")
    time.sleep(0.5)  # what a started supervisor would take to record the service
    assert service_state(alpha) == "stopped"
    # the dashboard's own button does it
    open_page(browser, dash)
    selector = f"article[data-worktree={json.dumps(str(alpha))}] button[value=start]"
    assert browser.evaluate(f"document.querySelector({json.dumps(selector)}).click() ?? 1") == 1
    try:  # a loaded machine: the supervisor's backoff may need a few rounds
        wait_for(lambda: service_state(alpha) == "ready", timeout=60, what="web to start")
    except AssertionError as err:
        note = browser.evaluate("document.getElementById('note').textContent")
        lines = [line.text for line in api_last_lines(alpha)]
        raise AssertionError(f"{err}: web is {service_state(alpha)!r}; the page says "
                             f"{note!r}; its log ends {lines[-5:]}") from None
    wait_for(lambda: browser.evaluate("document.getElementById('note').textContent")
             == f"started web in {alpha.name}", what="the action's answer on the page")


def api_last_lines(path: Path) -> list[Any]:
    from branchyard.services.status import last_lines

    result: list[Any] = last_lines(path, "web", 50)
    return result
