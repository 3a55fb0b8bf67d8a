"""Appending to the governance ledger: every service that changes governance state appends one
entry here, inside its own transaction, so the entry exists exactly when the change does. The
entry format (header, hashes, person commitments) is defined here and nowhere else; proofs,
receipts and audits (`provenance.ledger.proofs`) build on it."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q
from django.utils import timezone

from provenance.engine.canonical import canonical_hash, canonical_json
from provenance.engine.merkle import leaf_hash, node_hash
from provenance.models import LedgerEntry, LedgerNode, PersonCommitment, User

GENESIS = "0" * 64
# Arbitrary constant naming the ledger's advisory lock: appends are serialised so the chain has no
# forks; the lock is released at COMMIT/ROLLBACK of the surrounding transaction.
_LEDGER_LOCK = 0x7472_6C65_6467  # "trledg"


def entry_hash(prev_hash: str, header: dict[str, Any]) -> str:
    """sha256(prev_hash bytes || canonical JSON of the entry header)."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + canonical_json(header)).hexdigest()


def entry_header(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "created_at": entry.created_at.isoformat(),
        "actor": entry.actor_label,
        "event": entry.event,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "payload_hash": entry.payload_hash,
    }


def person_reference(label: str) -> str:
    """The ledger's name for a person or a piece of personal data: a salted commitment, made
    once per label. Erasing the person deletes the salt; the ledger keeps an unlinkable hash."""
    found = PersonCommitment.objects.filter(label=label).values_list("reference",
                                                                     flat=True).first()
    if found:
        return found
    salt = secrets.token_hex(32)
    reference = "person:" + hashlib.sha256(bytes.fromhex(salt) + label.encode()).hexdigest()
    commitment, _ = PersonCommitment.objects.get_or_create(
        label=label, defaults={"salt": salt, "reference": reference})
    return commitment.reference


def _actor_label(actor: User | None) -> str:
    if actor is None:
        return "system"
    return person_reference(f"user:{actor.pk}:{actor.username}")


@transaction.atomic
def ledger_forget_person(*, user: User, actor: User | None) -> int:
    """Erase a person from the ledger: their commitments lose their salt and label. Returns how
    many were erased; the entries themselves are untouched and still verify."""
    erased, _ = PersonCommitment.objects.filter(label__startswith=f"user:{user.pk}:").delete()
    ledger_append(actor=actor, event="ledger.person_erased", payload={"commitments": erased})
    return erased


@transaction.atomic
def ledger_append(*, actor: User | None, event: str, subject: models.Model | None = None,
                  payload: dict[str, Any] | None = None) -> LedgerEntry:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LEDGER_LOCK])
    last = LedgerEntry.objects.order_by("-seq").values("seq", "entry_hash").first()
    payload = payload or {}
    entry = LedgerEntry(
        seq=(last["seq"] + 1) if last else 1,
        created_at=timezone.now(),
        actor=actor,
        actor_label=_actor_label(actor),
        event=event,
        subject_type=subject._meta.label_lower if subject is not None else "",
        subject_id=str(subject.pk) if subject is not None else "",
        payload=payload,
        payload_hash=canonical_hash(payload),
        prev_hash=last["entry_hash"] if last else GENESIS,
    )
    entry.entry_hash = entry_hash(entry.prev_hash, entry_header(entry))
    entry.save()
    ledger_nodes_add(entry.seq - 1, entry.entry_hash)
    return entry


def ledger_nodes_add(index: int, entry_hash_hex: str) -> list[LedgerNode]:
    """Keep the complete subtrees leaf `index` completes: its leaf hash, and each subtree it
    closes (while its position at a level is odd, it joins its left sibling, kept already).
    Called with the ledger's lock held, in the append's transaction."""
    current = leaf_hash(bytes.fromhex(entry_hash_hex))
    rows = [LedgerNode(level=0, index=index, hash=current.hex())]
    closes = (~index & (index + 1)).bit_length() - 1  # trailing 1-bits of the index
    if closes:
        wanted = Q()
        for level in range(closes):
            wanted |= Q(level=level, index=(index >> level) - 1)
        left = {(lv, i): h for lv, i, h in LedgerNode.objects.filter(wanted)
                .values_list("level", "index", "hash")}
        for level in range(closes):
            current = node_hash(bytes.fromhex(left[(level, (index >> level) - 1)]), current)
            rows.append(LedgerNode(level=level + 1, index=index >> (level + 1),
                                   hash=current.hex()))
    return LedgerNode.objects.bulk_create(rows)


def entry_export(entry: LedgerEntry) -> dict[str, Any]:
    """An entry as it leaves the database: in receipts and exports, and as verifiers read it."""
    return {"header": entry_header(entry), "payload": entry.payload,
            "prev_hash": entry.prev_hash, "entry_hash": entry.entry_hash}
