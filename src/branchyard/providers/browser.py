"""Browser isolation: a profile directory per worktree and, when configured, the
session file (``agent-browser.json`` → ``{"sessionName": "<project>-<slug>"}``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from branchyard.core import statefile
from branchyard.core.errors import ProviderError
from branchyard.resources.plan import Allocation, PlanContext
from branchyard.resources.specs import BrowserSpec
from branchyard.system.browser import close_browsers, profile_dir, remove_profile, session_name

KEY = "browser:profile"
SESSION_KEY = "sessionName"


class BrowserProvider:
    kind = "browser"

    def plan(self, ctx: PlanContext) -> list[Allocation[BrowserSpec]]:
        slug = ctx.identity.slug
        session_file = ctx.config.browser.session_file
        return [Allocation(self.kind, KEY, BrowserSpec(
            profile=str(profile_dir(ctx.repo.common_dir, slug)),
            session_file=str(ctx.worktree / session_file) if session_file else "",
            session_name=session_name(ctx.repo.project, slug),
        ))]

    def found(self, alloc: Allocation[BrowserSpec]) -> bool:
        # The profile lives in branchyard's state dir, under a name only it derives.
        return False

    def exists(self, alloc: Allocation[BrowserSpec]) -> bool:
        spec = alloc.spec
        if not Path(spec.profile).is_dir():
            return False
        return not spec.session_file or \
            _read_session(Path(spec.session_file)).get(SESSION_KEY) == spec.session_name

    def create(self, alloc: Allocation[BrowserSpec], ctx: PlanContext) -> bool:
        spec = alloc.spec
        changed = False
        profile = Path(spec.profile)
        if not profile.is_dir():
            profile.mkdir(parents=True, exist_ok=True)
            changed = True
        if spec.session_file:
            changed |= _write_session(Path(spec.session_file), spec.session_name)
        return changed

    def destroy(self, alloc: Allocation[BrowserSpec]) -> None:
        spec = alloc.spec
        profile = Path(spec.profile)
        if profile.is_dir():
            close_browsers(profile)  # a browser still writing would recreate files
        remove_profile(profile)
        if spec.session_file:
            _remove_session(Path(spec.session_file), spec.session_name)

    def env(self, alloc: Allocation[BrowserSpec]) -> dict[str, str]:
        return {"BRANCHYARD_BROWSER_PROFILE": alloc.spec.profile,
                "BRANCHYARD_BROWSER_SESSION": alloc.spec.session_name}

    def describe(self, alloc: Allocation[BrowserSpec]) -> dict[str, Any]:
        spec = alloc.spec
        return {"profile": spec.profile, "session": spec.session_name,
                "session_file": spec.session_file}


def _read_session(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remove_session(path: Path, name: str) -> None:
    """Remove our session from the file: the whole file if nothing else is in it."""
    data = _read_session(path)
    if data.get(SESSION_KEY) != name:
        return  # not ours (any more): leave it alone
    del data[SESSION_KEY]
    if data:
        _write_json(path, data)
    else:
        path.unlink(missing_ok=True)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    # the tool's own format (no version field): only the atomic write is shared
    statefile.write_text(path, json.dumps(data, indent=2) + "\n")


def _write_session(path: Path, name: str) -> bool:
    """Set ``sessionName`` in the file, keeping any other keys; True if it changed."""
    if path.exists() and not path.is_file():
        raise ProviderError(f"{path} exists and is not a file",
                            hint="remove it or change [browser] session_file")
    data = _read_session(path)
    if path.exists() and not data and path.read_text(encoding="utf-8").strip():
        raise ProviderError(f"{path} is not a JSON object; branchyard will not overwrite it",
                            hint="fix or remove the file, then run `branchyard setup` again")
    if data.get(SESSION_KEY) == name:
        return False
    data[SESSION_KEY] = name
    _write_json(path, data)
    return True
