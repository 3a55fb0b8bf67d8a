"""Curation at corpus scale: the decisions staged in PostgreSQL and near-duplicates grouped in SQL,
against the in-memory curation it replaced, for time and the worker's peak memory.

    python -m config.embedded exec --throwaway -- .venv/bin/python bench/scale.py
    ... bench/scale.py --documents 200000        # a quick look

The corpus is written straight into PostgreSQL by COPY (ingesting 10^7 texts through the ingest
service is `bench/ingest.py`'s business, and would take hours here): three CC0 sources holding the
first 10^5, the next 9 x 10^5 and the rest of N documents, so that recipes over one, two or three
of them curate 10^5, 10^6 and N candidates of the same corpus. Each document is a distinct short
text with a MinHash signature: 10% are edits of an earlier document (m of its 128 values redrawn,
m uniform in 0..40: about 65% of them are near-duplicates at the default threshold 0.8, the rest
share bands but not enough values), 0.1% are tombstoned.

For each size, in a fresh process each (its peak RSS is that process's VmHWM):
- **staged** (the product): a curation job run by `curation_run`, which decides, deduplicates
  and writes the version in one transaction;
- **in-memory** (the baseline, up to `--baseline-max` candidates): the curation as it was before
  issue 20, re-implemented here: every decision in Python lists and every kept signature in
  datasketch's `MinHashLSH`; it stops at the plan (the version's rows were then COPYed from the
  lists, which only adds time). Its near-duplicates and manifest root are compared with the
  staged version's.
Then receipts at 10^6 ledger entries: `bench/ledger_proofs.py`, run on a throwaway database of its
own (it writes its ledger from the first entry). Prints a table and writes bench/results/scale.json.
Goals (issue 20): curation of 10^7 documents with the worker's RSS <= 2 GB, its time reported;
a receipt at 10^6 entries in <= 50 ms.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Production's defaults, not the tests' (`config.embedded exec` sets config.settings.test).
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
RESULTS = ROOT / "bench" / "results" / "scale.json"
GOAL_RSS_MIB = 2048
SPLITS = (100_000, 1_000_000)
BATCH = 100_000


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM). Not `ru_maxrss`: Linux keeps that across
    exec, so a child would report the parent's peak when the parent's was higher."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _setup() -> None:
    import django

    django.setup()


def write_corpus(n: int, seed: int) -> list[int]:
    """N documents in three sources (see the module's docstring); returns the source ids."""
    from django.db import connection

    from provenance.models import RightsHolder
    from provenance.services.sources import source_create

    holder, _ = RightsHolder.objects.get_or_create(name="Scale Bench Holder")
    sources = [source_create(actor=None, owner=holder, name=f"scale-{k}",
                             license_expression="CC0-1.0").pk for k in range(3)]
    rng = np.random.default_rng(seed)
    now = datetime.now(UTC).isoformat()
    recent = np.zeros((0, 128), dtype=np.uint32)
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM provenance_document")
        first = cursor.fetchone()[0] + 1
    bar = tqdm(total=n, desc="documents", unit="doc", mininterval=2)
    for start in range(0, n, BATCH):
        size = min(BATCH, n - start)
        sigs = rng.integers(0, 1 << 32, size=(size, 128), dtype=np.uint64).astype(np.uint32)
        edited = np.flatnonzero(rng.random(size) < 0.10)
        pool = np.concatenate([recent, sigs])  # an edit copies a document written before it
        for i in edited:
            base = pool[rng.integers(0, len(recent) + i)] if len(recent) + i else sigs[i]
            m = int(rng.integers(0, 41))
            sigs[i] = base
            if m:
                sigs[i, rng.choice(128, m, replace=False)] = rng.integers(0, 1 << 32, m)
            pool[len(recent) + i] = sigs[i]
        recent = sigs[-20_000:].copy()
        removed = rng.random(size) < 0.001
        docs, occurrences = [], []
        for j in range(size):
            number = start + j
            text = f"scale document {seed} {number}"
            sha = hashlib.sha256(text.encode()).hexdigest()
            docs.append((first + number, sha, sha, text, len(text), len(text) // 4 + 1,
                         sigs[j].astype("<u4").tobytes(), "", now if removed[j] else None,
                         "bench" if removed[j] else "", False, now))
            source = sources[0 if number < SPLITS[0] else 1 if number < SPLITS[1] else 2]
            occurrences.append((first + number, source, now))
        with connection.cursor() as cursor:
            with cursor.copy("COPY provenance_document (id, sha256, normalised_sha256, text, "
                             "byte_count, token_estimate, minhash, language, removed_at, "
                             "removal_reason, text_purged, created_at) FROM STDIN") as copy:
                for row in docs:
                    copy.write_row(row)
            with cursor.copy("COPY provenance_occurrence (document_id, source_id, external_id, "
                             "url, file, metadata, created_at) FROM STDIN") as copy:
                for document, source, created in occurrences:
                    copy.write_row((document, source, "", "", "", "{}", created))
        bar.update(size)
    bar.close()
    with connection.cursor() as cursor:
        cursor.execute("SELECT setval(pg_get_serial_sequence('provenance_document', 'id'), "
                       "(SELECT max(id) FROM provenance_document))")
        cursor.execute("ANALYZE provenance_document")
        cursor.execute("ANALYZE provenance_occurrence")
    return sources


# ---------------------------------------------------------------------------------------------
# The two curations, each run in a process of its own


def child_staged(sources: list[int]) -> dict[str, Any]:
    from provenance.services import curation, datasets

    dataset = datasets.dataset_create(actor=None, slug=f"scale-{len(sources)}-{time.time_ns()}",
                                      title="Scale bench")
    job = datasets.curation_job_create(dataset=dataset, actor=None, enqueue=False,
                                       recipe={"intended_use": "commercial", "sources": sources})
    before = peak_rss_mib()
    started = time.perf_counter()
    finished = curation.curation_run(job_id=job.pk)
    seconds = time.perf_counter() - started
    assert finished is not None and finished.version is not None, "the curation did not run"
    job, version = finished, finished.version
    return {"seconds": seconds, "state": job.state, "rss_before_mib": before,
            "torch_loaded": "torch" in sys.modules, "members": version.document_count,
            "exclusions": version.exclusions_by_reason, "manifest_root": version.manifest_root}


def child_in_memory(sources: list[int]) -> dict[str, Any]:
    """The plan as `curation_plan` made it before issue 20 (same rules, same order)."""
    from datasketch import MinHashLSH
    from django.db import connection, transaction

    from provenance.engine.merkle import manifest_root
    from provenance.engine.text import NUM_PERM, minhash_from_bytes
    from provenance.services import datasets
    from provenance.services.curation import CANDIDATES_SQL, source_verdicts

    recipe = datasets.recipe_validate({"intended_use": "commercial", "sources": sources})
    verdicts = source_verdicts(recipe)
    threshold = recipe["near_duplicate_threshold"]
    started = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
    kept: dict[int, Any] = {}
    members: list[tuple[int, int, str]] = []
    exclusions: list[tuple[int, int, str, str]] = []
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(CANDIDATES_SQL, [recipe["sources"]])
        for doc, sha, removed, blob, doc_sources in cursor:
            home = doc_sources[0]
            if removed:
                exclusions.append((doc, home, "tombstoned", ""))
                continue
            if any(s in verdicts for s in doc_sources):
                exclusions.append((doc, home, "license", ""))
                continue
            sketch = minhash_from_bytes(bytes(blob))
            near = [k for k in lsh.query(sketch) if kept[k].jaccard(sketch) >= threshold]
            if near:
                exclusions.append((doc, home, "near_duplicate",
                                   f"near-duplicate of document {min(near)}"))
                continue
            lsh.insert(doc, sketch)
            kept[doc] = sketch
            members.append((doc, home, sha))
    root = manifest_root([sha for _, _, sha in members])
    seconds = time.perf_counter() - started
    by_reason: dict[str, int] = {}
    for _, _, reason, _ in exclusions:
        by_reason[reason] = by_reason.get(reason, 0) + 1
    return {"seconds": seconds, "members": len(members), "exclusions": by_reason,
            "manifest_root": root}


def run_child(kind: str, sources: list[int]) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", kind, "--sources",
                          ",".join(map(str, sources))], capture_output=True, text=True,
                         check=False)
    if out.returncode:
        return {"error": (out.stderr or out.stdout)[-2000:]}
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


