"""Synthesis jobs: what the API shows and accepts."""

from __future__ import annotations

from rest_framework import serializers

from provenance import selectors
from provenance.models import DatasetVersion, ModelCheckpoint, RightsHolder, SynthesisJob
from provenance.serializers.common import VisibleId, one_line
from provenance.serializers.datasets import JobFields


class SynthesisJobOut(JobFields):
    class Meta:
        model = SynthesisJob
        fields = ["id", "checkpoint", "checkpoint_sha256", "source", "template", "inputs",
                  "count", "params", "seed", "pool_version", "selection", "pool_documents",
                  "documents_added", "state", "stage", "position",
                  "total", "unit", "percent", "error", "created_at", "started_at", "finished_at"]


class SynthesisJobIn(serializers.Serializer):
    checkpoint = VisibleId(selectors.checkpoint_list, queryset=ModelCheckpoint.objects.all(),
                           help_text="the registered checkpoint that writes the text")
    owner = VisibleId(selectors.rights_holder_list, queryset=RightsHolder.objects.all(),
                      help_text="the rights-holder the new synthetic source belongs to")
    name = serializers.CharField(max_length=200, validators=[one_line],
                                 help_text="the new source's name")
    license_expression = serializers.CharField(
        max_length=500, help_text="SPDX: the licence the generated text is put under (the "
                                  "lineage's licences restrict it further)")
    template = serializers.CharField(max_length=20_000, trim_whitespace=False,
                                     help_text="the prompt; {input} marks where a pool input "
                                               "goes")
    inputs = serializers.ListField(child=serializers.CharField(max_length=20_000), default=list,
                                   help_text="the pool of seed inputs, cycled through")
    count = serializers.IntegerField(min_value=1, max_value=1_000_000,
                                     help_text="documents to generate")
    params = serializers.JSONField(default=dict, help_text="max_new_tokens, temperature (1.0 "
                                                           "unless given), top_p")
    seed = serializers.IntegerField(default=0, min_value=0, max_value=2**31 - 1)
    pool_version = VisibleId(selectors.version_list, queryset=DatasetVersion.objects.all(),
                             required=False, allow_null=True, default=None,
                             help_text="a label job: label `count` documents of this version")
    selection = serializers.CharField(
        required=False, default="", allow_blank=True, max_length=20,
        help_text="a label job's choice of documents, the most useful first: diversity "
                  "(k-center over embeddings, the default), uncertainty (the checkpoint's "
                  "highest loss), order")


class GenerationOut(serializers.Serializer):
    id = serializers.IntegerField()
    generation = serializers.IntegerField(help_text="0: trained on the source's own versions; "
                                                    "1: on synthetic text a generation-0 "
                                                    "model wrote; ...")


class DescendantsOut(serializers.Serializer):
    # A field named `source` shadows Field.source (DRF's metaclass takes it out of the class).
    source = serializers.IntegerField()  # type: ignore[assignment]
    versions = GenerationOut(many=True)
    checkpoints = GenerationOut(many=True)
    synthetic_sources = GenerationOut(many=True)
    students = GenerationOut(many=True, help_text="checkpoints that learned from synthetic text")
