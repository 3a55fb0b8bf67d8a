"""The parts of bench/synthetic_eval.py that run after the student exists: span tracing through
the synthetic text, the takedown of one source, and the descendants listed at 10^6 documents."""

from __future__ import annotations

import random
import statistics
import time
from typing import Any


def _attribute(output: Any, actor: Any) -> Any:
    """A spans attribution run of `output`, its span index built here if it is queued."""
    from attribution.models import AttributionRun
    from attribution.services.runs import attribution_run_create, attribution_run_execute
    from attribution.services.spans import span_index_build

    run = attribution_run_create(output=output, actor=actor, methods=["spans"], enqueue=False)
    if run.span_index is not None and run.span_index.state == "queued":
        span_index_build(index_id=run.span_index.pk)
    assert attribution_run_execute(run_id=run.pk) == "done"
    return AttributionRun.objects.get(pk=run.pk)


def _literal(checkpoint: Any, text: str, actor: Any) -> Any:
    """A text registered as an output of `checkpoint` (what its span index is searched with)."""
    from attribution.services.outputs import model_output_create

    output = model_output_create(checkpoint=checkpoint, prompt="(traced text)", actor=actor,
                                 enqueue=False)
    type(output).objects.filter(pk=output.pk).update(state="succeeded", completion=f" {text}")
    output.refresh_from_db()
    return output


def _found(run: Any) -> set[int]:
    return set(run.results.filter(method="spans").values_list("document_id", flat=True))


def tracing(teacher: Any, student: Any, job: Any, n: int) -> dict[str, Any]:
    """The student's greedy outputs, traced into the synthetic text by its own span index, then
    from each synthetic document found (at most 3 an output) into the teacher's training data
    through the teacher's index; beside that, each output traced on the teacher's index
    directly."""
    from tqdm import tqdm

    from attribution.services.outputs import model_output_create, model_output_generate
    from provenance.models import Document, User

    actor = User.objects.filter(is_superuser=True).order_by("pk").first()
    synthetic = set(job.source.occurrences.values_list("document_id", flat=True))
    teacher_docs = set(teacher.version.members.values_list("document_id", flat=True))
    texts = list(Document.objects.filter(pk__in=teacher_docs).order_by("sha256")
                 .values_list("text", flat=True))
    prompts = [" ".join(t.split()[:6]) for t in random.Random(0).sample(texts, min(n, len(texts)))]
    rows = []
    for prompt in tqdm(prompts, desc="tracing", unit="output", mininterval=5):
        output = model_output_create(checkpoint=student, prompt=prompt, actor=actor,
                                     enqueue=False, params={"max_new_tokens": 32})
        made = model_output_generate(output_id=output.pk)
        assert made is not None
        into = sorted(_found(_attribute(made, actor)) & synthetic)
        onward: set[int] = set()
        for doc in into[:3]:
            text = Document.objects.get(pk=doc).text
            onward |= _found(_attribute(_literal(teacher, text, actor), actor)) & teacher_docs
        direct = _found(_attribute(_literal(teacher, made.completion, actor), actor)) \
            & teacher_docs
        rows.append({"prompt": prompt, "completion": made.completion,
                     "synthetic_documents": into, "teacher_documents_through": sorted(onward),
                     "teacher_documents_direct": sorted(direct)})
    return {"outputs": len(rows),
            "into_synthetic": sum(bool(r["synthetic_documents"]) for r in rows),
            "through_synthetic": sum(bool(r["teacher_documents_through"]) for r in rows),
            "direct": sum(bool(r["teacher_documents_direct"]) for r in rows),
            "both": sum(bool(r["teacher_documents_through"]) and bool(
                r["teacher_documents_direct"]) for r in rows),
            "rows": rows}


