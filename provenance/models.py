"""Provenance: who owns what, under which licence, and which datasets were built from it."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from pgvector.django import HnswIndex, VectorField

from core.permissions import Role

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2


class TimeStamped(models.Model):
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class RightsHolder(TimeStamped):
    class Kind(models.TextChoices):
        ORGANISATION = "organisation"
        PERSON = "person"

    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.ORGANISATION)
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    url = models.URLField(blank=True)
    verified = models.BooleanField(default=False)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    PRIVATE_INDIVIDUAL = "a private individual"

    @property
    def public_name(self) -> str:
        """How cards, public pages and roles without a need for it name this holder: a person's
        name is personal data (the ledger keeps it only as an erasable commitment too)."""
        return self.PRIVATE_INDIVIDUAL if self.kind == self.Kind.PERSON else self.name


class User(AbstractUser):
    Role = Role  # core.permissions.Role: the roles and what each may do live there

    role = models.CharField(max_length=20, choices=Role.choices, default=Role.RESEARCHER)
    rights_holder = models.ForeignKey(
        RightsHolder, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )

    class Meta:
        constraints = [
            models.CheckConstraint(
                name="user_rights_holder_iff_role",
                condition=(Q(role="rights_holder", rights_holder__isnull=False)
                           | (~Q(role="rights_holder") & Q(rights_holder__isnull=True))),
            )
        ]


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
    """An opt-out (or opt-in) signal observed for a source. Append-only (a database trigger)."""

    class Kind(models.TextChoices):
        ROBOTS_TXT = "robots_txt"
        AI_TXT = "ai_txt"
        TDMREP = "tdmrep"
        HTTP_HEADER = "http_header"
        REGISTRY = "registry"

    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="opt_out_signals")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    value = models.TextField()          # what was observed, verbatim
    opted_out = models.BooleanField()   # its reading: does it reserve the rights against TDM/AI?
    observed_at = models.DateTimeField()
    recorded_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["observed_at", "id"]
        indexes = [models.Index(fields=["source", "kind", "observed_at"])]


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


class Job(models.Model):
    """State and live progress of a background job; the task reads and writes only this row."""

    class State(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"

    state = models.CharField(max_length=20, choices=State.choices, default=State.QUEUED)
    stage = models.CharField(max_length=50, blank=True)
    position = models.PositiveBigIntegerField(default=0)
    total = models.PositiveBigIntegerField(default=0)
    unit = models.CharField(max_length=20, blank=True)
    error = models.TextField(blank=True)
    # AUTH_USER_MODEL, not "User": the abstract job is also inherited by other apps' models.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
        ordering = ["-id"]

    @property
    def percent(self) -> float:
        if self.state == self.State.SUCCEEDED:
            return 100.0
        return round(100.0 * self.position / self.total, 1) if self.total else 0.0


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


class SourceCanary(models.Model):
    """A source's opt-in canary: its distribution and the secret that draws its sequence."""

    source = models.OneToOneField(DataSource, on_delete=models.PROTECT, related_name="canary")
    spec = models.JSONField()  # CanarySpec: kind, length, copies
    secret = models.CharField(max_length=64)  # never shown through the API
    created_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)


class TrainingRun(Job):
    """Training a tokenizer and a causal LM on a dataset version, on the gpu queue."""

    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT,
                                related_name="training_runs")
    config = models.JSONField(default=dict)  # TrainConfig, defaults filled in
    # How the config was chosen and what it should cost: the preset, why packing is on or off,
    # and the expected time on 2 CPU cores (shown before it starts).
    plan = models.JSONField(default=dict, blank=True)
    # What the export wove into the training text: {"canaries": {source id: [document ids]}}
    marks = models.JSONField(default=dict)
    tokens = models.PositiveBigIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True)
    tokens_per_s = models.FloatField(null=True, blank=True)
    device = models.CharField(max_length=20, blank=True)
    cancel_requested = models.BooleanField(default=False)

    class Meta(Job.Meta):
        pass


