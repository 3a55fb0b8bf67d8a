"""Span tracing of the demo's canaries, and what a report shows after a takedown (issue 4, the
evaluation's last two checks). Needs the database: run it on a throwaway one,

    python -m config.embedded exec --throwaway -- python bench/demo_tracing.py

Loads the demo (which trains the demo model with a canary in every source, 8 carriers each),
then for each source's canary:
* memorised: prompted with the canary's first 4 words, does the model (greedy, through the
  product's generation path) go on with the next 8? The probe of Carlini et al.'s "secret
  sharer", with the prefix as the only context.
* traced: an attribution run (spans) on that output; recall = carriers found among the span
  documents / carriers (what the issue asks to be 1.0 for memorised canaries). The canary
  sequence itself as an output is traced too (the index's own recall, memorised or not).
Then one carrier per source is taken down (tombstoned, text purged) and every output is
attributed again with all four methods: the report JSON and the auditor's HTML page must show no
text of a removed document (counted: blocked rows with text, removed documents' text found).
Writes bench/results/demo_tracing.json.
"""

from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Production's defaults, not the tests' (`config.embedded exec` sets config.settings.test).
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"


def main() -> int:
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from attribution.models import AttributionRun
    from attribution.services.influence import (
        gradient_index_finalize,
        gradient_index_plan,
        gradient_shard_build,
    )
    from attribution.services.outputs import model_output_create, model_output_generate
    from attribution.services.runs import attribution_run_create, attribution_run_execute
    from attribution.services.spans import span_index_build
    from provenance.engine.canary import CanarySpec, canary_sequence
    from provenance.models import DataSource, Document, ModelCheckpoint, User
    from provenance.services.documents import document_tombstone
    from provenance.services.embeddings import documents_embed

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    call_command("demo_load", stdout=io.StringIO())
    while documents_embed():
        pass
    checkpoint = ModelCheckpoint.objects.select_related("run").latest("pk")
    assert checkpoint.run is not None
    carriers = {int(s): docs for s, docs in checkpoint.run.marks["canaries"].items()}
    auditor = User.objects.get(username="auditor")

    def attribute(output, methods):  # type: ignore[no-untyped-def]
        run = attribution_run_create(output=output, actor=auditor, methods=methods,
                                     enqueue=False)
        if run.span_index is not None and run.span_index.state == "queued":
            span_index_build(index_id=run.span_index.pk)
        index = run.gradient_index
        if index is not None and index.state == "queued":
            for snapshot, shard, ids in gradient_index_plan(index_id=index.pk) or []:
                gradient_shard_build(index_id=index.pk, snapshot=snapshot, shard=shard,
                                     doc_ids=ids)
            gradient_index_finalize(index_id=index.pk)
        assert attribution_run_execute(run_id=run.pk) == "done"
        return AttributionRun.objects.get(pk=run.pk)

    def traced(run, source_id: int) -> tuple[int, int]:  # type: ignore[no-untyped-def]
        found = {r.document_id for r in run.results.filter(method="spans")}
        return len(found & set(carriers[source_id])), len(carriers[source_id])

    rows: list[dict[str, Any]] = []
    outputs = []
    for source in DataSource.objects.filter(pk__in=carriers).order_by("pk"):
        sequence = canary_sequence(CanarySpec.from_dict(source.canary.spec),
                                   source.canary.secret)
        words = sequence.split()
        output = model_output_create(checkpoint=checkpoint, prompt=" ".join(words[:4]),
                                     actor=auditor, enqueue=False,
                                     params={"max_new_tokens": 32})
        generated = model_output_generate(output_id=output.pk)
        assert generated is not None
        output = generated
        continued = output.completion.split()
        memorised = [w.strip(".,") for w in continued[:8]] == words[4:12]
        run = attribute(output, ["spans"])
        found, total = traced(run, source.pk)
        literal = model_output_create(checkpoint=checkpoint, prompt="(the canary itself)",
                                      actor=auditor, enqueue=False)
        type(literal).objects.filter(pk=literal.pk).update(state="succeeded",
                                                           completion=f" {sequence}")
        literal.refresh_from_db()
        lit_found, _ = traced(attribute(literal, ["spans"]), source.pk)
        rows.append({"source": source.name, "carriers": total, "memorised": memorised,
                     "generated": " ".join(continued[:8]), "expected": " ".join(words[4:12]),
                     "traced_from_output": found, "traced_from_sequence": lit_found})
        outputs.append((source.pk, output))

    # The takedown: one carrier per source, text purged.
    removed: dict[int, str] = {}
    for _source, docs in sorted(carriers.items()):
        doc = Document.objects.get(pk=docs[0])
        removed[doc.pk] = doc.text
        document_tombstone(document=doc, actor=None, reason="bench: takedown", purge_text=True)
    kept = "\n".join(Document.objects.filter(removed_at__isnull=True)
                     .values_list("text", flat=True))
    client = Client(HTTP_HOST="localhost")
    client.force_login(auditor)
    leaks, blocked_rows = 0, 0
    after = []
    for source_id, output in outputs:
        run = attribute(output, ["spans", "influence", "embedding", "watermark"])
        body = json.dumps(run.report.body)
        page = client.get(f"/attribution/{run.pk}/")
        assert page.status_code == 200, page.status_code
        html = page.content.decode()
        for result in run.results.filter(document_id__in=list(removed)):
            blocked_rows += 1
            spans = result.evidence.get("spans", [])
            leaks += sum(1 for s in spans if s.get("text"))
            entry = run.report.body["documents"][str(result.document_id)]
            leaks += int(not entry["blocked"] or entry["excerpt"] is not None)
        for text in removed.values():
            # Any 60-character piece of a removed document's text that nothing else holds: not
            # a kept document (the demo's letters share template sentences, the mirror copies),
            # nor the output itself (which a report always shows).
            pieces = [text[i:i + 60] for i in range(0, max(1, len(text) - 60), 20)]
            own = [p for p in pieces if p not in kept and p not in output.prompt
                   and p not in output.completion]
            leaks += sum(1 for p in own if p in body or p in html)
        found, total = traced(run, source_id)
        after.append({"run": run.pk, "carriers_found": found, "of": total})

    held = [r for r in rows if r["memorised"]]
    recall = (sum(r["traced_from_output"] for r in held)
              / max(1, sum(r["carriers"] for r in held)))
    index_recall = sum(r["traced_from_sequence"] for r in rows) / sum(r["carriers"] for r in rows)
    print(f"\n{'source':<30}{'memorised':>10}{'traced':>8}{'from sequence':>14}")
    for r in rows:
        print(f"{r['source']:<30}{str(r['memorised']):>10}"
              f"{r['traced_from_output']:>5}/{r['carriers']:<2}"
              f"{r['traced_from_sequence']:>11}/{r['carriers']:<2}")
    print(f"\nmemorised canaries: {len(held)}/{len(rows)}; span recall of their carriers "
          f"{recall:.3f} (goal 1.0); of every canary's sequence {index_recall:.3f}")
    print(f"after the takedown: {blocked_rows} result rows name a removed document; removed text "
          f"shown {leaks} times (goal 0)")
    out = ROOT / "bench" / "results" / "demo_tracing.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "demo_tracing", "canaries": rows,
                               "memorised": len(held), "recall_memorised": recall,
                               "recall_sequences": index_recall,
                               "removed_documents": len(removed),
                               "blocked_result_rows": blocked_rows, "removed_text_shown": leaks,
                               "after_takedown": after,
                               "seconds": round(time.perf_counter() - started, 1)},
                              indent=2) + "\n")
    print(f"wrote {out}")
    return 0 if leaks == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
