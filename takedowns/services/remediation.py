"""Remediating the data of a scoped request: the confirmed documents are tombstoned (text
purged on request, once the models no longer need it; the hash stays, so the same text cannot
come back), each affected dataset
gets a new published version without them, and the checkpoints' gradient indexes mask them.
One transaction: a failure leaves nothing half done, and the step can be retried."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from attribution.models import GradientIndex
from attribution.services.influence import gradient_index_mask
from core.errors import InvalidTransition
from provenance.models import DatasetVersion, Document, User
from provenance.services.curation import version_derive
from provenance.services.datasets import version_diff
from provenance.services.documents import document_tombstone
from takedowns.models import TakedownRequest
from takedowns.services.workflow import takedown_transition

State = TakedownRequest.State


def latest_published(dataset_id: int) -> DatasetVersion | None:
    return (DatasetVersion.objects.filter(dataset_id=dataset_id,
                                          state=DatasetVersion.State.PUBLISHED)
            .order_by("-number").first())


def republish(latest: DatasetVersion, actor: User, detail: str, *, remove: set[int] | None = None,
              restore: dict[int, int] | None = None) -> dict[str, Any]:
    """A new published version of `latest`'s dataset with documents removed or restored; what
    the request records of it (with the diff)."""
    new = version_derive(parent=latest, remove=remove, restore=restore, detail=detail,
                         actor=actor)
    return {"dataset": latest.dataset_id, "from": latest.pk, "to": new.pk, "version": str(new),
            "diff": version_diff(new, latest)}


@transaction.atomic
def takedown_remediate_data(*, request: TakedownRequest, actor: User,
                            purge_text: bool | None = None) -> TakedownRequest:
    """scoping -> data_remediated. `purge_text` defaults to the legal basis (GDPR erasure
    purges; the others keep the text under the tombstone for the record)."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    if request.state != State.SCOPING:
        raise InvalidTransition(f"takedown {request.reference}", request.state,
                                "remediate the data of")
    unreviewed = request.matches.filter(confirmed__isnull=True).count()
    if unreviewed:
        raise ValidationError({"matches": f"{unreviewed} match(es) not reviewed yet: confirm "
                                          f"or dismiss each before remediation"})
    ids = set(request.matches.filter(confirmed=True).values_list("document_id", flat=True))
    if not ids:
        raise ValidationError({"matches": "no confirmed document: reject or withdraw the "
                                          "request instead"})
    purge = request.legal_basis == TakedownRequest.Basis.GDPR if purge_text is None \
        else purge_text
    # Unlearning and its verification read the removed text (as the model saw it): when the
    # models are to be remediated, the erasure waits for the decision.
    later = purge and request.remedy != TakedownRequest.Remedy.EXCLUDE
    reason = f"takedown {request.reference}"
    for document in Document.objects.filter(pk__in=ids, removed_at__isnull=True):
        document_tombstone(document=document, actor=actor, reason=reason,
                           purge_text=purge and not later)
    versions = []
    for dataset_id in (DatasetVersion.objects.filter(members__document_id__in=ids)
                       .values_list("dataset_id", flat=True).distinct()):
        latest = latest_published(dataset_id)
        if latest is not None and latest.members.filter(document_id__in=ids).exists():
            versions.append(republish(latest, actor, reason, remove=ids))
    masked = []
    for index in GradientIndex.objects.filter(state=GradientIndex.State.SUCCEEDED,
                                              checkpoint__version__members__document_id__in=ids
                                              ).distinct():
        index = gradient_index_mask(index=index, document_ids=sorted(ids), actor=actor)
        masked.append({"index": index.pk, "generation": index.generation})
    request.scope = {**request.scope, "remediation": {
        "documents": sorted(ids), "purged": purge and not later, "purge_pending": later,
        "versions": versions,
        "gradient_indexes": masked}}
    request.save(update_fields=["scope", "updated_at"])
    takedown_transition(request, State.DATA_REMEDIATED, actor,
                f"{len(ids)} document(s) removed; {len(versions)} new version(s)")
    return request