OUTER = ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "TRAILMARK_CACHE_URL",
         "TRAILMARK_STATE_DIR", "DATABASE_OWNER_URL")


def receipts(entries: int) -> dict[str, Any]:
    """`bench/ledger_proofs.py` at this many entries, on a throwaway database of its own (it
    writes a ledger from its first entry); its row of bench/results/ledger_proofs.json."""
    env = {k: v for k, v in os.environ.items() if k not in OUTER}
    out = subprocess.run([sys.executable, "-m", "config.embedded", "exec", "--throwaway", "--",
                          sys.executable, str(ROOT / "bench" / "ledger_proofs.py"), "--entries",
                          str(entries)], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=False)
    if out.returncode:
        return {"entries": entries, "error": (out.stderr or out.stdout)[-2000:]}
    rows = json.loads((ROOT / "bench" / "results" / "ledger_proofs.json").read_text())["rows"]
    return dict(next(r for r in rows if r["entries"] == entries))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--documents", type=int, default=10_000_000)
    parser.add_argument("--baseline-max", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--receipts", type=int, default=1_000_000,
                        help="ledger entries for the receipt figures (0: skip)")
    parser.add_argument("--child", choices=["staged", "in-memory"])
    parser.add_argument("--sources", default="")
    args = parser.parse_args()
    _setup()
    if args.child:
        sources = [int(s) for s in args.sources.split(",")]
        result = (child_staged if args.child == "staged" else child_in_memory)(sources)
        result["max_rss_mib"] = peak_rss_mib()
        print(json.dumps(result))
        return 0

    from django.core.management import call_command

    call_command("migrate", "--no-input", verbosity=0)
    started = time.perf_counter()
    sources = write_corpus(args.documents, args.seed)
    load_seconds = time.perf_counter() - started
    sizes = sorted({min(s, args.documents) for s in (*SPLITS, args.documents)})
    rows: list[dict[str, Any]] = []
    for size in sizes:
        used = sources[:1 + sum(size > s for s in SPLITS)]
        for kind in ("staged", "in-memory"):
            if kind == "in-memory" and size > args.baseline_max:
                rows.append({"candidates": size, "path": kind,
                             "skipped": f"over --baseline-max {args.baseline_max}"})
                continue
            print(f"curating {size:,} candidates ({kind}) ...", flush=True)
            result = run_child(kind, used)
            rows.append({"candidates": size, "path": kind, **result})
    for size in sizes:
        pair = {r["path"]: r for r in rows if r["candidates"] == size and "seconds" in r}
        if len(pair) == 2:
            same = (pair["staged"]["manifest_root"] == pair["in-memory"]["manifest_root"]
                    and pair["staged"]["exclusions"].get("near_duplicate")
                    == pair["in-memory"]["exclusions"].get("near_duplicate"))
            for r in pair.values():
                r["same_decisions"] = same

    print(f"\ncorpus: {args.documents:,} documents written in {load_seconds:.0f} s\n")
    print(f"{'candidates':>11} {'path':<10} {'seconds':>9} {'docs/s':>9} {'peak RSS MiB':>13} "
          f"{'near-dups':>10} {'same':>5}")
    for r in rows:
        if "seconds" not in r:
            print(f"{r['candidates']:>11,} {r['path']:<10} {r.get('skipped') or r.get('error')}")
            continue
        print(f"{r['candidates']:>11,} {r['path']:<10} {r['seconds']:>9.1f} "
              f"{r['candidates'] / r['seconds']:>9,.0f} {r['max_rss_mib']:>13,.0f} "
              f"{r['exclusions'].get('near_duplicate', 0):>10,} "
              f"{str(r.get('same_decisions', '-')):>5}")
    staged = [r for r in rows if r["path"] == "staged" and "seconds" in r]
    largest = max(staged, key=lambda r: r["candidates"]) if staged else None
    met = bool(largest and largest["candidates"] >= 10_000_000
               and largest["max_rss_mib"] <= GOAL_RSS_MIB)
    print(f"\ngoal: 10^7 documents curated with worker RSS <= {GOAL_RSS_MIB} MiB: "
          f"{'met' if met else 'NOT met'}")
    ledger: dict[str, Any] = {}
    if args.receipts:
        print(f"receipts at {args.receipts:,} ledger entries (bench/ledger_proofs.py) ...",
              flush=True)
        ledger = receipts(args.receipts)
        if "receipt" in ledger:
            print(f"receipt median {ledger['receipt']['median_ms']} ms, p95 "
                  f"{ledger['receipt']['p95_ms']} ms (every-leaf baseline "
                  f"{ledger['baseline_every_leaf']['median_ms']} ms)")
        else:
            print(f"receipts: {ledger.get('error')}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "bench": "scale", "documents": args.documents, "seed": args.seed,
        "corpus_load_seconds": load_seconds, "rows": rows, "receipts": ledger,
        "goal": {"documents": 10_000_000, "max_rss_mib": GOAL_RSS_MIB, "met": met},
        "host": {"cpus": os.cpu_count(), "python": platform.python_version(),
                 "machine": platform.machine()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