class ModelCheckpoint(models.Model):
    """A model and what it was trained on: the lineage attribution and takedowns follow."""

    class Kind(models.TextChoices):
        TRAINED = "trained"    # by a Trailmark TrainingRun
        IMPORTED = "imported"  # a local Hugging Face directory registered by staff
        UNLEARNED = "unlearned"  # a takedown's unlearning run, from its parent checkpoint

    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    version = models.ForeignKey(DatasetVersion, on_delete=models.PROTECT,
                                related_name="checkpoints")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="children")
    run = models.OneToOneField(TrainingRun, null=True, blank=True, on_delete=models.PROTECT,
                               related_name="checkpoint")
    path = models.CharField(max_length=2000)
    sha256 = models.CharField(max_length=64)
    config = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)  # heldout_loss, train_loss, steps, tokens, ...
    created_by = models.ForeignKey("User", null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(name="checkpoint_trained_has_run",
                                   condition=~Q(kind="trained") | Q(run__isnull=False)),
        ]

    def __str__(self) -> str:
        return self.name


class CanaryTestRun(Job):
    """Membership tests of one checkpoint against the canaries of several sources at once."""

    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="canary_test_runs")
    sources = models.JSONField(default=list)     # source ids tested together (Bonferroni m)
    null_size = models.PositiveIntegerField(default=1000)
    alpha = models.FloatField(default=0.01)
    power = models.FloatField(null=True, blank=True)        # trained-on sources detected
    calibration = models.FloatField(null=True, blank=True)  # never-inserted probes at p < alpha

    class Meta(Job.Meta):
        pass


class CanaryTest(models.Model):
    """One source's result in a test run, with its evidence."""

    run = models.ForeignKey(CanaryTestRun, on_delete=models.CASCADE, related_name="results")
    checkpoint = models.ForeignKey(ModelCheckpoint, on_delete=models.PROTECT,
                                   related_name="canary_tests")
    source = models.ForeignKey(DataSource, on_delete=models.PROTECT, related_name="canary_tests")
    inserted = models.BooleanField(null=True)  # was it in this checkpoint's training export?
    observed_loss = models.FloatField()
    p_value = models.FloatField()
    p_adjusted = models.FloatField()  # Bonferroni over the run's sources
    z = models.FloatField()
    detected = models.BooleanField()  # p_adjusted < alpha
    evidence = models.JSONField(default=dict)  # null size, mean, sd, quantiles, copies

    class Meta:
        ordering = ["run", "source"]
        constraints = [models.UniqueConstraint(fields=["run", "source"],
                                               name="canary_test_once_per_source")]


class LedgerEntry(models.Model):
    """Append-only, hash-chained record of governance events. UPDATE/DELETE refused by a trigger."""

    seq = models.PositiveBigIntegerField(unique=True)
    created_at = models.DateTimeField()
    actor = models.ForeignKey("User", null=True, on_delete=models.DO_NOTHING, related_name="+",
                              db_constraint=False)
    actor_label = models.CharField(max_length=200)
    event = models.CharField(max_length=100)
    subject_type = models.CharField(max_length=100)
    subject_id = models.CharField(max_length=100)
    payload = models.JSONField(default=dict)
    payload_hash = models.CharField(max_length=64)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        verbose_name_plural = "ledger entries"
        indexes = [models.Index(fields=["subject_type", "subject_id"])]


class LedgerCheckpoint(models.Model):
    """A signed tree head of the ledger: its size, Merkle root (RFC 9162) and the signed note in
    the transparency-dev checkpoint format. One per size; never changed."""

    size = models.PositiveBigIntegerField(unique=True)
    root = models.CharField(max_length=64)
    note = models.TextField()
    key_name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-size"]


class PersonCommitment(models.Model):
    """The only link from the ledger to a person. Ledger entries name people (actors, and any
    personal data a payload needs) by `reference`, a salted SHA-256 commitment; deleting this row
    erases the person from the ledger without touching a hashed row, so the tree still
    verifies."""

    label = models.CharField(max_length=500, unique=True)      # e.g. "user:5:alice"
    salt = models.CharField(max_length=64)
    reference = models.CharField(max_length=80, unique=True)   # "person:<sha256 hex>"
    created_at = models.DateTimeField(auto_now_add=True)
