"""The MySQL and Redis drivers are extras: without one, a clear error names it."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from branchyard.cli.main import main
from branchyard.core.errors import DatabaseError
from branchyard.db import mysql, redisdb
from tests.conftest import git


@pytest.mark.parametrize(("module", "connect", "extra"), [
    ("pymysql", lambda: mysql.connect("mysql://root@127.0.0.1:3306/").__enter__(), "mysql"),
    ("redis", lambda: redisdb.connect("redis://127.0.0.1:6379/0").__enter__(), "redis"),
])
def test_a_missing_driver_names_its_extra(monkeypatch: pytest.MonkeyPatch, module: str,
                                          connect: object, extra: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if the package were not installed
    with pytest.raises(DatabaseError) as caught:
        connect()  # type: ignore[operator]
    assert "is not installed" in caught.value.message
    assert f"pip install 'branchyard[{extra}]'" in caught.value.hint


def test_up_without_the_mysql_driver_fails_clearly_and_makes_nothing(
        repo: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    (repo / "branchyard.toml").write_text(
        '[[database]]\nname = "app"\nengine = "mysql"\n'
        'source = "mysql://root@127.0.0.1:3306/by_driverless"\nseed = "empty"\n')
    git("add", "-A", cwd=repo)
    git("commit", "-qm", "config", cwd=repo)
    monkeypatch.setitem(sys.modules, "pymysql", None)
    os.chdir(repo)
    assert main(["up", "feat/nodriver"]) == 1
    err = capsys.readouterr().err
    assert "PyMySQL is not installed" in err and "branchyard[mysql]" in err
    assert "Traceback" not in err
    assert git("worktree", "list", "--porcelain", cwd=repo).count("worktree ") == 1
