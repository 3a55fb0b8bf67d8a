"""What the database refuses whoever asks (TRUNCATE of the evidence, changes to signed
checkpoints), what the application's role cannot do at all (switch a guard off), and how
`ledger verify` and signing notice checkpoints deleted by someone who could."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction

from config.db_roles import APP_ROLE
from provenance.ledger.append import entry_hash, entry_header, ledger_append
from provenance.ledger.proofs import ledger_checkpoint_latest
from provenance.models import LedgerCheckpoint, LedgerEntry

pytestmark = pytest.mark.django_db

GUARDED = ["provenance_ledgerentry", "provenance_ledgercheckpoint", "provenance_optoutsignal",
           "provenance_datasetversion", "provenance_versionmember",
           "provenance_versionexclusion"]


def grow(n: int) -> None:
    for i in range(n):
        ledger_append(actor=None, event="test.event", payload={"n": i})


def sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


@pytest.mark.parametrize("statement", [f"TRUNCATE {t} CASCADE" for t in GUARDED]
                         + ["TRUNCATE provenance_document CASCADE"])  # reaches the members
def test_truncate_is_refused_on_every_table_that_holds_evidence(statement):
    grow(2)
    with pytest.raises(IntegrityError, match="TRUNCATE on provenance_.* is refused"), \
            transaction.atomic():
        sql(statement)
    assert LedgerEntry.objects.count() == 2


def test_signed_checkpoints_cannot_be_changed_or_deleted():
    grow(3)
    signed = ledger_checkpoint_latest()
    for statement in ("DELETE FROM provenance_ledgercheckpoint",
                      "UPDATE provenance_ledgercheckpoint SET root = repeat('0', 64)"):
        with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
            sql(statement)
    assert LedgerCheckpoint.objects.get().root == signed.root


def _rewrite_from(seq: int) -> None:
    """What a database superuser can do: guards off, entry `seq` changed and every hash after it
    recomputed, so that the chain alone verifies."""
    sql("ALTER TABLE provenance_ledgerentry DISABLE TRIGGER ledger_append_only")
    prev = LedgerEntry.objects.get(seq=seq - 1).entry_hash if seq > 1 else "0" * 64
    for entry in LedgerEntry.objects.filter(seq__gte=seq).order_by("seq"):
        if entry.seq == seq:
            from provenance.engine.canonical import canonical_hash

            entry.payload = {"n": "forged"}
            entry.payload_hash = canonical_hash(entry.payload)
        entry.prev_hash = prev
        entry.entry_hash = prev = entry_hash(prev, entry_header(entry))
        sql("UPDATE provenance_ledgerentry SET payload = %s, payload_hash = %s, prev_hash = %s, "
            "entry_hash = %s WHERE seq = %s", ['{"n": "forged"}' if entry.seq == seq else
                                              f'{{"n": {entry.payload["n"]}}}',
                                              entry.payload_hash, entry.prev_hash,
                                              entry.entry_hash, entry.seq])
    sql("ALTER TABLE provenance_ledgerentry ENABLE TRIGGER ledger_append_only")


def test_checkpoints_deleted_and_the_chain_rewritten_fail_verify_and_nothing_is_signed(
        client, tmp_path, django_capture_on_commit_callbacks):
    """The outside probe deleted every checkpoint, rewrote the chain, and `ledger verify`
    passed; `ledger export` then signed the forged history."""
    grow(5)
    with django_capture_on_commit_callbacks(execute=True):
        ledger_checkpoint_latest()  # signed, and witnessed outside the database
    grow(3)
    call_command("ledger", "verify", stdout=io.StringIO())
    sql("ALTER TABLE provenance_ledgercheckpoint DISABLE TRIGGER checkpoint_append_only")
    sql("DELETE FROM provenance_ledgercheckpoint")
    sql("ALTER TABLE provenance_ledgercheckpoint ENABLE TRIGGER checkpoint_append_only")
    _rewrite_from(2)
    errors = io.StringIO()
    with pytest.raises(CommandError, match="problem"):
        call_command("ledger", "verify", stdout=io.StringIO(), stderr=errors)
    assert "the witnessed checkpoint of size 5 is missing from the database" in errors.getvalue()
    assert "first 5 entries no longer give the root of the witnessed checkpoint" in \
        errors.getvalue()
    with pytest.raises(CommandError, match="nothing signed"):
        call_command("ledger", "export", str(tmp_path / "forged.jsonl"), stdout=io.StringIO())
    answer = client.get("/api/v1/log/checkpoint/")
    assert answer.status_code == 503 and "cannot be signed" in answer.json()["detail"]
    assert not LedgerCheckpoint.objects.exists()


def test_a_rewrite_after_the_last_checkpoint_cannot_be_signed_over_it():
    grow(4)
    ledger_checkpoint_latest()
    grow(2)
    _rewrite_from(3)  # inside the signed tree: the next signature would cover the fork
    with pytest.raises(Exception, match="first 4 entries no longer give the root of the "
                                        "latest stored checkpoint"):
        ledger_checkpoint_latest()


def test_entries_left_unsigned_past_the_grace_period_fail_verify(settings):
    grow(3)
    settings.TRAILMARK = {**settings.TRAILMARK, "LEDGER_CHECKPOINT_GRACE": 0}
    errors = io.StringIO()
    with pytest.raises(CommandError):
        call_command("ledger", "verify", stdout=io.StringIO(), stderr=errors)
    assert "entries from 1 on are older than 0 s and covered by no signed checkpoint" in \
        errors.getvalue()
    ledger_checkpoint_latest()
    call_command("ledger", "verify", stdout=io.StringIO())
    settings.TRAILMARK = {**settings.TRAILMARK, "LEDGER_CHECKPOINT_GRACE": 3600}
    grow(1)  # younger than the grace period: the worker signs it within a minute
    call_command("ledger", "verify", stdout=io.StringIO())


def test_the_application_role_cannot_switch_a_guard_off_or_truncate():
    """`make run` connects the web and worker processes as this role (config/db_roles.py);
    a deployment creates it with `manage.py app_role`."""
    call_command("app_role", stdout=io.StringIO())
    grow(1)
    with transaction.atomic():
        sql(f"SET LOCAL ROLE {APP_ROLE}")
        ledger_append(actor=None, event="test.as_app_role", payload={})  # it does its work
        for statement in (
                "ALTER TABLE provenance_ledgerentry DISABLE TRIGGER ledger_append_only",
                "SET session_replication_role = replica",
                "TRUNCATE provenance_ledgerentry CASCADE",
                "DROP TRIGGER ledger_append_only ON provenance_ledgerentry"):
            with pytest.raises(DatabaseError, match="must be owner|permission denied"), \
                    transaction.atomic():
                sql(statement)
    assert LedgerEntry.objects.filter(event="test.as_app_role").exists()


def test_the_worker_signs_the_ledgers_tail_every_minute():
    from django.conf import settings

    from provenance.tasks import ledger_checkpoint_task

    assert settings.CELERY_BEAT_SCHEDULE["ledger-checkpoint"] == {
        "task": "provenance.ledger_checkpoint", "schedule": 60}
    grow(2)
    ledger_checkpoint_task()
    assert LedgerCheckpoint.objects.get().size == 2
    assert settings.TRAILMARK["LEDGER_CHECKPOINT_GRACE"] >= 10 * 60  # several beats
