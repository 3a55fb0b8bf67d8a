"""Hybrid retrieval from a datastore, governed at query time.

Two legs, each in one SQL statement: keywords (PostgreSQL full-text search over the chunks'
English tsvector: a chunk matches when it holds **any** of the question's words, stemmed, without
stop words or words too common to tell passages apart, ranked by `ts_rank_cd`; with every word,
as `websearch_to_tsquery` asks, the leg found none of bench/rag_eval.py's paraphrased questions)
and vectors (pgvector's HNSW index by cosine distance, `hnsw.iterative_scan` on, so the scan goes
on past rows the filters drop until it has enough). Their lists are fused by reciprocal rank
(retrieval/engine/fusion.py), the keyword leg weighted by RETRIEVAL_KEYWORD_WEIGHT.

**Governed in the same statements**: a chunk is never returned when its document is tombstoned
or when any source the document was found in refuses ai-input as of the query (the ai_input
verdict, services/usage.py, computed in SQL from the signals: no cache to go stale). So a removal
takes effect with the commit that records it, and no rebuild is needed; the takedown or the signal
that caused it is in the ledger.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from celery.exceptions import TimeoutError as CeleryTimeout
from django.db import connection, transaction
from kombu.exceptions import OperationalError as BrokerDown

from core.conf import setting
from provenance.services.lineage import inherited_refusals
from provenance.services.usage import REFUSING_SOURCES_SQL, SOURCE_PREFS_SQL
from retrieval.engine.fusion import reciprocal_rank
from retrieval.models import Datastore

log = logging.getLogger(__name__)
CANDIDATES = 50  # per leg: deep enough for the fusion to matter, cheap at 10^5 chunks
EF_SEARCH = 80   # HNSW's candidate list (pgvector's default is 40): recall over a filtered scan

# ARRAY(...) of an uncorrelated subquery is an InitPlan: the refusing sources are computed once
# per statement, not once per candidate row (as `IN (subquery)` planned here: a nested
# anti-join that re-aggregated the signals for every row the leg looked at).
ALLOWED = f"""
    d.removed_at IS NULL
    AND NOT EXISTS (SELECT 1 FROM provenance_occurrence o
                    WHERE o.document_id = c.document_id
                      AND (o.source_id = ANY(ARRAY({REFUSING_SOURCES_SQL.format(usage="ai_input")}))
                           OR o.source_id = ANY(%(inherited)s::bigint[])))
"""

# The question's words as one tsquery of alternatives: 'harbour' | 'salt' | ... (the lexemes
# to_tsvector keeps, quoted), less the words the planner's statistics say are in more than
# COMMON_ROWS chunks: ranking every chunk that holds a common word cost seconds at 10^5 chunks
# (bench/retrieval_latency.py), and such a word tells passages apart no better than a stop word.
# Empty when nothing is left, which matches nothing (the vector leg still answers).
COMMON_ROWS = 1000
ANY_WORD = """(SELECT coalesce(string_agg(quote_literal(replace(lexeme, '\\', '')), ' | ')
                              ::tsquery, ''::tsquery) AS query
       FROM unnest(tsvector_to_array(to_tsvector('english', %(q)s))) lexeme
       WHERE lexeme NOT IN (
           SELECT common.lexeme
           FROM pg_stats s JOIN pg_class t ON t.oid = 'retrieval_chunk'::regclass,
                unnest(s.most_common_elems::text::text[], s.most_common_elem_freqs)
                    AS common(lexeme, freq)
           WHERE s.schemaname = current_schema() AND s.tablename = 'retrieval_chunk'
             AND s.attname = 'search' AND common.lexeme IS NOT NULL
             AND common.freq * t.reltuples > """ + str(COMMON_ROWS) + """)) any_word"""

KEYWORD_SQL = f"""
SELECT c.id FROM retrieval_chunk c JOIN provenance_document d ON d.id = c.document_id,
     {ANY_WORD}
