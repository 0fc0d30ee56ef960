"""Loading and validating config files into :mod:`branchyard.config.model` dataclasses."""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from branchyard.config.check import check_config
from branchyard.config.model import CONFIG_FILE, LOCAL_CONFIG_FILE, Config
from branchyard.core.errors import ConfigError

T = TypeVar("T")

_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false", float: "a number"}


def load_config(*dirs: Path) -> tuple[Config, list[Path]]:
    """Load the first ``branchyard.toml`` and ``branchyard.local.toml`` found in
    ``dirs`` (in order); the local file's keys win. No file → defaults."""
    merged: dict[str, Any] = {}
    used: list[Path] = []
    for filename in (CONFIG_FILE, LOCAL_CONFIG_FILE):
        for directory in dirs:
            path = directory / filename
            if path.is_file():
                data = _read_toml(path)
                _build(Config, data, "", path)  # validate each file on its own
                merged = _merge(merged, data)
                used.append(path)
                break
    source = used[-1] if used else Path(CONFIG_FILE)
    config = _build(Config, merged, "", source)
    check_config(config, source)
    return config, used


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}",
                          hint="fix the syntax error at the position shown") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def _build(cls: type[T], data: Any, path: str, source: Path) -> T:
    if not isinstance(data, Mapping):
        raise _type_error(source, path, "a table", data)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    rest = next((f.name for f in fields.values() if f.metadata.get("rest")), None)
    unknown = sorted(set(data) - set(fields))
    if rest is not None:  # sub-tables named by the user (`[services.web]`) go there
        data = _gather(data, set(unknown), rest)
        unknown = sorted(set(data) - set(fields))
    if unknown:
        key = _join(path, unknown[0])
        raise ConfigError(
            f"{source}: unknown key `{key}`",
            hint=f"valid keys{' in [' + path + ']' if path else ''}: "
                 f"{', '.join(sorted(set(fields) - {rest}))}"
                 + (f", or a table [{path}.NAME]" if rest else ""),
        )
    values: dict[str, Any] = {}
    for name, spec in fields.items():
        if name in data:
            where = path if name == rest else _join(path, name)
            values[name] = _convert(hints[name], data[name], where, source)
        elif (spec.default is dataclasses.MISSING
              and spec.default_factory is dataclasses.MISSING):
            raise ConfigError(f"{source}: missing key `{_join(path, name)}`",
                              hint="add it; it has no default")
    return cls(**values)


def _gather(data: Mapping[str, Any], unknown: set[str], rest: str) -> dict[str, Any]:
    """Move the unknown keys holding tables into ``rest`` (in file order)."""
    named = {k: v for k, v in data.items() if k in unknown and isinstance(v, Mapping)}
    return {**{k: v for k, v in data.items() if k not in named}, rest: named}


def _convert(tp: Any, value: Any, path: str, source: Path) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, path, source)  # type: ignore[arg-type]
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        items = value if isinstance(value, list) else None
        if items is None:
            raise _type_error(source, path, "an array", value)
        return tuple(_convert(args[0], v, f"{path}[{i}]", source) for i, v in enumerate(items))
    if origin is tuple:
        if not isinstance(value, list) or len(value) != len(args):
            raise _type_error(source, path, f"an array of {len(args)} items", value)
        return tuple(_convert(a, v, f"{path}[{i}]", source) for i, (a, v) in
                     enumerate(zip(args, value, strict=True)))
    if origin is dict:
        if not isinstance(value, Mapping):
            raise _type_error(source, path, "a table", value)
        return {str(k): _convert(args[1], v, _join(path, str(k)), source)
                for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        return value
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise _type_error(source, path, _TYPE_NAMES.get(tp, tp.__name__), value)
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_error(source: Path, path: str, expected: str, value: Any) -> ConfigError:
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)
    return ConfigError(f"{source}: `{path}` must be {expected}, not {kind} ({value!r})",
                       hint=f"change `{path}` in {source.name}")
