"""Readers of the vocabularies that are not robots.txt's: the IETF AI preferences, Cloudflare's
Content Signals, W3C TDMRep, RSL licences, and the HTTP headers that carry them."""

from __future__ import annotations

import json
import re

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from http_sfv import Dictionary, Token

from provenance.engine.preferences import Pref, Reading, Term, combine, pattern_covers

# draft-ietf-aipref-vocab §6.1 labels -> our uses. "search" is read but bears on neither: it
# covers only applications that point users to the asset, and (§4.3) overrides the others only
# inside such applications, which training a model or answering from a datastore is not.
AIPREF_LABELS = {"train-ai": "train", "ai-use": "ai_input"}
AIPREF_NOTED = {"search"}
# Cloudflare Content Signals Policy: yes/no per signal.
SIGNAL_LABELS = {"ai-train": "train", "ai-input": "ai_input"}
SIGNAL_NOTED = {"search"}
# RSL 1.0 usage tokens. A datastore both indexes text for an AI system (ai-index) and gives it
# to a model as input (ai-input), so either one prohibited refuses ai_input.
RSL_USES = {"ai-train": ("train",), "ai-input": ("ai_input",), "ai-index": ("ai_input",)}
RSL_GROUPS = {"ai-all": ("ai-train", "ai-input", "ai-index"),
              "all": ("ai-train", "ai-input", "ai-index", "search")}
RSL_NS = "{https://rslstandard.org/rsl}"


