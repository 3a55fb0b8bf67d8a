"""Rights-holders, sources, their licence signals and opt-out signals."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from provenance.engine import licenses, watermark
from provenance.ledger.append import ledger_append, person_reference
from provenance.models import (
    DataSource,
    LicenseRefTerms,
    LicenseSignal,
    RightsHolder,
    UseClass,
    User,
)

HOLDER_FIELDS = {"name", "kind", "contact_name", "contact_email", "url"}
SOURCE_FIELDS = {"name", "uri", "description", "terms_url", "status", "acquisition", "generator",
                 "generator_name", "generator_terms_url"}


def _normalised_or_error(expression: str, field: str = "license_expression") -> str:
    return _resolved_or_error(expression, field).expression


def _resolved_or_error(expression: str,
                       field: str = "license_expression") -> licenses.Resolved:
    """SPDX, or a name copyright files use for it (DEP-5: "GPL-2+", "Expat"...), kept as
    written beside its SPDX form; a 400 naming each unknown key with the closest known ones."""
    try:
        return licenses.resolve_license(expression)
    except licenses.LicenseError as exc:
        raise ValidationError({field: str(exc)}) from exc


def _as_written(resolved: licenses.Resolved) -> str:
    """The owner's own string when Trailmark read it as something else, else ''."""
    return resolved.original if resolved.aliases else ""


@transaction.atomic
def rights_holder_create(*, actor: User | None, verified: bool = False,
                         **fields: Any) -> RightsHolder:
    holder = RightsHolder(**{k: v for k, v in fields.items() if k in HOLDER_FIELDS},
                          verified=verified, verified_at=timezone.now() if verified else None)
    holder.full_clean()
    holder.save()
    # A person's name is personal data: the ledger holds an erasable commitment to it.
    name = holder.name if holder.kind == RightsHolder.Kind.ORGANISATION else \
        person_reference(f"holder:{holder.pk}:{holder.name}")
    ledger_append(actor=actor, event="rights_holder.created", subject=holder,
                  payload={"name": name, "kind": holder.kind, "verified": verified})
    return holder


@transaction.atomic
def rights_holder_update(*, holder: RightsHolder, actor: User, **fields: Any) -> RightsHolder:
    changed = {k: v for k, v in fields.items() if k in HOLDER_FIELDS | {"verified"}}
    for key, value in changed.items():
        setattr(holder, key, value)
    if "verified" in changed:
        holder.verified_at = timezone.now() if changed["verified"] else None
    holder.full_clean()
    holder.save()
    ledger_append(actor=actor, event="rights_holder.updated", subject=holder,
                  payload={"fields": sorted(changed)})
    return holder


def _refresh_terms(source: DataSource) -> None:
    """Derive use class and flags from every active licence signal: the most restrictive wins."""
    expressions = [source.license_expression, *source.license_signals.filter(active=True)
                   .exclude(origin=LicenseSignal.Origin.DECLARED)
                   .values_list("expression", flat=True)]
    _apply_terms(source, expressions)


def license_ref_terms() -> dict[str, licenses.Terms]:
    """The curators' classification of LicenseRef keys (a small table)."""
    return {r.key: licenses.Terms(licenses.UseClass.from_label(r.use_class),
                                  r.requires_attribution, r.share_alike)
            for r in LicenseRefTerms.objects.all()}


@transaction.atomic
def license_ref_classify(*, actor: User, key: str, use_class: str, reason: str,
                         requires_attribution: bool = False,
                         share_alike: bool = False) -> tuple[LicenseRefTerms, list[int]]:
    """Set the terms of a LicenseRef key, and refresh every source whose licence signals name
    it (their use class can change what the next curation takes). Returns the sources
    refreshed."""
    key = key.strip()
    if not licenses.LICENSE_REF.fullmatch(key):
        raise ValidationError({"key": "a LicenseRef-... key (SPDX: letters, digits, '.', '-')"})
    if licenses.is_own_ref(key):
        raise ValidationError({"key": f"{key} is Trailmark's own, with fixed terms"})
    if use_class not in UseClass.values:
        raise ValidationError({"use_class": f"one of {UseClass.values}"})
    if not reason.strip():
        raise ValidationError({"reason": "say where the terms come from (the licence's text, "
                                         "its URL)"})
    ref, _ = LicenseRefTerms.objects.update_or_create(
        key=key, defaults={"use_class": use_class, "requires_attribution": requires_attribution,
                           "share_alike": share_alike, "reason": reason.strip(),
                           "set_by": actor})
    named = set(DataSource.objects.filter(
        Q(license_expression__contains=key)
        | Q(license_signals__active=True, license_signals__expression__contains=key))
        .values_list("pk", flat=True))
    refreshed = []
    for source in DataSource.objects.filter(pk__in=named).select_for_update().order_by("pk"):
        before = source.use_class
        _refresh_terms(source)
        source.save(update_fields=["use_class", "requires_attribution", "share_alike",
                                   "updated_at"])
        refreshed.append(source.pk)
        if source.use_class != before:
            ledger_append(actor=actor, event="source.terms_changed", subject=source,
                          payload={"key": key, "use_class": source.use_class,
                                   "was": before})
    ledger_append(actor=actor, event="license_ref.classified", subject=ref,
                  payload={"key": key, "use_class": use_class,
                           "requires_attribution": requires_attribution,
                           "share_alike": share_alike, "reason": reason.strip(),
                           "sources": refreshed})
    return ref, refreshed


