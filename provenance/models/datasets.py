"""Datasets as chains of immutable versions, their members and exclusions, curation jobs."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import Job, TimeStamped
from provenance.models.documents import Document
from provenance.models.sources import DataSource


class Dataset(TimeStamped):
    slug = models.SlugField(max_length=100, unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug


class DatasetVersion(models.Model):
    """Immutable once published: the database refuses UPDATE and DELETE on it and its members."""

    class State(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children")
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    recipe = models.JSONField(default=dict)
    manifest_root = models.CharField(max_length=64)
    document_count = models.PositiveBigIntegerField(default=0)
    token_estimate = models.PositiveBigIntegerField(default=0)
    byte_count = models.PositiveBigIntegerField(default=0)
    counts_by_source = models.JSONField(default=dict)         # {source_id: documents}
    counts_by_license_class = models.JSONField(default=dict)  # {use class: documents}
    exclusions_by_reason = models.JSONField(default=dict)     # {reason: documents}
    notes = models.TextField(blank=True)
    created_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")

    class Meta:
        ordering = ["dataset", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="version_number_unique"),
            models.CheckConstraint(
                name="version_published_has_time",
                condition=Q(state="draft") | Q(published_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.slug}@v{self.number}"

    @property
    def is_published(self) -> bool:
        return self.state == self.State.PUBLISHED


class VersionMember(models.Model):
    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="members")
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="memberships")
    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "document"], name="member_once_per_version")
        ]
        indexes = [models.Index(fields=["document"])]


class VersionExclusion(models.Model):
    """A candidate the recipe left out, and why: the curated version's own explanation."""

    class Reason(models.TextChoices):
        LICENSE = "license"
        OPT_OUT = "opt_out"
        TOMBSTONED = "tombstoned"
        NEAR_DUPLICATE = "near_duplicate"
        SOURCE_INACTIVE = "source_inactive"
        HELD_OUT = "held_out"  # set aside, never trained on: the reference for membership tests
        # A recipe's research stages (services/stages.py)
        LANGUAGE = "language"
        QUALITY = "quality"
        SEMANTIC_DUPLICATE = "semantic_duplicate"
        NOT_SELECTED = "not_selected"

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="exclusions")
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="+")
    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    detail = models.CharField(max_length=500, blank=True)

    class Meta:
        indexes = [models.Index(fields=["version", "reason"])]


class CurationJob(Job):
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="curation_jobs")
    recipe = models.JSONField()
    version = models.OneToOneField(DatasetVersion, null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="curation_job")

    class Meta(Job.Meta):
        pass
