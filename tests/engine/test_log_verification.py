"""Signed checkpoints, consistency proofs and the offline verifier: engines only."""

from __future__ import annotations

import hashlib
import json

import pytest
import rfc8785

from provenance.engine import checkpoint as notes
from provenance.engine.merkle import (
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_leaf_hashes,
    verify_consistency,
)
from provenance.engine.verify import GENESIS, check_log, main

SEED = bytes(range(32))


def test_a_checkpoint_note_verifies_with_its_key_and_not_when_altered_or_by_another_key():
    cp = notes.Checkpoint("example.org/log", 7, hashlib.sha256(b"root").digest())
    note = notes.sign(cp, "example.org/log", SEED)
    lines = note.split("\n")
    assert lines[:2] == ["example.org/log", "7"] and len(lines[2]) == 44  # base64 of 32 bytes
    assert lines[3] == "" and lines[4].startswith("\u2014 example.org/log ")
    key = notes.verifier_key("example.org/log", notes.public_key(SEED))
    assert notes.open_note(note, key) == cp
    with pytest.raises(ValueError, match="does not verify"):
        notes.open_note(note.replace("\n7\n", "\n8\n"), key)
    other = notes.verifier_key("example.org/log", notes.public_key(bytes(32)))
    with pytest.raises(ValueError, match="no signature"):
        notes.open_note(note, other)
    with pytest.raises(ValueError, match="hash does not match"):
        notes.parse_verifier_key(key.replace("example.org/log", "evil.org/log"))


def test_consistency_proofs_hold_between_every_pair_of_sizes_and_fail_on_a_rewrite():
    leaves = [leaf_hash(hashlib.sha256(str(i).encode()).digest()) for i in range(33)]
    for n in range(1, 34):
        new_root = root_from_leaf_hashes(leaves[:n])
        for m in range(0, n + 1):
            proof = consistency_proof(leaves[:n], m)
            old_root = root_from_leaf_hashes(leaves[:m])
            assert verify_consistency(m, n, proof, old_root, new_root), (m, n)
    rewritten = leaves[:5] + [leaf_hash(b"changed")] + leaves[6:20]
    proof = consistency_proof(rewritten, 10)
    assert not verify_consistency(10, 20, proof, root_from_leaf_hashes(leaves[:10]),
                                  root_from_leaf_hashes(rewritten))


def _export(n: int) -> list[dict]:
    entries, prev = [], GENESIS
    for seq in range(1, n + 1):
        payload = {"n": seq, "share": seq / 3}
        header = {"seq": seq, "event": "test", "payload_hash":
                  hashlib.sha256(rfc8785.dumps(payload)).hexdigest()}
        entry_hash = hashlib.sha256(bytes.fromhex(prev) + rfc8785.dumps(header)).hexdigest()
        entries.append({"header": header, "payload": payload, "prev_hash": prev,
                        "entry_hash": entry_hash})
        prev = entry_hash
    return entries


def test_an_exported_log_verifies_against_its_checkpoint_and_a_tampered_one_does_not(tmp_path):
    entries = _export(12)
    root = root_from_leaf_hashes([leaf_hash(bytes.fromhex(e["entry_hash"])) for e in entries])
    note = notes.sign(notes.Checkpoint("t/log", 12, root), "t/log", SEED)
    key = notes.verifier_key("t/log", notes.public_key(SEED))
    assert check_log(entries, note, key) == []
    tampered = json.loads(json.dumps(entries))
    tampered[4]["payload"]["n"] = 99
    assert check_log(tampered, note, key) == ["entry 5: the payload does not match its hash"]
    export = tmp_path / "log.jsonl"
    export.write_text("".join(json.dumps(e) + "\n" for e in entries))
    (tmp_path / "log.checkpoint").write_text(note)
    assert main(["log", str(export), str(tmp_path / "log.checkpoint"), "--key", key]) == 0
    export.write_text("".join(json.dumps(e) + "\n" for e in tampered))
    assert main(["log", str(export), str(tmp_path / "log.checkpoint"), "--key", key]) == 1


def _receipt(entries: list[dict], index: int, seed: bytes = SEED) -> dict:
    from provenance.engine.merkle import inclusion_proof

    leaves = [leaf_hash(bytes.fromhex(e["entry_hash"])) for e in entries]
    root = root_from_leaf_hashes(leaves)
    return {"entry": entries[index],
            "inclusion_proof": {"leaf_index": index, "tree_size": len(leaves), "root": root.hex(),
                                "path": [h.hex() for h in inclusion_proof(leaves, index)]},
            "checkpoint": notes.sign(notes.Checkpoint("t/log", len(leaves), root), "t/log", seed),
            "verifier_key": notes.verifier_key("t/log", notes.public_key(seed))}


