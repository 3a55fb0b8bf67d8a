"""Auditor exports: the ledger, takedown requests and attribution runs as CSV or JSON, streamed
row by row (an export never holds a table in memory)."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db.models import QuerySet

Row = dict[str, Any]


def _ledger() -> tuple[QuerySet, Callable[[Any], Row]]:
    """Each entry in the ledger's own format (`entry_export`), flattened to one row: the
    header's fields, then the payload and the hashes."""
    from provenance.ledger.append import entry_export
    from provenance.models import LedgerEntry

    def row(entry: Any) -> Row:
        exported = entry_export(entry)
        header = exported["header"]
        return {**{k: v for k, v in header.items() if k != "payload_hash"},
                "payload": exported["payload"], "payload_hash": header["payload_hash"],
                "prev_hash": exported["prev_hash"], "entry_hash": exported["entry_hash"]}

    return LedgerEntry.objects.order_by("seq"), row


def _takedowns() -> tuple[QuerySet, Callable[[Any], Row]]:
    from takedowns.models import TakedownRequest

    return TakedownRequest.objects.order_by("pk"), lambda t: {
        "reference": t.reference, "legal_basis": t.legal_basis, "remedy": t.remedy,
        "state": t.state, "rights_holder": t.rights_holder_id,
        "received_at": t.received_at.isoformat(),
        "decided_at": (t.decision or {}).get("decided_at", ""),
        "documents_removed": len(t.scope.get("remediation", {}).get("documents", [])),
        "verification": (t.verification or {}).get("verdict", "")}


def _attribution_runs() -> tuple[QuerySet, Callable[[Any], Row]]:
    from attribution.models import AttributionRun

    return AttributionRun.objects.select_related("output", "report").order_by("pk"), lambda r: {
        "run": r.pk, "output": r.output_id, "checkpoint": r.output.checkpoint_id,
        "state": r.state, "methods": r.methods, "created_at": r.created_at.isoformat(),
        "report_sha256": getattr(getattr(r, "report", None), "sha256", ""),
        "sources": [{"source": s.get("source"), "name": s.get("name"), "share": s.get("share")}
                    for s in (r.summary or {}).get("sources", [])]}


EXPORTS: dict[str, Callable[[], tuple[QuerySet, Callable[[Any], Row]]]] = {
    "ledger": _ledger, "takedowns": _takedowns, "attribution-runs": _attribution_runs}


def rows(what: str) -> Iterator[Row]:
    queryset, to_row = EXPORTS[what]()
    for item in queryset.iterator(chunk_size=2000):
        yield to_row(item)


class _Line:
    def write(self, value: str) -> str:
        return value


def as_csv(items: Iterable[Row]) -> Iterator[str]:
    """CSV with a header; nested values (payloads, lists) as JSON in their cell."""
    writer = csv.writer(_Line())
    header: list[str] | None = None
    for item in items:
        if header is None:
            header = list(item)
            yield writer.writerow(header)
        yield writer.writerow([json.dumps(v, sort_keys=True) if isinstance(v, (dict, list))
                               else v for v in item.values()])


def as_json(items: Iterable[Row]) -> Iterator[str]:
    """One JSON array, streamed an element at a time."""
    yield "["
    for n, item in enumerate(items):
        yield ("," if n else "") + "\n" + json.dumps(item, sort_keys=True, ensure_ascii=False)
    yield "\n]\n"
