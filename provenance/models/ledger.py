"""The governance ledger's rows: entries, the complete subtrees of their Merkle tree, signed
checkpoints, person commitments."""

from __future__ import annotations

from django.db import models


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


class LedgerNode(models.Model):
    """A complete subtree of the ledger's Merkle tree (RFC 9162): the hash over the leaves
    [index * 2**level, (index + 1) * 2**level), level 0 being the entries' leaf hashes. Written
    by the append that completes it and never changed (a trigger refuses it), so that proofs,
    receipts and checkpoints read O(log n) of these instead of every entry."""

    level = models.PositiveSmallIntegerField()
    index = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"],
                                               name="ledger_node_position")]


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
