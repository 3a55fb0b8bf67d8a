"""Scoping an accepted request: which documents hold the claimed works, by exact hash, MinHash
near-duplicates, embedding neighbours, verbatim spans (through the attribution span indexes
that exist) and containment (a short sample inside a longer document) of the samples, plus
every document of a claimed source, plus the documents a curator adds with a reason; which
dataset versions and checkpoints contain them (lineage). A curator then confirms
or dismisses each match.

The scan runs on a worker (`takedowns.scope`, default queue) and can be rerun: it replaces the
matches nobody has reviewed yet and keeps the reviewed ones.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import numpy as np
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from core.errors import InvalidTransition
from core.jobs import job_run
from provenance.engine.text import NUM_PERM, minhash_signatures, normalise
from provenance.ledger.append import ledger_append
from provenance.models import Document, ModelCheckpoint, Occurrence, User, VersionMember
from provenance.services.lineage import descendants_summary
from retrieval.models import Chunk
from takedowns.models import TakedownMatch, TakedownRequest
from takedowns.services.workflow import takedown_transition

log = logging.getLogger(__name__)

State = TakedownRequest.State
Method = TakedownMatch.Method
NEAR_DUPLICATE_JACCARD = 0.5   # estimated Jaccard of 5-word shingles, as curation's dedup uses
EMBEDDING_MIN_COSINE = 0.85
EMBEDDING_TOP_K = 10
NOT_EMBEDDED_LISTED = 100  # of the documents not embedded yet, the scope names this many
SPAN_MIN_TOKENS = 16   # a verbatim run this long is evidence of a copy, not a common phrase
SPAN_MIN_SHARE = 0.2   # of the sample's tokens
SCAN_BATCH = 20_000
# Containment: a short sample (a quotation) inside a longer stored document ("... -- Author").
CONTAINMENT_MIN_WORDS = 4      # fewer words would be found everywhere
CONTAINMENT_MIN_SHARE = 0.9    # of the sample's word 3-grams found in the document
CONTAINMENT_CANDIDATES = 5_000  # documents holding every word of the samples, checked in order
_WORD = re.compile(r"\w+")
# Every word of a sample in a document (PostgreSQL's full-text match, in one scan for all the
# samples); the order of the words is then checked here.
_HOLDING_EVERY_WORD = """
WITH docs AS (SELECT id, to_tsvector('simple', text) AS words FROM provenance_document
              WHERE NOT text_purged)
SELECT docs.id, array_agg(u.i - 1) FROM docs
JOIN unnest(%s::text[]) WITH ORDINALITY AS u(sample, i)
  ON docs.words @@ plainto_tsquery('simple', u.sample)
GROUP BY docs.id ORDER BY docs.id LIMIT %s
"""


def _job(request: TakedownRequest, state: str, **detail: Any) -> None:
    """The scoping task's own state on the request (`scope.job`), for pages and clients to
    poll: queued, running, done (with what it found) or failed (with the error)."""
    request.scope = {**request.scope, "job": {"state": state, "at": timezone.now().isoformat(),
                                              **detail}}


@transaction.atomic
def takedown_scope_start(*, request: TakedownRequest, actor: User) -> TakedownRequest:
    """Start scoping an accepted request, or scope it again (after a failure, or to look again
    at a corpus that has grown); the matches already reviewed are kept."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    job = (request.scope.get("job") or {}).get("state")
    if request.state == State.SCOPING and job in ("queued", "running"):
        raise InvalidTransition(f"takedown {request.reference}", f"scoping ({job})",
                                "scope again")
    if request.state == State.SCOPING:
        ledger_append(actor=actor, event="takedown.scope_rerun", subject=request,
                      payload={"reference": request.reference, "last": job or "unknown"})
    else:
        takedown_transition(request, State.SCOPING, actor, "scoping started")
    _job(request, "queued")
    request.save(update_fields=["scope", "updated_at"])
    from takedowns.tasks import takedown_scope_task

    takedown_scope_task.delay_on_commit(request.pk)
    return request


def _near_duplicates(samples: list[tuple[int, str]]) -> list[tuple[int, int, float]]:
    """(work id, document id, estimated Jaccard) for every document whose MinHash agrees with a
    sample's on at least the threshold share of permutations; one vectorised pass per batch."""
    if not samples:
        return []
    signatures = np.stack([np.frombuffer(sig, dtype="<u4") for sig in minhash_signatures(
        [normalise(text) for _, text in samples])])  # (works, NUM_PERM)
    found: list[tuple[int, int, float]] = []
    last = 0
    while True:
        rows = list(Document.objects.filter(pk__gt=last).order_by("pk")
                    .values_list("pk", "minhash")[:SCAN_BATCH])
        if not rows:
            return found
        last = rows[-1][0]
        matrix = np.frombuffer(b"".join(bytes(m) for _, m in rows), dtype="<u4").reshape(
            len(rows), NUM_PERM)
        agree = (matrix[None, :, :] == signatures[:, None, :]).mean(axis=2)  # (works, docs)
        for w, d in zip(*np.nonzero(agree >= NEAR_DUPLICATE_JACCARD), strict=True):
            found.append((samples[w][0], rows[d][0], float(agree[w, d])))


