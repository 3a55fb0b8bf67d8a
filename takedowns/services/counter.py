"""DMCA counter notices (§512(g)): a counter notice opens the restore window (10 to 14 business
days); unless the claimant files an action (litigation hold, through `takedown_decide`), the
removed documents are restored: tombstones lifted, a new version of each dataset with them
again, gradient rows unmasked. One transaction each."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from attribution.models import GradientIndex
from attribution.services.influence import gradient_index_unmask
from core.errors import InvalidTransition
from provenance.models import Document, User, VersionExclusion
from provenance.services.documents import document_restore
from takedowns.engine import regimes
from takedowns.models import OutputFilter, TakedownRequest
from takedowns.services.remediation import latest_published, republish
from takedowns.services.requests import calendar_for
from takedowns.services.workflow import takedown_transition

State = TakedownRequest.State
COUNTER_FIELDS = {"claimant_name", "claimant_email", "postal_address", "telephone", "material",
                  "statements", "signature"}


@transaction.atomic
def takedown_counter_notice(*, request: TakedownRequest, actor: User,
                            data: dict[str, Any]) -> TakedownRequest:
    """Record a counter notice to a decided DMCA request and open the restore window."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    if request.legal_basis != TakedownRequest.Basis.DMCA:
        raise InvalidTransition(f"takedown {request.reference}", request.legal_basis,
                                "take a DMCA counter notice on")
    if request.state != State.DECIDED:
        raise InvalidTransition(f"takedown {request.reference}", request.state,
                                "take a counter notice on")
    notice = {k: v for k, v in data.items() if k in COUNTER_FIELDS}
    gaps = regimes.counter_notice_missing(notice)
    if gaps:
        raise ValidationError({g["element"]: g["message"] for g in gaps})
    now = timezone.now()
    start, end = regimes.restore_window(now, calendar_for(now))
    request.counter_notice = {**notice, "received_at": now.isoformat()}
    request.deadlines = {**request.deadlines, "restore_not_before": start.isoformat(),
                         "restore_by": end.isoformat()}
    request.save(update_fields=["counter_notice", "deadlines", "updated_at"])
    takedown_transition(request, State.COUNTER_NOTICE, actor, "counter notice received")
    takedown_transition(request, State.RESTORE_WINDOW, actor,
                f"restore from {start} to {end} unless the claimant files an action")
    return request


@transaction.atomic
def takedown_restore(*, request: TakedownRequest, actor: User,
                     today: date | None = None) -> TakedownRequest:
    """Restore what the request removed, once the window allows it (or after a hold ends)."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    today = today or timezone.localdate()
    if request.state not in (State.RESTORE_WINDOW, State.LITIGATION_HOLD):
        raise InvalidTransition(f"takedown {request.reference}", request.state, "restore")
    opens = date.fromisoformat(request.deadlines["restore_not_before"])
    if request.state == State.RESTORE_WINDOW and today < opens:
        raise ValidationError({"state": f"the restore window opens on {opens} (10 business "
                                        f"days after the counter notice)"})
    remediation = request.scope.get("remediation", {})
    ids = set(remediation.get("documents", []))
    purged = sorted(Document.objects.filter(pk__in=ids, text_purged=True)
                    .values_list("pk", flat=True))
    if purged:
        raise InvalidTransition(f"takedown {request.reference}", "purged",
                                f"restore documents {purged} of")
    reason = f"counter notice to takedown {request.reference}"
    for document in Document.objects.filter(pk__in=ids, removed_at__isnull=False):
        document_restore(document=document, actor=actor, reason=reason)
    versions = []
    for change in remediation.get("versions", []):
        latest = latest_published(change["dataset"])
        sources = dict(VersionExclusion.objects.filter(version_id=change["to"],
                                                       document_id__in=ids)
                       .values_list("document_id", "source_id"))
        if latest is not None and sources:
            versions.append(republish(latest, actor, reason, restore=sources))
    for index in GradientIndex.objects.filter(pk__in=[
            g["index"] for g in remediation.get("gradient_indexes", [])]):
        gradient_index_unmask(index=index, document_ids=sorted(ids), actor=actor)
    OutputFilter.objects.filter(request=request).update(active=False)
    request.scope = {**request.scope, "restoration": {"documents": sorted(ids),
                                                      "versions": versions}}
    request.save(update_fields=["scope", "updated_at"])
    takedown_transition(request, State.RESTORED, actor, reason)
    return request
