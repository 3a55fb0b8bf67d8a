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

import difflib
import enum
import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import license_expression as le

# Keys that SPDX does not list but that data licences need. LicenseRef- is SPDX's escape hatch.
TRAILMARK_REFS = {
    "LicenseRef-Trailmark-Academic-Only": "academic-only",
    "LicenseRef-Trailmark-Research-Only": "academic-only",
    "LicenseRef-Trailmark-Non-Commercial": "non-commercial",
    "LicenseRef-Trailmark-Proprietary": "unknown",
    "LicenseRef-Trailmark-Unknown": "unknown",
    # What copyright files call "public domain" (SPDX has no identifier for it).
    "LicenseRef-Trailmark-Public-Domain": "commercial",
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


# SPDX's own escape hatch for a licence it does not list: accepted as it is, its use class
# unknown (curation leaves it out unless a recipe allows unknown licences).
LICENSE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.\-]+")

# The short names projects write in their copyright files (Debian's DEP-5 standard names, and
# the usual variants), as SPDX: a version without "+" is that version only, with "+" or later.
_GNU = {"GPL": "GPL", "LGPL": "LGPL", "AGPL": "AGPL", "GFDL": "GFDL"}
_FIXED = {
    "expat": "MIT", "mit/x11": "MIT", "x11": "X11", "mit-x11": "MIT",
    "public-domain": "LicenseRef-Trailmark-Public-Domain",
    "public domain": "LicenseRef-Trailmark-Public-Domain",
    "pd": "LicenseRef-Trailmark-Public-Domain",
    "artistic": "Artistic-1.0", "artistic-1": "Artistic-1.0", "artistic-2": "Artistic-2.0",
    "perl": "(Artistic-1.0-Perl OR GPL-1.0-or-later)", "python": "PSF-2.0", "psf": "PSF-2.0",
    "apache-2": "Apache-2.0", "apache-1.1": "Apache-1.1", "mpl-2": "MPL-2.0",
    "mpl-1.1": "MPL-1.1", "cc0": "CC0-1.0", "zlib/libpng": "Zlib", "boost": "BSL-1.0",
    "zope-2.1": "ZPL-2.1", "bsd-2": "BSD-2-Clause", "bsd-3": "BSD-3-Clause",
    "bsd-4": "BSD-4-Clause", "bsd-2-clause-freebsd": "BSD-2-Clause",
}
_GNU_NAME = re.compile(r"^(A?L?GPL|GFDL)(?:-(\d+(?:\.\d+)?))?(\+)?$", re.IGNORECASE)
_CC_NAME = re.compile(r"^CC-(BY(?:-NC)?(?:-SA|-ND)?)-(\d)(?:\.0)?$", re.IGNORECASE)
_TOKEN = re.compile(r"\(|\)|,|\b(?:and|or|with)\b|[^\s(),]+(?:\s+(?:domain)\b)?",
                    re.IGNORECASE)


def _alias(word: str) -> str | None:
    """The SPDX form of one licence name as copyright files write it (None: no alias)."""
    fixed = _FIXED.get(word.lower())
    if fixed:
        return fixed
    gnu = _GNU_NAME.match(word)
    if gnu:
        family, version, plus = gnu.group(1).upper(), gnu.group(2), gnu.group(3)
        if version is None:  # no version named: any version
            return f"{family}-1.0-or-later" if family != "GFDL" else "GFDL-1.1-or-later"
        version = version if "." in version else f"{version}.0"
        return f"{family}-{version}-{'or-later' if plus else 'only'}"
    cc = _CC_NAME.match(word)
    if cc:
        return f"CC-{cc.group(1).upper()}-{cc.group(2)}.0"
    return None


@dataclass(frozen=True)
class Resolved:
    """A licence as written and as SPDX: `expression` is what Trailmark reasons with, `original`
    what the owner wrote, `aliases` the names that were read as something else."""

    expression: str
    original: str
    aliases: dict[str, str] = field(default_factory=dict)


