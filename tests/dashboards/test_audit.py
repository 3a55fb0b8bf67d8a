"""The auditors' page: the ledger verified on request (a tampered row is named), attribution
reports, and exports of the ledger, takedowns and attribution runs as CSV and JSON."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test import Client

from provenance.models import LedgerEntry
from takedowns.services.requests import takedown_file
from tests.helpers import NOTICE

pytestmark = pytest.mark.django_db


@pytest.fixture
def auditor(pages_as) -> Client:
    return pages_as("auditor")


def test_an_auditor_verifies_the_ledger_and_sees_a_tampered_row(users, auditor):
    for _ in range(3):
        takedown_file(actor=users["holder_a"], data=NOTICE)
    assert auditor.get("/audit/").status_code == 200
    verified = auditor.post("/audit/").content.decode()
    entries = LedgerEntry.objects.count()
    assert f"Verified:</strong> {entries} entries recomputed" in verified
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE provenance_ledgerentry DISABLE TRIGGER ledger_append_only")
        cursor.execute("UPDATE provenance_ledgerentry SET payload = '{}' WHERE seq = 2")
        cursor.execute("ALTER TABLE provenance_ledgerentry ENABLE TRIGGER ledger_append_only")
    tampered = auditor.post("/audit/").content.decode()
    assert "1 problem(s)" in tampered and "entry 2: the payload does not match its hash" in \
        tampered


def test_exports_stream_every_row_as_csv_and_json(users, auditor):
    for _ in range(2):
        takedown_file(actor=users["holder_a"], data=NOTICE)
    ledger_csv = auditor.get("/audit/export/ledger.csv")
    assert ledger_csv["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(b"".join(ledger_csv.streaming_content).decode())))
    assert [int(r["seq"]) for r in table] == list(LedgerEntry.objects.order_by("seq")
                                                  .values_list("seq", flat=True))
    assert json.loads(table[0]["payload"]) == LedgerEntry.objects.get(seq=1).payload
    takedowns = json.loads(b"".join(auditor.get("/audit/export/takedowns.json")
                                    .streaming_content))
    assert [t["legal_basis"] for t in takedowns] == ["voluntary", "voluntary"]
    empty = json.loads(b"".join(auditor.get("/audit/export/attribution-runs.json")
                                .streaming_content))
    assert empty == []
    assert auditor.get("/audit/export/users.csv").status_code == 404
