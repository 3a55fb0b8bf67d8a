"""manage.py ledger verify | export FILE: check the ledger where it lives, or write it out for
anyone to check offline with `python -m provenance.engine.verify log`."""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from provenance.engine import checkpoint as notes
from provenance.engine.merkle import root_from_leaf_hashes
from provenance.models import LedgerCheckpoint, LedgerEntry
from provenance.services.ledger import entry_export, ledger_problems
from provenance.services.transparency import (
    leaf_hashes,
    ledger_checkpoint_latest,
    ledger_verifier_key,
)


class Command(BaseCommand):
    help = "Verify the ledger (chain, payloads, signed checkpoints), or export it."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("what", choices=["verify", "export"])
        parser.add_argument("file", nargs="?", help="export: the JSON-lines file to write")

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        if opts["what"] == "export":
            return self._export(opts["file"])
        total = LedgerEntry.objects.count()
        problems = [problem for _, problem in ledger_problems(
            lambda rows: tqdm(rows, total=total, desc="entries", unit="entry", disable=None))]
        hashes, verifier = leaf_hashes(), ledger_verifier_key()
        checkpoints = LedgerCheckpoint.objects.order_by("size")
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
        for problem in problems:
            self.stderr.write(f"FAIL: {problem}")
        if problems:
            raise CommandError(f"{len(problems)} problem(s) in the ledger")
        self.stdout.write(self.style.SUCCESS(
            f"ledger verified: {len(hashes)} entries, {checkpoints.count()} signed "
            f"checkpoint(s) consistent with them"))

    def _export(self, file: str | None) -> None:
        if not file:
            raise CommandError("name the file to write: manage.py ledger export FILE")
        path = Path(file)
        signed = ledger_checkpoint_latest()
        with path.open("w", encoding="utf-8") as out:
            for entry in LedgerEntry.objects.order_by("seq")[:signed.size].iterator(
                    chunk_size=2000):
                out.write(json.dumps(entry_export(entry), ensure_ascii=False) + "\n")
        note = path.with_suffix(".checkpoint")
        note.write_text(signed.note, encoding="utf-8")
        self.stdout.write(f"wrote {signed.size} entries to {path} and the signed checkpoint to "
                          f"{note}\ncheck with: python -m provenance.engine.verify log {path} "
                          f"{note} --key {ledger_verifier_key()}")
