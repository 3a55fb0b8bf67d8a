"""Datastores and retrieval: what the API shows and accepts."""

from __future__ import annotations

from rest_framework import serializers

from provenance import selectors as prov
from provenance.models import DatasetVersion, ModelCheckpoint
from provenance.serializers.common import VisibleId, one_line
from provenance.serializers.datasets import JobFields
from retrieval.models import Answer, Datastore
from retrieval.selectors import PERIODS, datastore_list
from retrieval.services.answers import MAX_PASSAGES


class DatastoreOut(serializers.ModelSerializer):
    percent = serializers.FloatField(read_only=True)

    class Meta:
        model = Datastore
        fields = ["id", "name", "version", "chunk_tokens", "overlap_tokens", "embedder", "state",
                  "stage", "position", "total", "unit", "percent", "document_count",
                  "chunk_count", "error", "created_at", "started_at", "finished_at"]


class DatastoreIn(serializers.Serializer):
    name = serializers.CharField(max_length=200, validators=[one_line])
    version = VisibleId(prov.version_list, queryset=DatasetVersion.objects.all(),
                        help_text="a published dataset version")
    chunk_tokens = serializers.IntegerField(default=128, min_value=16, max_value=256)
    overlap_tokens = serializers.IntegerField(default=32, min_value=0, max_value=255)


class SearchIn(serializers.Serializer):
    query = serializers.CharField(max_length=2000)
    k = serializers.IntegerField(default=5, min_value=1, max_value=50)


class HitSourceOut(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    license = serializers.CharField()
    use_class = serializers.CharField()
    train = serializers.CharField(help_text="the source's train verdict now")
    ai_input = serializers.CharField(help_text="the source's ai-input verdict now (never no: "
                                               "a refused source is not retrieved)")


class HitOut(serializers.Serializer):
    chunk = serializers.IntegerField()
    document = serializers.IntegerField()
    sha256 = serializers.CharField()
    ordinal = serializers.IntegerField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    text = serializers.CharField()
    score = serializers.FloatField(help_text="reciprocal-rank fusion of the two legs")
    keyword_rank = serializers.IntegerField(allow_null=True)
    vector_rank = serializers.IntegerField(allow_null=True)
    sources = HitSourceOut(many=True)


class SearchOut(serializers.Serializer):
    datastore = serializers.IntegerField()
    query = serializers.CharField()
    legs = serializers.ListField(child=serializers.CharField(),
                                 help_text="keyword, and vector when a worker embedded the query")
    note = serializers.CharField(allow_blank=True)
    hits = HitOut(many=True)


class PassageOut(serializers.Serializer):
    chunk = serializers.IntegerField()
    document = serializers.IntegerField()
    sha256 = serializers.CharField()
    text = serializers.CharField(allow_blank=True, help_text="the passage as the model read it")
    truncated = serializers.BooleanField(help_text="cut to fit the checkpoint's context")
    erased = serializers.BooleanField(default=False, help_text="its document's text was purged "
                                                              "(an erasure): the text is gone")
    score = serializers.FloatField(help_text="its retrieval score (reciprocal-rank fusion)")
    contribution = serializers.FloatField(
        help_text="the surrogate's weight: how much keeping this passage raises the answer's "
                  "logit-probability")
    leave_one_out = serializers.FloatField(
        help_text="the drop in the answer's logit-probability when this passage alone is left "
                  "out (the cheap baseline)")
    sources = HitSourceOut(many=True)


class SpanOut(serializers.Serializer):
    passage = serializers.IntegerField(help_text="index in passages")
    start = serializers.IntegerField()
    end = serializers.IntegerField()
    passage_start = serializers.IntegerField()
    passage_end = serializers.IntegerField()
    words = serializers.IntegerField()


class AnswerShareOut(serializers.Serializer):
    source = serializers.IntegerField(source="source_id")  # type: ignore[assignment]
    name = serializers.CharField(source="source.name")
    share = serializers.FloatField()


class AnswerOut(JobFields):
    passages = PassageOut(many=True)
    spans = SpanOut(many=True)
    shares = AnswerShareOut(many=True)
    attribution = serializers.JSONField(
        help_text="method, ablations, heldout, alpha, intercept, full (the answer's "
                  "logit-probability with every passage), lds (Spearman of the surrogate on the "
                  "held-out ablations)")
    attribution_runs = serializers.SerializerMethodField(
        help_text="training-data attribution runs of this answer's model output")

    class Meta:
        model = Answer
        fields = ["id", "datastore", "checkpoint", "question", "mode", "k", "ablations",
                  "params", "text", "prompt", "passages", "attribution", "spans", "shares",
                  "output", "attribution_runs", "filtered", "watermark", "note", "state",
                  "stage", "position", "total", "unit", "percent", "error", "created_at",
                  "started_at", "finished_at"]

    def get_attribution_runs(self, answer: Answer) -> list[int]:
        output = answer.output
        return [] if output is None else sorted(run.pk for run in output.runs.all())


class AnswerIn(serializers.Serializer):
    datastore = VisibleId(datastore_list, queryset=Datastore.objects.all())
    checkpoint = VisibleId(prov.checkpoint_list, queryset=ModelCheckpoint.objects.all())
    question = serializers.CharField(max_length=2000)
    mode = serializers.ChoiceField(choices=Answer.Mode.choices, default=Answer.Mode.PASSAGES,
                                   help_text="passages: the top k as grounding; demonstrations: "
                                             "k chosen by similarity and diversity")
    k = serializers.IntegerField(default=4, min_value=1, max_value=MAX_PASSAGES)
    ablations = serializers.IntegerField(default=32, min_value=8, max_value=256,
                                         help_text="random ablations the surrogate is fitted on")
    params = serializers.JSONField(required=False, help_text="max_new_tokens, temperature "
                                                             "(0 = greedy), top_p, seed")


class SharesIn(serializers.Serializer):
    period = serializers.ChoiceField(choices=PERIODS, default="month")
    since = serializers.DateField(required=False, help_text="first day (UTC), inclusive")
    until = serializers.DateField(required=False, help_text="last day (UTC), inclusive")
    source = serializers.IntegerField(  # type: ignore[assignment]  # a field named "source"
        required=False, min_value=1)


class ShareRowOut(serializers.Serializer):
    period = serializers.DateField(help_text="the period's first day")
    period_kind = serializers.CharField()
    source = serializers.IntegerField()  # type: ignore[assignment]  # a field named "source"
    name = serializers.CharField()
    rights_holder = serializers.CharField()
    answers = serializers.IntegerField(help_text="answers that owed this source a share")
    share = serializers.FloatField(help_text="the sum of those shares (each answer counts 1)")
