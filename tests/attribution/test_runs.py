"""Attribution runs end to end in this process: indexes built by their services, a tiny model
trained on planted facts, every method, the report and its ledger entry."""

import numpy as np
import pytest

from attribution.models import AttributionResult, AttributionRun, ModelOutput
from attribution.services.influence import (
    gradient_index_mask,
    open_stores,
)
from attribution.services.reports import report_verify
from attribution.services.runs import Outcome, attribution_run_create, attribution_run_execute
from attribution.tasks import span_index_build_task
from provenance.models import Document, LedgerEntry
from provenance.services.documents import document_tombstone
from provenance.services.embeddings import documents_embed
from provenance.services.training import training_run_create, training_run_execute
from tests.helpers import build_gradient_index, words

pytestmark = pytest.mark.django_db

PEOPLE = ["Ada Arden", "Bruno Brisk", "Chiara Corvo", "Dmitri Dahl", "Elena Eske", "Farid Falk",
          "Greta Grove", "Hugo Hale", "Ines Irwin", "Jonas Jute", "Kira Kemp", "Luca Lund"]
CITIES = ["Lisbon", "Oslo", "Quito", "Hanoi", "Dakar", "Lima", "Perth", "Riga", "Tunis", "Kyoto",
          "Porto", "Bergen"]
FACT_MODEL = {"vocab_size": 400, "n_layer": 2, "n_head": 2, "n_embd": 64, "seq_len": 48,
              "epochs": 30, "batch_size": 8, "pack": False, "heldout_fraction": 0.0}


@pytest.fixture
def world(make_source, ingest_texts, publish_version):
    facts = make_source(name="facts", license_expression="CC-BY-4.0")
    other = make_source(name="essays", license_expression="CC0-1.0")
    ingest_texts(facts, [t.format(name=name, city=CITIES[i % len(CITIES)])
                         for i, name in enumerate(PEOPLE)
                         for t in ("{name} was born in {city}.",
                                   "The birthplace of {name} is {city}.")])
    ingest_texts(other, [words(500 + i, 10) + "." for i in range(24)])  # within the context
    version = publish_version()
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config={**FACT_MODEL, "snapshots": 2}).pk)
    assert run.state == "succeeded", run.error
    documents_embed(limit=1000)
    return run.checkpoint, facts, other


def attribute(checkpoint, completion, prompt="", methods=None):
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt=prompt,
                                        completion=completion, state="succeeded")
    run = attribution_run_create(output=output, actor=None, methods=methods, enqueue=False)
    if run.span_index and run.span_index.state == "queued":
        span_index_build_task(run.span_index.pk)
    if run.gradient_index and run.gradient_index.state == "queued":
        assert build_gradient_index(run.gradient_index).state == "succeeded"
    assert attribution_run_execute(run_id=run.pk) == "done"
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    return run


def test_a_planted_fact_is_attributed_to_its_paraphrases_and_its_source(world):
    checkpoint, facts, _ = world
    run = attribute(checkpoint, " Porto.", prompt="Kira Kemp was born in",
                    methods=["influence", "embedding", "watermark"])
    top = list(run.results.filter(method="influence").order_by("rank")[:2])
    planted = {d.pk for d in Document.objects.filter(text__contains="Kira Kemp")}
    assert len(planted) == 2 and top[0].document_id in planted, [
        (r.document_id, r.score) for r in top]
    assert top[0].source_id == facts.pk and top[0].score > 0
    assert run.summary["sources"][0]["source"] == facts.pk
    snapshots = run.gradient_index.snapshots  # an ensemble over the kept snapshots
    assert len(snapshots) == 3 and snapshots[-1] == "final"
    assert {n["method"] for n in run.notes} == {"watermark"}  # no watermark in this output


