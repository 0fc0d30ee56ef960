"""Database drivers that come as extras: a clear error naming the extra when one
is missing (``pip install 'branchyard[mysql]'``)."""

from __future__ import annotations

import importlib
from types import ModuleType

from branchyard.core.errors import DatabaseError

# module → (what it is, the extra that brings it)
EXTRAS = {
    "pymysql": ("the MySQL/MariaDB driver PyMySQL", "mysql"),
    "redis": ("the Redis driver redis-py", "redis"),
}


def require(module: str) -> ModuleType:
    """Import a driver, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        what, extra = EXTRAS[module]
        raise DatabaseError(
            f"{what} is not installed",
            hint=f"install branchyard with it: `pip install 'branchyard[{extra}]'` "
                 f"(pipx: `pipx install --force 'branchyard[{extra}]'`; "
                 f"uv: `uv tool install 'branchyard[{extra}]'`)") from None
