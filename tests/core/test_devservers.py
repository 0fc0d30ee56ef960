"""`init` proposes a run hook that hands the dev server its port."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchyard.deps.detect import detect_deps, detect_package_manager
from branchyard.devservers import detect_dev_server


def _project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def _pkg(dev: str) -> str:
    return json.dumps({"scripts": {"dev": dev, "build": "x"}})


@pytest.mark.parametrize(("files", "framework", "run"), [
    ({"package.json": _pkg("vite"), "package-lock.json": "{}"},
     "vite", "npm run dev -- --port $PORT --strictPort"),
    ({"package.json": _pkg("vite dev"), "pnpm-lock.yaml": ""},
     "vite", "pnpm dev --port $PORT --strictPort"),
    ({"package.json": _pkg("next dev --turbopack"), "package-lock.json": "{}"},
     "next", "npm run dev -- -p $PORT"),
    ({"package.json": _pkg("next dev"), "bun.lock": ""}, "next", "bun run dev -p $PORT"),
    ({"package.json": _pkg("node server.js"), "yarn.lock": ""}, "node", "yarn dev"),
    ({"package.json": _pkg("vite --port $PORT"), "package-lock.json": "{}"},
     "node", "npm run dev"),  # it takes the port already: left as it is
    ({"manage.py": "#!/usr/bin/env python\nimport django\n", "uv.lock": ""},
     "django", "uv run python manage.py runserver 127.0.0.1:$PORT"),
    ({"manage.py": "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'x')\n",
      "requirements.txt": "Django>=5\n"},
     "django", ".venv/bin/python manage.py runserver 127.0.0.1:$PORT"),
    ({"bin/rails": "#!/usr/bin/env ruby\n", "Gemfile": "gem 'rails'\n"},
     "rails", "bin/rails server -p $PORT"),
])
def test_the_run_hook_gets_the_port(tmp_path: Path, files: dict[str, str], framework: str,
                                    run: str) -> None:
    root = _project(tmp_path, files)
    server = detect_dev_server(root, detect_package_manager(root))
    assert server is not None
    assert (server.framework, server.run) == (framework, run)
    assert bool(server.note) == (framework == "next")


def test_nothing_to_run_proposes_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path, {"manage.py": "print('hello')\n", "README.md": "hi\n"})
    assert detect_dev_server(root, detect_package_manager(root)) is None


def test_a_requirements_txt_project_gets_a_virtualenv_deps_entry(tmp_path: Path) -> None:
    root = _project(tmp_path, {"requirements.txt": "Django>=5\n"})
    [entry] = detect_deps(root)
    assert (entry.dir, entry.lockfiles) == (".venv", ("requirements.txt",))
    assert entry.install == ("python3 -m venv .venv && .venv/bin/python -m pip install "
                             "-r requirements.txt")
    both = _project(tmp_path / "uv", {"requirements.txt": "x\n", "uv.lock": ""})
    assert [e.install for e in detect_deps(both)] == ["uv sync --frozen"]  # one .venv entry
