"""Options given as JSON objects and read into dataclasses. No torch, no Django."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def reject_unknown(cls: Any, data: Mapping[str, Any], what: str) -> None:
    """ValueError naming every key of `data` that is not a field of the dataclass `cls`."""
    unknown = sorted(set(data) - set(cls.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown {what} option(s): {', '.join(unknown)}")
