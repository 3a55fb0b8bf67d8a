"""Licence expressions (SPDX) and the use class they allow for training data.

Parsing and normalisation are license-expression's, with the SPDX keys of the ScanCode LicenseDB
index it ships (offline). On top sits the Data Provenance Initiative's reading of licences for
data: each licence maps to a use class (commercial < non-commercial < academic-only < unknown,
from least to most restrictive) plus attribution and share-alike flags. Within one expression
"A OR B" lets the user pick, so it takes the least restrictive branch; "A AND B" must satisfy
both, so it takes the most restrictive. Across several signals for one source (its declared
licence, the terms of the site it came from, the licence of the collection it was taken from) the
most restrictive wins (Longpre et al. 2023, "The Data Provenance Initiative").
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass

import license_expression as le

# Keys that SPDX does not list but that data licences need. LicenseRef- is SPDX's escape hatch.
TRAILMARK_REFS = {
    "LicenseRef-Trailmark-Academic-Only": "academic-only",
    "LicenseRef-Trailmark-Research-Only": "academic-only",
    "LicenseRef-Trailmark-Non-Commercial": "non-commercial",
    "LicenseRef-Trailmark-Proprietary": "unknown",
    "LicenseRef-Trailmark-Unknown": "unknown",
}


class UseClass(enum.IntEnum):
    """Ordered from least to most restrictive."""

    COMMERCIAL = 0
    NON_COMMERCIAL = 1
    ACADEMIC_ONLY = 2
    UNKNOWN = 3

    @property
    def label(self) -> str:
        return self.name.lower().replace("_", "-")

    @classmethod
    def from_label(cls, label: str) -> UseClass:
        return cls[label.upper().replace("-", "_")]


@dataclass(frozen=True)
class Terms:
    use_class: UseClass
    attribution: bool = False
    share_alike: bool = False

    def stricter(self, other: Terms) -> Terms:
        return Terms(max(self.use_class, other.use_class),
                     self.attribution or other.attribution,
                     self.share_alike or other.share_alike)

    def looser(self, other: Terms) -> Terms:
        # "A OR B": the user may comply with whichever is less restrictive.
        key = (self.use_class, self.share_alike, self.attribution)
        return self if key <= (other.use_class, other.share_alike, other.attribution) else other


C, NC, AO = UseClass.COMMERCIAL, UseClass.NON_COMMERCIAL, UseClass.ACADEMIC_ONLY

# Licences common on training data, with the terms the DPI audit assigns them.
_KNOWN: dict[str, Terms] = {
    **{k: Terms(C) for k in ["CC0-1.0", "PDDL-1.0", "Unlicense", "0BSD", "WTFPL", "MIT-0"]},
    **{k: Terms(C, attribution=True) for k in [
        "CC-BY-1.0", "CC-BY-2.0", "CC-BY-2.5", "CC-BY-3.0", "CC-BY-4.0", "ODC-By-1.0", "MIT",
        "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "CDLA-Permissive-1.0",
        "CDLA-Permissive-2.0", "Zlib", "BSL-1.0", "PSF-2.0", "Artistic-2.0", "OGL-UK-3.0",
    ]},
    **{k: Terms(C, attribution=True, share_alike=True) for k in [
        "CC-BY-SA-1.0", "CC-BY-SA-2.0", "CC-BY-SA-2.5", "CC-BY-SA-3.0", "CC-BY-SA-4.0",
        "ODbL-1.0", "CDLA-Sharing-1.0", "GPL-2.0-only", "GPL-2.0-or-later", "GPL-3.0-only",
        "GPL-3.0-or-later", "LGPL-2.1-only", "LGPL-2.1-or-later", "LGPL-3.0-only",
        "LGPL-3.0-or-later", "AGPL-3.0-only", "AGPL-3.0-or-later", "MPL-2.0", "EPL-2.0",
        "GFDL-1.3-only", "GFDL-1.3-or-later",
    ]},
    # No-derivatives: training makes a derivative, so commercial training is out.
    **{k: Terms(NC, attribution=True) for k in [
        "CC-BY-NC-1.0", "CC-BY-NC-2.0", "CC-BY-NC-2.5", "CC-BY-NC-3.0", "CC-BY-NC-4.0",
        "CC-BY-ND-1.0", "CC-BY-ND-2.0", "CC-BY-ND-2.5", "CC-BY-ND-3.0", "CC-BY-ND-4.0",
        "CC-BY-NC-ND-1.0", "CC-BY-NC-ND-2.0", "CC-BY-NC-ND-2.5", "CC-BY-NC-ND-3.0",
        "CC-BY-NC-ND-4.0",
    ]},
    **{k: Terms(NC, attribution=True, share_alike=True) for k in [
        "CC-BY-NC-SA-1.0", "CC-BY-NC-SA-2.0", "CC-BY-NC-SA-2.5", "CC-BY-NC-SA-3.0",
        "CC-BY-NC-SA-4.0",
    ]},
    "C-UDA-1.0": Terms(AO),  # Computational Use of Data Agreement: research computation only
    "NOASSERTION": Terms(UseClass.UNKNOWN),
    **{k: Terms(UseClass.from_label(v)) for k, v in TRAILMARK_REFS.items()},
}

# Fallback on ScanCode's licence category for SPDX keys not listed above.
_BY_CATEGORY = {
    "Public Domain": Terms(C),
    "Permissive": Terms(C, attribution=True),
    "Copyleft": Terms(C, attribution=True, share_alike=True),
    "Copyleft Limited": Terms(C, attribution=True, share_alike=True),
}


class LicenseError(ValueError):
    """An expression that cannot be parsed or names keys nobody knows."""

    def __init__(self, message: str, unknown_keys: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.unknown_keys = list(unknown_keys)


@functools.lru_cache(maxsize=1)
def _index() -> tuple[le.Licensing, dict[str, str]]:
    entries = le.get_license_index()
    categories = {e["spdx_license_key"]: e.get("category", "") for e in entries
                  if e.get("spdx_license_key")}
    extra = [{"spdx_license_key": key, "license_key": key.lower()}
             for key in [*TRAILMARK_REFS, "NOASSERTION"]]
    return le.build_spdx_licensing(entries + extra), categories


def normalise_expression(expression: str) -> str:
    """Canonical SPDX form ('mit or apache-2.0' -> 'MIT OR Apache-2.0'); LicenseError if bad."""
    if not expression or not expression.strip():
        raise LicenseError("licence expression is empty")
    licensing, _ = _index()
    try:
        info = licensing.validate(expression.strip(), strict=True)
    except (le.ExpressionError, AttributeError) as exc:
        # validate() itself raises on some malformed input ("MIT AND", a bare operator).
        msg = str(exc) if isinstance(exc, le.ExpressionError) else "incomplete expression"
        raise LicenseError(f"cannot parse licence expression {expression!r}: {msg}") from exc
    unknown = [key for key in info.invalid_symbols if key.strip()]
    if unknown:
        raise LicenseError(f"unknown licence key(s): {', '.join(unknown)}", unknown)
    if info.errors or not info.normalized_expression:
        raise LicenseError(f"cannot parse licence expression {expression!r}: "
                           + ("; ".join(e for e in info.errors if e.strip()) or "incomplete"))
    return info.normalized_expression


def _terms_of_key(key: str) -> Terms:
    if key in _KNOWN:
        return _KNOWN[key]
    return _BY_CATEGORY.get(_index()[1].get(key, ""), Terms(UseClass.UNKNOWN))


def _terms_of_node(node: object) -> Terms:
    if isinstance(node, le.LicenseWithExceptionSymbol):
        return _terms_of_key(node.license_symbol.key)
    if isinstance(node, le.LicenseSymbol):
        return _terms_of_key(node.key)
    children = [_terms_of_node(arg) for arg in node.args]  # type: ignore[attr-defined]
    combine = Terms.looser if isinstance(node, le.OR) else Terms.stricter
    return functools.reduce(combine, children)


def terms_of(expression: str) -> Terms:
    licensing, _ = _index()
    return _terms_of_node(licensing.parse(normalise_expression(expression)))


def resolve(expressions: Iterable[str]) -> Terms:
    """The terms that bind a source, given every licence signal seen for it."""
    terms = [terms_of(e) for e in expressions if e and e.strip()]
    if not terms:
        return Terms(UseClass.UNKNOWN)
    return functools.reduce(Terms.stricter, terms)


# The use classes each intended use may draw on.
POLICIES: dict[str, frozenset[UseClass]] = {
    "commercial": frozenset({C}),
    "non-commercial": frozenset({C, NC}),
    "academic": frozenset({C, NC, AO}),
}


def allowed(use_class: UseClass, intended_use: str, allow_unknown: bool = False) -> bool:
    if use_class is UseClass.UNKNOWN:
        return allow_unknown
    return use_class in POLICIES[intended_use]
