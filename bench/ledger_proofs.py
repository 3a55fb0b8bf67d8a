"""Receipts and proofs at ledger scale: the kept tree (O(log n) rows) against every entry.

    python -m config.embedded exec --throwaway -- .venv/bin/python bench/ledger_proofs.py
    ... bench/ledger_proofs.py --entries 10000   # a quick look (one size per run: each run
                                                 # adds its row to the results file)

For a size N: a valid ledger of N entries is written straight into PostgreSQL (each entry's
hash chained as `ledger_append` chains it, and the kept subtrees beside it, by COPY: appending
10^6 entries one service call at a time would take an hour and measure nothing of interest here),
then one real `ledger_append` (which keeps its nodes as production does) and a checkpoint signed
over it. Then, on random entries: `ledger_receipt` (the product's path: latest checkpoint,
inclusion proof from the kept tree), `ledger_inclusion`, `ledger_consistency`, and the baseline in
the same run: the same inclusion proof computed from every entry's leaf hash (what receipts did
before). Prints median and p95 milliseconds and the ratio; writes bench/results/ledger_proofs.json.
Goal (issue 20): a receipt at 10^6 entries in <= 50 ms.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Production's defaults, not the tests' (`config.embedded exec` sets config.settings.test).
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
RESULTS = ROOT / "bench" / "results" / "ledger_proofs.json"
GOAL_MS = 50.0


def write_ledger(n: int) -> None:
    """N chained entries and their kept subtrees, by COPY (the guards refuse TRUNCATE, so the
    bench runs on a throwaway database)."""
    from django.db import connection

    from provenance.engine.canonical import canonical_hash
    from provenance.engine.merkle import complete_levels, leaf_hash
    from provenance.ledger.append import GENESIS, entry_hash, entry_header
    from provenance.models import LedgerEntry

    start = datetime(2026, 1, 1, tzinfo=UTC)
    prev, leaves = GENESIS, []
    entries = io.StringIO()
    for seq in tqdm(range(1, n + 1), desc=f"entries ({n})", unit="entry", mininterval=2):
        payload = {"n": seq}
        entry = LedgerEntry(seq=seq, created_at=start + timedelta(seconds=seq),
                            actor_label="system", event="bench.event", subject_type="",
                            subject_id="", payload=payload, payload_hash=canonical_hash(payload),
                            prev_hash=prev)
        entry.entry_hash = entry_hash(prev, entry_header(entry))
        entries.write(f"{seq}\t{entry.created_at.isoformat()}\tsystem\tbench.event\t\t\t"
                      f"{json.dumps(payload)}\t{entry.payload_hash}\t{prev}\t"
                      f"{entry.entry_hash}\n")
        leaves.append(leaf_hash(bytes.fromhex(entry.entry_hash)))
        prev = entry.entry_hash
    nodes = io.StringIO()
    for level, row in enumerate(complete_levels(leaves)):
        for index, value in enumerate(row):
            nodes.write(f"{level}\t{index}\t{value.hex()}\n")
    with connection.cursor() as cursor:
        copy = cursor.cursor.copy
        with copy("COPY provenance_ledgerentry (seq, created_at, actor_label, event, "
                  "subject_type, subject_id, payload, payload_hash, prev_hash, entry_hash) "
                  "FROM STDIN") as sink:
            sink.write(entries.getvalue())
        with copy("COPY provenance_ledgernode (level, index, hash) FROM STDIN") as sink:
            sink.write(nodes.getvalue())
        cursor.execute("ANALYZE provenance_ledgerentry")
        cursor.execute("ANALYZE provenance_ledgernode")


def timed(fn, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered), 2),
            "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "n": len(ordered)}


def measure(n: int, repeat: int, seed: int) -> dict[str, Any]:
    from provenance.engine.merkle import inclusion_proof
    from provenance.ledger.append import ledger_append
    from provenance.ledger.proofs import (
        leaf_hashes,
        ledger_checkpoint_latest,
        ledger_consistency,
        ledger_inclusion,
        ledger_receipt,
    )
    from provenance.models import LedgerEntry

    started = time.perf_counter()
    write_ledger(n - 1)
    built_s = time.perf_counter() - started
    ledger_append(actor=None, event="bench.appended", payload={"size": n})  # the product's path
    started = time.perf_counter()
    ledger_checkpoint_latest()  # the first checkpoint verifies every entry once
    first_sign_s = time.perf_counter() - started
    size = LedgerEntry.objects.count()
    rng = random.Random(seed)
    seqs = [rng.randint(1, size) for _ in range(repeat)]
    entries = {e.seq: e for e in LedgerEntry.objects.filter(seq__in=seqs)}
    picks = iter(seqs * 3)
    receipt = timed(lambda: ledger_receipt(entries[next(picks)]), repeat)
    inclusion = timed(lambda: ledger_inclusion(seq=next(picks)), repeat)
    consistency = timed(lambda: ledger_consistency(first=next(picks)), repeat)
    # The baseline: the same proof from every entry's leaf hash (what a receipt read before).
    baseline_repeat = max(3, repeat // 20)
    baseline = timed(lambda: inclusion_proof(leaf_hashes(), seqs[0] - 1), baseline_repeat)
    ledger_append(actor=None, event="bench.appended", payload={"size": n + 1})
    started = time.perf_counter()
    ledger_checkpoint_latest()  # a checkpoint over one new entry: what the worker signs a minute
    next_sign_ms = (time.perf_counter() - started) * 1000
    row: dict[str, Any] = {"entries": size, "build_s": round(built_s, 1),
                           "first_checkpoint_s": round(first_sign_s, 2),
                           "next_checkpoint_ms": round(next_sign_ms, 2),
                           "receipt": summary(receipt), "inclusion": summary(inclusion),
                           "consistency": summary(consistency),
                           "baseline_every_leaf": summary(baseline)}
    row["receipt_vs_baseline"] = round(row["receipt"]["median_ms"]
                                       / row["baseline_every_leaf"]["median_ms"], 4)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import django

    django.setup()
    from django.core.management import call_command

    from provenance.models import LedgerEntry

    call_command("migrate", "--no-input", verbosity=0)

    if LedgerEntry.objects.exists():
        raise SystemExit("run on an empty ledger (python -m config.embedded exec --throwaway)")
    row = measure(args.entries, args.repeat, args.seed)
    print(f"{row['entries']:>9} entries: receipt median {row['receipt']['median_ms']} ms "
          f"(p95 {row['receipt']['p95_ms']}), inclusion {row['inclusion']['median_ms']} ms, "
          f"consistency {row['consistency']['median_ms']} ms; the same proof from every leaf "
          f"(baseline) {row['baseline_every_leaf']['median_ms']} ms; a checkpoint over one new "
          f"entry {row['next_checkpoint_ms']} ms; the first checkpoint (every entry verified "
          f"once) {row['first_checkpoint_s']} s")
    kept = json.loads(args.out.read_text())["rows"] if args.out.exists() else []
    rows = sorted([r for r in kept if r["entries"] != row["entries"]] + [row],
                  key=lambda r: r["entries"])
    at_million = [r for r in rows if r["entries"] >= 1_000_000]
    met = bool(at_million) and all(r["receipt"]["p95_ms"] <= GOAL_MS for r in at_million)
    print(f"goal: a receipt at 10^6 entries <= {GOAL_MS} ms (p95): "
          f"{'met' if met else 'not met' if at_million else 'not measured at 10^6 yet'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "ledger_proofs", "goal_ms": GOAL_MS, "goal_met": met, "rows": rows,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()}}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
