"""Conductor: ``.conductor/settings.toml`` ``[scripts]`` (setup, run, archive).
Conductor ignores the legacy ``conductor.json`` once settings.toml exists, so a
repository that still has only ``conductor.json`` gets that one updated instead
(writing settings.toml there would silently disable the user's other keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomlkit

from branchyard.agents import commands
from branchyard.agents.files import (
    FileChange,
    Merge,
    change,
    json_text,
    read_json,
    read_toml,
    table,
)
from branchyard.config.model import Config

APP = "conductor"
FOLDER = ".conductor"
SETTINGS = ".conductor/settings.toml"
LEGACY = "conductor.json"
SCHEMA = "https://conductor.build/schemas/settings.repo.schema.json"


def scripts(config: Config) -> dict[str, str]:
    return {"setup": commands.SETUP, "run": commands.RUN,
            "archive": commands.TEARDOWN}


def plan(main: Path, config: Config, force: bool, conflicts: list[str]) -> list[FileChange]:
    has_settings, has_legacy = (main / SETTINGS).exists(), (main / LEGACY).exists()
    out = []
    if has_settings or not has_legacy:
        out.append(_settings(main / SETTINGS, config, Merge(force, conflicts=conflicts)))
    if has_legacy:
        out.append(_legacy(main / LEGACY, config, Merge(force, conflicts=conflicts)))
    return out


def _settings(path: Path, config: Config, merge: Merge) -> FileChange:
    doc = read_toml(path)
    created = doc is None
    if doc is None:
        doc = tomlkit.document()
        doc["$schema"] = SCHEMA
        doc.add(tomlkit.nl())
        doc.add(tomlkit.comment("Written by `branchyard agents init`; edit freely."))
    section = table(doc, "scripts")
    for key, value in scripts(config).items():
        merge.claim(section, key, value, f"{SETTINGS}: scripts.{key}")
    merge.default(section, "run_mode", "concurrent")
    return change(APP, path, tomlkit.dumps(doc), merge, created)


def _legacy(path: Path, config: Config, merge: Merge) -> FileChange:
    doc: dict[str, Any] = read_json(path) or {}
    section = doc.setdefault("scripts", {})
    for key, value in scripts(config).items():
        merge.claim(section, key, value, f"{LEGACY}: scripts.{key}")
    merge.default(doc, "runScriptMode", "concurrent")
    return change(APP, path, json_text(doc), merge, False)
