"""Resource providers, registered by kind and imported only when used, so that
fast commands (``env``, ``ls``) never pay for a database driver's import."""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from branchyard.config.model import DATABASE_ENGINES
from branchyard.core.errors import ProviderError
from branchyard.providers.base import Provider
from branchyard.resources.plan import Allocation, PlanContext

__all__ = ["PREVIEWED", "SETUP_ORDER", "Allocation", "PlanContext", "Provider", "get_provider"]

# kind → "module:Class". Order of SETUP_ORDER is the order `setup` creates them in
# (teardown goes in reverse).
# Each database engine's provider is ``branchyard.providers.<engine>:<Engine>Provider``.
_REGISTRY: dict[str, str] = {
    "files": "branchyard.providers.files:FilesProvider",
    **{e: f"branchyard.providers.{e}:{e.capitalize()}Provider" for e in DATABASE_ENGINES},
    "browser": "branchyard.providers.browser:BrowserProvider",
    "deps": "branchyard.providers.deps:DepsProvider",
}
SETUP_ORDER: tuple[str, ...] = tuple(_REGISTRY)
# Kinds whose plan only derives names (no lease is taken): `up` plans them in its
# pre-flight checks, so a bad database name fails before anything is made.
PREVIEWED: tuple[str, ...] = ("postgres", "mysql", "sqlite")


@cache
def get_provider(kind: str) -> Provider[Any]:
    """The provider of ``kind``; of any spec, as the ledger's records are (the
    registry pairs each kind with the provider of its spec class)."""
    try:
        target = _REGISTRY[kind]
    except KeyError:
        raise ProviderError(f"unknown resource kind {kind!r}",
                            hint=f"known kinds: {', '.join(_REGISTRY)}") from None
    module_name, _, cls_name = target.partition(":")
    provider: Provider[Any] = getattr(importlib.import_module(module_name), cls_name)()
    return provider