def _apply_terms(source: DataSource, expressions: list[str]) -> None:
    terms = licenses.resolve(expressions, license_ref_terms())
    source.use_class = terms.use_class.label
    source.requires_attribution = terms.attribution
    source.share_alike = terms.share_alike


@transaction.atomic
def source_create(*, actor: User | None, owner: RightsHolder, name: str, license_expression: str,
                  **fields: Any) -> DataSource:
    resolved = _resolved_or_error(license_expression)
    expression = resolved.expression
    if fields.get("generator") or fields.get("generator_name"):  # text a model wrote
        synthetic = DataSource.Acquisition.SYNTHETIC
        if fields.setdefault("acquisition", synthetic) != synthetic:
            raise ValidationError({"acquisition": "a source with a generator is synthetic"})
    elif fields.get("generator_terms_url"):
        raise ValidationError({"generator_terms_url": "name the generator (generator or "
                                                      "generator_name)"})
    if DataSource.objects.filter(owner=owner, name=name).exists():
        raise ValidationError({"name": f"{owner.name} already has a source named {name!r}"})
    source = DataSource(owner=owner, name=name, license_expression=expression,
                        license_as_written=_as_written(resolved),
                        **{k: v for k, v in fields.items() if k in SOURCE_FIELDS})
    _apply_terms(source, [expression])
    source.full_clean(exclude=["watermark"])
    source.save()
    watermark_assign(source)
    LicenseSignal.objects.create(source=source, origin=LicenseSignal.Origin.DECLARED,
                                 expression=expression, observed_at=timezone.now())
    ledger_append(actor=actor, event="source.created", subject=source,
                  payload={"owner": owner.pk, "name": name, "license": expression,
                           "license_as_written": source.license_as_written,
                           "use_class": source.use_class})
    return source


@transaction.atomic
def source_update(*, source: DataSource, actor: User, **fields: Any) -> DataSource:
    source = DataSource.objects.select_for_update().get(pk=source.pk)
    changed = {k: v for k, v in fields.items() if k in SOURCE_FIELDS}
    for key in ("generator", "generator_name"):
        if key in changed and changed[key] != getattr(source, key):
            raise ValidationError({key: "a source's generator is its lineage and cannot be "
                                        "changed: register a new source"})
    if "name" in changed and DataSource.objects.filter(
            owner=source.owner, name=changed["name"]).exclude(pk=source.pk).exists():
        raise ValidationError({"name": f"{source.owner.name} already has a source named "
                                       f"{changed['name']!r}"})
    for key, value in changed.items():
        setattr(source, key, value)
    if "license_expression" in fields:
        resolved = _resolved_or_error(fields["license_expression"])
        expression = resolved.expression
        source.license_as_written = _as_written(resolved)
        if expression != source.license_expression:
            # The old declaration stays in the history, inactive.
            source.license_signals.filter(origin=LicenseSignal.Origin.DECLARED,
                                          active=True).update(active=False)
            LicenseSignal.objects.create(source=source, origin=LicenseSignal.Origin.DECLARED,
                                         expression=expression, observed_at=timezone.now())
            source.license_expression = expression
            changed["license_expression"] = expression
    _refresh_terms(source)
    source.full_clean()
    source.save()
    ledger_append(actor=actor, event="source.updated", subject=source,
                  payload={"fields": sorted(changed), "license": source.license_expression,
                           "use_class": source.use_class})
    return source


@transaction.atomic
def license_signal_add(*, source: DataSource, actor: User, origin: str, expression: str,
                       observed_at: datetime | None = None, url: str = "") -> LicenseSignal:
    if origin == LicenseSignal.Origin.DECLARED:
        raise ValidationError({"origin": "change the source's license_expression to change "
                                         "its declared licence"})
    if origin not in LicenseSignal.Origin.values:
        raise ValidationError({"origin": f"unknown origin {origin!r}"})
    signal = LicenseSignal.objects.create(
        source=source, origin=origin, expression=_normalised_or_error(expression, "expression"),
        url=url, observed_at=observed_at or timezone.now())
    source = DataSource.objects.select_for_update().get(pk=source.pk)
    _refresh_terms(source)
    source.save(update_fields=["use_class", "requires_attribution", "share_alike", "updated_at"])
    ledger_append(actor=actor, event="source.license_signal_added", subject=source,
                  payload={"origin": origin, "expression": signal.expression,
                           "use_class": source.use_class})
    return signal


def watermark_assign(source: DataSource) -> DataSource:
    """Give a source its watermark code (once): at least MIN_DISTANCE edits from every other."""
    if source.watermark:
        return source
    with connection.cursor() as cursor:  # one assignment at a time keeps codes far apart
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x776D6B])
    taken = [w for w in DataSource.objects.values_list("watermark", flat=True) if w]
    source.watermark = watermark.assign_code(taken, seed=secrets.randbits(64))
    source.watermark_key = secrets.token_hex(16)
    source.save(update_fields=["watermark", "watermark_key"])
    return source
