"""Isolation proved in a real headless Chromium, driven over the DevTools protocol:
two worktrees behind the proxy; what A's app stores is never seen by B."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any

import psutil
import pytest
from proxykit import App, ProxyThread, WebSocket, add_worktree, wait_for

from branchyard.providers import Allocation, get_provider
from branchyard.resources.specs import BrowserSpec
from branchyard.system.browser import HEADLESS_FLAGS

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (apt-get install "
                                                          "chromium)")


class DevTools:
    """Just enough of the Chrome DevTools protocol: navigate and evaluate."""

    def __init__(self, profile: Path) -> None:
        assert CHROMIUM is not None
        self.proc = subprocess.Popen(
            [CHROMIUM, *HEADLESS_FLAGS, f"--user-data-dir={profile}",
             "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        active = profile / "DevToolsActivePort"
        port = int(wait_for(lambda: active.is_file() and active.read_text().split("\n")[0],
                            timeout=30, what="Chromium's DevTools port"))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        path = pages[0]["webSocketDebuggerUrl"].split(str(port), 1)[1]
        self.ws = WebSocket(port, f"127.0.0.1:{port}", path)
        assert self.ws.status == 101
        self.ids = count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}).encode())
        while True:
            frame = self.ws.recv()
            assert frame is not None, "DevTools connection closed"
            msg = json.loads(frame[1])
            if msg.get("id") == msg_id:
                assert "error" not in msg, msg
                result: dict[str, Any] = msg["result"]
                return result

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    def visit(self, url: str) -> dict[str, Any]:
        """Load ``url`` and return what the page saw: cookies sent, localStorage."""
        self.call("Page.navigate", url=url)
        wait_for(lambda: self.evaluate("document.readyState + ' ' + location.href")
                 == f"complete {url}", timeout=20, what=f"{url} to load")
        seen: dict[str, Any] = self.evaluate(
            "({sent: document.getElementById('cookie').textContent, "
            "cookie: document.cookie, ls: localStorage.getItem('who')})")
        return seen

    def close(self) -> None:
        self.ws.sock.close()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[DevTools]:
    tools = DevTools(tmp_path / "chromium-profile")
    yield tools
    tools.close()


def test_cookies_and_local_storage_stay_with_their_worktree(
        common_dir: Path, proxy: ProxyThread, apps: list[App], chromium: DevTools) -> None:
    a, b = App("a"), App("b")
    apps.extend((a, b))
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    add_worktree(common_dir, "feat/b", {"PORT": b.port})
    url_a = f"http://feat-a.app.localhost:{proxy.port}"
    url_b = f"http://feat-b.app.localhost:{proxy.port}"

    assert chromium.visit(f"{url_a}/set?v=alpha")["ls"] == "alpha"
    seen_b = chromium.visit(f"{url_b}/echo")
    assert seen_b == {"sent": "", "cookie": "", "ls": None}

    assert chromium.visit(f"{url_b}/set?v=beta")["ls"] == "beta"
    assert chromium.visit(f"{url_a}/echo") == {"sent": "who=alpha", "cookie": "who=alpha",
                                               "ls": "alpha"}
    assert chromium.visit(f"{url_b}/echo") == {"sent": "who=beta", "cookie": "who=beta",
                                               "ls": "beta"}
    # and on the servers themselves: B's app never received A's cookie, nor A B's
    assert all("alpha" not in r["cookie"] for r in b.requests)
    assert all("beta" not in r["cookie"] for r in a.requests)
    assert any(r["cookie"] == "who=alpha" for r in a.requests)


def test_browser_command_opens_the_worktree_url_with_its_own_profile(
        repo: Path, common_dir: Path, proxy: ProxyThread, apps: list[App],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from branchyard.cli.main import main

    app = App("a")
    apps.append(app)
    worktree = repo.parent / "app.feat"
    subprocess.run(["git", "worktree", "add", "-q", "-b", "feat/a", str(worktree)],
                   cwd=repo, check=True)
    (worktree / "branchyard.toml").write_text(f"[proxy]\nport = {proxy.port}\n")
    add_worktree(common_dir, "feat/a", {"PORT": app.port}, path=worktree)
    monkeypatch.chdir(worktree)
    assert main(["browser", "--headless", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    try:
        profile = Path(doc["profile"])
        wait_for(lambda: app.requests, timeout=30, what="Chromium to load the worktree URL")
        assert app.requests[0]["path"] == "/"
        assert doc["url"] == f"http://feat-a.app.localhost:{proxy.port}"
        wait_for((profile / "Default").is_dir, timeout=30,
                 what="Chromium to use the worktree profile")
        assert profile.name.startswith("feat_a_")
        # teardown closes the browser that runs on the profile, then removes it
        get_provider("browser").destroy(Allocation("browser", "browser:profile", BrowserSpec(
            profile=str(profile), session_file="", session_name="app-x")))
        assert not profile.exists()
        assert not psutil.pid_exists(doc["pid"])
    finally:
        if psutil.pid_exists(doc["pid"]):
            os.killpg(doc["pid"], signal.SIGKILL)


@pytest.mark.skipif(shutil.which("certutil") is None,
                    reason="needs certutil (apt-get install libnss3-tools)")
def test_https_dev_url_is_trusted_after_proxy_trust_install(
        tmp_path: Path, common_dir: Path, apps: list[App],
        capsys: pytest.CaptureFixture[str]) -> None:
    from branchyard.cli.main import main
    from branchyard.proxy.daemon import proxy_dir

    app = App("a")
    apps.append(app)
    add_worktree(common_dir, "feat/a", {"PORT": app.port})
    assert main(["proxy", "trust", "--install", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["installed"] == str(Path.home() / ".pki" / "nssdb")
    proxy = ProxyThread(proxy_dir() / "tls")
    tools = DevTools(tmp_path / "chromium-https")
    try:
        url = f"https://feat-a.app.localhost:{proxy.port}/echo"
        tools.visit(url)  # an untrusted certificate would stop at an error page
        assert tools.evaluate("window.isSecureContext") is True
        assert any(r["path"] == "/echo" for r in app.requests)
    finally:
        tools.close()
        proxy.stop()
