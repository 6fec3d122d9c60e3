"""JSON <-> message dataclasses, with validation of what comes back from other systems.

Standard library only. `decode` refuses missing fields, unknown fields and wrong types
instead of letting a malformed answer from an external WMS/QMS reach the batch record.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

T = TypeVar("T")


class DecodeError(ValueError):
    pass


def encode(message: Any) -> dict[str, Any]:
    return dataclasses.asdict(message)


def decode(cls: type[T], data: Any, where: str = "") -> T:
    where = where or cls.__name__
    if not isinstance(data, dict):
        raise DecodeError(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(fields)
    if unknown:
        raise DecodeError(f"{where}: unexpected field(s) {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name not in data:
            has_default = (
                f.default is not dataclasses.MISSING
                or f.default_factory is not dataclasses.MISSING
            )
            if has_default:
                continue
            raise DecodeError(f"{where}: missing field '{name}'")
        kwargs[name] = _value(hints[name], data[name], f"{where}.{name}")
    return cls(**kwargs)


def _value(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        errors = []
        for option in typing.get_args(hint):
            try:
                return _value(option, value, where)
            except DecodeError as exc:
                errors.append(str(exc))
        raise DecodeError(f"{where}: {value!r} matches none of {hint}")
    if hint is type(None):
        if value is not None:
            raise DecodeError(f"{where}: expected null")
        return None
    if origin is list:
        if not isinstance(value, list):
            raise DecodeError(f"{where}: expected a list")
        (item,) = typing.get_args(hint)
        return [_value(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise DecodeError(f"{where}: expected an object")
        _, item = typing.get_args(hint)
        return {str(k): _value(item, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return decode(hint, value, where)  # type: ignore[arg-type]
    if hint is bool:
        if not isinstance(value, bool):
            raise DecodeError(f"{where}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DecodeError(f"{where}: expected an integer")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise DecodeError(f"{where}: expected a string")
        return value
    if hint is Any:
        return value
    raise DecodeError(f"{where}: cannot decode into {hint}")