def _forged(receipt: dict) -> dict:
    """The outside probe's forgery: the payload changed, its hashes recomputed, the inclusion
    proof replaced by a one-leaf tree and the signed checkpoint dropped."""
    entry = json.loads(json.dumps(receipt["entry"]))
    entry["payload"]["n"] = "rejected"
    entry["header"]["payload_hash"] = hashlib.sha256(rfc8785.dumps(entry["payload"])).hexdigest()
    entry["entry_hash"] = hashlib.sha256(bytes.fromhex(entry["prev_hash"])
                                         + rfc8785.dumps(entry["header"])).hexdigest()
    root = leaf_hash(bytes.fromhex(entry["entry_hash"]))
    return {"entry": entry, "verifier_key": receipt["verifier_key"],
            "inclusion_proof": {"leaf_index": 0, "tree_size": 1, "root": root.hex(), "path": []}}


def test_a_forged_receipt_without_a_checkpoint_fails_with_the_key(tmp_path, capsys):
    entries = _export(9)
    genuine = _receipt(entries, 4)
    key = genuine["verifier_key"]
    forged = _forged(genuine)
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(forged))
    assert main(["receipt", str(path), "--key", key]) == 1
    assert "no signed checkpoint" in capsys.readouterr().err
    (tmp_path / "genuine.json").write_text(json.dumps(genuine))
    assert main(["receipt", str(tmp_path / "genuine.json"), "--key", key]) == 0
    assert "verified against the key given" in capsys.readouterr().out


def test_a_receipt_signed_by_another_key_fails_with_the_logs_key(tmp_path, capsys):
    entries = _export(3)
    real_key = notes.verifier_key("t/log", notes.public_key(SEED))
    forged = _receipt(entries, 1, seed=bytes(32))  # self-consistent, signed by the forger
    path = tmp_path / "r.json"
    path.write_text(json.dumps(forged))
    assert main(["receipt", str(path), "--key", real_key]) == 1
    assert "no signature" in capsys.readouterr().err


def test_without_a_key_a_receipt_is_only_called_consistent_and_fails_unless_told(tmp_path,
                                                                                  capsys):
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(_forged(_receipt(_export(9), 4))))
    assert main(["receipt", str(path)]) == 1
    captured = capsys.readouterr()
    assert "NOT verified" in captured.out and "internal consistency" in captured.err
    assert main(["receipt", str(path), "--unsigned-ok"]) == 0
    assert "NOT verified" in capsys.readouterr().out
    path.write_text(json.dumps({"entry": {}}))
    assert main(["receipt", str(path), "--unsigned-ok"]) == 1
    assert "not a Trailmark receipt" in capsys.readouterr().err


def test_proofs_from_the_kept_complete_subtrees_equal_proofs_from_every_leaf():
    """What the ledger keeps (complete subtrees) answers every root, inclusion and consistency
    proof exactly as the leaves do, reading at most 2 log2(n) + 2 subtrees for any of them."""
    import math

    from provenance.engine.merkle import (
        complete_nodes,
        consistency_path,
        inclusion_path,
        nodes_needed,
        range_hash,
    )

    leaves = [leaf_hash(str(i).encode()) for i in range(300)]
    for size in (1, 2, 3, 7, 8, 9, 64, 100, 255, 256, 257, 300):
        kept = complete_nodes(leaves[:size])
        assert len(kept) < 2 * size  # about one node per leaf above the leaves

        def mth(a, b, kept=kept):
            return range_hash(a, b, kept.__getitem__)

        bound = 2 * math.ceil(math.log2(size)) + 2 if size > 1 else 2
        assert mth(0, size) == root_from_leaf_hashes(leaves[:size])
        for index in {0, size // 3, size // 2, size - 1}:
            assert inclusion_path(index, size, mth) == inclusion_proof(leaves[:size], index)
            read = nodes_needed(lambda f, i=index, n=size: (f(0, n), inclusion_path(i, n, f)))
            assert read <= set(kept) and len(read) <= bound, (size, index, len(read))
        for first in {0, 1, size // 2, size - 1, size}:
            assert consistency_path(first, size, mth) == consistency_proof(leaves[:size], first)
            read = nodes_needed(lambda f, m=first, n=size: (f(0, m), f(0, n),
                                                              consistency_path(m, n, f)))
            assert read <= set(kept) and len(read) <= 2 * bound, (size, first, len(read))
