"""What a source's signals say about two uses of its text: training a model on it (**train**)
and giving it to a model as input at inference, by retrieval or grounding (**ai_input**).

A signal is what someone observed (a robots.txt, an HTTP response's headers, a TDMRep file, an
RSL licence, an ai.txt, a registry entry). Each vocabulary inside it is read by its own rules and
turned into *terms*: one usage, allowed or disallowed, with the words that say so. Words a
vocabulary does not define, and vocabularies Trailmark does not read, are kept raw in
`Reading.unknown` and reported; they never decide anything (nothing is guessed).

How the vocabularies map onto the two uses (the reasons are in each reader's docstring):

| vocabulary | train | ai_input |
|---|---|---|
| IETF AI preferences (`Content-Usage`, draft-ietf-aipref-vocab/-attach) | `train-ai` | `ai-use` |
| Cloudflare Content Signals (`Content-Signal`) | `ai-train` | `ai-input` |
| RSL 1.0 licence (`<permits>` / `<prohibits type="usage">`) | `ai-train` | `ai-input`, `ai-index` |
| robots.txt AI user-agents (`Disallow` at the path) | training crawlers | answer fetchers |
| W3C TDMRep (`tdm-reservation`) | 1 = no, 0 = yes | 1 = no, 0 = yes |
| Spawning ai.txt (text types disallowed) | no | — |
| `X-Robots-Tag: noai` | no | — |
| registry entry (read by the person who records it) | as recorded | as recorded |

Statements combine as the AI-preferences vocabulary says (draft-ietf-aipref-vocab §7.1): for each
use, any "no" wins, else any "yes", else unknown. Engine only: no Django.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

USAGES = ("train", "ai_input")
MAX_VALUE_BYTES = 512_000  # RFC 9309 §2.5: a crawler reads at least 500 KiB of a robots.txt


class Pref(enum.StrEnum):
    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Term:
    usage: str        # "train" | "ai_input"
    pref: Pref        # YES or NO; a vocabulary's silence is no term at all
    vocabulary: str   # "aipref", "content-signals", "rsl", "robots-agents", "tdmrep", ...
    says: str         # the words that say it, as written (a rule, a header, an element)

    def as_dict(self) -> dict[str, str]:
        return {"usage": self.usage, "pref": self.pref.value, "vocabulary": self.vocabulary,
                "says": self.says}

    @classmethod
    def from_dict(cls, d: dict[str, str]) -> Term:
        return cls(d["usage"], Pref(d["pref"]), d["vocabulary"], d["says"])


@dataclass(frozen=True)
class Reading:
    """One signal read: its terms, and what it holds that no reader understood."""

    terms: tuple[Term, ...] = ()
    unknown: tuple[str, ...] = ()
    path: str = "/"   # the path of the source the signal was read for
    notes: tuple[str, ...] = field(default=())  # read but bearing on neither use ("search=y")

    @classmethod
    def joined(cls, parts: Iterable[Reading], path: str = "/") -> Reading:
        """The readings of a signal's parts (its header lines, its rules) as one."""
        parts = list(parts)
        return cls(tuple(t for p in parts for t in p.terms),
                   tuple(u for p in parts for u in p.unknown), path,
                   tuple(n for p in parts for n in p.notes))

    def decide(self, usage: str) -> tuple[Pref, Term | None]:
        return combine(self.terms, usage)

    def as_dict(self) -> dict[str, object]:
        return {"terms": [t.as_dict() for t in self.terms], "unknown": list(self.unknown),
                "path": self.path, "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, d: dict) -> Reading:
        return cls(tuple(Term.from_dict(t) for t in d.get("terms", [])),
                   tuple(d.get("unknown", [])), d.get("path", "/"), tuple(d.get("notes", [])))


def combine(terms: Iterable[Term], usage: str) -> tuple[Pref, Term | None]:
    """Most restrictive wins (aipref §7.1). The term returned is the first that decided."""
    allowed: Term | None = None
    for term in terms:
        if term.usage != usage:
            continue
        if term.pref is Pref.NO:
            return Pref.NO, term
        allowed = allowed or term
    return (Pref.YES, allowed) if allowed else (Pref.UNKNOWN, None)


def pattern_covers(pattern: str, path: str) -> bool:
    """Whether a path pattern as robots.txt writes them covers `path` (RFC 9309 §2.2.3: `*` is
    any run of characters, a final `$` the end of the path; otherwise a prefix). RSL's content
    URLs and TDMRep's locations follow the same rules."""
    regex = re.escape(pattern).replace(r"\*", ".*")
    if regex.endswith(r"\$"):
        regex = regex[:-2] + "$"
    return re.match(regex, path) is not None


class Unreadable(ValueError):
    """A value that cannot be a signal of its kind at all (too long, not text)."""


def read(kind: str, value: str, path: str = "/") -> Reading:
    """Read one observed signal of `kind` for a source whose content lives at `path`."""
    from provenance.engine.preferences import robots, vocab

    if len(value.encode()) > MAX_VALUE_BYTES:
        raise Unreadable(f"longer than {MAX_VALUE_BYTES:,} bytes")
    path = path or "/"
    readers = {"robots_txt": robots.read_robots, "ai_txt": robots.read_ai_txt,
               "tdmrep": vocab.read_tdmrep, "http_header": vocab.read_headers,
               "rsl": vocab.read_rsl}
    if kind not in readers:
        raise Unreadable(f"no reader for kind {kind!r}")
    return readers[kind](value, path)


def recorded(*, vocabulary: str, says: str, path: str = "/",
             **prefs: str | None) -> Reading:
    """A reading given by a person (a registry entry has no machine-readable syntax)."""
    terms = tuple(Term(usage, Pref(pref), vocabulary, says) for usage, pref in prefs.items()
                  if pref not in (None, Pref.UNKNOWN.value))
    return Reading(terms=terms, path=path)
