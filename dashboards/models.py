"""What the dashboards keep: the rendered, publishable documentation of dataset versions."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from provenance.models import DatasetVersion


class VersionCard(models.Model):
    """A dataset version's documentation: the researcher's words (editable while a draft) and
    the three documents rendered from them and the data (a Hugging Face dataset card, Croissant
    1.1 JSON-LD, SPDX 3.0 JSON-LD). Rendered when the version is published and on each edit;
    publishing the card freezes it and puts its digests in the ledger. A published card is
    corrected by a new revision (rendered again from the current data, its words carried over),
    published in turn; every revision stays, and the ledger has each one's digests."""

    class State(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"

    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT, related_name="cards")
    revision = models.PositiveIntegerField(default=1)
    # Why this revision corrects the one before it ("" for the first).
    reason = models.TextField(blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.DRAFT)
    words = models.JSONField(default=dict)      # dashboards.engine.cards.facts.CardWords
    hf_card = models.TextField(blank=True)
    # As served, byte for byte (jsonb would reorder the keys, and the digests are of the bytes).
    croissant = models.TextField(blank=True)
    spdx = models.TextField(blank=True)
    digests = models.JSONField(default=dict)    # {format: sha256 of the served bytes}
    # The diff to the parent version ({"added": n, "removed": n}), counted once at rendering
    # for the public pages.
    diff = models.JSONField(default=dict)
    rendered_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey("provenance.User", null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["version", "-revision"]
        constraints = [
            models.UniqueConstraint(fields=["version", "revision"], name="card_revision_unique"),
            models.CheckConstraint(
                name="card_published_is_rendered",
                condition=Q(state="draft") | (Q(published_at__isnull=False)
                                              & Q(rendered_at__isnull=False))),
        ]

    def __str__(self) -> str:
        return f"card of {self.version}, revision {self.revision}"


class VersionComposition(models.Model):
    """Figures of a published version counted once over its members, when it is published, so
    no page counts documents per request (the version row itself is immutable)."""

    version = models.OneToOneField(DatasetVersion, on_delete=models.PROTECT,
                                   related_name="composition")
    by_source = models.JSONField(default=dict)   # {source id: {"documents": n, "tokens": n}}
    by_language = models.JSONField(default=dict)  # {primary language subtag | "": documents}
    exclusions_by_source = models.JSONField(default=dict)  # {source id: documents left out}
    computed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"composition of {self.version}"
