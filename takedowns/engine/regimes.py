"""What each legal basis for a takedown requires, and the deadlines it sets. Pure Python: no
Django, no settings (the internal service levels come in as arguments).

Required elements, from the texts:
* DMCA 17 U.S.C. §512(c)(3)(A): (i) a signature of a person authorised to act for the owner,
  (ii) the work, (iii) the material and where to find it, (iv) contact information, (v) a
  statement of good-faith belief that the use is not authorised, (vi) a statement that the notice
  is accurate and, under penalty of perjury, that the sender is authorised.
* EU DSA Art. 16(2): (a) a substantiated explanation of why the content is illegal, (b) its exact
  electronic location, (c) the sender's name and e-mail, (d) a statement of bona fide belief that
  the notice is accurate and complete.
* EU CDSM Art. 4(3): the rightholder's reservation of text and data mining, expressed in an
  appropriate manner (machine-readable for content made public online): where and since when.
* GDPR Art. 17: the data subject (or a representative's authority), the personal data, the
  ground of Art. 17(1); Art. 12(3): an answer within one month of receipt, which may be extended
  by two further months.
* Licence revocation: which licence, and the terms under which it is revoked.
* Voluntary: the works and a contact.

DMCA §512(g)(2)(C): after a counter notice, material is restored not less than 10 nor more than
14 business days after its receipt, unless the claimant files an action.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

BASES = ("dmca_512", "dsa_16", "cdsm_4", "gdpr_17", "licence_revocation", "voluntary")


@dataclass(frozen=True)
class Element:
    key: str        # where it lives in a notice (see `present`)
    label: str      # what a person reads when it is missing


_SIGNATURE = Element("signature", "an electronic signature: the signer's typed full name")
_WORKS = Element("works", "at least one work, with a title and a URL, identifier or sample")
_CONTACT = Element("contact", "the claimant's contact: name and e-mail")
_AUTHORITY = Element("authority", "whether the claimant is the owner or an agent (an agent "
                                  "attaches proof of authority)")

REQUIRED: dict[str, tuple[Element, ...]] = {
    "dmca_512": (
        _SIGNATURE, _WORKS, _CONTACT, _AUTHORITY,
        Element("location", "where the material is: a URL, an identifier or a sample of its "
                            "text (at least 20 characters, which Trailmark looks for in its "
                            "own datasets) for every work (§512(c)(3)(A)(iii))"),
        Element("postal_address", "a postal address or telephone number (§512(c)(3)(A)(iv))"),
        Element("statements.good_faith", "the statement of good-faith belief that the use is not "
                                          "authorised (§512(c)(3)(A)(v))"),
        Element("statements.accuracy", "the statement that the notice is accurate "
                                        "(§512(c)(3)(A)(vi))"),
        Element("statements.authority_under_perjury",
                "the statement, under penalty of perjury, that the claimant is authorised to act "
                "for the owner (§512(c)(3)(A)(vi))"),
    ),
    "dsa_16": (
        _SIGNATURE, _WORKS, _CONTACT,
        Element("explanation", "a substantiated explanation of why the content is illegal "
                               "(Art. 16(2)(a))"),
        Element("location", "the exact electronic location: a URL for every work, or the "
                            "work's text (at least 20 characters) that identifies it in "
                            "Trailmark's own datasets (Art. 16(2)(b))"),
        Element("statements.bona_fide", "the statement of bona fide belief that the notice is "
                                        "accurate and complete (Art. 16(2)(d))"),
    ),
    "cdsm_4": (
        _SIGNATURE, _WORKS, _CONTACT, _AUTHORITY,
        Element("reservation", "where and since when the text-and-data-mining reservation was "
                               "expressed (Art. 4(3)): e.g. robots.txt, TDMRep, terms of use"),
    ),
    "gdpr_17": (
        _SIGNATURE, _CONTACT,
        Element("personal_data", "which personal data: names, identifiers, or sample text"),
        Element("ground", "the ground for erasure under Art. 17(1)(a)-(f)"),
        Element("authority", "whether the claimant is the data subject or a representative "
                             "(who attaches proof of authority)"),
    ),
    "licence_revocation": (
        _SIGNATURE, _WORKS, _CONTACT, _AUTHORITY,
        Element("licence", "which licence is revoked and under which of its terms"),
    ),
    "voluntary": (_WORKS, _CONTACT),
}

GDPR_GROUNDS = ("a", "b", "c", "d", "e", "f")
MIN_LOCATING_SAMPLE = 20  # characters of a work's text that locate it in Trailmark's datasets

# DMCA §512(g)(3): what a counter notice must hold.
COUNTER_NOTICE: tuple[Element, ...] = (
    Element("signature", "the signature of the subscriber: their typed full name"),
    Element("material", "the material removed and where it was before (§512(g)(3)(B))"),
    Element("statements.mistake_under_perjury",
            "the statement, under penalty of perjury, of a good-faith belief that the material "
            "was removed by mistake or misidentification (§512(g)(3)(C))"),
    Element("contact", "the subscriber's name and e-mail"),
    Element("postal_address", "the subscriber's address and telephone number (§512(g)(3)(D))"),
    Element("statements.consent_to_jurisdiction",
            "consent to the jurisdiction of the Federal District Court and acceptance of service "
            "of process from the claimant (§512(g)(3)(D))"),
)


def _get(notice: Mapping[str, Any], dotted: str) -> Any:
    value: Any = notice
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def present(notice: Mapping[str, Any], key: str) -> bool:
    """Whether one required element is in the notice (a dict as the intake API receives it)."""
    works = notice.get("works") or []
    if key == "works":
        return bool(works) and all(
            (w.get("title") or "").strip() and (
                w.get("urls") or w.get("identifiers") or (w.get("sample_text") or "").strip()
                or w.get("files")) for w in works)
    if key == "location":
        # The material is in Trailmark's own datasets, which it searches for a work's text:
        # a sample of it is "information reasonably sufficient to locate" it (§512(c)(3)(A)
        # (iii)) and identifies it (DSA Art. 16(2)(b)), as a URL does elsewhere.
        return bool(works) and all(
            w.get("urls") or w.get("identifiers")
            or len((w.get("sample_text") or "").strip()) >= MIN_LOCATING_SAMPLE for w in works)
    if key == "contact":
        return bool((notice.get("claimant_name") or "").strip()
                    and "@" in (notice.get("claimant_email") or ""))
    if key == "authority":
        kind = notice.get("authority")
        return kind == "owner" or kind == "data_subject" or (
            kind in ("agent", "representative") and bool(notice.get("proof")))
    if key == "postal_address":
        return bool((notice.get("postal_address") or "").strip()
                    or (notice.get("telephone") or "").strip())
    if key == "ground":
        return notice.get("ground") in GDPR_GROUNDS
    if key.startswith("statements."):
        return _get(notice, key) is True
    value = _get(notice, key)
    return bool(value.strip()) if isinstance(value, str) else bool(value)


def counter_notice_missing(notice: Mapping[str, Any]) -> list[dict[str, str]]:
    """What a DMCA counter notice lacks (the same keys as a notice: claimant_name for the
    subscriber, and so on)."""
    return [{"element": e.key, "message": e.label} for e in COUNTER_NOTICE
            if not present(notice, e.key)]


def missing(basis: str, notice: Mapping[str, Any]) -> list[dict[str, str]]:
    """The required elements a notice lacks, as {"element", "message"} (empty: complete)."""
    if basis not in REQUIRED:
        raise ValueError(f"unknown legal basis {basis!r}; one of {', '.join(BASES)}")
    return [{"element": e.key, "message": e.label} for e in REQUIRED[basis]
            if not present(notice, e.key)]


# --- deadlines ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Calendar:
    """Business days: Monday to Friday, less the given public holidays."""

    holidays: tuple[date, ...] = ()

    @classmethod
    def for_country(cls, country: str, years: Iterable[int]) -> Calendar:
        import holidays

        found = holidays.country_holidays(country, years=list(years))
        return cls(tuple(sorted(found)))

    def add(self, start: date, days: int) -> date:
        """The business day `days` business days after `start` (start itself not counted)."""
        at = np.busday_offset(np.datetime64(start, "D"), days, roll="backward",
                              holidays=list(self.holidays))
        return at.astype(date)  # type: ignore[no-any-return]

    def between(self, start: date, end: date) -> int:
        """Business days after `start` up to and including `end`."""
        return int(np.busday_count(np.datetime64(start + timedelta(days=1), "D"),
                                   np.datetime64(end + timedelta(days=1), "D"),
                                   holidays=list(self.holidays)))


def add_months(day: date, months: int) -> date:
    """The same day `months` later, or the month's last day (31 Jan + 1 month = 28/29 Feb)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    for candidate in (31, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def deadlines(basis: str, received: datetime, calendar: Calendar,
              service_levels: Mapping[str, int]) -> dict[str, date]:
    """The dates a request must meet, from its receipt: "acknowledge" and "decide" from the
    internal service levels (business days), tightened by the law where it sets a limit
    (GDPR: one month)."""
    day = received.date()
    out = {"acknowledge": calendar.add(day, int(service_levels["acknowledge"])),
           "decide": calendar.add(day, int(service_levels.get(basis, service_levels["decide"])))}
    if basis == "gdpr_17":
        out["decide"] = min(out["decide"], add_months(day, 1))
        out["decide_extended"] = add_months(day, 3)  # Art. 12(3): two further months, if told
    return out


def restore_window(counter_notice: datetime, calendar: Calendar) -> tuple[date, date]:
    """DMCA §512(g)(2)(C): restore no sooner than 10 and no later than 14 business days after
    the counter notice."""
    day = counter_notice.date()
    return calendar.add(day, 10), calendar.add(day, 14)