def _words(text: str) -> list[str]:
    return _WORD.findall(normalise(text).casefold())


def _trigrams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + 3]) for i in range(max(1, len(words) - 2))}


def _containment(samples: list[tuple[int, str]]) -> list[tuple[int, int, float]]:
    """(work id, document id, share) for documents that contain a sample: every word of it,
    and at least CONTAINMENT_MIN_SHARE of its word 3-grams (so in order), whatever the case,
    punctuation, layout or text around it (an attribution line, a collection of quotations)."""
    usable = [(work, text, _words(text)) for work, text in samples]
    usable = [u for u in usable if len(u[2]) >= CONTAINMENT_MIN_WORDS]
    if not usable:
        return []
    with connection.cursor() as cursor:
        cursor.execute(_HOLDING_EVERY_WORD, [[" ".join(w) for _, _, w in usable],
                                             CONTAINMENT_CANDIDATES])
        candidates = dict(cursor.fetchall())
    if len(candidates) >= CONTAINMENT_CANDIDATES:
        log.warning("containment: over %d candidate documents, the rest not checked",
                    CONTAINMENT_CANDIDATES)
    found = []
    wanted = [_trigrams(words) for _, _, words in usable]
    for pk, text in Document.objects.filter(pk__in=list(candidates)).values_list("pk", "text"):
        held = _trigrams(_words(text))
        for index in candidates[pk]:
            share = len(wanted[index] & held) / len(wanted[index])
            if share >= CONTAINMENT_MIN_SHARE:
                found.append((usable[index][0], pk, share))
    return found


def _embedding_neighbours(samples: list[tuple[int, str]]) -> list[tuple[int, int, float]]:
    from pgvector.django import CosineDistance

    from provenance.services.embeddings import embed_texts

    if not samples or not Document.objects.filter(embedding__isnull=False).exists():
        return []
    found = []
    vectors, _ = embed_texts([t for _, t in samples])
    for (work, _), vector in zip(samples, vectors, strict=True):
        near = (Document.objects.filter(embedding__isnull=False)
                .annotate(distance=CosineDistance("embedding", vector))
                .order_by("distance").values_list("pk", "distance")[:EMBEDDING_TOP_K])
        found += [(work, pk, 1.0 - float(d)) for pk, d in near
                  if 1.0 - float(d) >= EMBEDDING_MIN_COSINE]
    return found


def _verbatim_spans(samples: list[tuple[int, str]]) -> list[tuple[int, int, float]]:
    """Documents sharing long verbatim spans with a sample, through the attribution span
    indexes that exist (the newest of each version); score = the share of the sample's tokens
    inside spans found in that document."""
    from attribution.engine.spans import SpanParams, coverage
    from attribution.models import SpanIndex
    from attribution.services.spans import spans_of_text

    indexes = {i.version_id: i for i in SpanIndex.objects.filter(
        state=SpanIndex.State.SUCCEEDED).select_related("checkpoint").order_by("pk")}
    params = SpanParams(min_length=SPAN_MIN_TOKENS, max_count=10_000, max_docs=100,
                        max_density=1.0)
    found: dict[tuple[int, int], float] = {}
    for index in indexes.values():
        for work, text in samples:
            ids, spans, _ = spans_of_text(text, index, params)
            for doc, mask in coverage(len(ids), spans).items():
                share = float(mask.mean())
                if share >= SPAN_MIN_SHARE:
                    found[(work, doc)] = max(share, found.get((work, doc), 0.0))
    return [(work, doc, share) for (work, doc), share in found.items()]


def takedown_scope(*, request_id: int) -> TakedownRequest | None:
    """Find the matches of a request in scoping; None when it is not (any more) scoping."""
    def claim(pk: int) -> TakedownRequest | None:
        request = TakedownRequest.objects.filter(pk=pk).first()
        if request is None or request.state != State.SCOPING or \
                (request.scope.get("job") or {}).get("state") in ("done", "failed"):
            return None  # not scoping, or a late duplicate of a finished task
        _job(request, "running")
        request.save(update_fields=["scope", "updated_at"])
        return request

    def fail(pk: int, exc: BaseException) -> None:
        request = TakedownRequest.objects.get(pk=pk)
        _job(request, "failed", error=str(exc)[:2000])
        request.save(update_fields=["scope", "updated_at"])

    with job_run("takedown_scope", request_id, claim=claim, fail=fail) as request:
        if request is None:
            return None
        _scope(request)
    request.refresh_from_db()
    return request


