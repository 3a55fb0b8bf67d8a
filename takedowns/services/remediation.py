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
from provenance.models import DatasetVersion, Document, Occurrence, User, VersionMember
from provenance.services.curation import version_derive
from provenance.services.datasets import version_diff
from provenance.services.documents import document_tombstone
from provenance.services.lineage import descendants_of_versions
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


def synthetic_documents(ids: set[int]) -> tuple[list[int], list[int]]:
    """(synthetic sources, their live documents) written by a model whose training data held
    any of `ids` — or by one trained on such text, and so on down the lineage."""
    versions = set(VersionMember.objects.filter(document_id__in=ids)
                   .values_list("version_id", flat=True).distinct())
    sources = sorted(descendants_of_versions(versions).synthetic_sources)
    documents = sorted(set(Occurrence.objects.filter(
        source_id__in=sources, document__removed_at__isnull=True)
        .values_list("document_id", flat=True)) - ids)
    return sources, documents


@transaction.atomic
def takedown_remediate_data(*, request: TakedownRequest, actor: User,
                            purge_text: bool | None = None,
                            descendants: bool = False) -> TakedownRequest:
    """scoping -> data_remediated. `purge_text` defaults to the legal basis (GDPR erasure
    purges; the others keep the text under the tombstone for the record). `descendants`: the
    synthetic text written by models trained on the work (see `synthetic_documents`) goes too,
    with the same purge, so that the versions holding it are republished without it and the
    students trained on it are among the models to remediate."""
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
    sources, synthetic = synthetic_documents(ids) if descendants else ([], [])
    for document in Document.objects.filter(pk__in=ids, removed_at__isnull=True):
        document_tombstone(document=document, actor=actor, reason=reason,
                           purge_text=purge and not later)
    for document in Document.objects.filter(pk__in=synthetic):
        document_tombstone(document=document, actor=actor, purge_text=purge and not later,
                           reason=f"{reason}: synthetic text of a model trained on the work")
    gone = ids | set(synthetic)
    versions = []
    for dataset_id in (DatasetVersion.objects.filter(members__document_id__in=gone)
                       .values_list("dataset_id", flat=True).distinct()):
        latest = latest_published(dataset_id)
        if latest is not None and latest.members.filter(document_id__in=gone).exists():
            versions.append(republish(latest, actor, reason, remove=gone))
    masked = []
    for index in GradientIndex.objects.filter(state=GradientIndex.State.SUCCEEDED,
                                              checkpoint__version__members__document_id__in=gone
                                              ).distinct():
        index = gradient_index_mask(index=index, document_ids=sorted(gone), actor=actor)
        masked.append({"index": index.pk, "generation": index.generation})
    request.scope = {**request.scope, "remediation": {
        "documents": sorted(ids), "purged": purge and not later, "purge_pending": later,
        "synthetic_sources": sources, "synthetic_documents": synthetic,
        "versions": versions,
        "gradient_indexes": masked}}
    request.save(update_fields=["scope", "updated_at"])
    takedown_transition(request, State.DATA_REMEDIATED, actor,
                        f"{len(ids)} document(s) removed"
                        + (f" and {len(synthetic)} synthetic document(s) written from them"
                           if synthetic else "") + f"; {len(versions)} new version(s)")
    return request
