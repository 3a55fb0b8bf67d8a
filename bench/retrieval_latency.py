"""Retrieval at datastore scale: query latency of the product's `retrieve` with its governance
filters, against the same statements without them, and the removal test.

    python -m config.embedded exec --throwaway -- .venv/bin/python bench/retrieval_latency.py
    ... --chunks 20000 --queries 200          # a quick look

A first part of issue 22's `bench/rag_eval.py`: it measures speed and removal, not quality. The
datastore is written straight into PostgreSQL by COPY (embedding 10^5 chunks on 2 cores takes
~20 min; `datastore_build` is tested, and its speed is `bench/embeddings.py`'s): N chunks of
word-salad text over a 5,000-word vocabulary (Zipf-distributed, like words), each with a random
unit vector of 384 dimensions, 4 chunks per document, the documents spread over 20 sources. The
HNSW index is then built as migration 0002 builds it. Random vectors are a harder case for HNSW
than real embeddings (no clusters), so the vector leg's latency here errs high.

Measured, for `--queries` queries of 6 words drawn from a random chunk, with that chunk's vector
plus noise (cosine ~0.9 to it):
- **product**: `retrieval.services.search.retrieve` as the API calls it (both legs, 50
  candidates each, fusion, the hits' rows), p50 / p95 / p99 of wall time;
- **baseline, same run**: the same two statements with the governance clauses removed, and the
  keyword leg alone; their ratio is the price of governance;
- **removal**: 1,000 probe queries built to retrieve one source's chunks (its chunk's words and
  vector). Before: how many return a chunk of that source in the top 5. Then one commit refuses
  the source (a Content-Signal `ai-input=no` recorded through the service), and the same probes
  run again at once: chunks of the source returned (goal 0), and the time from the commit to the
  end of the first probe (goal <= 1 s). The same for a tombstone of one document.
Goal (issue 22): p95 <= 50 ms for retrieval alone at 10^5 chunks on 2 cores. Prints a table and
writes bench/results/retrieval_latency.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"  # production's defaults
RESULTS = ROOT / "bench" / "results" / "retrieval_latency.json"
GOAL_P95_MS = 50.0
DIM = 384
SOURCES = 20
CHUNKS_PER_DOCUMENT = 4
WORDS_PER_CHUNK = 90


def _setup() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def vocabulary(size: int, rng: np.random.Generator) -> list[str]:
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters, int(rng.integers(3, 10)))))
    return sorted(words)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def write_datastore(n: int, seed: int) -> dict[str, Any]:
    """N chunks (see the module's docstring); returns ids and the texts and vectors drawn."""
    from django.db import connection

    from provenance.models import Dataset, DatasetVersion, RightsHolder
    from provenance.services.sources import source_create
    from retrieval.models import Datastore
    from retrieval.services.search import vector_literal

    rng = np.random.default_rng(seed)
    vocab = vocabulary(5000, rng)
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    holder, _ = RightsHolder.objects.get_or_create(name="Retrieval Bench Holder")
    stamp = time.time_ns()
    sources = [source_create(actor=None, owner=holder, name=f"rb-{stamp}-{k}",
                             license_expression="CC0-1.0").pk for k in range(SOURCES)]
    dataset = Dataset.objects.create(slug=f"retrieval-bench-{stamp}", title="Retrieval bench")
    version = DatasetVersion.objects.create(dataset=dataset, number=1, state="published",
                                            manifest_root="0" * 64,
                                            published_at=datetime.now(UTC))
    store = Datastore.objects.create(name=f"retrieval-bench-{stamp}", version=version,
                                     state="succeeded", chunk_count=n)
    documents = n // CHUNKS_PER_DOCUMENT
    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM provenance_document")
        first = cursor.fetchone()[0] + 1
    now = datetime.now(UTC).isoformat()
    texts: list[str] = []
    vectors = unit(rng.standard_normal((n, DIM)))
    chunk_source = np.zeros(n, dtype=np.int64)
    chunk_document = np.zeros(n, dtype=np.int64)
    bar = tqdm(total=n, desc="chunks", unit="chunk", mininterval=2)
    with connection.cursor() as cursor:
        for d0 in range(0, documents, 5000):
            docs: list[tuple[Any, ...]] = []
            occurrences: list[tuple[int, int]] = []
            chunks: list[tuple[Any, ...]] = []
            for d in range(d0, min(documents, d0 + 5000)):
                words = rng.choice(len(vocab), (CHUNKS_PER_DOCUMENT, WORDS_PER_CHUNK), p=weights)
                pieces = [" ".join(vocab[w] for w in row) for row in words]
                text = "\n".join(pieces)
                sha = hashlib.sha256(text.encode()).hexdigest()
                doc_id, source = first + d, sources[d % SOURCES]
                docs.append((doc_id, sha, sha, text, len(text), len(text) // 4,
                             b"\0" * 512, "", None, "", False, now))
                occurrences.append((doc_id, source))
                offset = 0
                for ordinal, piece in enumerate(pieces):
                    i = d * CHUNKS_PER_DOCUMENT + ordinal
                    texts.append(piece)
                    chunk_source[i], chunk_document[i] = source, doc_id
                    chunks.append((store.pk, doc_id, ordinal, offset, offset + len(piece),
                                   piece, vector_literal(vectors[i])))
                    offset += len(piece) + 1
            with cursor.copy("COPY provenance_document (id, sha256, normalised_sha256, text, "
                             "byte_count, token_estimate, minhash, language, removed_at, "
                             "removal_reason, text_purged, created_at) FROM STDIN") as copy:
                for row in docs:
                    copy.write_row(row)
            with cursor.copy("COPY provenance_occurrence (document_id, source_id, external_id, "
                             "url, file, metadata, created_at) FROM STDIN") as copy:
                for document, source in occurrences:
                    copy.write_row((document, source, "", "", "", "{}", now))
            with cursor.copy("COPY retrieval_chunk (datastore_id, document_id, ordinal, start, "
                             "\"end\", text, embedding) FROM STDIN") as copy:
                for row in chunks:
                    copy.write_row(row)
            bar.update(len(chunks))
        bar.close()
        cursor.execute("SELECT setval(pg_get_serial_sequence('provenance_document', 'id'), "
                       "(SELECT max(id) FROM provenance_document))")
        for table in ("provenance_document", "provenance_occurrence", "retrieval_chunk"):
            cursor.execute(f"ANALYZE {table}")
    return {"store": store, "sources": sources, "texts": texts, "vectors": vectors,
            "chunk_source": chunk_source, "chunk_document": chunk_document, "rng": rng}


def probe(world: dict[str, Any], i: int) -> tuple[str, np.ndarray]:
    """Six words of chunk i and its vector plus noise (cosine ~0.9)."""
    rng = world["rng"]
    words = world["texts"][i].split()
    query = " ".join(rng.choice(words, 6, replace=False))
    noisy = world["vectors"][i] + 0.03 * rng.standard_normal(DIM).astype(np.float32)
    return query, unit(noisy[None, :])[0]


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn(*args)
    return out, (time.perf_counter() - started) * 1000


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p95_ms": float(np.percentile(a, 95)),
            "p99_ms": float(np.percentile(a, 99)), "mean_ms": float(a.mean())}


