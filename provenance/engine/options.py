"""Options given as JSON objects and read into dataclasses. No torch, no Django."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING
from typing import Any


def reject_unknown(cls: Any, data: Mapping[str, Any], what: str) -> None:
    """ValueError naming every key of `data` that is not a field of the dataclass `cls`."""
    unknown = sorted(set(data) - set(cls.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown {what} option(s): {', '.join(unknown)}")


def check_types(cls: Any, data: Mapping[str, Any], what: str) -> None:
    """`reject_unknown`, then ValueError naming the first value whose type is not its field's
    (judged by the field's default: bool, float (an int will do), int, a list of strings, str)."""
    reject_unknown(cls, data, what)
    for name, value in data.items():
        spec = cls.__dataclass_fields__[name]
        default = spec.default if spec.default is not MISSING else spec.default_factory()
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, list):
            ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ValueError(f"{name} has the wrong type ({type(value).__name__})")
