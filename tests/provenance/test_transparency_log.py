"""The ledger as a public verifiable log: signed checkpoints, inclusion and consistency proofs
over HTTP, `manage.py ledger verify | export`, and the offline verifier catching a tampered
ledger."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from provenance.engine import checkpoint as notes
from provenance.engine.merkle import leaf_hash, verify_consistency, verify_inclusion
from provenance.engine.verify import main as verify_main
from provenance.ledger.append import ledger_append

pytestmark = pytest.mark.django_db


def grow(n: int) -> None:
    for i in range(n):
        ledger_append(actor=None, event="test.event", payload={"n": i, "share": i / 7})


def test_anyone_reads_signed_checkpoints_and_proofs_that_verify(client):
    grow(5)
    first = client.get("/api/v1/log/checkpoint/").json()
    assert first["size"] == 5
    opened = notes.open_note(first["note"], first["verifier_key"])
    assert (opened.size, opened.root.hex()) == (5, first["root_hash"])
    grow(6)
    second = client.get("/api/v1/log/checkpoint/").json()
    assert second["size"] == 11 and second["verifier_key"] == first["verifier_key"]
    proof = client.get("/api/v1/log/inclusion/", {"seq": 3, "tree_size": 11}).json()
    assert verify_inclusion(bytes.fromhex(proof["leaf_hash"]), 2, 11,
                            [bytes.fromhex(h) for h in proof["path"]],
                            bytes.fromhex(second["root_hash"]))
    from provenance.models import LedgerEntry

    entry = LedgerEntry.objects.get(seq=3)
    assert proof["leaf_hash"] == leaf_hash(bytes.fromhex(entry.entry_hash)).hex()
    consistency = client.get("/api/v1/log/consistency/", {"first": 5, "second": 11}).json()
    assert verify_consistency(5, 11, [bytes.fromhex(h) for h in consistency["path"]],
                              bytes.fromhex(first["root_hash"]),
                              bytes.fromhex(second["root_hash"]))
    bad = client.get("/api/v1/log/inclusion/", {"seq": 12})
    assert bad.status_code == 400 and "seq" in bad.json()
    assert client.get("/api/v1/log/consistency/", {"first": "x"}).status_code == 400
    assert client.get("/api/v1/ledger/").status_code in (401, 403)  # entries stay private


def test_a_ledger_row_edited_in_the_database_is_caught_by_both_verifiers(client, tmp_path):
    grow(8)
    call_command("ledger", "verify", stdout=io.StringIO())
    out = io.StringIO()
    call_command("ledger", "export", str(tmp_path / "log.jsonl"), stdout=out)
    key = client.get("/api/v1/log/checkpoint/").json()["verifier_key"]
    checkpoint = str(tmp_path / "log.checkpoint")
    assert verify_main(["log", str(tmp_path / "log.jsonl"), checkpoint, "--key", key]) == 0
    with connection.cursor() as cursor:  # someone with database access, trigger switched off
        cursor.execute("ALTER TABLE provenance_ledgerentry DISABLE TRIGGER ledger_append_only")
        cursor.execute("UPDATE provenance_ledgerentry SET payload = '{\"n\": 42}' "
                       "WHERE seq = 4")
        cursor.execute("ALTER TABLE provenance_ledgerentry ENABLE TRIGGER ledger_append_only")
    errors = io.StringIO()
    with pytest.raises(CommandError, match="problem"):
        call_command("ledger", "verify", stdout=io.StringIO(), stderr=errors)
    assert "entry 4: the payload does not match its hash" in errors.getvalue()
    call_command("ledger", "export", str(tmp_path / "forged.jsonl"), stdout=io.StringIO())
    assert verify_main(["log", str(tmp_path / "forged.jsonl"), checkpoint, "--key", key]) == 1


def test_a_last_entry_rewritten_with_fresh_hashes_is_caught_by_the_signed_checkpoint(client):
    """The chain alone cannot catch a rewrite of its last entry with every hash recomputed; the
    checkpoint signed before it can."""
    from provenance.engine.canonical import canonical_hash
    from provenance.ledger.append import entry_hash, entry_header
    from provenance.models import LedgerEntry

    grow(4)
    client.get("/api/v1/log/checkpoint/")  # signed at size 4
    last = LedgerEntry.objects.get(seq=4)
    last.payload = {"n": 1000}
    last.payload_hash = canonical_hash(last.payload)
    last.entry_hash = entry_hash(last.prev_hash, entry_header(last))
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE provenance_ledgerentry DISABLE TRIGGER ledger_append_only")
        cursor.execute("UPDATE provenance_ledgerentry SET payload = %s, payload_hash = %s, "
                       "entry_hash = %s WHERE seq = 4",
                       ['{"n": 1000}', last.payload_hash, last.entry_hash])
        cursor.execute("ALTER TABLE provenance_ledgerentry ENABLE TRIGGER ledger_append_only")
    errors = io.StringIO()
    with pytest.raises(CommandError):
        call_command("ledger", "verify", stdout=io.StringIO(), stderr=errors)
    assert "checkpoint of size 4: the ledger's first 4 entries no longer give its root" in \
        errors.getvalue()


def test_erasing_a_person_unlinks_them_from_the_ledger_and_the_log_still_verifies(
        users, client_as):
    from provenance.ledger.append import ledger_forget_person
    from provenance.models import LedgerEntry

    curator = users["curator"]
    ledger_append(actor=curator, event="test.by_curator", payload={})
    ledger_append(actor=curator, event="test.by_curator", payload={})
    signed = client_as("anonymous").get("/api/v1/log/checkpoint/").json()
    rows = client_as("auditor").get("/api/v1/ledger/", {"event": "test.by_curator"}).json()
    assert [r["actor"] for r in rows["results"]] == [f"user:{curator.pk}:curator"] * 2
    assert rows["results"][0]["actor_label"] == rows["results"][1]["actor_label"]
    assert rows["results"][0]["actor_label"].startswith("person:")
    stored = LedgerEntry.objects.values_list("actor_label", "payload")
    assert not any("curator" in label or "curator" in str(payload) for label, payload in stored)
    assert ledger_forget_person(user=curator, actor=users["admin"]) == 1
    rows = client_as("auditor").get("/api/v1/ledger/", {"event": "test.by_curator"}).json()
    assert [r["actor"] for r in rows["results"]] == [None, None]
    call_command("ledger", "verify", stdout=io.StringIO())  # nothing hashed was touched
    opened = notes.open_note(signed["note"], signed["verifier_key"])
    assert opened.size == 2


def test_a_person_rights_holders_name_enters_the_ledger_only_as_a_commitment():
    from provenance.models import LedgerEntry, PersonCommitment
    from provenance.services.sources import rights_holder_create

    person = rights_holder_create(actor=None, name="Ada Writer", kind="person")
    rights_holder_create(actor=None, name="Quay Press", kind="organisation")
    names = [e.payload["name"] for e in LedgerEntry.objects.filter(
        event="rights_holder.created").order_by("seq")]
    assert names[0].startswith("person:") and names[1] == "Quay Press"
    assert PersonCommitment.objects.get(reference=names[0]).label == \
        f"holder:{person.pk}:Ada Writer"


def test_proofs_and_receipts_read_the_kept_tree_not_every_entry():
    """Receipts and proofs read O(log n) kept subtrees (one query for them), and give exactly
    what the tree over every entry gives; the audit checks the kept tree against the entries."""
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    from core.errors import LedgerTampered
    from provenance.engine.merkle import consistency_proof, inclusion_proof, root_from_leaf_hashes
    from provenance.ledger.proofs import (
        leaf_hashes,
        ledger_audit,
        ledger_consistency,
        ledger_inclusion,
        ledger_receipt,
    )
    from provenance.models import LedgerEntry, LedgerNode

    counts = []
    for target in (37, 150):
        grow(target - LedgerEntry.objects.count())
        hashes = leaf_hashes()
        assert len(hashes) == target
        assert LedgerNode.objects.count() < 2 * target
        for seq in (1, target // 2, target):
            proof = ledger_inclusion(seq=seq)
            assert proof["root"] == root_from_leaf_hashes(hashes).hex()
            assert proof["path"] == [h.hex() for h in inclusion_proof(hashes, seq - 1)]
        for first in (1, target // 3, target):
            assert ledger_consistency(first=first)["path"] == [
                h.hex() for h in consistency_proof(hashes, first)]
        ledger_receipt(LedgerEntry.objects.get(seq=target - 1))  # signs the checkpoint once
        with CaptureQueriesContext(conn) as seen:
            receipt = ledger_receipt(LedgerEntry.objects.get(seq=3))
        assert receipt["inclusion_proof"]["path"] == [h.hex() for h in inclusion_proof(hashes, 2)]
        entry_reads = [q["sql"] for q in seen.captured_queries
                       if 'FROM "provenance_ledgerentry"' in q["sql"]]
        assert all("LIMIT" in q for q in entry_reads), entry_reads  # single rows, no scan
        counts.append(len(seen.captured_queries))
    assert counts[0] == counts[1]  # the same few queries at 37 and at 150 entries
    assert ledger_audit().verified, ledger_audit().problems
    with conn.cursor() as cursor:  # a superuser edits a kept subtree
        cursor.execute("ALTER TABLE provenance_ledgernode DISABLE TRIGGER ledgernode_append_only")
        cursor.execute("UPDATE provenance_ledgernode SET hash = repeat('0', 64) "
                       "WHERE level = 2 AND index = 3")
        cursor.execute("ALTER TABLE provenance_ledgernode ENABLE TRIGGER ledgernode_append_only")
    audit = ledger_audit()
    assert not audit.verified
    assert any("level 2, index 3" in p for p in audit.problems), audit.problems
    with conn.cursor() as cursor:  # and deletes a leaf
        cursor.execute("ALTER TABLE provenance_ledgernode DISABLE TRIGGER ledgernode_append_only")
        cursor.execute("DELETE FROM provenance_ledgernode WHERE level = 0 AND index = 9")
        cursor.execute("ALTER TABLE provenance_ledgernode ENABLE TRIGGER ledgernode_append_only")
    assert any("lacks 1 subtree" in p for p in ledger_audit().problems)
    with pytest.raises(LedgerTampered, match="lacks 1 of the subtrees"):
        ledger_inclusion(seq=10)