def ungoverned(store: Any, query: str, vector: np.ndarray, k: int) -> list[Any]:
    """The product's two statements with the governance clauses taken out, and the fusion."""
    from django.db import connection, transaction

    from retrieval.engine.fusion import reciprocal_rank
    from retrieval.services import search

    keyword_sql = search.KEYWORD_SQL.replace(search.ALLOWED, " TRUE ")
    vector_sql = search.VECTOR_SQL.replace(search.ALLOWED, " TRUE ")
    params = {"store": store.pk, "q": query, "k": search.CANDIDATES,
              "v": search.vector_literal(vector)}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(keyword_sql, params)
        keyword = [r[0] for r in cursor.fetchall()]
        cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        cursor.execute(f"SET LOCAL hnsw.ef_search = {int(search.EF_SEARCH)}")
        cursor.execute(vector_sql, params)
        vectors = [r[0] for r in cursor.fetchall()]
    return [f.item for f in reciprocal_rank([keyword, vectors], limit=k)]


def vector_plan(world: dict[str, Any]) -> str:
    """The planner's choice for the product's governed vector statement."""
    from django.db import connection, transaction

    from retrieval.services import search

    query, vector = probe(world, 0)
    params = {"store": world["store"].pk, "q": query, "k": search.CANDIDATES,
              "v": search.vector_literal(vector)}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
        cursor.execute("EXPLAIN " + search.VECTOR_SQL, params)
        return "\n".join(r[0] for r in cursor.fetchall())


def latency(world: dict[str, Any], queries: int) -> dict[str, Any]:
    from retrieval.services.search import retrieve

    store, rng = world["store"], world["rng"]
    picks = rng.integers(0, len(world["texts"]), queries)
    probes = [probe(world, int(i)) for i in picks]
    for query, vector in probes[:20]:  # warm the caches for all three
        retrieve(store, query, vector, k=5)
        ungoverned(store, query, vector, 5)
    rows: dict[str, list[float]] = {"product": [], "ungoverned": [], "keyword only": []}
    found = 0
    for (query, vector), i in zip(probes, picks, strict=True):
        hits, ms = timed(retrieve, store, query, vector, 5)
        rows["product"].append(ms)
        found += int(any(h.document == world["chunk_document"][i] for h in hits))
        rows["ungoverned"].append(timed(ungoverned, store, query, vector, 5)[1])
        rows["keyword only"].append(timed(retrieve, store, query, None, 5)[1])
    out: dict[str, Any] = {name: percentiles(ms) for name, ms in rows.items()}
    out["probes_finding_their_document"] = found / queries
    return out


