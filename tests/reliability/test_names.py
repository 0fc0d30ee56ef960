"""Thousands of branch names, as git judges them: every name git accepts yields
valid Postgres/MySQL identifiers, a DNS label and a Compose project name, and
no two live worktrees share any of them; every name git rejects is a clear
error before anything is made."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from branchyard import api
from branchyard.config.model import DatabaseConfig
from branchyard.core.errors import GitError
from branchyard.core.identity import compose_project_name, derive_identity, worktree_host
from branchyard.db.sources import name_from_template
from tests.conftest import make_repo

PG_MAX = 63  # bytes
MYSQL_MAX = 64  # characters
SLUG_RE = re.compile(r"^[a-z][a-z0-9_]*$")
LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
COMPOSE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
MAIN_DB = "myapp_dev_main16"  # a 16-byte main database name: the budget of the prefix

PIECES = ["a", "b", "Z", "Q", "7", "0", "-", "_", ".", "/", "..", "@", "{", "}", "@{",
          "é", "ß", "日本", "🙂", "İ", "ﬁ", "ǅ", "'", '"', ";", "$", "(", ")", "`", "=",
          "+", "#", "%", "&", "!", ",", " ", "~", "^", ":", "?", "*", "[", "\\", ".lock",
          "//", "\t", "DROP DATABASE", "$(touch pwned)", "x;y"]
piece_names = st.lists(st.sampled_from(PIECES), min_size=1, max_size=24).map("".join)
long_names = st.builds(lambda head, fill, n: head + fill * n,
                       st.sampled_from(["feat/", "", "Ü/", "a."]),
                       st.sampled_from(["a", "ab-", "x_", "é"]), st.integers(60, 245))
names = st.one_of(piece_names, long_names, st.text(min_size=1, max_size=40))

# one bash process judges a whole batch (one `git check-ref-format` each, no Python)
JUDGE = ('while IFS= read -r -d "" n; do if git check-ref-format --branch "$n" '
         '>/dev/null 2>&1; then printf 1; else printf 0; fi; done')


def accepted_by_git(batch: list[str], cwd: Path) -> list[str]:
    data = "".join(n + "\0" for n in batch if "\0" not in n)
    kept = [n for n in batch if "\0" not in n]
    out = subprocess.run(["bash", "-c", JUDGE], input=data.encode(), cwd=cwd,
                         capture_output=True, timeout=120, check=True).stdout.decode()
    assert len(out) == len(kept)
    return [n for n, ok in zip(kept, out, strict=True) if ok == "1"]


def variants(name: str) -> list[str]:
    """Names that differ only by case or by `-` vs `_` vs `.`."""
    return [name, name.swapcase(), name.replace("-", "_"), name.replace("_", "-")]


@pytest.fixture(scope="module")
def judge_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("names") / "r")


@given(st.lists(names, min_size=40, max_size=60))  # about 5,000 names in all
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.data_too_large,
                                                                 HealthCheck.function_scoped_fixture])
def test_every_name_git_accepts_yields_valid_distinct_identifiers(
        judge_repo: Path, batch: list[str]) -> None:
    candidates = list(dict.fromkeys(v for n in batch for v in variants(n)))
    valid = accepted_by_git(candidates, judge_repo)
    live: dict[str, str] = {}  # slug → branch, as claim_identity allots them
    subdomains: set[str] = set()
    indexes: set[int] = set()
    entry = DatabaseConfig(name="app")
    for name in valid:
        ident = derive_identity(name, taken_subdomains=subdomains, taken_indexes=indexes)
        assert SLUG_RE.match(ident.slug) and ident.slug not in live, (name, ident)
        database = name_from_template(entry, MAIN_DB, ident.slug)
        assert len(database.encode()) <= PG_MAX and len(database) <= MYSQL_MAX
        assert re.fullmatch(r"[a-z0-9_]+", database)  # needs no quoting in either
        assert LABEL_RE.match(ident.subdomain) and ident.subdomain not in subdomains
        assert len(worktree_host(ident.subdomain, "myapp")) <= 253
        assert COMPOSE_RE.match(compose_project_name("My Repo", ident.slug))
        live[ident.slug] = name
        subdomains.add(ident.subdomain)
        indexes.add(ident.index)
    assert len(set(live)) == len(valid)


@pytest.mark.parametrize("name", ["x;DROP DATABASE y", "$(touch pwned)", "a..b", "-rf",
                                  "feat/", "x.lock", "a@{1}", "with space", "tab\tname",
                                  "back\\slash", "feat//x", ".hidden", "q?", "HEAD~1"])
def test_names_git_rejects_are_a_clear_error_before_anything_is_made(
        repo: Path, name: str) -> None:
    before = sorted(p.name for p in repo.parent.iterdir())
    with pytest.raises(GitError) as err:
        api.up(api.UpRequest(name, cwd=repo))
    assert str(err.value) == f"{name!r} is not a valid branch name"
    assert "check-ref-format" in err.value.hint
    assert sorted(p.name for p in repo.parent.iterdir()) == before
    assert not (repo / ".git" / "branchyard" / "ledger.json").exists() or \
        '"worktrees": {}' in (repo / ".git" / "branchyard" / "ledger.json").read_text()
