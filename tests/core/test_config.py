from __future__ import annotations

from pathlib import Path

import pytest

from branchyard.config.load import load_config
from branchyard.config.model import Config
from branchyard.core.errors import ConfigError


def write(dir_: Path, name: str, text: str) -> Path:
    path = dir_ / name
    path.write_text(text)
    return path


def test_no_config_file_gives_defaults(tmp_path: Path) -> None:
    config, used = load_config(tmp_path)
    assert config == Config()
    assert used == []


def test_local_file_overrides_committed_one(tmp_path: Path) -> None:
    write(tmp_path, "branchyard.toml", '[project]\nname = "shop"\n[ports]\nnames = ["PORT"]\n')
    write(tmp_path, "branchyard.local.toml", '[ports]\nnames = ["PORT", "API_PORT"]\n')
    config, used = load_config(tmp_path)
    assert config.project.name == "shop"
    assert config.ports.names == ("PORT", "API_PORT")
    assert [p.name for p in used] == ["branchyard.toml", "branchyard.local.toml"]


@pytest.mark.parametrize(("text", "message"), [
    ("[projekt]\nname = 1\n", "branchyard.toml: unknown key `projekt`"),
    ("[project]\nnam = 'x'\n", "branchyard.toml: unknown key `project.nam`"),
    ("[ports]\nnames = [1]\n",
     "branchyard.toml: `ports.names[0]` must be a string, not an integer (1)"),
    ("[[database]]\nname = 'app'\npool = 'two'\n",
     "branchyard.toml: `database[0].pool` must be an integer, not a string ('two')"),
    ("[[database]]\nengine = 'postgres'\n", "branchyard.toml: missing key `database[0].name`"),
    ("[[database]]\nname = 'app'\nengine = 'oracle'\n",
     "branchyard.toml: `database[0].engine`: 'oracle' is not one of postgres, mysql, sqlite, "
     "redis"),
    ("[[database]]\nname = 'app'\nseed = 'copy'\n",
     "branchyard.toml: `database[0].seed`: 'copy' is not one of clone, empty, "
     "dump:<url-or-env:VAR>, command:<cmd>"),
    ("[[database]]\nname = 'app'\nrefresh = 'always'\n",
     "branchyard.toml: `database[0].refresh`: 'always' is not one of manual, auto"),
    ("[[database]]\nname = 'app'\nshared = 'yes'\n",
     "branchyard.toml: `database[0].shared` must be true or false, not a string ('yes')"),
    ("[ports]\nnames = ['PORT', 'PORT']\n", "branchyard.toml: `ports.names`: 'PORT' appears twice"),
    ("[env.vars]\n'BAD-NAME' = 'x'\n",
     "branchyard.toml: `env.vars.BAD-NAME`: 'BAD-NAME' is not a valid environment variable "
     "name"),
    ("[server]\nbin_dir = '/nonexistent/pg/bin'\n",
     "branchyard.toml: `server.bin_dir`: '/nonexistent/pg/bin' has no initdb, pg_ctl, "
     "postgres (it should be PostgreSQL's bin directory)"),
    ("[server]\nbin_dir = 'pg/bin'\n",
     "branchyard.toml: `server.bin_dir`: 'pg/bin' must be an absolute path (or start with ~)"),
    ("[project\n", "branchyard.toml: invalid TOML: Expected ']' at the end of a table "
     "declaration (at line 1, column 9)"),
])
def test_bad_config_names_file_and_key_path(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path, "branchyard.toml", text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert str(err.value) == f"{tmp_path}/{message}"
    assert err.value.hint


def test_error_in_local_file_names_the_local_file(tmp_path: Path) -> None:
    write(tmp_path, "branchyard.toml", "[project]\nname = 'x'\n")
    write(tmp_path, "branchyard.local.toml", "[proxy]\nport = 'high'\n")
    with pytest.raises(ConfigError, match=r"branchyard\.local\.toml: `proxy\.port` must be"):
        load_config(tmp_path)


def test_every_database_engine_has_one_provider_an_inspector_and_the_databases_phase() -> None:
    """`[[database]] engine` is checked against the one list the providers'
    registry, `db status` and setup's phases are derived from."""
    from branchyard.api.dbstatus import INSPECTORS
    from branchyard.api.provisioning import phase_of
    from branchyard.config.model import DATABASE_ENGINES
    from branchyard.providers import SETUP_ORDER, get_provider

    assert set(INSPECTORS) == set(DATABASE_ENGINES)
    for engine in DATABASE_ENGINES:
        assert engine in SETUP_ORDER and phase_of(engine) == "databases"
        assert get_provider(engine).kind == engine
    assert [phase_of(k) for k in ("files", "browser", "deps")] == ["files", "browser", "deps"]
