"""Ingest throughput against a raw COPY of the same rows, in the same run.

    make bench                       # N = 10,000 and 100,000 on the embedded services
    python bench/ingest.py --n 2000  # inside `python -m config.embedded exec -- ...`

For each N: write N synthetic ~1 KB documents to a JSONL file, ingest it through Trailmark's
real path (stream, parse, normalise, sha256, MinHash, COPY to a staging table, insert documents
and occurrences, job progress), then COPY the same texts into a scratch table with nothing
computed. Prints docs/s for both and their ratio; writes bench/results/ingest.json.
Targets (issue 2, 2-core machine): >= 5,000 docs/s and >= 0.3x raw COPY.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


def synthetic_texts(n: int, seed: int) -> list[str]:
    """~1 KB English-like documents from a 20k-word Zipf-ish vocabulary; all distinct."""
    rng = random.Random(seed)
    vocab = [f"{rng.choice('bcdfghklmnprstvw')}{rng.choice('aeiou')}"
             f"{rng.choice('bcdfghklmnprstvw')}{rng.choice(['', 'er', 'ing', 'ed', 's'])}"
             for _ in range(20_000)]
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    texts = []
    for i in range(n):
        words = rng.choices(vocab, weights=weights, k=150)
        text = f"Document {seed}-{i}. " + " ".join(words)
        texts.append(text[:1024])
    return texts


def bench_one(n: int, seed: int, workdir: Path) -> dict[str, float]:
    from django.db import connection

    from provenance.models import RightsHolder
    from provenance.services.ingest import ingest_path
    from provenance.services.sources import source_create

    texts = synthetic_texts(n, seed)
    path = workdir / f"bench-{n}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i, text in enumerate(texts):
            out.write(json.dumps({"id": f"d{i}", "text": text}) + "\n")
    holder, _ = RightsHolder.objects.get_or_create(name="Bench Holder")
    source = source_create(actor=None, owner=holder, name=f"bench-{n}-{seed}",
                           license_expression="CC0-1.0")

    start = time.perf_counter()
    job = ingest_path(source=source, path=path, actor=None)
    ingest_s = time.perf_counter() - start
    assert job.state == "succeeded" and job.rows_added == n, (job.state, job.error, job.rows_added)

    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_raw_copy")
        cursor.execute("CREATE TABLE bench_raw_copy (external_id text, text text)")
        start = time.perf_counter()
        with cursor.copy("COPY bench_raw_copy (external_id, text) FROM STDIN") as copy:
            for i, text in enumerate(texts):
                copy.write_row((f"d{i}", text))
        copy_s = time.perf_counter() - start
        cursor.execute("DROP TABLE bench_raw_copy")
    return {"n": n, "ingest_s": ingest_s, "ingest_docs_per_s": n / ingest_s,
            "copy_s": copy_s, "copy_docs_per_s": n / copy_s,
            "ratio_to_copy": (n / ingest_s) / (n / copy_s),
            "bytes": path.stat().st_size}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest.json")
    args = parser.parse_args()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed, n in enumerate(args.n):
            rows.append(bench_one(n, seed + 1000, Path(tmp)))

    print(f"{'N':>9} {'ingest docs/s':>14} {'raw COPY docs/s':>16} {'ratio':>7} "
          f"{'target':>22}")
    for r in rows:
        ok = r["ingest_docs_per_s"] >= 5000 and r["ratio_to_copy"] >= 0.3
        print(f"{r['n']:>9,} {r['ingest_docs_per_s']:>14,.0f} {r['copy_docs_per_s']:>16,.0f} "
              f"{r['ratio_to_copy']:>7.2f} {'met' if ok else 'NOT met (5k/s, 0.3x)':>22}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    machine = {"cpus": os.cpu_count(), "python": platform.python_version(),
               "platform": platform.platform()}
    report = {"benchmark": "ingest", "machine": machine,
              "targets": {"docs_per_s": 5000, "ratio_to_copy": 0.3}, "results": rows}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
