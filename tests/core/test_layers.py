"""The import-linter layers (`.importlinter`, checked by `scripts/dev lint`) name
every top-level module and package, so a new one cannot slip past the contract."""

from __future__ import annotations

import configparser
import pkgutil
import re
from pathlib import Path

import branchyard

ROOT = Path(__file__).resolve().parents[2]


def test_every_top_level_module_has_a_layer() -> None:
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    layers = config["importlinter:contract:layers"]["layers"]
    named = {name for name in re.split(r"[\s:|]+", layers) if name}
    modules = {m.name for m in pkgutil.iter_modules(branchyard.__path__)} - {"__main__"}
    assert modules - named == set(), "add these to a layer in .importlinter"
    assert named - modules == set(), "these layers name modules that do not exist"
