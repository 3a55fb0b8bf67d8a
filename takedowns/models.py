"""Takedown requests: who asks, on which legal basis, for which works, and where each stands."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from core.models import Job


class TakedownRequest(models.Model):
    class State(models.TextChoices):
        RECEIVED = "received"
        ACKNOWLEDGED = "acknowledged"
        VALIDATING = "validating"
        NEEDS_INFO = "needs_info"
        REJECTED = "rejected"
        ACCEPTED = "accepted"
        SCOPING = "scoping"
        DATA_REMEDIATED = "data_remediated"
        MODEL_REMEDIATION = "model_remediation"
        VERIFYING = "verifying"
        DECIDED = "decided"
        CLOSED = "closed"
        COUNTER_NOTICE = "counter_notice"
        RESTORE_WINDOW = "restore_window"
        RESTORED = "restored"
        LITIGATION_HOLD = "litigation_hold"
        WITHDRAWN = "withdrawn"
        DUPLICATE = "duplicate"

    class Basis(models.TextChoices):
        DMCA = "dmca_512", "DMCA §512 notice"
        DSA = "dsa_16", "EU DSA Art. 16 notice"
        CDSM = "cdsm_4", "EU CDSM Art. 4 text-and-data-mining opt-out"
        GDPR = "gdpr_17", "GDPR Art. 17 erasure"
        LICENCE = "licence_revocation", "Licence revocation"
        VOLUNTARY = "voluntary", "Voluntary request"

    class Remedy(models.TextChoices):
        EXCLUDE = "exclude_future", "Exclude from future dataset versions"
        MODELS = "remove_from_models", "Remove from trained models"
        BOTH = "both", "Both"

    class Authority(models.TextChoices):
        OWNER = "owner"
        AGENT = "agent"
        DATA_SUBJECT = "data_subject"
        REPRESENTATIVE = "representative"

    # Where a request ends: no state follows, no deadline runs.
    FINAL_STATES = frozenset({State.REJECTED, State.CLOSED, State.RESTORED, State.WITHDRAWN,
                              State.DUPLICATE})

    reference = models.CharField(max_length=20, unique=True, editable=False)
    filed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                 on_delete=models.SET_NULL, related_name="takedowns_filed")
    rights_holder = models.ForeignKey("provenance.RightsHolder", null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="takedowns")
    legal_basis = models.CharField(max_length=30, choices=Basis.choices)
    remedy = models.CharField(max_length=30, choices=Remedy.choices, default=Remedy.BOTH)
    # The claimant and their authority
    claimant_name = models.CharField(max_length=200, blank=True)
    claimant_email = models.EmailField(blank=True)
    organisation = models.CharField(max_length=200, blank=True)
    postal_address = models.TextField(blank=True)
    telephone = models.CharField(max_length=50, blank=True)
    authority = models.CharField(max_length=20, choices=Authority.choices, blank=True)
    proof = models.TextField(blank=True)  # of an agent's or representative's authority
    # What some regimes ask for
    explanation = models.TextField(blank=True)     # DSA: why the content is illegal
    reservation = models.TextField(blank=True)     # CDSM: where and since when TDM was reserved
    personal_data = models.TextField(blank=True)   # GDPR: which personal data
    ground = models.CharField(max_length=1, blank=True)  # GDPR Art. 17(1)(a)-(f)
    licence = models.TextField(blank=True)         # licence revocation: which, under what terms
    statements = models.JSONField(default=dict, blank=True)  # {"good_faith": true, ...}
    signature = models.CharField(max_length=200, blank=True)  # the signer's typed name
    signed_at = models.DateTimeField(null=True, blank=True)
    # Where it stands
    state = models.CharField(max_length=30, choices=State.choices, default=State.RECEIVED)
    state_changed_at = models.DateTimeField()
    missing = models.JSONField(default=list, blank=True)  # [{"element", "message"}]
    deadlines = models.JSONField(default=dict, blank=True)  # {"acknowledge": "2026-12-03"}
    decision_reasons = models.TextField(blank=True)
    duplicate_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="duplicates")
    # Sources the claimant names whole (every document they hold is in scope)
    claimed_sources = models.ManyToManyField("provenance.DataSource", blank=True,
                                             related_name="takedowns")
    # What scoping found beyond the documents: affected dataset versions and checkpoints
    scope = models.JSONField(default=dict, blank=True)
    overdue_since = models.DateField(null=True, blank=True)  # the missed deadline's date
    counter_notice = models.JSONField(default=dict, blank=True)  # DMCA §512(g), as received
    # The certificate: each affected checkpoint's original, retrain reference and remediated
    # models on every verification metric, the separability check and the verdict
    verification = models.JSONField(default=dict, blank=True)
    # The decision notice sent to the claimant (its hash is in the decision's ledger entry)
    decision = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField()
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [models.Index(fields=["state", "received_at"])]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(state="duplicate") | models.Q(duplicate_of__isnull=False),
                name="takedown_duplicate_names_its_original"),
        ]

    def __str__(self) -> str:
        return self.reference


class TakedownWork(models.Model):
    """One work a request names: a title and whatever identifies it."""

    request = models.ForeignKey(TakedownRequest, on_delete=models.CASCADE, related_name="works")
    title = models.CharField(max_length=500)
    identifiers = models.JSONField(default=list, blank=True)   # ISBN, DOI, ISRC, internal ids ...
    urls = models.JSONField(default=list, blank=True)
    sample_text = models.TextField(blank=True)
    sample_sha256 = models.CharField(max_length=64, blank=True)  # of the normalised sample

    class Meta:
        ordering = ["id"]


class TakedownEvent(models.Model):
    """Every state change, who made it and why; mirrored in the ledger."""

    request = models.ForeignKey(TakedownRequest, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=30, blank=True)
    to_state = models.CharField(max_length=30)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                              on_delete=models.SET_NULL, related_name="+")
    note = models.TextField(blank=True)
    at = models.DateTimeField()
    ledger_entry = models.ForeignKey("provenance.LedgerEntry", null=True, blank=True,
                                     on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["at", "id"]


class TakedownMatch(models.Model):
    """A document scoping found for a request, by one method, with its evidence; a curator
    confirms or dismisses it before remediation."""

    class Method(models.TextChoices):
        EXACT = "exact", "Same normalised text (sha256)"
        NEAR_DUPLICATE = "near_duplicate", "MinHash near-duplicate"
        EMBEDDING = "embedding", "Embedding neighbour"
        SOURCE = "source", "In a claimed source"
        SPAN = "verbatim_span", "Verbatim spans (attribution span index)"
        CONTAINMENT = "containment", "The sample's words, in order, inside the document"
        CURATOR = "curator", "Added by a curator"

    request = models.ForeignKey(TakedownRequest, on_delete=models.CASCADE,
                                related_name="matches")
    document = models.ForeignKey("provenance.Document", on_delete=models.PROTECT,
                                 related_name="takedown_matches")
    work = models.ForeignKey(TakedownWork, null=True, blank=True, on_delete=models.CASCADE,
                             related_name="matches")
    method = models.CharField(max_length=20, choices=Method.choices)
    # 1 for exact and source; Jaccard estimate; cosine; share of the sample in verbatim spans
    score = models.FloatField()
    confirmed = models.BooleanField(null=True)  # None: not reviewed yet
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                                    on_delete=models.SET_NULL, related_name="+")
    # Why a curator added the document (method "curator"; reviewed_by says who).
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["-score", "id"]
        constraints = [models.UniqueConstraint(fields=["request", "document", "method"],
                                               name="takedown_match_once_per_method")]


class UnlearningRun(Job):
    """One way of taking the request's documents out of one checkpoint, with live progress
    and, once verified, its certificate."""

    class Method(models.TextChoices):
        RETRAIN = "retrain", "Full retrain on the remediated version"
        GRADDIFF = "graddiff", "Gradient difference (unlearning)"
        NPO = "npo", "Negative preference optimisation (unlearning)"
        SIMNPO = "simnpo", "SimNPO: reference-free, length-normalised NPO (unlearning)"
        OUTPUT_FILTER = "output_filter", "Interim output filter (blocks verbatim spans)"

    request = models.ForeignKey(TakedownRequest, on_delete=models.PROTECT,
                                related_name="unlearning_runs")
    checkpoint = models.ForeignKey("provenance.ModelCheckpoint", on_delete=models.PROTECT,
                                   related_name="unlearning_runs")
    method = models.CharField(max_length=20, choices=Method.choices)
    config = models.JSONField(default=dict, blank=True)
    version = models.ForeignKey("provenance.DatasetVersion", null=True, blank=True,
                                on_delete=models.PROTECT, related_name="+")
    training_run = models.OneToOneField("provenance.TrainingRun", null=True, blank=True,
                                        on_delete=models.PROTECT, related_name="retrain_for")
    forget_documents = models.JSONField(default=list)
    candidates = models.JSONField(default=list, blank=True)  # [{"step", "path"}]
    # the steps the run went on from its saved state after an interruption (a killed worker)
    resumed_at = models.JSONField(default=list, blank=True)
    result = models.ForeignKey("provenance.ModelCheckpoint", null=True, blank=True,
                               on_delete=models.PROTECT, related_name="remediates")
    seconds = models.FloatField(null=True, blank=True)  # compute time of the remediation
    device = models.CharField(max_length=20, blank=True)
    cancel_requested = models.BooleanField(default=False)
    verdict = models.CharField(max_length=20, blank=True)  # pass / fail / inconclusive / interim
    certificate = models.JSONField(default=dict, blank=True)

    class Meta(Job.Meta):
        pass


class OutputFilter(models.Model):
    """Blocks verbatim spans of a request's documents in what a checkpoint generates: an interim
    remedy while the weights still hold the work. Only hashes of word n-grams are kept."""

    request = models.ForeignKey(TakedownRequest, on_delete=models.PROTECT,
                                related_name="output_filters")
    checkpoint = models.ForeignKey("provenance.ModelCheckpoint", on_delete=models.PROTECT,
                                   related_name="output_filters")
    ngram = models.PositiveSmallIntegerField(default=8)
    path = models.CharField(max_length=2000)  # numpy uint64 array of n-gram hashes
    shingles = models.PositiveIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        constraints = [models.UniqueConstraint(fields=["request", "checkpoint"],
                                               name="output_filter_once_per_checkpoint")]
