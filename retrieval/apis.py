"""/api/v1/datastores/: build a datastore from a published version, watch it, retrieve from it.
/api/v1/rag/answers/: answers from a checkpoint with retrieved passages in context, and what
each passage and source contributed; /api/v1/rag/shares/: those shares per period."""

from __future__ import annotations

from dataclasses import asdict

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError as DRFValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ServiceViewSet
from core.permissions import Capability
from retrieval import selectors
from retrieval import serializers as s
from retrieval.models import Datastore
from retrieval.services import datastores
from retrieval.services.answers import answer_create
from retrieval.services.search import query_vector, retrieve


class DatastoreViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.DatastoreOut
    filterset_fields = ["version", "state"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.BUILD_DATASETS
    action_capabilities = {"search": Capability.READ_ALL}
    queryset = Datastore.objects.all()

    @extend_schema(request=s.DatastoreIn, responses={202: s.DatastoreOut})
    def create(self, request: Request) -> Response:
        """Queue a build: chunks, embeddings and the keyword index of a published version."""
        store = datastores.datastore_create(actor=self.actor, **self.valid(s.DatastoreIn))
        return self.out(store, status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.SearchIn, responses=s.SearchOut)
    @action(detail=True, methods=["post"], pagination_class=None, filter_backends=[])
    def search(self, request: Request, pk: str | None = None) -> Response:
        """Hybrid retrieval (keywords and vectors, fused by reciprocal rank). A chunk whose
        document is tombstoned, or one of whose sources refuses ai-input, is never returned,
        from the commit of that decision on."""
        store = self.get_object()
        data = self.valid(s.SearchIn)
        if store.state != Datastore.State.SUCCEEDED:
            raise DRFValidationError({"datastore": f"datastore {store.pk} is {store.state}; it "
                                                   "answers once its build has succeeded"})
        vector, note = query_vector(data["query"])
        hits = retrieve(store, data["query"], vector, k=data["k"])
        return Response(s.SearchOut({
            "datastore": store.pk, "query": data["query"], "note": note,
            "legs": ["keyword"] + (["vector"] if vector is not None else []),
            "hits": [asdict(h) for h in hits]}).data)


class AnswerViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceViewSet):
    serializer_class = s.AnswerOut
    filterset_fields = ["datastore", "checkpoint", "state", "mode"]
    read_capability = Capability.READ_ALL
    write_capability = Capability.GENERATE

    def get_queryset(self):  # type: ignore[no-untyped-def]
        return (selectors.answer_list(self.request.user).select_related("output")
                .prefetch_related("output__runs"))

    @extend_schema(request=s.AnswerIn, responses={202: s.AnswerOut})
    def create(self, request: Request) -> Response:
        """Queue an answer on the gpu queue: retrieval (governed as of when it runs), the
        checkpoint's answer with the passages in context, then the context attribution:
        ablations of the passages, a sparse linear surrogate, verbatim spans, source shares."""
        data = self.valid(s.AnswerIn)
        answer = answer_create(actor=self.actor, **data)
        return self.out(answer, status.HTTP_202_ACCEPTED)


class ShareViewSet(ServiceViewSet):
    """Each source's shares of answers, summed per period: the unit a licensing scheme pays
    on. A rights-holder sees its own sources' rows; readers of everything see all."""

    read_capability = Capability.SIGN_IN
    pagination_class = None
    filter_backends: list = []

    @extend_schema(parameters=[s.SharesIn], responses=s.ShareRowOut(many=True))
    def list(self, request: Request) -> Response:
        query = s.SharesIn(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = selectors.share_periods(request.user, **query.validated_data)
        return Response(s.ShareRowOut(rows, many=True).data)
