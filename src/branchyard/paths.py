"""Machine-wide locations (user state dir), overridable for tests and CI."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """branchyard's machine-wide state: port leases, proxy, managed server, profiles.

    ``BRANCHYARD_STATE_DIR`` overrides the platform's user state dir.
    """
    override = os.environ.get("BRANCHYARD_STATE_DIR")
    if override:
        return Path(override)
    from platformdirs import user_state_dir

    return Path(user_state_dir("branchyard", appauthor=False))
