"""Where text comes from: sources with their owner, licence, opt-out signals and canaries, and
the terms curators gave licence references."""

from __future__ import annotations

from django.db import models

from core.models import TimeStamped
from provenance.models.identity import RightsHolder


class UseClass(models.TextChoices):
    COMMERCIAL = "commercial"
    NON_COMMERCIAL = "non-commercial"
    ACADEMIC_ONLY = "academic-only"
    UNKNOWN = "unknown"


class DataSource(TimeStamped):
    class Status(models.TextChoices):
        ACTIVE = "active"
        SUSPENDED = "suspended"
        RETIRED = "retired"

    class Acquisition(models.TextChoices):
        """How the data was obtained: the source types of the EU AI Act training-content
        summary template (Art. 53(1)(d))."""

        PUBLIC_DATASET = "public_dataset", "publicly available dataset"
        LICENSED = "licensed", "licensed from a rights-holder"
        CRAWLED = "crawled", "crawled or scraped from online sources"
        USER_DATA = "user_data", "data from users of the provider's services"
        SYNTHETIC = "synthetic", "synthetic data"
        OTHER = "other", "other"

    owner = models.ForeignKey(RightsHolder, on_delete=models.PROTECT, related_name="sources")
    name = models.CharField(max_length=200)
    uri = models.CharField(max_length=2000, blank=True)
    description = models.TextField(blank=True)
    license_expression = models.CharField(max_length=500)  # SPDX, normalised
    # The licence as the owner wrote it, when Trailmark read it as another SPDX expression
    # (a Debian short name such as "GPL-2+"); blank when it was SPDX already.
    license_as_written = models.CharField(max_length=500, blank=True, default="")
    use_class = models.CharField(max_length=20, choices=UseClass.choices, default=UseClass.UNKNOWN)
    requires_attribution = models.BooleanField(default=False)
    share_alike = models.BooleanField(default=False)
    terms_url = models.URLField(max_length=2000, blank=True)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ACTIVE)
    acquisition = models.CharField(max_length=20, choices=Acquisition.choices,
                                   default=Acquisition.OTHER)
    document_count = models.PositiveBigIntegerField(default=0)
    byte_count = models.PositiveBigIntegerField(default=0)
    # WASA-style watermark: 10 invisible characters, unique; and the key of its position rule.
    watermark = models.CharField(max_length=10, unique=True, null=True, blank=True)
    watermark_key = models.CharField(max_length=64, blank=True)
    # Synthetic text: the registered checkpoint that wrote it, or an outside model by name with
    # the terms its outputs come under (what licences and takedowns follow up the lineage).
    generator = models.ForeignKey("ModelCheckpoint", null=True, blank=True,
                                  on_delete=models.PROTECT, related_name="generated_sources")
    generator_name = models.CharField(max_length=200, blank=True)
    generator_terms_url = models.URLField(max_length=2000, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="source_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class LicenseRefTerms(models.Model):
    """The terms a curator gave a `LicenseRef-...` key (SPDX's own-licence escape hatch), which
    Trailmark cannot read: every source whose licence names the key takes them. In the ledger,
    with who set them and why."""

    key = models.CharField(max_length=200, unique=True)
    use_class = models.CharField(max_length=20, choices=UseClass.choices)
    requires_attribution = models.BooleanField(default=False)
    share_alike = models.BooleanField(default=False)
    reason = models.TextField()
    set_by = models.ForeignKey("User", null=True, on_delete=models.SET_NULL, related_name="+")
    set_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return f"{self.key}: {self.use_class}"


class LicenseSignal(models.Model):
    """One place a licence for a source was seen. History: rows are never changed."""

    class Origin(models.TextChoices):
        DECLARED = "declared"        # what the owner states
        TERMS = "terms"              # the terms of use of the site it came from
        COLLECTION = "collection"    # the licence of the collection it was taken from
        OTHER = "other"

    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="license_signals")
    origin = models.CharField(max_length=20, choices=Origin.choices)
    expression = models.CharField(max_length=500)
    url = models.URLField(max_length=2000, blank=True)
    observed_at = models.DateTimeField()
    active = models.BooleanField(default=True)  # superseded declared licences stay, inactive
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["observed_at", "id"]


class OptOutSignal(models.Model):
    """A usage signal observed for a source (robots.txt, headers, TDMRep, RSL, ai.txt, a
    registry), with what it says about the two uses: training (`train`) and input to a model at
    inference (`ai_input`). Read once, when recorded (provenance/engine/preferences), and kept
    with the raw value so a later reader can be checked against it. Append-only (a database
    trigger)."""

    class Kind(models.TextChoices):
        ROBOTS_TXT = "robots_txt"
        AI_TXT = "ai_txt"
        TDMREP = "tdmrep"
        HTTP_HEADER = "http_header"
        RSL = "rsl"
        REGISTRY = "registry"

    class Pref(models.TextChoices):
        YES = "yes"
        NO = "no"
        UNKNOWN = "unknown"

    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="opt_out_signals")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    value = models.TextField()          # what was observed, verbatim
    url = models.CharField(max_length=2000, blank=True, default="")  # where it was observed
    train = models.CharField(max_length=10, choices=Pref.choices, default=Pref.UNKNOWN)
    ai_input = models.CharField(max_length=10, choices=Pref.choices, default=Pref.UNKNOWN)
    # engine.preferences.Reading.as_dict(): the terms that decided, and what no reader knew.
    reading = models.JSONField(default=dict)
    opted_out = models.BooleanField()   # train == no (kept for the readers before verdicts)
    observed_at = models.DateTimeField()
    recorded_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["observed_at", "id"]
        indexes = [models.Index(fields=["source", "kind", "observed_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(opted_out=True, train="no")
                | (models.Q(opted_out=False) & ~models.Q(train="no")),
                name="opt_out_signal_opted_out_is_train_no"),
        ]


class SourceCanary(models.Model):
    """A source's opt-in canary: its distribution and the secret that draws its sequence."""

    source = models.OneToOneField(DataSource, on_delete=models.PROTECT, related_name="canary")
    spec = models.JSONField()  # CanarySpec: kind, length, copies
    secret = models.CharField(max_length=64)  # never shown through the API
    created_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