def removal(world: dict[str, Any], probes_n: int) -> dict[str, Any]:
    from django.db import transaction

    from provenance.models import DataSource, Document
    from provenance.services.documents import document_tombstone
    from provenance.services.usage import opt_out_signal_record
    from retrieval.services.search import retrieve

    store, rng = world["store"], world["rng"]
    target = world["sources"][0]
    mine = np.flatnonzero(world["chunk_source"] == target)
    drawn = rng.choice(mine, probes_n, replace=len(mine) < probes_n)
    probes = [probe(world, int(i)) for i in drawn]

    def of_target(hits: list[Any]) -> int:
        return sum(1 for h in hits if any(s["id"] == target for s in h.sources))

    before = sum(1 for q, v in probes if of_target(retrieve(store, q, v, 5)))
    with transaction.atomic():
        opt_out_signal_record(source=DataSource.objects.get(pk=target), actor=None,
                              kind="robots_txt",
                              value="User-agent: *\nContent-Signal: ai-input=no\n")
    committed = time.perf_counter()
    first = None
    returned = 0
    for query, vector in probes:
        returned += of_target(retrieve(store, query, vector, 5))
        first = first or (time.perf_counter() - committed)
    # A tombstone: one document of another source, probed by its own chunks.
    victim = int(world["chunk_document"][np.flatnonzero(world["chunk_source"] ==
                                                         world["sources"][1])[0]])
    own = np.flatnonzero(world["chunk_document"] == victim)
    doc_probes = [probe(world, int(i)) for i in own]
    doc_before = sum(1 for q, v in doc_probes
                     if any(h.document == victim for h in retrieve(store, q, v, 5)))
    with transaction.atomic():
        document_tombstone(document=Document.objects.get(pk=victim), actor=None,
                           reason="bench: takedown")
    committed_doc = time.perf_counter()
    doc_after = sum(1 for q, v in doc_probes
                    if any(h.document == victim for h in retrieve(store, q, v, 5)))
    return {"probes": probes_n, "source_probes_hitting_before": before,
            "source_chunks_returned_after": returned,
            "seconds_commit_to_first_probe": first,
            "document_probes_hitting_before": doc_before,
            "document_probes_hitting_after": doc_after,
            "seconds_commit_to_document_probes_done": time.perf_counter() - committed_doc}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    _setup()
    from django.db import connection

    started = time.perf_counter()
    world = write_datastore(args.chunks, args.seed)
    written_s = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:  # as migration 0002 builds it
        cursor.execute("DROP INDEX IF EXISTS chunk_embedding_hnsw")
        cursor.execute("CREATE INDEX chunk_embedding_hnsw ON retrieval_chunk USING hnsw "
                       "(embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
    index_s = time.perf_counter() - started
    plan = vector_plan(world)
    speed = latency(world, args.queries)
    removed = removal(world, args.probes)
    result = {
        "benchmark": "retrieval_latency",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "date": datetime.now(UTC).date().isoformat(),
        "chunks": args.chunks, "queries": args.queries, "seed": args.seed,
        "write_s": written_s, "hnsw_build_s": index_s, "latency": speed, "removal": removed,
        "vector_plan_uses_hnsw": "chunk_embedding_hnsw" in plan, "vector_plan": plan,
        "goal_p95_ms": GOAL_P95_MS,
        "goal_met": speed["product"]["p95_ms"] <= GOAL_P95_MS
        and removed["source_chunks_returned_after"] == 0
        and removed["document_probes_hitting_after"] == 0
        and removed["seconds_commit_to_first_probe"] <= 1.0,
    }
    print(f"\nretrieval at {args.chunks:,} chunks, {args.queries} queries (2 legs, k=5)")
    print(f"{'path':16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for name in ("product", "ungoverned", "keyword only"):
        row = speed[name]
        print(f"{name:16} {row['p50_ms']:8.1f} {row['p95_ms']:8.1f} {row['p99_ms']:8.1f} "
              f"{row['mean_ms']:8.1f}")
    print(f"governance costs {speed['product']['p95_ms'] / speed['ungoverned']['p95_ms']:.2f}x "
          f"at p95; probes finding their document: {speed['probes_finding_their_document']:.1%}")
    print(f"removal: {removed['source_probes_hitting_before']}/{args.probes} source probes hit "
          f"before, {removed['source_chunks_returned_after']} chunks returned after; first "
          f"probe {removed['seconds_commit_to_first_probe'] * 1000:.0f} ms after the commit; "
          f"tombstone: {removed['document_probes_hitting_before']} probes hit before, "
          f"{removed['document_probes_hitting_after']} after")
    print(f"governed vector statement uses the HNSW index: {result['vector_plan_uses_hnsw']}")
    print(f"goal met: {result['goal_met']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
