from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxykit import App, ProxyThread


@pytest.fixture
def common_dir(repo: Path) -> Path:
    out = subprocess.run(["git", "rev-parse", "--git-common-dir"], cwd=repo,
                         capture_output=True, text=True, check=True).stdout.strip()
    return (repo / out).resolve()


@pytest.fixture
def proxy() -> Iterator[ProxyThread]:
    server = ProxyThread()
    yield server
    server.stop()


@pytest.fixture
def apps() -> Iterator[list[App]]:
    made: list[App] = []
    yield made
    for app in made:
        app.stop()
