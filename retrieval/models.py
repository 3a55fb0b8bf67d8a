"""Datastores: the chunks of a published dataset version, embedded and indexed for retrieval."""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from attribution.models import ModelOutput
from core.models import Job
from provenance.models import DatasetVersion, DataSource, Document, ModelCheckpoint
from provenance.models.documents import EMBEDDING_DIM


class Datastore(Job):
    """A published version cut into chunks of `chunk_tokens` tokens (consecutive chunks share
    `overlap_tokens`), each embedded and indexed for keywords. The build is a job: its rows
    appear as it goes, and the datastore answers queries once it has succeeded. What may be
    retrieved is decided at query time (tombstones, ai-input verdicts), never by the build."""

    name = models.CharField(max_length=200, unique=True)
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT,
                                related_name="datastores")
    chunk_tokens = models.PositiveIntegerField(default=128)
    overlap_tokens = models.PositiveIntegerField(default=32)
    embedder = models.CharField(max_length=50, blank=True)  # the backend embed_texts used
    document_count = models.PositiveBigIntegerField(default=0)
    chunk_count = models.PositiveBigIntegerField(default=0)

    class Meta(Job.Meta):
        constraints = [
            models.CheckConstraint(condition=models.Q(overlap_tokens__lt=models.F("chunk_tokens")),
                                   name="datastore_overlap_below_chunk"),
        ]

    def __str__(self) -> str:
        return self.name


class Chunk(models.Model):
    datastore = models.ForeignKey(Datastore, on_delete=models.CASCADE, related_name="chunks")
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="+")
    ordinal = models.PositiveIntegerField()
    start = models.PositiveIntegerField()  # [start, end) in the document's text
    end = models.PositiveIntegerField()
    text = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIM, null=True, blank=True)
    search = models.GeneratedField(expression=SearchVector("text", config="english"),
                                   output_field=SearchVectorField(), db_persist=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["datastore", "document", "ordinal"],
                                    name="chunk_unique_ordinal"),
        ]
        indexes = [
            HnswIndex(name="chunk_embedding_hnsw", fields=["embedding"], m=16,
                      ef_construction=64, opclasses=["vector_cosine_ops"]),
            GinIndex(name="chunk_search_gin", fields=["search"]),
            models.Index(name="chunk_document", fields=["document"]),
        ]


class Answer(Job):
    """A question answered by a registered checkpoint with passages retrieved from a datastore in
    its context (or demonstrations chosen from it), and what the answer owes each passage: the
    contributions of a sparse linear surrogate fitted on ablations of the context, verbatim
    spans, and each source's share."""

    class Mode(models.TextChoices):
        PASSAGES = "passages"              # the top passages, as grounding
        DEMONSTRATIONS = "demonstrations"  # chosen by similarity and diversity, as examples

    datastore = models.ForeignKey(Datastore, on_delete=models.PROTECT, related_name="answers")
    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="answers")
    question = models.TextField()
    mode = models.CharField(max_length=20, choices=Mode.choices, default=Mode.PASSAGES)
    k = models.PositiveSmallIntegerField(default=4)
    ablations = models.PositiveSmallIntegerField(default=32)
    params = models.JSONField(default=dict)  # DecodeParams
    # [{chunk, document, sha256, text (as the model read it), truncated, sources, score,
    #   contribution, leave_one_out}], in the order of the prompt
    passages = models.JSONField(default=list, blank=True)
    prompt = models.TextField(blank=True)
    text = models.TextField(blank=True)
    # {intercept, lds, heldout, ablations, alpha, full, empty}: how the contributions were fitted
    attribution = models.JSONField(default=dict, blank=True)
    spans = models.JSONField(default=list, blank=True)  # VerbatimSpan, as dicts
    filtered = models.JSONField(default=dict, blank=True)
    watermark = models.JSONField(default=dict, blank=True)
    note = models.CharField(max_length=500, blank=True, default="")
    # The answer as a model output, so that training-data attribution runs on it as on any other
    output = models.OneToOneField(ModelOutput, null=True, blank=True, on_delete=models.PROTECT,
                                  related_name="answer")

    class Meta(Job.Meta):
        indexes = [models.Index(name="answer_finished", fields=["finished_at"])]


class AnswerShare(models.Model):
    """One source's share of one answer (shares of an answer sum to 1, or it has none): the
    unit a licensing scheme pays on, exported per period."""

    answer = models.ForeignKey(Answer, on_delete=models.CASCADE, related_name="shares")
    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="+")
    share = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["answer", "source"], name="answer_share_once"),
            models.CheckConstraint(condition=models.Q(share__gt=0) & models.Q(share__lte=1),
                                   name="answer_share_in_unit"),
        ]
