"""What was ingested: documents (hashed, fingerprinted, embedded), where each was seen, and
the ingest jobs."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from pgvector.django import HnswIndex, VectorField

from core.models import Job
from provenance.models.sources import DataSource

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2


class Document(models.Model):
    """One distinct text as submitted; the same text in two sources is one row, two occurrences.

    `sha256` is the hash of the stored text's UTF-8 bytes, as submitted (NUL characters dropped);
    `normalised_sha256` that of its normalised form (NFC, whitespace folded), which finds the same
    words in another layout: exact matching of takedowns and ingest's takedown block use it."""

    sha256 = models.CharField(max_length=64, unique=True)
    normalised_sha256 = models.CharField(max_length=64, db_index=True)
    text = models.TextField()  # emptied when purged after a takedown; the hashes stay
    byte_count = models.PositiveIntegerField()
    token_estimate = models.PositiveIntegerField()
    # BCP 47, as the record that first brought the text declared it ("language" or "lang"); ""
    # when unknown.
    language = models.CharField(max_length=35, blank=True, default="")
    minhash = models.BinaryField()  # 128 x uint32 little-endian (datasketch affine32)
    embedding = VectorField(dimensions=EMBEDDING_DIM, null=True, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)
    removal_reason = models.TextField(blank=True)
    text_purged = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    sources = models.ManyToManyField(DataSource, through="Occurrence", related_name="documents")

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(name="document_sha256_hex",
                                   condition=Q(sha256__regex=r"^[0-9a-f]{64}$")),
            models.CheckConstraint(name="document_normalised_sha256_hex",
                                   condition=Q(normalised_sha256__regex=r"^[0-9a-f]{64}$")),
            models.CheckConstraint(name="document_purged_only_when_removed",
                                   condition=Q(text_purged=False) | Q(removed_at__isnull=False)),
        ]
        # Nearest neighbours by cosine (embeddings are unit length) for "similar content".
        indexes = [HnswIndex(name="document_embedding_hnsw", fields=["embedding"], m=16,
                             ef_construction=64, opclasses=["vector_cosine_ops"]),
                   # The embedding backlog, found without a scan of every document.
                   models.Index(name="document_embedding_pending", fields=["id"],
                                condition=Q(embedding__isnull=True, text_purged=False))]

    @property
    def is_removed(self) -> bool:
        return self.removed_at is not None


class Occurrence(models.Model):
    """A document seen in a source: where, and by which ingest."""

    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="occurrences")
    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="occurrences")
    external_id = models.CharField(max_length=500, blank=True)
    url = models.CharField(max_length=2000, blank=True)
    ingest_job = models.ForeignKey("IngestJob", null=True, on_delete=models.SET_NULL,
                                   related_name="+")
    file = models.CharField(max_length=500, blank=True)
    line = models.PositiveBigIntegerField(null=True)
    # The record's fields other than its text, as it came (author, title, category, id, url...).
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "document"],
                                    name="occurrence_once_per_source")
        ]
        indexes = [models.Index(fields=["document"])]


class IngestJob(Job):
    MAX_REPORTED_ERRORS = 1000

    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="ingest_jobs")
    path = models.CharField(max_length=2000)
    original_name = models.CharField(max_length=500, blank=True)
    format = models.CharField(max_length=20)
    text_field = models.CharField(max_length=100, default="text")
    rows_read = models.PositiveBigIntegerField(default=0)
    rows_added = models.PositiveBigIntegerField(default=0)      # new content
    rows_linked = models.PositiveBigIntegerField(default=0)     # known content, new to this source
    rows_duplicate = models.PositiveBigIntegerField(default=0)  # already in this source
    rows_blocked = models.PositiveBigIntegerField(default=0)    # content removed by a takedown
    rows_bad = models.PositiveBigIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # first MAX_REPORTED_ERRORS bad rows
    # The report of what was kept besides the text: {field: rows that had it}, and the rows whose
    # metadata was over the size limit (their text kept, their metadata not).
    fields_kept = models.JSONField(default=dict, blank=True)
    rows_metadata_dropped = models.PositiveBigIntegerField(default=0)

    class Meta(Job.Meta):
        pass


class IngestShard(Job):
    """One part of a large input, ingested by its own task so that several workers read one
    file at once (`provenance.services.ingest_shards`). Its job row keeps the whole ingest's
    counters, advanced in the transaction of each batch; the shard keeps where it is (rows read,
    progress in the job's unit) so that a rerun resumes it. `start`/`end`/`before` are the
    reader's `Part`."""

    job = models.ForeignKey(IngestJob, on_delete=models.CASCADE, related_name="shards")
    number = models.PositiveIntegerField()
    start = models.PositiveBigIntegerField()
    end = models.PositiveBigIntegerField()
    before = models.PositiveBigIntegerField(default=0)
    rows_read = models.PositiveBigIntegerField(default=0)
    sent_at = models.DateTimeField(null=True, blank=True)  # its task last sent; None: to send

    class Meta:
        ordering = ["job", "number"]
        constraints = [models.UniqueConstraint(fields=["job", "number"],
                                               name="ingest_shard_number_unique")]


class EmbeddingBatch(models.Model):
    """One batch of documents embedded in the background: the jobs board's rate and an account
    of which backend embedded how many documents."""

    finished_at = models.DateTimeField(db_index=True)
    documents = models.PositiveIntegerField()
    seconds = models.FloatField()
    backend = models.CharField(max_length=16)  # "int8" or "fp32"

    class Meta:
        ordering = ["-finished_at"]