def read_aipref(value: str, says_prefix: str = "Content-Usage: ") -> Reading:
    """The exemplary format of draft-ietf-aipref-vocab §6: a Structured Fields Dictionary
    (RFC 9651, parsed by http-sfv) whose values are the Tokens y or n. Anything else (an unknown
    label, a string "n", a failed parse) leaves the preference unknown (§6.5), and is reported."""
    parsed = Dictionary()
    try:
        parsed.parse(value.strip().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return Reading(unknown=(f"{says_prefix}{value.strip()} (not a structured dictionary)",))
    terms: list[Term] = []
    unknown: list[str] = []
    notes: list[str] = []
    for label, item in parsed.items():
        raw = f"{label}={item.value}" if not isinstance(item.value, bool) else label
        known = isinstance(item.value, Token) and str(item.value) in ("y", "n")
        if label in AIPREF_LABELS and known:
            pref = Pref.YES if str(item.value) == "y" else Pref.NO
            terms.append(Term(AIPREF_LABELS[label], pref, "aipref", f"{says_prefix}{raw}"))
        elif label in AIPREF_NOTED and known:
            notes.append(f"{says_prefix}{raw}")
        else:
            unknown.append(f"{says_prefix}{raw}")
    return Reading(tuple(terms), tuple(unknown), notes=tuple(notes))


def read_content_signal(value: str) -> Reading:
    """`search=yes, ai-train=no, ai-input=no`: comma-separated, yes or no; an omitted signal
    neither grants nor refuses."""
    terms: list[Term] = []
    unknown: list[str] = []
    notes: list[str] = []
    for part in filter(None, (p.strip() for p in value.split(","))):
        label, _, answer = (s.strip().lower() for s in part.partition("="))
        says = f"Content-Signal: {part}"
        if label in SIGNAL_LABELS and answer in ("yes", "no"):
            terms.append(Term(SIGNAL_LABELS[label], Pref(answer), "content-signals", says))
        elif label in SIGNAL_NOTED and answer in ("yes", "no"):
            notes.append(says)
        else:
            unknown.append(says)
    return Reading(tuple(terms), tuple(unknown), notes=tuple(notes))


def _tdm_terms(reservation: object, says: str) -> tuple[Term, ...] | None:
    """TDMRep (W3C CG, 2024): 1 reserves the rights of text and data mining, 0 does not. Mining
    is any automated analysis of text (EU DSM Directive art. 2(2)), which covers training and the
    indexing a datastore does before it hands text to a model; so it decides both uses."""
    if str(reservation).strip() not in ("0", "1"):
        return None
    pref = Pref.NO if str(reservation).strip() == "1" else Pref.YES
    return (Term("train", pref, "tdmrep", says), Term("ai_input", pref, "tdmrep", says))


def _location_matches(location: str, path: str) -> int:
    """Length of a TDMRep location pattern that covers `path` (-1 when it does not)."""
    pattern = re.sub(r"^https?://[^/]+", "", location) or "/"
    return len(pattern) if pattern_covers(pattern, path) else -1


def read_tdmrep(value: str, path: str) -> Reading:
    """A /.well-known/tdmrep.json (the rule with the most specific location covering the path
    decides), or its header / meta form (`tdm-reservation: 1`, `tdm-policy: <url>`)."""
    text = value.strip()
    if text.startswith("["):
        try:
            rules = json.loads(text)
        except json.JSONDecodeError as e:
            return Reading(unknown=(f"tdmrep.json does not parse: {e.msg} at line {e.lineno}",),
                           path=path)
        covering = sorted(((_location_matches(str(r.get("location", "")), path), i, r)
                           for i, r in enumerate(rules) if isinstance(r, dict)),
                          key=lambda t: (-t[0], t[1]))
        for length, _, rule in covering:
            if length >= 0:
                says = (f'tdmrep.json location {rule.get("location")!r}: tdm-reservation '
                        f'{rule.get("tdm-reservation")}' +
                        (f', tdm-policy {rule["tdm-policy"]}' if rule.get("tdm-policy") else ""))
                terms = _tdm_terms(rule.get("tdm-reservation"), says)
                if terms is None:
                    return Reading(unknown=(says,), path=path)
                return Reading(terms, path=path)
        return Reading(path=path)
    return read_headers(text, path)  # the header or meta form


def read_headers(value: str, path: str) -> Reading:
    """HTTP response header lines (or HTML meta name/content pairs written as headers)."""
    return Reading.joined([_read_header(line) for line in
                           filter(None, (ln.strip() for ln in value.splitlines()))], path)


def _read_header(line: str) -> Reading:
    name, sep, field = line.partition(":")
    name, field = name.strip().lower(), field.strip()
    if not sep:
        return Reading(unknown=(line,))
    if name == "content-usage":
        return read_aipref(field)
    if name == "content-signal":
        return read_content_signal(field)
    if name == "tdm-reservation":
        tdm = _tdm_terms(field, line)
        return Reading(tdm) if tdm else Reading(unknown=(line,))
    if name == "tdm-policy":
        return Reading(notes=(line,))
    if name == "x-robots-tag":
        return _read_x_robots(field, line)
    return Reading(unknown=(line,))


def _read_x_robots(field: str, line: str) -> Reading:
    """`noai` (DeviantArt's directive, taken up by others): not to be used to train AI. The
    search directives (noindex, nofollow, ...) are about search, not AI use."""
    words = [w.strip().lower() for w in re.split(r"[,\s]+", field) if w.strip()]
    if "noai" in words:
        return Reading((Term("train", Pref.NO, "noai", line),))
    return Reading(notes=(line,))


def read_rsl(value: str, path: str) -> Reading:
    """An RSL 1.0 licence document. For each <content> whose url covers the path (the longest
    wins), each <license> grants what its <permits type="usage"> lists, and nothing else of the
    AI uses once it lists any; <prohibits type="usage"> refuses. Several licences are
    alternatives: a use one of them permits is allowed (its conditions are in the term)."""
    try:
        root = SafeET.fromstring(value.strip())
    except SafeET.ParseError as e:
        return Reading(unknown=(f"RSL document does not parse: {e}",), path=path)
    except DefusedXmlException as e:  # entities, external references: never expanded
        return Reading(unknown=(f"RSL document refused: {type(e).__name__}",), path=path)
    contents = [c for c in root.iter() if _local(c.tag) == "content"]
    covering = sorted(((_location_matches(c.get("url", ""), path), i, c)
                       for i, c in enumerate(contents)), key=lambda t: (-t[0], t[1]))
    chosen = [c for length, _, c in covering if length >= 0][:1]
    per_license: list[Reading] = []
    for content in chosen:
        per_license += [_rsl_license(e, content.get("url", "")) for e in content
                        if _local(e.tag) == "license"]
    # Licences are alternatives: a use that one of them allows (every one of its tokens for the
    # use permitted) is available; otherwise the first refusal holds.
    terms: list[Term] = []
    for usage in ("train", "ai_input"):
        decided = [combine(sub.terms, usage) for sub in per_license]
        yes = [term for pref, term in decided if pref is Pref.YES and term]
        no = [term for pref, term in decided if pref is Pref.NO and term]
        terms += yes[:1] or no[:1]
    unknown = [u for sub in per_license for u in sub.unknown]
    return Reading(tuple(terms), tuple(unknown), path)


def _rsl_license(license_, url: str) -> Reading:  # type: ignore[no-untyped-def]
    permits: set[str] | None = None
    prohibits: set[str] = set()
    unknown: list[str] = []
    conditions = []
    for element in license_:
        kind, tokens = _local(element.tag), (element.text or "").replace(",", " ").split()
        if kind in ("permits", "prohibits") and element.get("type") == "usage":
            expanded = set()
            for token in tokens:
                if token in RSL_GROUPS:
                    expanded |= set(RSL_GROUPS[token])
                elif token in RSL_USES or token == "search":
                    expanded.add(token)
                else:
                    unknown.append(f"<{kind} type=\"usage\">{token}</{kind}> (content {url})")
            if kind == "permits":
                permits = (permits or set()) | expanded
            else:
                prohibits |= expanded
        elif kind in ("permits", "prohibits", "payment"):
            conditions.append(f"{kind} {element.get('type', '')} {' '.join(tokens)}".strip())
    cond = f" (conditions: {'; '.join(conditions)})" if conditions else ""
    terms: list[Term] = []
    for token, usages in RSL_USES.items():
        if token in prohibits:
            says = f'<prohibits type="usage"> {token} (content {url})'
            terms += [Term(u, Pref.NO, "rsl", says) for u in usages]
        elif permits is not None and token not in permits:
            says = f'{token} not among <permits type="usage"> (content {url})'
            terms += [Term(u, Pref.NO, "rsl", says) for u in usages]
        elif permits is not None:
            says = f'<permits type="usage"> {token} (content {url}){cond}'
            terms += [Term(u, Pref.YES, "rsl", says) for u in usages]
    return Reading(tuple(terms), tuple(unknown))


def _local(tag: str) -> str:
    return tag.split("}", 1)[-1] if isinstance(tag, str) else ""
