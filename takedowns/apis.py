"""/api/v1/takedowns/: file a request, answer what it lacks, withdraw it; reviewers move it
through the workflow. Every change goes through takedowns.services."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ServiceViewSet
from core.permissions import Capability, can
from takedowns import selectors
from takedowns import serializers as s
from takedowns.models import UnlearningRun
from takedowns.services.counter import takedown_counter_notice, takedown_restore
from takedowns.services.decision import takedown_receipt
from takedowns.services.remediation import takedown_remediate_data
from takedowns.services.requests import (
    takedown_decide,
    takedown_file,
    takedown_supplement,
    takedown_withdraw,
)
from takedowns.services.scoping import (
    takedown_scope_add,
    takedown_scope_review,
    takedown_scope_search,
    takedown_scope_start,
)
from takedowns.services.unlearning import takedown_remediate_models, unlearning_run_cancel
from takedowns.services.verification import takedown_verify_start
from takedowns.services.workflow import STEP_CAPABILITIES


class TakedownViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.TakedownOut
    filterset_fields = ["state", "legal_basis"]
    write_capability = Capability.FILE_TAKEDOWN
    action_capabilities = STEP_CAPABILITIES

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return selectors.takedown_list(self.request.user)

    @extend_schema(request=s.TakedownIn, responses={201: s.TakedownOut})
    def create(self, request: Request) -> Response:
        """File a request. It is acknowledged at once with its reference and deadlines, and
        checked against its legal basis: a request that lacks a required element goes to
        `needs_info`, with the list of what is missing."""
        data = s.plain(self.valid(s.TakedownIn))
        sources = data.pop("claimed_sources", [])
        taken = takedown_file(actor=self.actor, data=data, claimed_sources=sources)
        return self.out(self.get_queryset().get(pk=taken.pk), status.HTTP_201_CREATED)

    @extend_schema(request=s.TakedownFields, responses={200: s.TakedownOut})
    @action(detail=True, methods=["post"])
    def supplement(self, request: Request, pk: str) -> Response:
        """Answer a `needs_info`: the given fields replace the old ones, works are added."""
        taken = takedown_supplement(request=self.get_object(), actor=self.actor,
                                    data=s.plain(self.valid(s.TakedownFields)))
        return self.out(self.get_queryset().get(pk=taken.pk))

    @extend_schema(request=s.TakedownWithdrawIn, responses={200: s.TakedownOut})
    @action(detail=True, methods=["post"])
    def withdraw(self, request: Request, pk: str) -> Response:
        data = self.valid(s.TakedownWithdrawIn)
        taken = takedown_withdraw(request=self.get_object(), actor=self.actor,
                                  reason=data.get("reason", ""))
        return self.out(self.get_queryset().get(pk=taken.pk))

    @extend_schema(request=s.TakedownDecisionIn, responses={200: s.TakedownOut})
    @action(detail=True, methods=["post"])
    def decide(self, request: Request, pk: str) -> Response:
        """A reviewer's step (accept, reject with reasons, duplicate of another request, or the
        next remediation stage); refused with 409 when the workflow does not allow it."""
        data = self.valid(s.TakedownDecisionIn)
        taken = takedown_decide(request=self.get_object(), actor=self.actor, to=data["to"],
                                reasons=data.get("reasons", ""),
                                duplicate_of=data.get("duplicate_of"))
        return self.out(self.get_queryset().get(pk=taken.pk))

    @extend_schema(request=None, responses={202: s.TakedownOut})
    @action(detail=True, methods=["post"])
    def scope(self, request: Request, pk: str) -> Response:
        """Start scoping an accepted request (a worker matches the works against the corpus),
        or scope it again once the last attempt is done or failed; `scope.job` says how it
        goes (queued, running, done with its matches, failed with the error)."""
        taken = takedown_scope_start(request=self.get_object(), actor=self.actor)
        return self.out(self.get_queryset().get(pk=taken.pk), status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: s.MatchOut(many=True)})
    @action(detail=True, methods=["get"])
    def matches(self, request: Request, pk: str) -> Response:
        rows = self.get_object().matches.all()
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(s.MatchOut(page, many=True).data)

    @extend_schema(request=s.ScopeReviewIn, responses={200: s.TakedownOut})
    @action(detail=True, methods=["post"], url_path="review-scope")
    def review_scope(self, request: Request, pk: str) -> Response:
        """Confirm or dismiss matched documents (by document id) before remediation."""
        data = self.valid(s.ScopeReviewIn)
        taken = takedown_scope_review(request=self.get_object(), actor=self.actor,
                                      confirm=data.get("confirm", []),
                                      dismiss=data.get("dismiss", []))
        return self.out(self.get_queryset().get(pk=taken.pk))

    @extend_schema(request=s.ScopeAddIn, responses={200: s.TakedownOut})
    @action(detail=True, methods=["post"], url_path="add-to-scope")
    def add_to_scope(self, request: Request, pk: str) -> Response:
        """Add documents no method found (by id; find them with `scope-search`), confirmed,
        with the curator's reason: who added them and why go in the ledger."""
        data = self.valid(s.ScopeAddIn)
        taken = takedown_scope_add(request=self.get_object(), actor=self.actor,
                                   documents=data["documents"], reason=data["reason"],
                                   work=data.get("work"))
        return self.out(self.get_queryset().get(pk=taken.pk))

    @extend_schema(parameters=[OpenApiParameter("q", str, required=True,
                                                description="words the document holds")],
                   responses={200: s.ScopeSearchOut(many=True)})
    @action(detail=True, methods=["get"], url_path="scope-search")
    def scope_search(self, request: Request, pk: str) -> Response:
        """Staff: documents holding these words in this order (case and layout aside), to add
        to the scope."""
        if not can(request.user, Capability.MOVE_TAKEDOWN):
            raise PermissionDenied("searching the corpus is for curators and admins")
        self.get_object()
        found = takedown_scope_search(request.query_params.get("q", ""))
        return Response(s.ScopeSearchOut(found, many=True).data)

    @extend_schema(request=s.RemediateIn, responses={200: s.TakedownOut})
    @action(detail=True, methods=["post"], url_path="remediate-data")
    def remediate_data(self, request: Request, pk: str) -> Response:
        """Tombstone the confirmed documents (and, with `descendants`, the synthetic text
        written from them), publish a new version of each affected dataset without them, and
        mask them in the gradient indexes (one transaction)."""
        data = self.valid(s.RemediateIn)
        taken = takedown_remediate_data(request=self.get_object(), actor=self.actor,
                                        purge_text=data.get("purge_text"),
                                        descendants=data["descendants"])
        return self.out(self.get_queryset().get(pk=taken.pk))

    @extend_schema(request=s.CounterNoticeIn, responses={200: s.TakedownOut})
    @action(detail=True, methods=["post"], url_path="counter-notice")
    def counter_notice(self, request: Request, pk: str) -> Response:
        """Record a DMCA counter notice (§512(g)(3)) to a decided request: the restore window
        (10 to 14 business days) opens and the claimant is told."""
        taken = takedown_counter_notice(request=self.get_object(), actor=self.actor,
                                        data=s.plain(self.valid(s.CounterNoticeIn)))
        return self.out(self.get_queryset().get(pk=taken.pk))

    @extend_schema(request=None, responses={200: s.TakedownOut})
    @action(detail=True, methods=["post"])
    def restore(self, request: Request, pk: str) -> Response:
        """Restore what the request removed, once the window has opened (or after a
        litigation hold ends)."""
        taken = takedown_restore(request=self.get_object(), actor=self.actor)
        return self.out(self.get_queryset().get(pk=taken.pk))

    @extend_schema(request=s.RemediateModelsIn, responses={202: s.UnlearningRunOut(many=True)})
    @action(detail=True, methods=["post"], url_path="remediate-models")
    def remediate_models(self, request: Request, pk: str) -> Response:
        """Take the removed documents out of the checkpoints trained on them: retrain on the
        remediated version, unlearn (graddiff, npo, simnpo) or filter outputs, on the gpu
        queue. When the last run ends, verification measures them all."""
        data = self.valid(s.RemediateModelsIn)
        runs = takedown_remediate_models(
            request=self.get_object(), actor=self.actor, methods=data["methods"],
            checkpoints=data.get("checkpoints"),
            config={k: dict(v) for k, v in data.get("config", {}).items()})
        return Response(s.UnlearningRunOut(runs, many=True).data,
                        status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses={200: s.UnlearningRunOut(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None,
            filter_backends=[])  # a whole list: a request has a handful of runs
    def runs(self, request: Request, pk: str) -> Response:
        """The model-remediation runs, with live progress and each one's certificate."""
        rows = self.get_object().unlearning_runs.select_related("result").order_by("pk")
        return Response(s.UnlearningRunOut(rows, many=True).data)

    @extend_schema(request=s.CancelRunIn, responses={200: s.UnlearningRunOut})
    @action(detail=True, methods=["post"], url_path="cancel-run")
    def cancel_run(self, request: Request, pk: str) -> Response:
        run_id = self.valid(s.CancelRunIn)["run"]
        run = UnlearningRun.objects.filter(request=self.get_object(), pk=run_id).first()
        if run is None:
            return Response({"run": f"no run {run_id} on this request"},
                            status=status.HTTP_404_NOT_FOUND)
        return Response(s.UnlearningRunOut(unlearning_run_cancel(run=run,
                                                                 actor=self.actor)).data)

    @extend_schema(request=None, responses={202: s.TakedownOut})
    @action(detail=True, methods=["post"])
    def verify(self, request: Request, pk: str) -> Response:
        """Measure the remediated models again (after a failed verification job)."""
        taken = takedown_verify_start(request=self.get_object(), actor=self.actor)
        return self.out(self.get_queryset().get(pk=taken.pk), status.HTTP_202_ACCEPTED)

    @extend_schema(request=None, responses={200: dict})
    @action(detail=True, methods=["get"])
    def receipt(self, request: Request, pk: str) -> Response:
        """The decision's ledger entry with an RFC 9162 inclusion proof, to keep and check
        offline (python -m provenance.engine.verify receipt FILE)."""
        receipt = takedown_receipt(self.get_object())
        if receipt is None:
            return Response({"detail": "no ledger entry yet"}, status=status.HTTP_404_NOT_FOUND)
        return Response(receipt)
