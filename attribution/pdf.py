"""An attribution report as PDF (fpdf2, pure Python): the same body as the JSON, laid out for
reading and filing. The body's sha256 is printed on every page, so a printed copy can be checked
against the ledger."""

from __future__ import annotations

from typing import Any

from attribution.engine.aggregate import agreement_sentence, baseline_sentence, evaluation_sentence
from provenance.engine.pdf import TextDocument
from provenance.engine.pdf import latin1 as _text


class _Doc(TextDocument):
    def __init__(self, digest: str) -> None:
        self.digest = digest  # read by footer(), which the first page already calls
        super().__init__()

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, _text(f"report sha256 {self.digest}   page {self.page_no()}"),
                  align="C")


def render_pdf(body: dict[str, Any], digest: str) -> bytes:
    pdf = _Doc(digest)
    line = pdf.paragraph

    line(f"Attribution report, run {body['run']}", 16, bold=True)
    line(f"Format {body['format']}, {body['generator']}, {body['created_at']}", 8)
    cp, out = body["checkpoint"], body["output"]
    line(f"Checkpoint {cp['id']} {cp['name']} (sha256 {cp['sha256']})", 9)
    line(f"Output {out['id']} (sha256 {out['sha256']})", 9)
    line("Prompt: " + out["prompt"][:1000], 9)
    line("Completion: " + out["completion"][:2000], 9)
    line("Methods: " + ", ".join(body["methods"]), 9)
    for name, index in body["indexes"].items():
        line(f"{name}: " + ", ".join(f"{k} {v}" for k, v in index.items()
                                      if k in ("id", "generation", "rows", "dim")), 8)
    for note in body["notes"]:
        line(f"Note ({note['method']}): {note['note']}", 8)
    summary = body["summary"]
    line("Shares by source", 12, bold=True)
    for s in summary.get("sources", []):
        line(f"{s['share'] * 100:6.1f}%  {s['name']}  ({s['license']}, {s['use_class']})", 9)
    line("Shares by use class", 12, bold=True)
    for name, share in summary.get("by_use_class", {}).items():
        line(f"{share * 100:6.1f}%  {name}", 9)
    agreement = summary.get("agreement", {})
    if agreement:
        names = {s["source"]: s["name"] for s in summary.get("sources", [])}
        line("Do the methods agree? " + agreement_sentence(agreement, names), 9)
    if "baselines" in summary:
        names = {s["source"]: s["name"] for s in summary.get("sources", [])}
        line("Against the cheap baselines: " + baseline_sentence(summary["baselines"], names), 9)
    evaluation = body.get("influence_evaluation")
    if evaluation:
        line(f"How far influence is measured: {evaluation_sentence(evaluation)}", 9)
    line("Ranked evidence", 12, bold=True)
    documents = body["documents"]
    for r in body["results"]:
        doc = documents.get(str(r["document"])) if r["document"] is not None else None
        shown = "(source-level evidence)" if doc is None else \
            "[blocked: removed by a takedown]" if doc["blocked"] else (doc["excerpt"] or "")[:160]
        line(f"{r['method']} #{r['rank']}  score {r['score']:.4g}  source {r['source']}  "
             f"document {r['document']}: {shown}", 8)
    return bytes(pdf.output())
