"""manage.py ledger verify | export FILE: check the ledger where it lives, or write it out for
anyone to check offline with `python -m provenance.engine.verify log`."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from core.errors import LedgerTampered
from provenance.ledger.append import entry_export
from provenance.ledger.proofs import (
    ledger_audit,
    ledger_checkpoint_latest,
    ledger_verifier_key,
)
from provenance.models import LedgerEntry


class Command(BaseCommand):
    help = "Verify the ledger (chain, payloads, signed checkpoints), or export it."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("what", choices=["verify", "export"])
        parser.add_argument("file", nargs="?", help="export: the JSON-lines file to write")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        if opts["what"] == "export":
            return self._export(opts["file"])
        total = LedgerEntry.objects.count()
        audit = ledger_audit(
            lambda rows: tqdm(rows, total=total, desc="entries", unit="entry", disable=None))
        for problem in audit.problems:
            self.stderr.write(f"FAIL: {problem}")
        if audit.problems:
            raise CommandError(f"{len(audit.problems)} problem(s) in the ledger")
        self.stdout.write(self.style.SUCCESS(
            f"ledger verified: {audit.entries} entries, {audit.checkpoints} signed "
            f"checkpoint(s) consistent with them"))

    def _export(self, file: str | None) -> None:
        if not file:
            raise CommandError("name the file to write: manage.py ledger export FILE")
        path = Path(file)
        try:
            signed = ledger_checkpoint_latest()
        except LedgerTampered as exc:
            raise CommandError(f"not exported, nothing signed: {exc}") from None
        with path.open("w", encoding="utf-8") as out:
            for entry in LedgerEntry.objects.order_by("seq")[:signed.size].iterator(
                    chunk_size=2000):
                out.write(json.dumps(entry_export(entry), ensure_ascii=False) + "\n")
        note = path.with_suffix(".checkpoint")
        note.write_text(signed.note, encoding="utf-8")
        self.stdout.write(f"wrote {signed.size} entries to {path} and the signed checkpoint to "
                          f"{note}\ncheck with: python -m provenance.engine.verify log {path} "
                          f"{note} --key {ledger_verifier_key()}")
