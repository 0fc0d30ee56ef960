"""The three readers of an env file, each a real process: python-dotenv's
``load_dotenv()``, ``node --env-file`` and ``sh`` (``set -a; . file``).

Each reads one file and prints the named variables as JSON, so one process
checks many values at once.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

# A clean environment: nothing in it may shadow a variable of the file.
_ENV = {"PATH": os.environ["PATH"], "PYTHONUTF8": "1", "LC_ALL": "C.UTF-8"}
_DUMP_PY = ("import json, os, sys\n"
            "print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))\n")
_LOAD_DOTENV = ("import json, os, sys\n"
                "from dotenv import load_dotenv\n"
                "load_dotenv(sys.argv[1])\n"
                "print(json.dumps({k: os.environ.get(k) for k in sys.argv[2:]}))\n")
_DUMP_NODE = ("const o = {}; for (const k of process.argv.slice(1)) o[k] = process.env[k] ?? null;"
              " console.log(JSON.stringify(o))")


def _json(argv: Sequence[str], cwd: Path) -> dict[str, str | None]:
    done = subprocess.run(argv, cwd=cwd, env=_ENV, capture_output=True, text=True,
                          timeout=60, check=True)
    data: dict[str, str | None] = json.loads(done.stdout)
    return data


def python_dotenv(path: Path, keys: Sequence[str]) -> dict[str, str | None]:
    """What ``load_dotenv(path)`` puts in ``os.environ`` (interpolation on, as by default)."""
    return _json([sys.executable, "-c", _LOAD_DOTENV, str(path), *keys], path.parent)


def load_dotenv_in(cwd: Path, keys: Sequence[str]) -> dict[str, str | None]:
    """What a tool calling plain ``load_dotenv()`` in ``cwd`` sees (it finds ``.env``)."""
    code = ("import json, os, sys\nfrom dotenv import load_dotenv\nload_dotenv()\n"
            "print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))\n")
    return _json([sys.executable, "-c", code, *keys], cwd)


def node(path: Path, keys: Sequence[str]) -> dict[str, str | None]:
    return _json(["node", f"--env-file={path}", "-e", _DUMP_NODE, *keys], path.parent)


def sh(path: Path, keys: Sequence[str]) -> dict[str, str | None]:
    script = 'set -a; . "$1"; shift; exec "$@"'
    return _json(["sh", "-c", script, "sh", str(path), sys.executable, "-c", _DUMP_PY, *keys],
                 path.parent)


READERS = {"python-dotenv": python_dotenv, "node": node, "sh": sh}


def read_back(path: Path, keys: Sequence[str]) -> dict[str, dict[str, str | None]]:
    """reader name → what it read for each key."""
    return {name: reader(path, keys) for name, reader in READERS.items()}
