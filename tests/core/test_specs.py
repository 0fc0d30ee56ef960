"""The typed resource specs and their JSON: what the ledger writes reads back
as the same spec, and the dicts older ledgers hold read as specs too."""

from __future__ import annotations

import json
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from branchyard.config.model import ServerConfig
from branchyard.resources.codec import from_json, to_json
from branchyard.resources.specs import (
    SPECS,
    BrowserSpec,
    FilesSpec,
    Owner,
    PostgresSpec,
    RedisSpec,
    Spec,
)

FIXTURES = Path(__file__).parent / "fixtures"


def every_field(cls: type[Any]) -> st.SearchStrategy[Any]:
    """Instances of dataclass ``cls`` with every field drawn (defaults too)."""
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{f.name: _of(hints[f.name]) for f in fields(cls)})


def _of(hint: Any) -> st.SearchStrategy[Any]:
    args = typing.get_args(hint)
    if type(None) in args:  # X | None
        [inner] = [a for a in args if a is not type(None)]
        return st.none() | _of(inner)
    if is_dataclass(hint):
        return every_field(hint)
    return st.from_type(hint)


@pytest.mark.parametrize("cls", SPECS.values(), ids=list(SPECS))
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_kind_reads_back_as_written(cls: type[Spec], data: st.DataObject) -> None:
    spec = data.draw(every_field(cls))
    written = json.loads(json.dumps(to_json(spec)))
    assert written == to_json(spec)  # JSON types only
    assert from_json(cls.kind, written) == spec


def test_a_schema_2_managed_postgres_record_reads_with_every_field() -> None:
    record = json.loads((FIXTURES / "postgres-managed-record-schema2.json").read_text())
    spec = from_json(record["kind"], record["spec"])
    assert isinstance(spec, PostgresSpec)
    assert (spec.database, spec.role, spec.managed, spec.pool, spec.refresh, spec.setup) == (
        "app_app_feat_m_d33b5b", "worktree", True, 2, "auto", ("make migrate",))
    assert spec.owner == Owner("3f08fad8d5338622", "devbox", "/home/dev/src/app.feat_m")
    assert spec.server_config == ServerConfig(max_connections=300)
    assert not spec.adopted
    assert "engine" not in to_json(spec)


def test_keys_an_older_ledger_lacks_get_defaults_and_unknown_ones_are_dropped() -> None:
    record = json.loads((FIXTURES / "postgres-managed-record-schema2.json").read_text())
    first = {k: v for k, v in record["spec"].items()  # as schema 1 wrote it
             if k not in ("migrations_query", "refresh", "shared", "owner", "server_config")}
    spec = from_json("postgres", {**first, "adopted": True, "from_the_future": [1]})
    assert isinstance(spec, PostgresSpec)
    assert (spec.owner, spec.server_config, spec.shared, spec.refresh) == (
        None, None, False, "manual")
    assert spec.adopted
    browser = {"profile": "/p", "session_file": "", "session_name": "app-x"}
    assert from_json("browser", browser) == BrowserSpec(**browser)


@pytest.mark.parametrize(("kind", "data", "error", "message"), [
    ("ports", {}, KeyError, "unknown resource kind 'ports'"),
    ("files", {"op": "copy", "rel": "a", "src": "/m/a", "dst": "/w/a"}, KeyError,
     "the files resource has no 'required'"),
    ("files", {"op": "copy", "rel": "a", "src": "/m/a", "dst": 3, "required": True},
     TypeError, "files.dst must be a string, not 3"),
    ("redis", {"name": "c", "role": "worktree", "env": "R", "seed": "clone", "url": "redis://",
               "index": "two", "main_index": 0, "prefix": "", "prefix_env": "P", "owner": "o"},
     TypeError, "redis.index must be a number, not 'two'"),
    ("browser", ["not", "an", "object"], TypeError, "the spec of a browser resource"),
])
def test_a_spec_that_cannot_be_read_says_why(kind: str, data: Any, error: type[Exception],
                                             message: str) -> None:
    with pytest.raises(error, match=message):
        from_json(kind, data)


