"""`[services]` in branchyard.toml: defaults, sub-tables, and errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from branchyard.api.services import configured_services
from branchyard.config.load import load_config
from branchyard.config.model import ServiceConfig
from branchyard.core.errors import ConfigError


def test_no_services_table_means_web_runs_the_run_hook(tmp_path: Path) -> None:
    (tmp_path / "branchyard.toml").write_text('[hooks]\nrun = "npm run dev"\n'
                                              '[ports]\nnames = ["PORT", "API_PORT"]\n')
    config, _ = load_config(tmp_path)
    assert configured_services(config) == {"web": ServiceConfig("npm run dev", port="PORT")}


def test_service_tables_keep_their_order_and_settings(tmp_path: Path) -> None:
    (tmp_path / "branchyard.toml").write_text(
        '[ports]\nnames = ["PORT", "API_PORT"]\n[services]\nenv = "all"\nbackoff = 1\n'
        '[services.web]\ncommand = "next dev"\nport = "PORT"\nready = "http:/health"\n'
        '[services.api]\ncommand = "uvicorn app:app"\nport = "API_PORT"\nrestart = "no"\n'
        'on_env_change = "signal:HUP"\n')
    config, _ = load_config(tmp_path)
    assert list(configured_services(config)) == ["web", "api"]
    assert config.services.env == "all" and config.services.backoff == 1.0
    assert config.services.define["api"] == ServiceConfig(
        "uvicorn app:app", "API_PORT", "", "no", "signal:HUP")


@pytest.mark.parametrize(("text", "message"), [
    ("[services]\nevn = 'all'\n", "unknown key `services.evn`"),
    ("[services.web]\ncommand = 'x'\nprot = 'PORT'\n", "unknown key `services.web.prot`"),
    ("[services.web]\nport = 'PORT'\n", "missing key `services.web.command`"),
    ("[services.web]\ncommand = 'x'\nport = 'API'\n",
     "`services.web.port`: 'API' is not one of the [ports] names (PORT)"),
    ("[services.web]\ncommand = 'x'\nrestart = 'always'\n",
     "`services.web.restart`: 'always' is not one of no, on-failure"),
    ("[services.web]\ncommand = 'x'\non_env_change = 'signal:NOPE'\n",
     "`services.web.on_env_change`: 'signal:NOPE' is not one of restart, signal:NAME "
     "(e.g. signal:HUP), none"),
    ("[services.web]\ncommand = 'x'\nready = 'http'\n",
     "`services.web.ready`: 'http' is not one of http:/PATH, tcp, none"),
    ("[services]\nenv = 'some'\n", "`services.env`: 'some' is not one of derived, all"),
    ("[services.Web]\ncommand = 'x'\n", "`services.Web`: 'Web' must be lowercase letters, "
     "digits, - or _, starting with a letter"),
    ("[agent]\ncmd = 'claude'\n", "unknown key `agent.cmd`"),
])
def test_bad_services_config_names_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "branchyard.toml").write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path)
    assert str(err.value) == f"{tmp_path}/branchyard.toml: {message}"
    assert err.value.hint
