"""Fixtures of the merge-area tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from yard import commit


@pytest.fixture
def shared(repo: Path) -> Path:
    """``repo`` with a shared file and a migrations folder on main."""
    commit(repo, {"app.py": "one\ntwo\nthree\n", "migrations/0001_init.sql": "create;\n"},
           "base files")
    return repo
