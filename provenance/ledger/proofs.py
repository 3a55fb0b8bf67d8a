"""The ledger as a verifiable log (built on `provenance.ledger.append`, which never imports
this module): an RFC 9162 Merkle tree whose leaves are the entries' hashes
(leaf = SHA-256(0x00 || entry_hash), entry_hash = SHA-256(prev_hash || RFC 8785 header)), signed
checkpoints (Ed25519, transparency-dev format), inclusion and consistency proofs.

The signing key is a 32-byte Ed25519 seed: TRAILMARK_LEDGER_KEY (base64) or the file named by
TRAILMARK_LEDGER_KEY_FILE, else one made for this installation in the state folder.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from core.conf import setting
from core.errors import LedgerTampered
from provenance.engine import checkpoint as notes
from provenance.engine.merkle import (
    Node,
    RangeHash,
    complete_levels,
    consistency_path,
    inclusion_path,
    leaf_hash,
    nodes_needed,
    range_hash,
    root_from_leaf_hashes,
)
from provenance.engine.verify import entry_problems
from provenance.ledger.append import GENESIS, entry_export
from provenance.models import LedgerCheckpoint, LedgerEntry, LedgerNode

T = TypeVar("T")


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


def leaf_hashes() -> list[bytes]:
    """Every entry's leaf hash, recomputed from the entries (the audit's view: O(n))."""
    rows = LedgerEntry.objects.order_by("seq").values_list("entry_hash", flat=True)
    return [leaf_hash(bytes.fromhex(h)) for h in rows]


def ledger_size() -> int:
    return LedgerEntry.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def on_kept_tree(compute: Callable[[RangeHash], T]) -> T:
    """Run a computation over subtree hashes (roots, proofs) on the complete subtrees the ledger
    keeps (`LedgerNode`): one query for the O(log n) of them it reads."""
    needed = nodes_needed(compute)
    found: dict[Node, bytes] = {}
    if needed:
        wanted = Q()
        for level, index in needed:
            wanted |= Q(level=level, index=index)
        found = {(lv, i): bytes.fromhex(h) for lv, i, h in
                 LedgerNode.objects.filter(wanted).values_list("level", "index", "hash")}
    missing = sorted(needed - found.keys())
    if missing:
        raise LedgerTampered(f"the ledger's tree lacks {len(missing)} of the subtrees this needs "
                             f"(level {missing[0][0]}, index {missing[0][1]} first): rows of "
                             f"provenance_ledgernode were deleted")
    return compute(lambda a, b: range_hash(a, b, found.__getitem__))


def _leaf_kept(seq: int) -> bool:
    """Whether entry `seq` still has the hash its leaf in the kept tree was made from."""
    entry = LedgerEntry.objects.filter(seq=seq).values_list("entry_hash", flat=True).first()
    kept = LedgerNode.objects.filter(level=0, index=seq - 1).values_list("hash", flat=True).first()
    return entry is not None and kept == leaf_hash(bytes.fromhex(entry)).hex()


def _witness_path() -> Path:
    return Path(setting("LEDGER_WITNESS_FILE") or Path(settings.STATE_DIR) / "ledger_witness")


def _witnessed() -> notes.Checkpoint | None:
    """The latest checkpoint this installation signed, as kept outside the database."""
    path = _witness_path()
    if not path.exists():
        return None
    try:
        return notes.open_note(path.read_text(encoding="utf-8"), ledger_verifier_key())
    except ValueError as exc:
        raise LedgerTampered(f"the witness file {path} does not verify: {exc}") from None


def _witness(note: str, size: int) -> None:
    """Keep `note` as the witness unless the witness already holds a larger tree (two workers
    may sign at once); written whole or not at all."""
    path = _witness_path()
    current = _witnessed()
    if current is not None and current.size >= size:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(note, encoding="utf-8")
    partial.replace(path)


def _prefix_problem(label: str, size: int, root: str,
                    hashes: list[bytes] | None = None) -> str | None:
    """Whether the ledger's first `size` entries still give `root`: from every leaf (`hashes`,
    the audit), or from the kept tree plus its last entry (each entry's hash chains every one
    before it, so a rewrite inside the tree changes the last one's: O(log n))."""
    total = len(hashes) if hashes is not None else ledger_size()
    if size > total:
        return f"{label} covers {size} entries; the ledger has {total}"
    if hashes is not None:
        found = root_from_leaf_hashes(hashes[:size]).hex()
    else:
        found = on_kept_tree(lambda mth: mth(0, size)).hex()
        if size and not _leaf_kept(size):
            found = ""
    if found != root:
        return f"the ledger's first {size} entries no longer give the root of {label}"
    return None


def _witness_problems(hashes: list[bytes] | None = None) -> list[str]:
    """The witness (outside the database) must be in the database and a prefix of the ledger."""
    witnessed = _witnessed()
    if witnessed is None:
        return []
    latest = LedgerCheckpoint.objects.order_by("-size").values_list("size", flat=True).first()
    problems = []
    if latest is None or latest < witnessed.size:
        problems.append(f"the witnessed checkpoint of size {witnessed.size} is missing from the "
                        f"database (the largest there: {latest or 'none'}): checkpoints were "
                        f"deleted")
    found = _prefix_problem("the witnessed checkpoint", witnessed.size, witnessed.root.hex(),
                            hashes)
    return problems + ([found] if found else [])


def _appended_problems(after: int, size: int) -> list[str]:
    """The entries a new checkpoint vouches for beyond the last one, recomputed as the verifier
    does, each matched with its leaf in the kept tree."""
    prev = GENESIS if after == 0 else \
        LedgerEntry.objects.filter(seq=after).values_list("entry_hash", flat=True).first()
    leaves = dict(LedgerNode.objects.filter(level=0, index__gte=after, index__lt=size)
                  .values_list("index", "hash"))
    problems = []
    for entry in LedgerEntry.objects.filter(seq__gt=after, seq__lte=size).order_by("seq") \
            .iterator(chunk_size=2000):
        problems += [f"entry {entry.seq}: {p}" for p in entry_problems(entry_export(entry),
                                                                        prev or GENESIS)]
        if leaves.get(entry.seq - 1) != leaf_hash(bytes.fromhex(entry.entry_hash)).hex():
            problems.append(f"entry {entry.seq}: its leaf in the kept tree is not its hash")
        prev = entry.entry_hash
    return problems[:5]


def _extension_problems(size: int) -> list[str]:
    """What stops the ledger as it is (`size` entries) from being signed: the latest stored
    checkpoint and the witness must each be the root of a prefix of it, and what was appended
    since must verify."""
    problems = _witness_problems()
    latest = LedgerCheckpoint.objects.order_by("-size").first()
    found = latest and _prefix_problem("the latest stored checkpoint", latest.size, latest.root)
    problems += [found] if found else []
    return problems + _appended_problems(latest.size if latest else 0, size)


def ledger_checkpoint_latest() -> LedgerCheckpoint:
    """The signed checkpoint of the ledger as it is now (signed once per size). A new size is
    signed only when it extends the checkpoints signed before and what was appended since
    verifies (LedgerTampered otherwise), and is kept as the witness once its transaction
    commits. Reads O(log n) of the tree, and the entries appended since the last checkpoint."""
    size = ledger_size()
    found = LedgerCheckpoint.objects.filter(size=size).first()
    if found is not None:
        return found
    problems = _extension_problems(size)
    if problems:
        raise LedgerTampered("; ".join(problems))
    origin = str(setting("LEDGER_ORIGIN"))
    root = on_kept_tree(lambda mth: mth(0, size))
    note = notes.sign(notes.Checkpoint(origin, size, root), origin, _seed())
    try:
        with transaction.atomic():
            signed = LedgerCheckpoint.objects.create(size=size, root=root.hex(), note=note,
                                                     key_name=origin)
    except IntegrityError:  # signed at the same moment by another request
        return LedgerCheckpoint.objects.get(size=size)
    transaction.on_commit(lambda: _witness(note, size))
    return signed


def _tree_size(value: Any, name: str, largest: int) -> int:
    try:
        size = int(value)
    except (TypeError, ValueError):
        raise ValidationError({name: "a whole number"}) from None
    if not 0 <= size <= largest:
        raise ValidationError({name: f"between 0 and the ledger's size ({largest})"})
    return size


def ledger_inclusion(*, seq: Any, tree_size: Any = None) -> dict[str, Any]:
    """The proof that entry `seq` is in the tree of `tree_size` entries (default: all), from
    O(log n) kept subtrees."""
    largest = ledger_size()
    size = largest if tree_size in (None, "") else _tree_size(tree_size, "tree_size", largest)
    index = _tree_size(seq, "seq", size) - 1
    if index < 0:
        raise ValidationError({"seq": f"between 1 and the tree size ({size})"})
    leaf, root, path = on_kept_tree(lambda mth: (mth(index, index + 1), mth(0, size),
                                                 inclusion_path(index, size, mth)))
    return {"seq": index + 1, "leaf_index": index, "tree_size": size, "leaf_hash": leaf.hex(),
            "root": root.hex(), "path": [h.hex() for h in path]}


def ledger_consistency(*, first: Any, second: Any = None) -> dict[str, Any]:
    """The proof that the tree of `first` entries is a prefix of the tree of `second`, from
    O(log n) kept subtrees."""
    largest = ledger_size()
    new = largest if second in (None, "") else _tree_size(second, "second", largest)
    old = _tree_size(first, "first", new)
    first_root, second_root, path = on_kept_tree(
        lambda mth: (mth(0, old), mth(0, new), consistency_path(old, new, mth)))
    return {"first": old, "second": new, "first_root": first_root.hex(),
            "second_root": second_root.hex(), "path": [h.hex() for h in path]}


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
    found = list(ledger_problems(progress))
    problems = [problem for _, problem in found]
    hashes, verifier = leaf_hashes(), ledger_verifier_key()
    problems += _kept_tree_problems(hashes)
    try:
        problems += _witness_problems(hashes)
    except LedgerTampered as exc:  # the witness file itself does not verify
        problems.append(str(exc))
    problems += _uncovered_tail()
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


def _kept_tree_problems(hashes: list[bytes]) -> list[str]:
    """The kept subtrees (what proofs are read from) against the tree of the entries as they
    are, one level at a time (memory: the leaves and one level): every one present and equal,
    none extra."""
    wrong: list[Node] = []
    missing = extra = levels = 0
    for level, row in enumerate(complete_levels(hashes)):
        matched = wrong_here = 0
        for index, value in LedgerNode.objects.filter(level=level).order_by("index") \
                .values_list("index", "hash").iterator(chunk_size=10_000):
            if index >= len(row):
                extra += 1
            elif value == row[index].hex():
                matched += 1
            else:
                wrong.append((level, index))
                wrong_here += 1
        missing += len(row) - matched - wrong_here
        levels = level + 1
    extra += LedgerNode.objects.filter(level__gte=levels).count()
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} subtree(s) of the kept tree do not match the entries "
                        f"(level {wrong[0][0]}, index {wrong[0][1]} first): proofs served from "
                        f"it would not hold")
    if missing:
        problems.append(f"the kept tree lacks {missing} subtree(s) of the entries' tree")
    if extra:
        problems.append(f"the kept tree has {extra} subtree(s) beyond the entries")
    return problems


