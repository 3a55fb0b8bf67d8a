"""/api/v1/log/: the ledger as a public verifiable log. Anyone may read the signed checkpoint,
inclusion proofs and consistency proofs: they hold hashes only, never an entry's content."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ServiceViewSet
from provenance.ledger.proofs import (
    ledger_checkpoint_latest,
    ledger_consistency,
    ledger_inclusion,
    ledger_verifier_key,
)


class LogCheckpointOut(serializers.Serializer):
    size = serializers.IntegerField()
    root_hash = serializers.CharField(help_text="RFC 9162 Merkle root, hex")
    note = serializers.CharField(help_text="transparency-dev checkpoint, Ed25519-signed note")
    verifier_key = serializers.CharField(help_text="name+hash+base64 public key")


class TransparencyLogViewSet(ServiceViewSet):
    anonymous_read = True
    serializer_class = LogCheckpointOut

    @extend_schema(responses={200: LogCheckpointOut})
    @action(detail=False, methods=["get"])
    def checkpoint(self, request: Request) -> Response:
        """The latest signed checkpoint (tree size and Merkle root)."""
        signed = ledger_checkpoint_latest()
        return Response({"size": signed.size, "root_hash": signed.root, "note": signed.note,
                         "verifier_key": ledger_verifier_key()})

    @extend_schema(parameters=[OpenApiParameter("seq", int, required=True),
                               OpenApiParameter("tree_size", int)],
                   responses={200: dict})
    @action(detail=False, methods=["get"])
    def inclusion(self, request: Request) -> Response:
        """The proof that entry `seq` is in the tree of `tree_size` entries (default: all)."""
        return Response(ledger_inclusion(seq=request.query_params.get("seq"),
                                         tree_size=request.query_params.get("tree_size")))

    @extend_schema(parameters=[OpenApiParameter("first", int, required=True),
                               OpenApiParameter("second", int)],
                   responses={200: dict})
    @action(detail=False, methods=["get"])
    def consistency(self, request: Request) -> Response:
        """The proof that the tree of `first` entries is a prefix of the tree of `second`."""
        return Response(ledger_consistency(first=request.query_params.get("first"),
                                           second=request.query_params.get("second")))