def takedown(source_id: int, student: Any) -> dict[str, Any]:
    """The takedown of one source, through to the student's certificate: filed for the source,
    accepted, scoped, every match confirmed, data remediated with descendants, the student
    retrained and the request verified."""
    from provenance.models import DataSource, User
    from takedowns.models import TakedownRequest, UnlearningRun
    from takedowns.services.remediation import takedown_remediate_data
    from takedowns.services.requests import takedown_decide, takedown_file
    from takedowns.services.scoping import (
        takedown_scope,
        takedown_scope_review,
        takedown_scope_start,
    )
    from takedowns.services.unlearning import takedown_remediate_models, unlearning_run_execute
    from takedowns.services.verification import takedown_verify

    started = time.perf_counter()
    staff = User.objects.filter(is_superuser=True).order_by("pk").first()
    assert staff is not None
    source = DataSource.objects.get(pk=source_id)
    request = takedown_file(actor=None, claimed_sources=[source], data={
        "legal_basis": "voluntary", "claimant_name": source.owner.name,
        "claimant_email": "rights@example.org",
        "works": [{"title": source.name, "identifiers": [source.name]}]})
    takedown_decide(request=request, actor=staff, to="accepted")
    scoped = takedown_scope(request_id=takedown_scope_start(request=request, actor=staff).pk)
    assert scoped is not None
    documents = sorted(set(scoped.matches.values_list("document_id", flat=True)))
    takedown_scope_review(request=request, actor=staff, confirm=documents, dismiss=[])
    scope = TakedownRequest.objects.get(pk=request.pk).scope["descendants"]
    request = takedown_remediate_data(request=request, actor=staff, descendants=True)
    remediation = request.scope["remediation"]
    [run] = takedown_remediate_models(request=request, actor=staff, methods=["retrain"],
                                      checkpoints=[student])
    done = unlearning_run_execute(run_id=run.pk)
    assert done is not None and done.state == UnlearningRun.State.SUCCEEDED, done and done.error
    verified = takedown_verify(request_id=request.pk)
    assert verified is not None
    certificate = verified.verification
    [entry] = [c for c in certificate.get("checkpoints", []) if c["checkpoint"] == student.pk]
    retrain = entry.get("retrain") or {}
    return {"source": source.name, "source_id": source.pk, "documents": len(documents),
            "scope_descendants": {k: len(v) for k, v in scope.items()},
            "synthetic_documents_removed": len(remediation["synthetic_documents"]),
            "versions": [v["version"] for v in remediation["versions"]],
            "verdict": entry["verdict"], "certificate_verdict": certificate["verdict"],
            "separable": entry["separability"]["separable"],
            "separable_by": entry["separability"]["by"],
            "canary_tested": entry["canary_tested"],
            "canary_inherited_from": entry.get("canary_inherited_from", []),
            "original_canary_p": entry["original"].get("canary_p"),
            "retrain_canary_p": retrain.get("canary_p"),
            "original": entry["original"], "retrain": retrain,
            "forget_documents": entry["forget_documents"],
            "seconds": round(time.perf_counter() - started, 1)}


def descendants_at_scale(source_id: int, documents: int) -> dict[str, Any]:
    """`documents` more documents written by COPY and curated into a version, then the
    descendants of the taken-down source and of a scale source, timed beside a scan of the
    version members for the same source."""
    from django.db import connection
    from scale import write_corpus

    from provenance.models import DataSource, Document, VersionMember
    from provenance.services import curation, datasets
    from provenance.services.lineage import descendants_summary, source_descendants

    t0 = time.perf_counter()
    scale_sources = write_corpus(documents, seed=0)
    written = time.perf_counter() - t0
    dataset = datasets.dataset_create(actor=None, slug="scale-lineage", title="Scale lineage")
    job = datasets.curation_job_create(dataset=dataset, actor=None, enqueue=False, recipe={
        "intended_use": "commercial", "sources": scale_sources})
    t0 = time.perf_counter()
    finished = curation.curation_run(job_id=job.pk)
    assert finished is not None and finished.version is not None
    curated = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    def scan(pk: int) -> list[int]:
        return list(VersionMember.objects.filter(source_id=pk).values_list(
            "version_id", flat=True).distinct())

    rows: list[dict[str, Any]] = []
    for source in DataSource.objects.filter(pk__in=[source_id, scale_sources[0]]).order_by("pk"):
        found = source_descendants(source)
        first = {pk for pk, g in found.versions.items() if g == 0}
        assert sorted(first) == sorted(scan(source.pk))  # the two ways agree
        rows.append({
            "source": source.name, "versions": len(found.versions),
            "checkpoints": len(found.checkpoints),
            "synthetic_sources": len(found.synthetic_sources),
            "students": len(found.students),
            "seconds": timed(lambda s=source: source_descendants(s)),
            # what a takedown's scope adds: from the versions holding the documents on
            "summary_seconds": timed(lambda f=first: descendants_summary(f)),
            "scan_seconds": timed(lambda s=source: scan(s.pk))})
    return {"documents": Document.objects.count(), "members": VersionMember.objects.count(),
            "write_seconds": round(written, 1), "curation_seconds": round(curated, 1),
            "rows": rows, "goal_seconds": 1.0,
            "met": all(r["seconds"] <= 1.0 and r["summary_seconds"] <= 1.0 for r in rows)}


def timed(fn: Any, repeat: int = 5) -> float:
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
