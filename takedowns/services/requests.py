"""Takedown requests: intake, validation per legal basis, and every state change.

Each change is one atomic service that moves the request through the workflow
(`takedowns.services.workflow`: refused when the workflow does not allow it, recorded as a
TakedownEvent and in the ledger, followed by an e-mail to the claimant at each decision).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import connection, transaction
from django.utils import timezone

from core.conf import setting
from core.errors import InvalidTransition, QuotaExceeded
from core.permissions import Capability, can
from provenance.engine.text import content_hash, normalise
from provenance.ledger.append import ledger_append
from provenance.models import DataSource, User
from takedowns.engine import regimes
from takedowns.models import TakedownEvent, TakedownRequest, TakedownWork
from takedowns.services.workflow import TRANSITIONS, takedown_transition

State = TakedownRequest.State

REQUEST_FIELDS = {"legal_basis", "remedy", "claimant_name", "claimant_email", "organisation",
                  "postal_address", "telephone", "authority", "proof", "explanation",
                  "reservation", "personal_data", "ground", "licence", "statements", "signature"}
WORK_FIELDS = {"title", "identifiers", "urls", "sample_text"}


@lru_cache(maxsize=8)
def _calendar(country: str, year: int) -> regimes.Calendar:
    return regimes.Calendar.for_country(country, range(year - 1, year + 3))


def calendar_for(day: datetime) -> regimes.Calendar:
    return _calendar(str(setting("TAKEDOWN_HOLIDAYS")), day.year)


def _notice(request: TakedownRequest, works: list[dict[str, Any]]) -> dict[str, Any]:
    """The request as the regimes engine reads it."""
    return {**{f: getattr(request, f) for f in REQUEST_FIELDS}, "works": works}


def _works_of(request: TakedownRequest) -> list[dict[str, Any]]:
    return [{f: getattr(w, f) for f in WORK_FIELDS} for w in request.works.all()]


def _clean_works(works: Any) -> list[dict[str, Any]]:
    if not isinstance(works, list):
        raise ValidationError({"works": "a list of works"})
    cleaned = []
    for n, work in enumerate(works):
        if not isinstance(work, dict):
            raise ValidationError({"works": f"work {n + 1}: an object with a title"})
        unknown = sorted(set(work) - WORK_FIELDS - {"id"})
        if unknown:
            raise ValidationError({"works": f"work {n + 1}: unknown field(s) "
                                            f"{', '.join(unknown)}"})
        for key in ("identifiers", "urls"):
            value = work.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValidationError({"works": f"work {n + 1}: {key} must be a list of "
                                                f"strings"})
        for url in work.get("urls", []):
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                raise ValidationError({"works": f"work {n + 1}: {url!r} is not an http(s) "
                                                f"URL"}) from None
        if "id" in work:  # a supplement's correction of a work already named: what it gives
            cleaned.append({"id": work["id"], **{k: work[k] for k in WORK_FIELDS if k in work}})
            continue
        cleaned.append({"title": str(work.get("title") or "").strip()[:500],
                        "identifiers": work.get("identifiers", []),
                        "urls": work.get("urls", []),
                        "sample_text": str(work.get("sample_text") or "")})
    return cleaned


def _edit_works(request: TakedownRequest, edits: list[dict[str, Any]]) -> None:
    """Complete or correct works the request already names (a supplement's works with an id):
    the fields given replace the old ones."""
    mine = {w.pk: w for w in request.works.all()}
    for n, edit in enumerate(edits):
        work = mine.get(edit["id"]) if isinstance(edit["id"], int) else None
        if work is None:
            raise ValidationError({"works": f"work {n + 1}: this request names no work with id "
                                            f"{edit['id']!r}"})
        for key in WORK_FIELDS & set(edit):
            setattr(work, key, str(edit[key]).strip()[:500] if key == "title" else edit[key])
        work.sample_sha256 = content_hash(normalise(work.sample_text)) \
            if work.sample_text.strip() else ""
        work.save()


def _add_works(request: TakedownRequest, works: list[dict[str, Any]]) -> None:
    """Store cleaned works, each sample with the hash of its normalised text (for scoping)."""
    TakedownWork.objects.bulk_create([
        TakedownWork(request=request, sample_sha256=content_hash(normalise(w["sample_text"]))
                     if w["sample_text"].strip() else "", **w) for w in works])


def _claimable(actor: User | None, claimed: list[DataSource]) -> list[DataSource]:
    holder = getattr(actor, "rights_holder_id", None)
    if getattr(actor, "role", None) == User.Role.RIGHTS_HOLDER:
        foreign = sorted(s.pk for s in claimed if s.owner_id != holder)
        if foreign:
            raise ValidationError({"claimed_sources": f"not your holder's source(s): {foreign}"})
    return claimed


def _validate(request: TakedownRequest, actor: User | None) -> None:
    """From validating: to needs_info with the list of what is missing, or stay for review."""
    request.missing = regimes.missing(request.legal_basis,
                                      _notice(request, _works_of(request)))
    if request.missing:
        takedown_transition(request, State.NEEDS_INFO, actor,
                    f"missing: {', '.join(m['element'] for m in request.missing)}")
    else:
        request.save(update_fields=["missing", "updated_at"])


_QUOTA_LOCK = 0x74_6B_71_75  # "tkqu": one holder's filings are counted one at a time
PERIODS = {"hour": 3600, "day": 86_400, "week": 7 * 86_400}


def quota() -> tuple[int, int]:
    """TRAILMARK_TAKEDOWN_QUOTA, "N/period" (hour, day or week): requests a rights-holder may
    file in any such period. Each filing adds permanent ledger entries, so a holder's account
    (or a stolen one) must not be able to grow the ledger without bound."""
    count, _, period = str(setting("TAKEDOWN_QUOTA")).partition("/")
    return int(count), PERIODS[period.strip()]


def _within_quota(actor: User | None) -> None:
    holder = getattr(actor, "rights_holder_id", None)
    if holder is None or can(actor, Capability.MOVE_TAKEDOWN):  # staff file on others' behalf
        return
    limit, seconds = quota()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_QUOTA_LOCK, holder])
    now = timezone.now()
    recent = TakedownRequest.objects.filter(
        rights_holder_id=holder, received_at__gt=now - timedelta(seconds=seconds))
    if recent.count() >= limit:
        oldest = recent.order_by("received_at").values_list("received_at", flat=True)[0]
        wait = int((oldest + timedelta(seconds=seconds) - now).total_seconds()) + 1
        raise QuotaExceeded(f"your organisation has filed {limit} requests in the last "
                            f"{seconds // 3600} hour(s), its quota; the next may be filed in "
                            f"{wait} s (or ask Trailmark's staff)", wait)


@transaction.atomic
def takedown_file(*, actor: User | None, data: dict[str, Any],
                  claimed_sources: list[DataSource] | None = None) -> TakedownRequest:
    """A new request: stored, acknowledged with its reference and deadlines, and validated
    against its legal basis (to needs_info when elements are missing). `claimed_sources` puts
    whole sources in scope: a rights-holder may claim only its own."""
    unknown = sorted(set(data) - REQUEST_FIELDS - {"works"})
    if unknown:
        raise ValidationError({k: "unknown field" for k in unknown})
    basis = data.get("legal_basis")
    if basis not in regimes.BASES:
        raise ValidationError({"legal_basis": f"one of {', '.join(regimes.BASES)}"})
    works = _clean_works(data.get("works", []))
    if any("id" in w for w in works):
        raise ValidationError({"works": "a work's id names a work to correct in a supplement; "
                                        "a new request lists its works without ids"})
    _within_quota(actor)
    now = timezone.now()
    filer = actor if actor is not None and actor.is_authenticated else None
    fields = {k: v for k, v in data.items() if k in REQUEST_FIELDS}
    if not isinstance(fields.get("statements", {}), dict):
        raise ValidationError({"statements": "an object of statement: true/false"})
    if fields.get("ground", "") not in ("", *regimes.GDPR_GROUNDS):
        raise ValidationError({"ground": "one of a-f (GDPR Art. 17(1))"})
    request = TakedownRequest(**fields, received_at=now, state_changed_at=now,
                              filed_by=filer,
                              rights_holder=getattr(actor, "rights_holder", None),
                              reference=f"new-{secrets.token_hex(7)}")  # numbered below
    if request.signature.strip():
        request.signed_at = now
    request.full_clean(exclude=["reference", "state_changed_at", "received_at"])
    request.save()
    request.claimed_sources.set(_claimable(actor, claimed_sources or []))
    request.reference = f"TD-{now.year}-{request.pk:06d}"
    levels = setting("TAKEDOWN_SERVICE_LEVELS")
    request.deadlines = {k: v.isoformat() for k, v in regimes.deadlines(
        basis, now, calendar_for(now), levels).items()}
    request.save(update_fields=["reference", "deadlines", "signed_at"])
    _add_works(request, works)
    TakedownEvent.objects.create(request=request, to_state=State.RECEIVED, actor=filer, at=now,
                                 ledger_entry=ledger_append(
                                     actor=None, event="takedown.received", subject=request,
                                     payload={"reference": request.reference,
                                              "legal_basis": basis, "works": len(works)}))
    request.acknowledged_at = now
    takedown_transition(request, State.ACKNOWLEDGED, None, "acknowledged on receipt")
    takedown_transition(request, State.VALIDATING, None)
    _validate(request, None)
    return request


@transaction.atomic
def takedown_supplement(*, request: TakedownRequest, actor: User,
                        data: dict[str, Any]) -> TakedownRequest:
    """The claimant answers a needs_info: the fields are updated, works added or (given with
    their id) completed and corrected, and the request is validated again."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    if request.state != State.NEEDS_INFO:
        raise InvalidTransition(f"takedown {request.reference}", request.state, "supplement")
    unknown = sorted(set(data) - (REQUEST_FIELDS - {"legal_basis"}) - {"works"})
    if unknown:
        raise ValidationError({k: "unknown field" for k in unknown})
    for key, value in data.items():
        if key == "statements":
            if not isinstance(value, dict):
                raise ValidationError({"statements": "an object of statement: true/false"})
            value = {**request.statements, **value}
        if key != "works":
            setattr(request, key, value)
    if data.get("signature", "").strip():
        request.signed_at = timezone.now()
    request.full_clean()
    request.save()
    works = _clean_works(data.get("works", []))
    _edit_works(request, [w for w in works if "id" in w])
    _add_works(request, [w for w in works if "id" not in w])
    takedown_transition(request, State.VALIDATING, actor, "information supplied")
    _validate(request, actor)
    return request


@transaction.atomic
def takedown_decide(*, request: TakedownRequest, actor: User, to: str,
                    reasons: str = "", duplicate_of: TakedownRequest | None = None
                    ) -> TakedownRequest:
    """A reviewer's step: accept, reject (with reasons), mark a duplicate, or move the
    remediation along. Refused when the workflow does not allow it."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    if to == State.REJECTED and not reasons.strip():
        raise ValidationError({"reasons": "say why the request is rejected"})
    if to == State.DUPLICATE:
        if duplicate_of is None or duplicate_of.pk == request.pk:
            raise ValidationError({"duplicate_of": "name the original request"})
        request.duplicate_of = duplicate_of
    if to == State.WITHDRAWN:
        raise ValidationError({"state": "only the claimant withdraws a request"})
    if to in (State.COUNTER_NOTICE, State.RESTORE_WINDOW, State.RESTORED):
        raise ValidationError({"to": f"{to}: use the counter-notice and restore actions"})
    request.decision_reasons = reasons.strip()
    if to == State.DECIDED and to in TRANSITIONS.get(request.state, set()):
        _decided(request, actor)
    takedown_transition(request, to, actor, reasons)
    return request


def _decided(request: TakedownRequest, actor: User) -> None:
    """What deciding takes: no remediation still running; a reason when verification did not
    pass; pending text purges carried out; the notice written."""
    from takedowns.services.decision import decision_notice, purge_pending

    if request.unlearning_runs.filter(state__in=("queued", "running")).exists():
        raise ValidationError({"to": "model remediation is still running"})
    verdict = (request.verification or {}).get("verdict")
    if request.state == State.VERIFYING and verdict != "pass" \
            and not request.decision_reasons:
        raise ValidationError({"reasons": f"verification is {verdict or 'not finished'}: say "
                                          f"why the request is decided anyway"})
    purge_pending(request, actor)
    request.decision = decision_notice(request)


@transaction.atomic
def takedown_withdraw(*, request: TakedownRequest, actor: User,
                      reason: str = "") -> TakedownRequest:
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    takedown_transition(request, State.WITHDRAWN, actor, reason or "withdrawn by the claimant")
    return request