WHERE c.datastore_id = %(store)s AND c.search @@ any_word.query AND {ALLOWED}
ORDER BY ts_rank_cd(c.search, any_word.query) DESC, c.id
LIMIT %(k)s
"""

VECTOR_SQL = f"""
SELECT c.id FROM retrieval_chunk c JOIN provenance_document d ON d.id = c.document_id
WHERE c.datastore_id = %(store)s AND c.embedding IS NOT NULL AND {ALLOWED}
ORDER BY c.embedding <=> %(v)s::vector, c.id
LIMIT %(k)s
"""

HITS_SQL = f"""
SELECT c.id, c.document_id, c.ordinal, c.start, c."end", c.text, d.sha256,
       coalesce(json_agg(json_build_object(
           'id', s.id, 'name', s.name, 'license', s.license_expression,
           'use_class', s.use_class, 'train', coalesce(p.train, 'unknown'),
           'ai_input', coalesce(p.ai_input, 'unknown')) ORDER BY s.id)
           FILTER (WHERE s.id IS NOT NULL), '[]')
FROM retrieval_chunk c JOIN provenance_document d ON d.id = c.document_id
LEFT JOIN provenance_occurrence o ON o.document_id = c.document_id
LEFT JOIN provenance_datasource s ON s.id = o.source_id
LEFT JOIN ({SOURCE_PREFS_SQL.replace("%", "%%")}) p ON p.source_id = s.id
WHERE c.id = ANY(%s)
GROUP BY c.id, d.sha256
"""


@dataclass(frozen=True)
class Hit:
    chunk: int
    document: int
    sha256: str
    ordinal: int
    start: int
    end: int
    text: str
    score: float
    keyword_rank: int | None
    vector_rank: int | None
    sources: list[dict[str, Any]] = field(default_factory=list)


def vector_literal(vector: np.ndarray | list[float]) -> str:
    """pgvector's text form of a vector (7 significant digits: float32 round-trips)."""
    return "[" + ",".join(f"{x:.7g}" for x in np.asarray(vector, dtype=np.float32)) + "]"


def retrieve(store: Datastore, query: str, vector: np.ndarray | list[float] | None, k: int = 5,
             candidates: int = CANDIDATES, keyword_weight: float | None = None) -> list[Hit]:
    """The top `k` chunks for `query` (and its embedding, when given: without one only the
    keyword leg runs), each with its document, sources and both legs' ranks. The legs are
    fused with the keyword leg weighted by `keyword_weight` (RETRIEVAL_KEYWORD_WEIGHT)."""
    weight = float(setting("RETRIEVAL_KEYWORD_WEIGHT") if keyword_weight is None
                   else keyword_weight)
    # synthetic text whose upstream refuses it as AI input is refused with it
    params: dict[str, Any] = {"store": store.pk, "q": query, "k": candidates,
                              "inherited": inherited_refusals("ai_input")}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(KEYWORD_SQL, params)
        keyword = [row[0] for row in cursor.fetchall()]
        vectors: list[int] = []
        if vector is not None:
            cursor.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            cursor.execute(f"SET LOCAL hnsw.ef_search = {int(EF_SEARCH)}")
            cursor.execute(VECTOR_SQL, {**params, "v": vector_literal(vector)})
            vectors = [row[0] for row in cursor.fetchall()]
        fused = reciprocal_rank([keyword, vectors], limit=k, weights=[weight, 1.0])
        if not fused:
            return []
        cursor.execute(HITS_SQL, [[f.item for f in fused]])
        rows = {row[0]: row for row in cursor.fetchall()}
    hits = []
    for f in fused:
        cid, doc, ordinal, start, end, text, sha, sources = rows[f.item]
        hits.append(Hit(cid, doc, sha, ordinal, start, end, text, f.score, f.ranks[0],
                        f.ranks[1], sources if isinstance(sources, list) else []))
    return hits


def query_vector(query: str) -> tuple[list[float] | None, str]:
    """The query's embedding from a worker, or None and why (the keyword leg answers alone)."""
    from retrieval.tasks import embed_query_task

    wait = float(setting("RETRIEVAL_EMBED_WAIT"))
    if wait <= 0:
        return None, "query embedding is off (RETRIEVAL_EMBED_WAIT is 0): keywords only"
    try:
        return embed_query_task.apply_async((query,)).get(timeout=wait), ""
    except CeleryTimeout:
        return None, f"no worker embedded the query within {wait:g} s: keywords only"
    except BrokerDown as exc:
        log.warning("retrieval: broker unreachable for a query embedding: %s", exc)
        return None, "the broker is unreachable: keywords only"