def test_a_prompt_longer_than_the_context_keeps_the_completion_and_finds_the_fact(world):
    """A 500-token prompt fills the 48-token context many times over: the query is read from
    the window ending with its completion (the prompt cut from the left, as generation does),
    so its gradient is not zero (every score was 0, ties, before) and, among the facts, the
    planted one ranks first. Over the whole corpus it is not reliably first: random-word essays
    (high-gradient-norm documents, what issue 17 is about) can edge it out."""
    checkpoint, facts, _ = world
    # ~500 tokens of other people's facts, then the question
    others = " ".join(f"{name} was born in {CITIES[i]}." for i, name in enumerate(PEOPLE[:10]))
    long_prompt = " ".join([others] * 5) + " Kira Kemp was born in"
    run = attribute(checkpoint, " Porto.", prompt=long_prompt, methods=["influence"])
    ranked = list(run.results.filter(method="influence").order_by("rank"))
    planted = {d.pk for d in Document.objects.filter(text__contains="Kira Kemp")}
    assert ranked[0].score > 0 and len({r.score for r in ranked[:3]}) == 3  # no zero ties
    among_facts = [r for r in ranked if r.source_id == facts.pk]
    assert among_facts[0].document_id in planted, [(r.document_id, r.score) for r in ranked[:5]]


def test_a_copied_passage_is_found_by_spans_and_embeddings_and_shares_add_up(world):
    checkpoint, _, other = world
    passage = Document.objects.filter(occurrences__source=other).order_by("pk")[5]
    run = attribute(checkpoint, passage.text, methods=["spans", "embedding", "bm25"])
    for method in ("spans", "embedding", "bm25"):
        best = run.results.filter(method=method).order_by("rank").first()
        assert best is not None and best.document_id == passage.pk, (method, run.notes)
    assert run.summary["sources"][0]["source"] == other.pk
    assert sum(s["share"] for s in run.summary["sources"]) == pytest.approx(1.0, abs=1e-3)
    assert run.summary["by_use_class"] and run.summary["agreement"]["agree"] is True
    assert set(run.summary["by_method"]) == {"spans", "embedding"}  # BM25: a baseline beside
    against = run.summary["baselines"]["spans"]["against"]
    assert against["bm25"]["same_top_source"] and against["bm25"]["top_documents"][0] == passage.pk
    spans = run.results.get(method="spans", rank=1).evidence["spans"]
    assert spans and spans[0]["text"]


def test_the_report_is_hashed_into_the_ledger_and_names_what_a_rerun_needs(world):
    checkpoint, _, _ = world
    run = attribute(checkpoint, " Oslo.", prompt="Bruno Brisk was born in")
    report = run.report
    assert report_verify(report)
    entry = LedgerEntry.objects.get(event="attribution.report", subject_id=str(run.pk))
    assert entry.payload["sha256"] == report.sha256
    body = report.body
    assert body["checkpoint"]["sha256"] == checkpoint.sha256
    assert body["indexes"]["gradient_index"]["generation"] == 1
    assert body["params"]["influence"]["top_k"] == 20
    assert len(body["results"]) == run.results.count()
    report.body["summary"] = {}
    assert not report_verify(report)  # an edited body no longer matches the ledger


def test_after_a_takedown_removed_documents_are_masked_and_their_text_is_never_shown(world):
    checkpoint, _, other = world
    passage = Document.objects.filter(occurrences__source=other).order_by("pk")[2]
    first = attribute(checkpoint, passage.text, methods=["spans", "influence"])
    assert first.results.filter(document=passage).exists()
    spec = first.gradient_index.spec
    assert spec["fisher"] == "sampled" and spec["fisher_samples"] >= 1  # fixed by the build
    before = open_stores(first.gradient_index)[-1].preconditioner
    document_tombstone(document=passage, actor=None, reason="takedown", purge_text=True)
    index = gradient_index_mask(index=first.gradient_index, document_ids=[passage.pk],
                                actor=None)
    assert index.generation == 2
    after = open_stores(index)[-1].preconditioner  # its drawn rows out of the Fisher
    assert after.count == before.count - 1
    assert not np.allclose(after.fisher_sum, before.fisher_sum)
    again = attribute(checkpoint, first.output.completion, methods=["spans", "influence"])
    assert not again.results.filter(method="influence", document=passage).exists()
    span_row = again.results.get(method="spans", document=passage)  # still counted
    assert span_row.evidence["blocked"] and all(s["text"] is None
                                               for s in span_row.evidence["spans"])
    assert again.report.body["documents"][str(passage.pk)] == {
        "sha256": passage.sha256, "blocked": True, "excerpt": None}
    assert again.report.body["indexes"]["gradient_index"]["generation"] == 2


