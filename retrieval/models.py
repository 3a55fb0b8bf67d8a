"""Datastores: the chunks of a published dataset version, embedded and indexed for retrieval."""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVector, SearchVectorField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from core.models import Job
from provenance.models import DatasetVersion, Document
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
