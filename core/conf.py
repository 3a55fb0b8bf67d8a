"""Typed access to the TRAILMARK settings block (read at call time, so tests can override it)."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings


def setting(name: str) -> Any:
    return cast(dict[str, Any], settings.TRAILMARK)[name]
