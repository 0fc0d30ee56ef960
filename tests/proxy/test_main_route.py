"""`<project>.localhost` reaches the main worktree's own port, through a real proxy."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxykit import App, ProxyThread, add_worktree, listen_port, request, wait_for

from branchyard import api
from branchyard.proxy.registry import register_repo
from branchyard.system.ports import is_free


def test_mains_url_reaches_the_port_env_gives_main(
        repo: Path, common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    register_repo(common_dir)
    port = int(api.env_of(repo)["PORT"])  # what `branchyard run` in main gives the app
    assert port != 3000
    apps.append(App("main-app", port=port))
    status, _, body = request(proxy.port, "app.localhost")
    assert status == 200
    assert json.loads(body)["name"] == "main-app"


@pytest.fixture
def plain_server(repo: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A dev server started by hand in main (not by `branchyard run`), on a port
    of its own choosing, as `npm run dev` takes 3000."""
    port = listen_port()
    child = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind",
                              "127.0.0.1"], cwd=repo, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: not is_free(port), what="the plain server to listen")
        yield child, port
    finally:
        child.kill()
        child.wait()


def test_502_says_which_server_listens_on_the_wrong_port(
        repo: Path, common_dir: Path, proxy: ProxyThread,
        plain_server: tuple[subprocess.Popen[bytes], int]) -> None:
    (repo / "branchyard.toml").write_text('[hooks]\nrun = "npm run dev"\n')
    add_worktree(common_dir, "feat/other", {"PORT": listen_port()},
                 path=repo.parent / "elsewhere")
    child, stray = plain_server
    port = int(api.env_of(repo)["PORT"])
    status, _, body = request(proxy.port, "app.localhost")
    page = body.decode()
    assert status == 502
    assert f"pid {child.pid}) listens on port {stray} instead of its own port {port}" in page
    assert f"cd {repo} &amp;&amp; branchyard run" in page
