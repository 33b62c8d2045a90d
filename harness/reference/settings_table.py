"""The agent service's settings as rows of the operations reference, read from the model.

Every field of ``agent_service.settings.Settings`` becomes one row (variable, other names,
type, default, meaning), so a field added there is documented by regenerating; a field
without a description is reported by ``undocumented`` and fails the reference check.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import annotated_types
from pydantic import AliasChoices, PlainSerializer, SecretStr
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from agent_service.settings import Settings

_WORDS: dict[Any, str] = {
    str: "text",
    int: "integer",
    float: "number",
    bool: "true or false",
    Path: "path",
    SecretStr: "secret text",
}
# Seconds and latencies have a text form of their own (agent_service/settings_values.py).
_SHAPES = {
    "tuple": "seconds, comma-separated",
    "Latency": "SECONDS, uniform:LOW:HIGH or lognormal:MEAN:SIGMA",
}


@dataclass(frozen=True)
class SettingRow:
    field: str
    variable: str
    aliases: tuple[str, ...]
    type: str
    default: str
    meaning: str
    secret: bool


def _names(info: FieldInfo, field: str) -> tuple[str, ...]:
    alias = info.validation_alias
    if isinstance(alias, str):
        return (alias,)
    if isinstance(alias, AliasChoices):
        return tuple(str(choice) for choice in alias.choices)
    return (field.upper(),)


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``| None`` and ``Annotated``, and whether None was allowed."""
    optional = False
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        optional = len(args) < len(typing.get_args(annotation))
        annotation = args[0] if len(args) == 1 else annotation
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation, optional


def _type_word(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(a) for a in typing.get_args(annotation))
    if annotation in _WORDS:
        return _WORDS[annotation]
    name = getattr(typing.get_origin(annotation) or annotation, "__name__", str(annotation))
    return _SHAPES.get(name, name)


def _bounds(info: FieldInfo) -> str:
    low = high = None
    parts = []
    for m in info.metadata:
        if isinstance(m, annotated_types.Ge):
            low = f"{m.ge:.10g}" if isinstance(m.ge, float) else str(m.ge)
        elif isinstance(m, annotated_types.Le):
            high = f"{m.le:.10g}" if isinstance(m.le, float) else str(m.le)
        elif isinstance(m, annotated_types.Gt):
            parts.append(f"> {m.gt}")
        elif isinstance(m, annotated_types.MinLen) and m.min_length == 1:
            parts.append("not empty")
    if low is not None and high is not None:
        parts.insert(0, f"{low} to {high}")
    elif low is not None:
        parts.insert(0, f">= {low}")
    elif high is not None:
        parts.insert(0, f"<= {high}")
    return ", ".join(parts)


def _text(value: Any, info: FieldInfo) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    for m in info.metadata:
        if isinstance(m, PlainSerializer):
            return str(m.func(value))  # type: ignore[call-arg]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _default(info: FieldInfo) -> str:
    if info.default is not PydanticUndefined:
        return _text(info.default, info)
    if info.default_factory is None:
        return "required"
    value = info.default_factory()  # type: ignore[call-arg]
    # A path that depends on the machine (HOME, XDG_STATE_HOME) would make the committed
    # reference differ on every machine: its meaning says how it is found instead.
    return "computed at start" if isinstance(value, Path) else _text(value, info)


def setting_rows(model: type[BaseSettings] = Settings) -> list[SettingRow]:
    rows = []
    for field, info in model.model_fields.items():
        names = _names(info, field)
        annotation, optional = _unwrap(info.annotation)
        kind = _type_word(annotation)
        bounds = _bounds(info)
        rows.append(
            SettingRow(
                field=field,
                variable=names[0],
                aliases=names[1:],
                type=kind + (f", {bounds}" if bounds else "") + (", optional" if optional else ""),
                default=_default(info),
                meaning=info.description or "",
                secret=annotation is SecretStr,
            )
        )
    return rows


def undocumented(model: type[BaseSettings] = Settings) -> list[str]:
    """The variables of settings fields that have no description."""
    return [row.variable for row in setting_rows(model) if not row.meaning.strip()]
