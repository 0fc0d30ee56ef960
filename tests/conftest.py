"""Shared fixtures: a sealed environment and real git repositories."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

# A shell without job control starts a background job (`.ci/run &`) with SIGINT
# ignored, and every process inherits that: the tests that interrupt a command
# would see no KeyboardInterrupt. Each process the suite starts gets it back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_AUTHOR_NAME": "Test",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def sealed_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Own HOME, own branchyard state dir, no system git config; and fail any test
    that leaks an ``os.environ`` change (``monkeypatch`` undoes its own first)."""
    original = dict(os.environ)
    home = tmp_path_factory.mktemp("home")
    os.environ["HOME"] = str(home)
    os.environ["BRANCHYARD_STATE_DIR"] = str(home / "state")
    os.environ.pop("CONDUCTOR_PORT", None)
    os.environ.update(GIT_ENV)
    sealed = dict(os.environ)
    cwd = os.getcwd()
    try:
        yield
        leaked = {k for k in set(sealed) | set(os.environ) if sealed.get(k) != os.environ.get(k)}
        leaked.discard("PYTEST_CURRENT_TEST")  # pytest itself changes it between phases
        assert not leaked, f"test leaked environment changes: {sorted(leaked)}"
    finally:
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(original)


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_repo(path: Path, branch: str = "main") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    git("init", "-q", "-b", branch, cwd=path)
    (path / "README.md").write_text("hello\n")
    (path / ".gitignore").write_text(".env*\nnode_modules/\nagent-browser.json\n")
    git("add", "-A", cwd=path)
    git("commit", "-q", "-m", "initial", cwd=path)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fresh repository with one commit on ``main``, at ``tmp_path/app``."""
    return make_repo(tmp_path / "app")


def commit_config(repo: Path, text: str) -> Path:
    """Write ``branchyard.toml`` into ``repo`` and commit it, as a project does."""
    (repo / "branchyard.toml").write_text(text)
    git("add", "branchyard.toml", cwd=repo)
    git("commit", "-qm", "config", cwd=repo)
    return repo


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; whatever still runs at the end is killed."""
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def quiet_port_range(size: int = 1000) -> tuple[int, int]:
    """A port range below the kernel's ephemeral range, picked at random per test:
    the outgoing connections of everything else on the machine take their ports
    from the ephemeral range (where `[ports]`' default lies), and the TIME_WAIT
    sockets they leave make a bind there fail."""
    import random

    ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range")
    low = int(ephemeral.read_text().split()[0]) if ephemeral.exists() else 32768
    start = random.randrange(max(1024, low - 16000), low - size, 10)
    return start, start + size - 1


def run_cli(capsys: pytest.CaptureFixture[str], cwd: Path, *argv: str) -> tuple[int, str, str]:
    """The CLI in this process: exit code, stdout, and stderr without the timed
    progress lines."""
    from branchyard.cli.main import main

    os.chdir(cwd)
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, "".join(line for line in err.splitlines(keepends=True)
                              if not line.startswith("[") and not line.startswith("{"))
