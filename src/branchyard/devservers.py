"""Which dev server a repository runs, and how to hand it the worktree's port.

`init` proposes ``[hooks] run`` from this. Each command reads ``$PORT`` itself or
passes it as a flag (``branchyard run`` runs the hook through the shell, so
``$PORT`` expands), because several servers ignore the env files for their port.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from branchyard.deps.detect import PackageManager


@dataclass(frozen=True)
class DevServer:
    framework: str  # "vite", "next", "django", "rails", "node" …
    run: str  # the proposed `[hooks] run`
    note: str = ""  # what the user should know about how it takes its port


_NEXT_NOTE = ("Next.js reads PORT only from the process environment, never from .env "
              "files: start it with `branchyard run` (or load the override env file with "
              "direnv/mise, see the README)")
# (framework, pattern in the script, the port arguments it takes)
_NODE_SERVERS = (
    ("next", re.compile(r"\bnext(\s+dev)?\b"), "-p $PORT"),
    ("vite", re.compile(r"\bvite\b"), "--port $PORT --strictPort"),
    ("astro", re.compile(r"\bastro\s+dev\b"), "--port $PORT"),
    ("nuxt", re.compile(r"\bnuxt\s+dev\b"), "--port $PORT"),
)
_READS_PORT = re.compile(r"\$\{?PORT\b|process\.env\.PORT")


def detect_dev_server(main: Path, manager: PackageManager | None) -> DevServer | None:
    """The dev server found at the root of ``main``, or None."""
    return (_node(main, manager) or _django(main, manager) or _rails(main))


def _node(main: Path, manager: PackageManager | None) -> DevServer | None:
    scripts = _scripts(main / "package.json")
    name = next((n for n in ("dev", "start") if n in scripts), None)
    if name is None:
        return None
    prefix = manager.run if manager is not None and manager.run else "npm run"
    plain = f"{prefix} {name}"
    script = scripts[name]
    for framework, pattern, port_args in _NODE_SERVERS:
        if pattern.search(script) and "$PORT" not in script and "-p " not in script:
            separator = " -- " if prefix == "npm run" else " "  # npm needs `--` to pass args
            return DevServer(framework, f"{plain}{separator}{port_args}",
                             _NEXT_NOTE if framework == "next" else "")
    framework = "node" if _READS_PORT.search(script) or "node" in script else "script"
    return DevServer(framework, plain)


def _django(main: Path, manager: PackageManager | None) -> DevServer | None:
    manage = main / "manage.py"
    try:
        if "django" not in manage.read_text(encoding="utf-8", errors="replace").lower():
            return None
    except OSError:
        return None
    python = {"uv": "uv run python", "poetry": "poetry run python"}.get(
        manager.name if manager is not None else "", "python")
    if manager is not None and manager.name == "pip":
        python = ".venv/bin/python"
    return DevServer("django", f"{python} manage.py runserver 127.0.0.1:$PORT")


def _rails(main: Path) -> DevServer | None:
    if not (main / "bin" / "rails").is_file():
        return None
    return DevServer("rails", "bin/rails server -p $PORT")


def _scripts(package_json: Path) -> dict[str, str]:
    try:
        data = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    scripts = data.get("scripts") if isinstance(data, dict) else None
    if not isinstance(scripts, dict):
        return {}
    return {k: v for k, v in scripts.items() if isinstance(v, str)}
