"""The URL variables a worktree's env gets, derived in one place."""

from __future__ import annotations

from branchyard.config.model import Config, PortsConfig, ProxyConfig
from branchyard.proxy.sites import url_env


def test_url_env_for_a_worktree_with_named_ports() -> None:
    config = Config(ports=PortsConfig(names=("PORT", "API_PORT")))
    assert url_env("feat-x", "shop", {"PORT": 41000, "API_PORT": 41001}, config) == {
        "BRANCHYARD_URL": "http://feat-x.shop.localhost:1355",
        "BRANCHYARD_HOST": "feat-x.shop.localhost",
        "BRANCHYARD_LOCAL_URL": "http://127.0.0.1:41000",
        "BRANCHYARD_LOCAL_HOST": "127.0.0.1:41000",
        "BRANCHYARD_API_URL": "http://api.feat-x.shop.localhost:1355",
        "BRANCHYARD_API_LOCAL_URL": "http://127.0.0.1:41001",
    }


def test_url_env_https_on_443_and_main_worktree() -> None:
    config = Config(proxy=ProxyConfig(https=True, port=443))
    assert url_env(None, "shop", {"PORT": 3000}, config) == {
        "BRANCHYARD_URL": "https://shop.localhost",
        "BRANCHYARD_HOST": "shop.localhost",
        "BRANCHYARD_LOCAL_URL": "http://127.0.0.1:3000",
        "BRANCHYARD_LOCAL_HOST": "127.0.0.1:3000",
    }
