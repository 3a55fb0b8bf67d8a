"""The ledger as a verifiable log: an RFC 9162 Merkle tree whose leaves are the entries' hashes
(leaf = SHA-256(0x00 || entry_hash), entry_hash = SHA-256(prev_hash || RFC 8785 header)), signed
checkpoints (Ed25519, transparency-dev format), inclusion and consistency proofs.

The signing key is a 32-byte Ed25519 seed: TRAILMARK_LEDGER_KEY (base64) or the file named by
TRAILMARK_LEDGER_KEY_FILE, else one made for this installation in the state folder.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from provenance.conf import setting
from provenance.engine import checkpoint as notes
from provenance.engine.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
)
from provenance.models import LedgerCheckpoint, LedgerEntry


def _seed() -> bytes:
    configured = setting("LEDGER_KEY")
    if configured:
        seed = base64.b64decode(configured)
    else:
        path = Path(setting("LEDGER_KEY_FILE") or Path(settings.STATE_DIR) / "ledger_key")
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
            path.chmod(0o600)
        seed = base64.b64decode(path.read_text().strip())
    if len(seed) != 32:
        raise ValueError("the ledger key must be a base64 Ed25519 seed of 32 bytes")
    return seed


def ledger_verifier_key() -> str:
    """What a verifier needs to check checkpoints: `name+hash+base64 key`."""
    return notes.verifier_key(str(setting("LEDGER_ORIGIN")), notes.public_key(_seed()))


def leaf_hashes(size: int | None = None) -> list[bytes]:
    rows = LedgerEntry.objects.order_by("seq").values_list("entry_hash", flat=True)
    if size is not None:
        rows = rows[:size]
    return [leaf_hash(bytes.fromhex(h)) for h in rows]


def ledger_checkpoint_latest(hashes: list[bytes] | None = None) -> LedgerCheckpoint:
    """The signed checkpoint of the ledger as it is now (signed once per size); `hashes`: the
    leaf hashes when the caller has them already."""
    hashes = leaf_hashes() if hashes is None else hashes
    found = LedgerCheckpoint.objects.filter(size=len(hashes)).first()
    if found is not None:
        return found
    origin = str(setting("LEDGER_ORIGIN"))
    root = root_from_leaf_hashes(hashes)
    note = notes.sign(notes.Checkpoint(origin, len(hashes), root), origin, _seed())
    try:
        with transaction.atomic():
            return LedgerCheckpoint.objects.create(size=len(hashes), root=root.hex(),
                                                   note=note, key_name=origin)
    except IntegrityError:  # signed at the same moment by another request
        return LedgerCheckpoint.objects.get(size=len(hashes))


def _tree_size(value: Any, name: str, largest: int) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: "a whole number"}) from None
    if not 0 <= size <= largest:
        raise ValidationError({name: f"between 0 and the ledger's size ({largest})"})
    return size


def ledger_inclusion(*, seq: Any, tree_size: Any = None,
                     hashes: list[bytes] | None = None) -> dict[str, Any]:
    """The proof that entry `seq` is in the tree of `tree_size` entries (default: all)."""
    hashes = leaf_hashes() if hashes is None else hashes
    size = len(hashes) if tree_size in (None, "") else _tree_size(tree_size, "tree_size",
                                                                   len(hashes))
    index = _tree_size(seq, "seq", size) - 1
    if index < 0:
        raise ValidationError({"seq": f"between 1 and the tree size ({size})"})
    return {"seq": index + 1, "leaf_index": index, "tree_size": size,
            "leaf_hash": hashes[index].hex(),
            "root": root_from_leaf_hashes(hashes[:size]).hex(),
            "path": [h.hex() for h in inclusion_proof(hashes[:size], index)]}


def ledger_consistency(*, first: Any, second: Any = None) -> dict[str, Any]:
    """The proof that the tree of `first` entries is a prefix of the tree of `second`."""
    hashes = leaf_hashes()
    new = len(hashes) if second in (None, "") else _tree_size(second, "second", len(hashes))
    old = _tree_size(first, "first", new)
    return {"first": old, "second": new,
            "first_root": root_from_leaf_hashes(hashes[:old]).hex(),
            "second_root": root_from_leaf_hashes(hashes[:new]).hex(),
            "path": [h.hex() for h in consistency_proof(hashes[:new], old)]}


@dataclass(frozen=True)
class LedgerAudit:
    entries: int
    checkpoints: int
    problems: list[str]
    first_bad_seq: int | None

    @property
    def verified(self) -> bool:
        return not self.problems


def ledger_audit(progress: Any = None) -> LedgerAudit:
    """Everything an auditor checks, where the ledger lives: each entry recomputed in order (as
    the offline verifier does), and each signed checkpoint opened with the verifier key and
    matched against the tree of the entries it covers."""
    from provenance.services.ledger import ledger_problems

    found = list(ledger_problems(progress))
    problems = [problem for _, problem in found]
    hashes, verifier = leaf_hashes(), ledger_verifier_key()
    checkpoints = list(LedgerCheckpoint.objects.order_by("size"))
    for signed in checkpoints:
        try:
            opened = notes.open_note(signed.note, verifier)
        except ValueError as exc:
            problems.append(f"checkpoint of size {signed.size}: {exc}")
            continue
        if opened.size > len(hashes) or \
                root_from_leaf_hashes(hashes[:opened.size]) != opened.root:
            problems.append(f"checkpoint of size {signed.size}: the ledger's first "
                            f"{opened.size} entries no longer give its root")
    return LedgerAudit(entries=len(hashes), checkpoints=len(checkpoints), problems=problems,
                       first_bad_seq=found[0][0] if found else None)
