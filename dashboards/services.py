"""Writes of the dashboards app: a version's cards, rendered, edited and published. Each is one
transaction; publishing is in the ledger with the digest of every document."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.conf import setting
from core.errors import InvalidTransition
from dashboards.composition import version_composition
from dashboards.engine.cards.croissant import Distribution, ExportFile, croissant
from dashboards.engine.cards.facts import CardWords
from dashboards.engine.cards.hf import dataset_card
from dashboards.engine.cards.spdx import spdx_document
from dashboards.models import VersionCard
from dashboards.selectors import version_facts
from provenance.ledger.append import ledger_append
from provenance.models import DatasetVersion, User
from provenance.services.exports import manifest_sha256, version_export

WORD_LIMIT = 20_000  # characters per field of the researcher's words
FORMATS = {  # name: (media type, file suffix)
    "hf": ("text/markdown; charset=utf-8", "README.md"),
    "croissant": ("application/ld+json", "croissant.json"),
    "spdx": ("application/spdx+json", "spdx.json"),
}


def card_bytes(card: VersionCard, fmt: str) -> bytes:
    """The document as served; its sha256 is what the ledger records."""
    return {"hf": card.hf_card, "croissant": card.croissant, "spdx": card.spdx}[fmt].encode()


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def distribution(version: DatasetVersion) -> Distribution:
    """The files a version's cards point at, each with the sha256 of its bytes as served (the
    records exports are written now if this state of the version has none yet)."""
    api = f"{str(setting('PUBLIC_URL')).rstrip('/')}/api/v1/versions/{version.pk}"
    return Distribution(
        jsonl=ExportFile(f"{api}/records/", version_export(version, "jsonl").sha256),
        parquet=ExportFile(f"{api}/records/?format=parquet",
                           version_export(version, "parquet").sha256),
        manifest=ExportFile(f"{api}/manifest/", manifest_sha256(version)))


def _render(card: VersionCard) -> None:
    facts = version_facts(card.version, card.words)
    files = distribution(card.version)
    card.hf_card = dataset_card(facts)
    card.croissant = _json(croissant(facts, files))
    card.spdx = _json(spdx_document(facts, files=files))
    card.digests = {fmt: hashlib.sha256(card_bytes(card, fmt)).hexdigest() for fmt in FORMATS}
    card.diff = facts.diff
    card.rendered_at = timezone.now()


@transaction.atomic
def version_card_render(*, version_id: int) -> VersionCard | None:
    """(Re)render a published version's draft card; a published card stays as published."""
    version = DatasetVersion.objects.filter(pk=version_id,
                                            state=DatasetVersion.State.PUBLISHED).first()
    if version is None:
        return None
    version_composition(version)  # counted once, here, for the pages and the cards
    card = _latest(version)
    if card.state == VersionCard.State.DRAFT:
        _render(card)
        card.save()
    return card


def _words(data: Any, current: dict[str, str]) -> dict[str, str]:
    if not isinstance(data, dict):
        raise ValidationError({"words": "an object of text fields"})
    known = set(CardWords.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValidationError({unknown[0]: f"not a card field; give any of {sorted(known)}"})
    for name, value in data.items():
        if not isinstance(value, str):
            raise ValidationError({name: "must be text"})
        if len(value) > WORD_LIMIT:
            raise ValidationError({name: f"at most {WORD_LIMIT} characters"})
    return {**current, **{k: v.strip() for k, v in data.items()}}


@transaction.atomic
def version_card_edit(*, version: DatasetVersion, actor: User,
                      words: Any) -> VersionCard:
    card = _draft(version)
    card.words = _words(words, card.words)
    _render(card)
    card.save()
    return card


@transaction.atomic
def version_card_publish(*, version: DatasetVersion, actor: User) -> VersionCard:
    """One action: render from the current data and words, freeze, record the digests (and,
    for a correction, the revision it supersedes and why)."""
    card = _draft(version)
    _render(card)
    card.state = VersionCard.State.PUBLISHED
    card.published_at = timezone.now()
    card.published_by = actor
    card.save()
    payload: dict[str, Any] = {"version": str(version), "manifest_root": version.manifest_root,
                               "revision": card.revision, "digests": card.digests}
    if card.revision > 1:
        previous = VersionCard.objects.get(version=version, revision=card.revision - 1)
        payload |= {"supersedes": {"revision": previous.revision,
                                   "digests": previous.digests},
                    "reason": card.reason}
    ledger_append(actor=actor, event="dataset_card.published", subject=version,
                  payload=payload)
    return card


REASON_LIMIT = 2_000


@transaction.atomic
def version_card_revise(*, version: DatasetVersion, actor: User, reason: str) -> VersionCard:
    """Start correcting a published card: a new draft revision, rendered again from the current
    data (hosts, licences, takedowns since) with the words carried over. The published revision
    stays, served and in the ledger; the new one is edited and published like the first."""
    latest = _latest(version, create=False)
    if latest is None or latest.state != VersionCard.State.PUBLISHED:
        raise InvalidTransition(f"the card of {version} (edit and publish its draft instead)",
                                "a draft" if latest else "not rendered yet", "revise")
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "say what this revision corrects"})
    if len(reason) > REASON_LIMIT:
        raise ValidationError({"reason": f"at most {REASON_LIMIT} characters"})
    card = VersionCard(version=version, revision=latest.revision + 1, words=latest.words,
                       reason=reason)
    _render(card)
    card.save()
    ledger_append(actor=actor, event="dataset_card.revision_started", subject=version,
                  payload={"version": str(version), "revision": card.revision,
                           "reason": reason})
    return card


def _latest(version: DatasetVersion, create: bool = True) -> VersionCard:
    """The version's newest card revision, locked (the version row serialises card writes);
    the first, empty draft is made when there is none and `create` holds."""
    DatasetVersion.objects.select_for_update().filter(pk=version.pk).first()
    card = VersionCard.objects.filter(version=version).order_by("-revision").first()
    if card is None and create:
        card = VersionCard.objects.create(version=version, revision=1)
    return card  # type: ignore[return-value]


def _draft(version: DatasetVersion) -> VersionCard:
    if version.state != DatasetVersion.State.PUBLISHED:
        raise InvalidTransition(f"the card of {version} (publish the version first)",
                                version.state, "write")
    card = _latest(version)
    if card.state != VersionCard.State.DRAFT:
        raise InvalidTransition(f"the card of {version} (revision {card.revision}; a correction "
                                f"is a new revision: POST /api/v1/versions/{version.pk}/card/"
                                "revise/ with a reason)", card.state, "change")
    return card