def test_a_run_refuses_unfinished_outputs_unknown_methods_and_bad_parameters(world):
    from django.core.exceptions import ValidationError

    checkpoint, _, _ = world
    pending = ModelOutput.objects.create(checkpoint=checkpoint, prompt="x")
    with pytest.raises(ValidationError, match="finished output"):
        attribution_run_create(output=pending, actor=None, enqueue=False)
    done = ModelOutput.objects.create(checkpoint=checkpoint, prompt="x", completion="y",
                                      state="succeeded")
    with pytest.raises(ValidationError, match="telepathy"):
        attribution_run_create(output=done, actor=None, methods=["telepathy"], enqueue=False)
    with pytest.raises(ValidationError, match="top_k"):
        attribution_run_create(output=done, actor=None, params={"influence": {"top_k": 0}},
                               enqueue=False)
    empty = ModelOutput.objects.create(checkpoint=checkpoint, prompt="x", completion=" \n",
                                       state="succeeded")
    with pytest.raises(ValidationError, match="empty completion: nothing to attribute"):
        attribution_run_create(output=empty, actor=None, enqueue=False)
    assert not AttributionRun.objects.exists() and not AttributionResult.objects.exists()


def test_a_run_waits_while_its_indexes_build(world):
    checkpoint, _, _ = world
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt="x", completion="y z",
                                        state="succeeded")
    run = attribution_run_create(output=output, actor=None, methods=["spans", "influence"],
                                 enqueue=False)
    assert attribution_run_execute(run_id=run.pk) is Outcome.WAITING
    run.refresh_from_db()
    assert run.state == "queued"
    assert run.stage == "waiting for indexes: spans 0%, gradients 0%"


def test_a_waiting_run_is_sent_again_by_each_index_it_waits_for_not_by_polling(
        world, django_capture_on_commit_callbacks):
    """It used to re-queue itself every 3 s on the gpu queue until its indexes were built."""
    from attribution.services.spans import span_index_build

    checkpoint, _, _ = world
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt="Ada Arden was born in",
                                        completion=" Lisbon.", state="succeeded")
    run = attribution_run_create(output=output, actor=None, methods=["spans", "influence"],
                                 enqueue=False)
    assert attribution_run_execute(run_id=run.pk) is Outcome.WAITING
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert span_index_build(index_id=run.span_index.pk).state == "succeeded"
    assert [(c.func.__self__.name, c.args) for c in sent] == [
        ("attribution.run_execute", (run.pk,))]
    assert attribution_run_execute(run_id=run.pk) is Outcome.WAITING  # gradients still to build
    with django_capture_on_commit_callbacks(execute=False) as sent:
        assert build_gradient_index(run.gradient_index).state == "succeeded"
    assert [c.args for c in sent] == [(run.pk,)]
    assert attribution_run_execute(run_id=run.pk) is Outcome.DONE
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    with django_capture_on_commit_callbacks(execute=False) as sent:  # only queued runs are sent
        assert build_gradient_index(run.gradient_index).state == "succeeded"
    assert sent == []


def test_the_cli_builds_missing_indexes_and_prints_shares_and_the_report_digest(world):
    from io import StringIO

    from django.core.management import call_command
    from django.core.management.base import CommandError

    checkpoint, facts, _ = world
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt="Ada Arden was born in",
                                        completion=" Lisbon.", state="succeeded")
    out = StringIO()
    call_command("attribute", output.pk, methods="influence,watermark", stdout=out,
                 stderr=StringIO())
    run = AttributionRun.objects.get(output=output)
    text = out.getvalue()
    assert f"report sha256 {run.report.sha256}" in text and "facts" in text
    assert run.gradient_index.state == "succeeded"
    with pytest.raises(CommandError, match="methods"):
        call_command("attribute", output.pk, methods="tarot", stdout=StringIO())