def _uncovered_tail() -> list[str]:
    """Entries older than the grace period that no signed checkpoint covers: what deleted
    checkpoints (or a signer that stopped) leave behind."""
    latest = LedgerCheckpoint.objects.order_by("-size").values_list("size", flat=True).first()
    cutoff = timezone.now() - timedelta(seconds=int(setting("LEDGER_CHECKPOINT_GRACE")))
    stale = LedgerEntry.objects.filter(seq__gt=latest or 0, created_at__lt=cutoff)
    first = stale.order_by("seq").values_list("seq", flat=True).first()
    if first is None:
        return []
    return [f"entries from {first} on are older than {setting('LEDGER_CHECKPOINT_GRACE')} s and "
            f"covered by no signed checkpoint (the latest covers {latest or 0}): checkpoints "
            f"were deleted, or none has been signed since (the worker signs one a minute)"]


def ledger_problems(progress: Any = None) -> Iterator[tuple[int, str]]:
    """Every entry recomputed in order, as the offline verifier does: (seq, what is wrong)."""
    prev = GENESIS
    entries = LedgerEntry.objects.order_by("seq").iterator(chunk_size=2000)
    for entry in progress(entries) if progress else entries:
        for problem in entry_problems(entry_export(entry), prev):
            yield entry.seq, problem
        prev = entry.entry_hash


def ledger_verify_chain() -> tuple[bool, int | None]:
    """(True, None) if every entry is intact, else (False, the first bad seq)."""
    first = next(ledger_problems(), None)
    return (True, None) if first is None else (False, first[0])


def ledger_receipt(entry: LedgerEntry) -> dict[str, Any]:
    """What a party to an event keeps: the entry (header, payload, hashes), an RFC 9162 inclusion
    proof of its hash in the ledger's Merkle tree, and the signed checkpoint of that tree. Anyone
    can check it offline: `python -m provenance.engine.verify receipt FILE`."""
    checkpoint = ledger_checkpoint_latest()
    proof = ledger_inclusion(seq=entry.seq, tree_size=checkpoint.size)
    return {
        "format": "trailmark-ledger-receipt/1",
        "entry": entry_export(entry),
        "inclusion_proof": {k: proof[k] for k in ("leaf_index", "tree_size", "root", "path")},
        "checkpoint": checkpoint.note,
        "verifier_key": ledger_verifier_key(),
        "verify_with": "python -m provenance.engine.verify receipt RECEIPT.json",
    }