def _scope(request: TakedownRequest) -> TakedownRequest:
    works = list(request.works.all())
    samples = [(w.pk, w.sample_text) for w in works if w.sample_text.strip()]
    rows: dict[tuple[int, str], TakedownMatch] = {}

    def add(doc: int, method: str, score: float, work: int | None) -> None:
        key = (doc, method)
        if key not in rows or rows[key].score < score:
            rows[key] = TakedownMatch(request=request, document_id=doc, method=method,
                                      score=round(score, 4), work_id=work)

    by_hash = {w.sample_sha256: w.pk for w in works if w.sample_sha256}
    # The normalised form: the claimant's sample matches the stored text whatever its layout.
    for pk, sha in Document.objects.filter(normalised_sha256__in=list(by_hash)).values_list(
            "pk", "normalised_sha256"):
        add(pk, Method.EXACT, 1.0, by_hash[sha])
    for pk in Document.objects.filter(
            occurrences__source__in=request.claimed_sources.all()).values_list(
            "pk", flat=True).distinct():
        add(pk, Method.SOURCE, 1.0, None)
    for work, pk, score in _near_duplicates(samples):
        add(pk, Method.NEAR_DUPLICATE, score, work)
    # Documents not embedded yet cannot be embedding neighbours: the report names them.
    waiting = list(Document.objects.filter(embedding__isnull=True, text_purged=False)
                   .order_by("pk").values_list("pk", flat=True)[:NOT_EMBEDDED_LISTED + 1])
    waiting_total = (len(waiting) if len(waiting) <= NOT_EMBEDDED_LISTED else
                     Document.objects.filter(embedding__isnull=True, text_purged=False).count())
    for work, pk, score in _embedding_neighbours(samples):
        add(pk, Method.EMBEDDING, score, work)
    for work, pk, score in _verbatim_spans(samples):
        add(pk, Method.SPAN, score, work)
    for work, pk, score in _containment(samples):
        add(pk, Method.CONTAINMENT, score, work)
    not_embedded = {"count": waiting_total, "documents": waiting[:NOT_EMBEDDED_LISTED]}
    return _publish(request, list(rows.values()), not_embedded)


@transaction.atomic
def _publish(request: TakedownRequest, found: list[TakedownMatch],
             not_embedded: dict[str, Any]) -> TakedownRequest:
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    reviewed = set(request.matches.filter(confirmed__isnull=False)
                   .values_list("document_id", "method"))
    request.matches.filter(confirmed__isnull=True).delete()  # a rerun replaces its own rows
    TakedownMatch.objects.bulk_create([m for m in found
                                       if (m.document_id, m.method) not in reviewed])
    request.scope = _lineage(request)
    _job(request, "done", matches=len(found), not_embedded=not_embedded)
    request.save(update_fields=["scope", "updated_at"])
    ledger_append(actor=None, event="takedown.scoped", subject=request,
                  payload={"reference": request.reference,
                           "documents": request.scope["documents"],
                           "versions": [v["id"] for v in request.scope["versions"]],
                           "checkpoints": [c["id"] for c in request.scope["checkpoints"]],
                           "datastores": [d["id"] for d in request.scope["datastores"]],
                           "descendants": {k: [r["id"] for r in rows] for k, rows in
                                           request.scope["descendants"].items()}})
    return request


def _lineage(request: TakedownRequest) -> dict[str, Any]:
    """The dataset versions holding a matched (not dismissed) document, and the checkpoints
    trained on them."""
    docs = request.matches.exclude(confirmed=False).values_list("document_id", flat=True)
    versions: dict[int, dict[str, Any]] = {}
    for member in (VersionMember.objects.filter(document_id__in=docs)
                   .select_related("version__dataset").order_by("version_id")):
        v = member.version
        entry = versions.setdefault(v.pk, {"id": v.pk, "version": str(v), "documents": 0})
        entry["documents"] += 1
    checkpoints = [{"id": c.pk, "name": c.name, "version": c.version_id}
                   for c in ModelCheckpoint.objects.filter(version_id__in=list(versions))
                   .order_by("pk")]
    # Datastores answer from their chunks until the work is removed; a tombstone takes it out
    # of every one of them at once (retrieval refuses it at query time), and the scope names
    # them so the rights-holder sees where it was retrievable.
    datastores = [{"id": row["datastore"], "name": row["datastore__name"],
                   "chunks": row["chunks"]}
                  for row in Chunk.objects.filter(document_id__in=docs)
                  .values("datastore", "datastore__name").annotate(chunks=Count("id"))
                  .order_by("datastore")]
    return {"documents": len(set(docs)), "versions": list(versions.values()),
            "checkpoints": checkpoints, "datastores": datastores,
            # synthetic text those models wrote, the versions holding it, their students
            "descendants": descendants_summary(set(versions)),
            "scoped_at": timezone.now().isoformat()}


