"""Merging branchyard's keys into an app's JSON or TOML file without losing the
user's: a key branchyard owns is set when missing, updated when it holds an older
branchyard command, and otherwise left alone unless ``--force``."""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.toml_document import TOMLDocument

from branchyard.core.errors import ConfigError

MARK = "branchyard"  # a value that mentions it was written by us (or for us)


@dataclass(frozen=True)
class FileChange:
    """One app file as it should be: ``text`` is written when ``changed``."""

    app: str
    path: Path
    text: str
    changed: bool
    created: bool


@dataclass
class Merge:
    """What one merge did: whether anything changed, and the user's values it
    would have replaced (refused without ``force``)."""

    force: bool
    changed: bool = False
    conflicts: list[str] = field(default_factory=list)

    def claim(self, table: MutableMapping[str, Any], key: str, value: Any, where: str,
              ours: Callable[[Any], bool] | None = None) -> None:
        """Make ``table[key] == value``, unless it holds a value of the user's
        (an empty one counts as unset)."""
        if key not in table:
            table[key] = value
            self.changed = True
            return
        current = _plain(table[key])
        if current == _plain(value):
            return
        if current in ("", [], None) or (ours or is_ours)(current) or self.force:
            table[key] = value
            self.changed = True
        else:
            self.conflicts.append(f"{where} = {json.dumps(current)}")

    def default(self, table: MutableMapping[str, Any], key: str, value: Any) -> None:
        """Set ``table[key]`` only if the user has not chosen a value."""
        if key not in table:
            table[key] = value
            self.changed = True


def is_ours(value: Any) -> bool:
    if isinstance(value, str):
        return MARK in value
    if isinstance(value, list):
        return bool(value) and all(is_ours(v) for v in value)
    if isinstance(value, dict):
        return any(is_ours(v) for v in value.values())
    return False


def _plain(value: Any) -> Any:
    unwrap = getattr(value, "unwrap", None)
    return unwrap() if callable(unwrap) else value


def read_json(path: Path) -> dict[str, Any] | None:
    """The file's object, ``None`` when it does not exist; a clear error when it is
    not a JSON object (it is never overwritten then)."""
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8") or "{}")
    except ValueError as err:
        raise ConfigError(f"{path} is not valid JSON: {err}",
                          hint="fix it (or move it away), then run the command again") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path} does not hold a JSON object",
                          hint="fix it (or move it away), then run the command again")
    return data


def json_text(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def read_toml(path: Path) -> TOMLDocument | None:
    if not path.exists():
        return None
    try:
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except TOMLKitError as err:
        raise ConfigError(f"{path} is not valid TOML: {err}",
                          hint="fix it (or move it away), then run the command again") from err


def table(doc: MutableMapping[str, Any], key: str) -> Any:
    """``doc[key]`` as a table, created when missing."""
    if key not in doc:
        doc[key] = tomlkit.table()
    return doc[key]


def change(app: str, path: Path, text: str, merge: Merge, created: bool) -> FileChange:
    return FileChange(app, path, text, merge.changed or created, created)