def test_specs_are_frozen_and_hashable() -> None:
    spec = FilesSpec(op="copy", rel="a", src="/m/a", dst="/w/a", required=True)
    with pytest.raises(AttributeError):
        spec.dst = "/elsewhere"  # type: ignore[misc]
    redis = RedisSpec(name="c", role="main", env="R", seed="clone", url="redis://h/0",
                      index=0, main_index=0, prefix="", prefix_env="P", owner="o")
    assert len({spec, redis, spec}) == 2
    assert redis.env_value == "redis://h/0"


def schema_2_ledger() -> str:
    """The fixture with made-up values for what differs between machines."""
    text = (FIXTURES / "ledger-schema2.json").read_text()
    for token, value in {'"@PORT_NUMBER@"': "41000", '"@REDIS_INDEX@"': "3",
                         '"@REDIS_MAIN@"': "0", "@REDIS_INDEX@": "3", "@PORT@": "41000",
                         "@ROOT@": "/home/dev/src", "@UID@": "u1", "@CLONE@": "c0ffee",
                         "@MACHINE@": "devbox", "@PROFILES@": "/home/dev/state/p"}.items():
        text = text.replace(token, value)
    assert "@" not in text.replace("postgres@", "").replace("root@", "")
    return text


def test_a_schema_2_ledger_reads_as_typed_specs_and_is_written_back_as_schema_3(
        tmp_path: Path) -> None:
    from branchyard.ledger import SCHEMA, Ledger

    ledger = Ledger(tmp_path)
    ledger.dir.mkdir()
    ledger.path.write_text(schema_2_ledger())
    [record] = ledger.read().worktrees.values()
    specs = {r.key: r.spec for r in record.resources}
    assert {k: type(s).__name__ for k, s in specs.items()} == {
        "symlink:.env.local": "FilesSpec", "copy:.vercel/project.json": "FilesSpec",
        "db:app": "PostgresSpec", "db:shop": "MysqlSpec", "db:agent": "SqliteSpec",
        "db:cache": "RedisSpec", "browser:profile": "BrowserSpec",
        "deps:node_modules": "DepsSpec"}
    wt = "/home/dev/src/app.feat_legacy_34ae69"
    assert specs["db:app"] == PostgresSpec(
        name="app", role="worktree", env="DATABASE_URL", seed="clone",
        server="postgresql://postgres@127.0.0.1:5432/postgres",
        database="u1_main_feat_legacy_34ae69", main="u1_main",
        main_url="postgresql://postgres@127.0.0.1:5432/u1_main",
        url="postgresql://postgres@127.0.0.1:5432/u1_main_feat_legacy_34ae69",
        common_dir="/home/dev/src/app/.git", owner=Owner("c0ffee", "devbox", wt))
    assert specs["db:cache"] == RedisSpec(
        name="cache", role="worktree", env="REDIS_URL", seed="clone",
        url="redis://127.0.0.1:6379/3", index=3, main_index=0, prefix="",
        prefix_env="REDIS_KEY_PREFIX", owner="/home/dev/src/app/.git|feat_legacy_34ae69|cache")
    assert specs["symlink:.env.local"] == FilesSpec(
        op="symlink", rel=".env.local", src="/home/dev/src/app/.env.local",
        dst=f"{wt}/.env.local", required=True)

    with ledger.update():
        pass
    written = json.loads(ledger.path.read_text())
    assert written["version"] == SCHEMA == 3
    [entry] = written["worktrees"].values()
    assert [r["spec"] for r in entry["resources"]] == [to_json(s) for s in specs.values()]
    assert all("engine" not in r["spec"] and r["spec"]["adopted"] is False
               for r in entry["resources"])
    assert ledger.read().worktrees == {record.slug: record}


def test_a_resource_of_an_unknown_kind_is_a_clear_ledger_error(tmp_path: Path) -> None:
    from branchyard.core.errors import LedgerError
    from branchyard.ledger import Ledger

    ledger = Ledger(tmp_path)
    ledger.dir.mkdir()
    doc = json.loads(schema_2_ledger())
    [entry] = doc["worktrees"].values()
    entry["resources"][0]["kind"] = "teleporter"
    ledger.path.write_text(json.dumps(doc))
    with pytest.raises(LedgerError, match="unknown resource kind 'teleporter'") as err:
        ledger.read()
    assert "a copy is kept at" in err.value.message
