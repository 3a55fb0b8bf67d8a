"""Tombstones: a removed document keeps its row and hash (so the same text cannot come back in
through ingest) and leaves every future curated version; its text can be purged."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidTransition
from provenance.ledger.append import ledger_append
from provenance.models import Document, User

# Other copies of a document's text (retrieval's chunks, the passages of answers): an app that
# keeps one registers here when it starts (its AppConfig.ready), so that a purge erases them in
# the same transaction and provenance imports nothing of that app. A hook takes document ids and
# says what it erased ({"chunks": 3, ...}).
PurgeHook = Callable[[list[int]], dict[str, int]]
PURGE_HOOKS: list[PurgeHook] = []


def purge_hook_register(hook: PurgeHook) -> None:
    if hook not in PURGE_HOOKS:
        PURGE_HOOKS.append(hook)


def _copies_purge(document_id: int) -> dict[str, int]:
    erased: dict[str, int] = {}
    for hook in PURGE_HOOKS:
        for what, count in hook([document_id]).items():
            erased[what] = erased.get(what, 0) + count
    return erased


@transaction.atomic
def document_tombstone(*, document: Document, actor: User | None, reason: str,
                       purge_text: bool = False) -> Document:
    if not reason.strip():
        raise ValidationError({"reason": "say why the document is removed"})
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.removed_at is not None:
        raise InvalidTransition(f"document {document.pk}", "removed", "remove")
    document.removed_at = timezone.now()
    document.removal_reason = reason
    fields = ["removed_at", "removal_reason"]
    if purge_text:
        document.text, document.text_purged = "", True
        fields += ["text", "text_purged"]
    document.save(update_fields=fields)
    payload = {"sha256": document.sha256, "reason": reason, "purged": purge_text}
    if purge_text:
        payload["copies_erased"] = _copies_purge(document.pk)
    ledger_append(actor=actor, event="document.removed", subject=document, payload=payload)
    return document


@transaction.atomic
def document_restore(*, document: Document, actor: User | None, reason: str) -> Document:
    """Lift a tombstone (a counter-notice upheld); a purged text cannot come back."""
    if not reason.strip():
        raise ValidationError({"reason": "say why the document is restored"})
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.removed_at is None:
        raise InvalidTransition(f"document {document.pk}", "present", "restore")
    if document.text_purged:
        raise InvalidTransition(f"document {document.pk}", "purged", "restore")
    document.removed_at, document.removal_reason = None, ""
    document.save(update_fields=["removed_at", "removal_reason"])
    ledger_append(actor=actor, event="document.restored", subject=document,
                  payload={"sha256": document.sha256, "reason": reason})
    return document


@transaction.atomic
def document_purge(*, document: Document, actor: User | None, reason: str) -> Document:
    """Empty the text of a removed document (an erasure carried out once the work that needed
    the text, such as verifying an unlearned model, is done), and every registered copy of it.
    The hash stays."""
    document = Document.objects.select_for_update().get(pk=document.pk)
    if document.removed_at is None:
        raise InvalidTransition(f"document {document.pk}", "present", "purge")
    if document.text_purged:
        return document
    document.text, document.text_purged = "", True
    document.save(update_fields=["text", "text_purged"])
    ledger_append(actor=actor, event="document.purged", subject=document,
                  payload={"sha256": document.sha256, "reason": reason,
                           "copies_erased": _copies_purge(document.pk)})
    return document
