"""A dataset version in the formats people use: a Hugging Face dataset card, Croissant 1.1
JSON-LD with the RAI fields, and an SPDX 3.0 document with the Dataset profile."""

from __future__ import annotations

import functools

from license_expression import Licensing, get_spdx_licensing


@functools.lru_cache(maxsize=1)
def spdx_licensing() -> Licensing:
    """license-expression's SPDX licensing, built once per process: `get_spdx_licensing()`
    builds its index anew on every call (~0.1 s), and a card asks for it per source."""
    return get_spdx_licensing()
