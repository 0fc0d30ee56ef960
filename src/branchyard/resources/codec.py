"""Specs to and from the ledger's JSON: the one place that reads or writes them.

Since ledger schema 3 a spec is written field by field (:func:`to_json`). Older
ledgers kept each provider's own dict, and :func:`from_json` reads those the
same way: a key they lack gets the field's default (Postgres' ``owner``,
``shared``, ``refresh`` … came later), and a key no field takes (``engine``,
the kind again; one a newer branchyard added) is dropped, so a record is never
lost over a key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import MISSING, asdict, fields, is_dataclass
from typing import Any

from branchyard.config.model import ServerConfig
from branchyard.resources.specs import SPECS, Owner, Spec


def to_json(spec: Spec) -> dict[str, Any]:
    """The spec as the ledger writes it (JSON types only)."""
    return {f.name: _plain(getattr(spec, f.name)) for f in fields(spec)}


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def from_json(kind: str, data: Mapping[str, Any]) -> Spec:
    """The spec of a ``kind`` resource the ledger recorded as ``data`` (any schema).

    Raises KeyError for an unknown kind or a missing field without a default,
    TypeError for a value of the wrong type.
    """
    try:
        cls, decoders = SPECS[kind], _DECODERS[kind]
    except KeyError:
        raise KeyError(f"unknown resource kind {kind!r}") from None
    if not isinstance(data, Mapping):
        raise TypeError(f"the spec of a {kind} resource is not an object")
    values: dict[str, Any] = {}
    for name, (decode, required) in decoders.items():
        if name in data:
            values[name] = decode(data[name], f"{kind}.{name}")
        elif required:
            raise KeyError(f"the {kind} resource has no {name!r}")
    return cls(**values)


Decoder = Callable[[Any, str], Any]


def _decoders(cls: type[Spec]) -> dict[str, tuple[Decoder, bool]]:
    """Each field's decoder (by its annotation), and whether it has no default."""
    return {f.name: (_BY_TYPE[str(f.type)],
                     f.default is MISSING and f.default_factory is MISSING)
            for f in fields(cls)}


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{where} must be a string, not {value!r}")
    return value


def _number(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"{where} must be a number, not {value!r}")
    try:
        return int(value)
    except ValueError:
        raise TypeError(f"{where} must be a number, not {value!r}") from None


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{where} must be true or false, not {value!r}")
    return value


def _texts(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"{where} must be a list, not {value!r}")
    return tuple(_text(v, where) for v in value)


def _owner(value: Any, where: str) -> Owner | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be an object, not {value!r}")
    return Owner(*(_text(value[k], f"{where}.{k}") for k in ("clone", "machine", "path")))


def _server_config(value: Any, where: str) -> ServerConfig | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise TypeError(f"{where} must be an object, not {value!r}")
    known = {f.name for f in fields(ServerConfig)}  # an older [server] may have had more
    return ServerConfig(**{k: v for k, v in value.items() if k in known})


_BY_TYPE: dict[str, Decoder] = {
    "str": _text, "int": _number, "bool": _flag, "tuple[str, ...]": _texts,
    "Owner | None": _owner, "ServerConfig | None": _server_config,
}
# kind → each field's (decoder, required), worked out once
_DECODERS = {kind: _decoders(cls) for kind, cls in SPECS.items()}
