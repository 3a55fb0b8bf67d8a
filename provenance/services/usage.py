"""Usage signals of a source and the two verdicts they give: may it train a model (`train`), may
it be given to a model as input at inference (`ai_input`).

A signal is read once, when recorded, by provenance/engine/preferences, and stored with its raw
value, URL, time and the terms that decided. A verdict as of a time takes, for each kind of signal
at each URL, the latest observed at or before it (a robots.txt observed again replaces the one
before; a lifted opt-out lifts), then combines them most-restrictively: any "no" wins, else any
"yes", else unknown. Unknown is not a refusal: curation and retrieval treat it as allowed, and
the verdict says so, so the difference stays visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlparse

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from provenance.engine import preferences
from provenance.engine.preferences import Pref, Reading, Term
from provenance.ledger.append import ledger_append
from provenance.models import DataSource, OptOutSignal, User

USAGES = preferences.USAGES

# The same verdicts in SQL, for queries that filter by them (retrieval at query time): for each
# source, the latest signal of each kind at each URL observed by now, combined most-restrictively.
# tests/provenance/test_usage_verdicts.py holds it equal to `source_verdicts`.
SOURCE_PREFS_SQL = """
SELECT source_id,
       CASE WHEN bool_or(train = 'no') THEN 'no' WHEN bool_or(train = 'yes') THEN 'yes'
            ELSE 'unknown' END AS train,
       CASE WHEN bool_or(ai_input = 'no') THEN 'no' WHEN bool_or(ai_input = 'yes') THEN 'yes'
            ELSE 'unknown' END AS ai_input
FROM (SELECT DISTINCT ON (source_id, kind, url) source_id, train, ai_input
      FROM provenance_optoutsignal WHERE observed_at <= statement_timestamp()
      ORDER BY source_id, kind, url, observed_at DESC, id DESC) latest
GROUP BY source_id
"""
REFUSING_SOURCES_SQL = ("SELECT prefs.source_id FROM (" + SOURCE_PREFS_SQL.replace("%", "%%")
                        + ") prefs WHERE prefs.{usage} = 'no'")


@dataclass(frozen=True)
class Verdict:
    usage: str                        # "train" | "ai_input"
    pref: Pref                        # no / yes / unknown
    signal: OptOutSignal | None       # the signal that decided (None when unknown)
    term: Term | None

    @property
    def refused(self) -> bool:
        return self.pref is Pref.NO

    def as_dict(self) -> dict[str, object]:
        decided_by = None
        if self.signal is not None and self.term is not None:
            s = self.signal
            decided_by = {"signal": s.pk, "kind": s.kind, "vocabulary": self.term.vocabulary,
                          "says": self.term.says, "value": s.value, "url": s.url,
                          "observed_at": s.observed_at.isoformat()}
        return {"verdict": self.pref.value, "decided_by": decided_by}


def source_path(source: DataSource) -> str:
    """The path a source's content lives under, which robots.txt and RSL rules are matched to."""
    return urlparse(source.uri).path or "/"


def _pref_or_error(field: str, value: str | None) -> str | None:
    if value in (None, ""):
        return None
    if value not in Pref.__members__.values():
        raise ValidationError({field: f"expected yes, no or unknown, not {value!r}"})
    return value


def _reading(source: DataSource, kind: str, value: str, train: str | None,
             ai_input: str | None) -> Reading:
    path = source_path(source)
    if kind == OptOutSignal.Kind.REGISTRY:
        if not {train, ai_input} - {None, Pref.UNKNOWN.value}:
            raise ValidationError({"train": "a registry entry has no syntax Trailmark reads: "
                                            "give its reading as train and/or ai_input "
                                            "(yes or no)"})
        return preferences.recorded(vocabulary="registry", says=value.strip()[:500], path=path,
                                    train=train, ai_input=ai_input)
    for field, given in (("train", train), ("ai_input", ai_input)):
        if given is not None:
            raise ValidationError({field: f"read from the value for kind {kind}; give it only "
                                          "for a registry entry"})
    try:
        return preferences.read(kind, value, path)
    except preferences.Unreadable as e:
        raise ValidationError({"value": str(e)}) from e


@transaction.atomic
def opt_out_signal_record(*, source: DataSource, actor: User | None, kind: str, value: str,
                          url: str = "", observed_at: datetime | None = None,
                          train: str | None = None, ai_input: str | None = None) -> OptOutSignal:
    if kind not in OptOutSignal.Kind.values:
        raise ValidationError({"kind": f"unknown kind {kind!r}; expected one of "
                                       f"{', '.join(OptOutSignal.Kind.values)}"})
    if not value.strip():
        raise ValidationError({"value": "the signal as observed is required"})
    observed_at = observed_at or timezone.now()
    if observed_at > timezone.now():
        raise ValidationError({"observed_at": "cannot be in the future"})
    reading = _reading(source, kind, value, _pref_or_error("train", train),
                       _pref_or_error("ai_input", ai_input))
    prefs = {usage: reading.decide(usage)[0].value for usage in USAGES}
    signal = OptOutSignal.objects.create(
        source=source, kind=kind, value=value, url=url, train=prefs["train"],
        ai_input=prefs["ai_input"], reading=reading.as_dict(), opted_out=prefs["train"] == "no",
        observed_at=observed_at, recorded_by=actor)
    ledger_append(actor=actor, event="source.opt_out_signal_recorded", subject=source,
                  payload={"kind": kind, "url": url, **prefs, "unknown_terms": len(reading.unknown),
                           "observed_at": observed_at.isoformat()})
    return signal


def latest_signals(source: DataSource, at: datetime) -> list[OptOutSignal]:
    """For each kind of signal at each URL, the latest observed at or before `at`."""
    latest: dict[tuple[str, str], OptOutSignal] = {}
    for signal in source.opt_out_signals.filter(observed_at__lte=at).order_by("observed_at",
                                                                               "id"):
        latest[(signal.kind, signal.url)] = signal
    return sorted(latest.values(), key=lambda s: (s.observed_at, s.pk))


def source_verdicts(source: DataSource, at: datetime | None = None) -> dict[str, Verdict]:
    """The train and ai_input verdicts of a source as of `at` (now by default)."""
    signals = latest_signals(source, at or timezone.now())
    verdicts = {}
    for usage in USAGES:
        decided = [(s, *Reading.from_dict(s.reading).decide(usage)) for s in signals]
        no = [(s, t) for s, pref, t in decided if pref is Pref.NO]
        yes = [(s, t) for s, pref, t in decided if pref is Pref.YES]
        if no or yes:
            signal, term = (no or yes)[0]
            verdicts[usage] = Verdict(usage, Pref.NO if no else Pref.YES, signal, term)
        else:
            verdicts[usage] = Verdict(usage, Pref.UNKNOWN, None, None)
    return verdicts


def source_refused(source: DataSource, usage: str, at: datetime) -> Verdict | None:
    """The verdict refusing `usage` as of `at`, or None when the source may be used for it."""
    verdict = source_verdicts(source, at)[usage]
    return verdict if verdict.refused else None