def _translated(text: str) -> tuple[str, dict[str, str]]:
    """DEP-5 syntax as SPDX: names through their aliases, "A, B" as "A AND B" (every licence
    listed applies, the strict reading)."""
    out, aliases = [], {}
    for token in _TOKEN.findall(text):
        lowered = token.lower()
        if token == ",":
            out.append("AND")
        elif lowered in ("and", "or", "with", "(", ")"):
            out.append(token.upper() if lowered in ("and", "or", "with") else token)
        else:
            alias = _alias(token)
            if alias and not alias.startswith("(") and alias not in _index()[0].known_symbols:
                alias = None  # "GPL-2.5": no such version; reported as written
            if alias and alias != token:
                aliases[token] = alias
            out.append(alias or token)
    return " ".join(out), aliases


def suggestions(key: str, n: int = 3) -> list[str]:
    """The closest known SPDX keys to an unknown one."""
    known = {k.lower(): k for k in _index()[0].known_symbols}
    return [known[m] for m in difflib.get_close_matches(key.lower(), list(known), n=n,
                                                        cutoff=0.6)]


def resolve_license(text: str) -> Resolved:
    """A licence string as projects write it: SPDX as it is, Debian DEP-5 short names
    ("GPL-2+", "Expat", "public-domain", "Artistic, GPL-1+") read as SPDX, LicenseRef-... kept.
    LicenseError names each unknown key with the closest known ones."""
    original = (text or "").strip()
    if not original:
        raise LicenseError("licence expression is empty")
    candidate, aliases = _translated(original)
    expression = normalise_expression(candidate)
    return Resolved(expression=expression, original=original, aliases=aliases)


def normalise_expression(expression: str) -> str:
    """Canonical SPDX form ('mit or apache-2.0' -> 'MIT OR Apache-2.0'); LicenseError if bad.
    LicenseRef-... keys are accepted as they are."""
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
    foreign = [key for key in unknown if not LICENSE_REF.fullmatch(key)]
    if foreign:
        hints = "; ".join(f"{key} (did you mean {' or '.join(near)}?)" if near else key
                          for key in foreign for near in [suggestions(key)])
        raise LicenseError(f"unknown licence key(s): {hints}; a licence SPDX does not list "
                           f"can be written LicenseRef-<name>", foreign)
    if unknown:  # only LicenseRefs: the structure was validated, render it
        return str(licensing.parse(expression.strip()))
    if info.errors or not info.normalized_expression:
        raise LicenseError(f"cannot parse licence expression {expression!r}: "
                           + ("; ".join(e for e in info.errors if e.strip()) or "incomplete"))
    return info.normalized_expression


RefTerms = Mapping[str, Terms]  # a LicenseRef's terms, as a curator classified it


def _terms_of_key(key: str, refs: RefTerms) -> Terms:
    if key in _KNOWN:
        return _KNOWN[key]
    if key in refs:
        return refs[key]
    return _BY_CATEGORY.get(_index()[1].get(key, ""), Terms(UseClass.UNKNOWN))


def _terms_of_node(node: object, refs: RefTerms) -> Terms:
    if isinstance(node, le.LicenseWithExceptionSymbol):
        return _terms_of_key(node.license_symbol.key, refs)
    if isinstance(node, le.LicenseSymbol):
        return _terms_of_key(node.key, refs)
    children = [_terms_of_node(arg, refs) for arg in node.args]  # type: ignore[attr-defined]
    combine = Terms.looser if isinstance(node, le.OR) else Terms.stricter
    return functools.reduce(combine, children)


def terms_of(expression: str, refs: RefTerms | None = None) -> Terms:
    """The terms of one expression; a LicenseRef- key takes the terms `refs` gives it (a
    curator's classification), else it is of unknown use."""
    licensing, _ = _index()
    return _terms_of_node(licensing.parse(normalise_expression(expression)), refs or {})


def is_own_ref(key: str) -> bool:
    """A key whose terms Trailmark fixes (its own LicenseRefs): not for a curator to set."""
    return key in TRAILMARK_REFS


def resolve(expressions: Iterable[str], refs: RefTerms | None = None) -> Terms:
    """The terms that bind a source, given every licence signal seen for it."""
    terms = [terms_of(e, refs) for e in expressions if e and e.strip()]
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