@transaction.atomic
def takedown_scope_review(*, request: TakedownRequest, actor: User, confirm: list[int],
                          dismiss: list[int]) -> TakedownRequest:
    """A curator confirms or dismisses matched documents (all of a document's matches)."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    if request.state != State.SCOPING:
        raise InvalidTransition(f"takedown {request.reference}", request.state,
                                "review the scope of")
    both = set(confirm) & set(dismiss)
    if both:
        raise ValidationError({"confirm": f"document(s) both confirmed and dismissed: "
                                          f"{sorted(both)}"})
    known = set(request.matches.values_list("document_id", flat=True))
    unknown = sorted((set(confirm) | set(dismiss)) - known)
    if unknown:
        raise ValidationError({"confirm": f"not matched by this request: {unknown}"})
    for ids, value in ((confirm, True), (dismiss, False)):
        request.matches.filter(document_id__in=ids).update(confirmed=value, reviewed_by=actor)
    request.scope = {**_lineage(request), "job": request.scope.get("job", {})}
    request.save(update_fields=["scope", "updated_at"])
    ledger_append(actor=actor, event="takedown.scope_reviewed", subject=request,
                  payload={"reference": request.reference, "confirmed": sorted(confirm),
                           "dismissed": sorted(dismiss)})
    return request


NOTE_LIMIT = 2_000
SEARCH_LIMIT = 20


@transaction.atomic
def takedown_scope_add(*, request: TakedownRequest, actor: User, documents: list[int],
                       reason: str, work: int | None = None) -> TakedownRequest:
    """A curator adds documents no method found (a quotation stored with other text, a copy
    under another title), confirmed, with who added them and why; in the ledger. A rerun of
    the scan keeps them."""
    request = TakedownRequest.objects.select_for_update().get(pk=request.pk)
    if request.state != State.SCOPING:
        raise InvalidTransition(f"takedown {request.reference}", request.state,
                                "add documents to the scope of")
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "say why these documents hold the work"})
    if len(reason) > NOTE_LIMIT:
        raise ValidationError({"reason": f"at most {NOTE_LIMIT} characters"})
    ids = sorted(set(documents))
    if not ids:
        raise ValidationError({"documents": "give at least one document id"})
    known = set(Document.objects.filter(pk__in=ids).values_list("pk", flat=True))
    missing = [pk for pk in ids if pk not in known]
    if missing:
        raise ValidationError({"documents": f"no such document(s): {missing[:20]}"})
    if work is not None and not request.works.filter(pk=work).exists():
        raise ValidationError({"work": f"this request names no work with id {work}"})
    for pk in ids:
        TakedownMatch.objects.update_or_create(
            request=request, document_id=pk, method=Method.CURATOR,
            defaults={"score": 1.0, "confirmed": True, "reviewed_by": actor, "note": reason,
                      "work_id": work})
    # Any other match of these documents is confirmed with them.
    request.matches.filter(document_id__in=ids).update(confirmed=True, reviewed_by=actor)
    request.scope = {**_lineage(request), "job": request.scope.get("job", {})}
    request.save(update_fields=["scope", "updated_at"])
    ledger_append(actor=actor, event="takedown.scope_added", subject=request,
                  payload={"reference": request.reference, "documents": ids, "work": work,
                           "reason": reason})
    return request


def takedown_scope_search(query: str, limit: int = SEARCH_LIMIT) -> list[dict[str, Any]]:
    """Documents whose text holds `query` (case and layout aside), for a curator to add: the
    id, an excerpt around the first hit and the sources."""
    words = _words(query)
    if len(" ".join(words)) < 3:
        raise ValidationError({"q": "give at least 3 letters to search for"})
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, text FROM provenance_document WHERE NOT text_purged AND "
            "to_tsvector('simple', text) @@ phraseto_tsquery('simple', %s) "
            "ORDER BY id LIMIT %s", [" ".join(words), limit])
        rows = cursor.fetchall()
    sources: dict[int, list[str]] = {}
    for doc, name in Occurrence.objects.filter(
            document_id__in=[pk for pk, _ in rows]).values_list("document_id", "source__name"):
        sources.setdefault(doc, []).append(name)
    found = []
    for pk, text in rows:
        folded = normalise(text)
        at = folded.casefold().find(words[0]) if words else 0
        start = max(0, at - 60)
        found.append({"document": pk, "excerpt": ("…" if start else "") + folded[start:start + 200]
                      + ("…" if start + 200 < len(folded) else ""),
                      "sources": sorted(sources.get(pk, []))})
    return found
