"""Answers from a real (tiny) checkpoint with retrieved passages in its context, and their
context attribution: ablations read by the model, the surrogate, spans, shares, the answer's
model output and its ledger entry; retrieval governed as of the answer."""

import pytest
from django.core.exceptions import ValidationError

from provenance.engine import lm
from provenance.models import Document, LedgerEntry
from provenance.services import usage
from provenance.services.documents import document_tombstone
from retrieval.engine.context import logit_probability
from retrieval.models import Answer, AnswerShare, Chunk
from retrieval.services.answers import answer_create, answer_run
from tests.fixtures.rag import ORCHARD

pytestmark = pytest.mark.django_db

def answered(rag, question, **options):
    answer = answer_create(datastore=rag["store"], checkpoint=rag["checkpoint"],
                           question=question, actor=None, enqueue=False,
                           params={"max_new_tokens": 8}, **options)
    done = answer_run(answer_id=answer.pk)
    assert done.state == "succeeded", done.error
    return done


def test_an_answer_carries_its_passages_their_contributions_and_its_shares(rag):
    answer = answered(rag, "who signed for the cargo of salt at the harbour?", k=3)
    assert answer.text.strip() and answer.note == ""
    assert len(answer.passages) == 3 and answer.percent == 100.0
    assert answer.position == answer.total == 32 + 8 + 3 + 1  # fit, held out, full, one-out
    for passage in answer.passages:
        assert passage["text"] and f"Passage: {passage['text']}" in answer.prompt
        assert {"contribution", "leave_one_out", "sources", "truncated"} <= set(passage)
    attribution = answer.attribution
    assert (attribution["ablations"], attribution["heldout"]) == (32, 8)
    assert attribution["lds"] is None or -1 <= attribution["lds"] <= 1
    # What was measured is what is stored: the answer's logit-probability after the stored
    # prompt, read again by the checkpoint, is the "full" the surrogate was fitted beside.
    model, tokenizer = lm.load(rag["checkpoint"].local_path)
    [again] = lm.continuation_logprob(model, tokenizer, [answer.prompt], answer.text)
    assert logit_probability(again) == pytest.approx(attribution["full"], abs=1e-3)
    # Shares: every source of a positively contributing passage, summing to 1
    shares = {s.source_id: s.share for s in AnswerShare.objects.filter(answer=answer)}
    helped = {s["id"] for p in answer.passages if p["contribution"] > 0 for s in p["sources"]}
    assert set(shares) == helped
    if helped:
        assert sum(shares.values()) == pytest.approx(1.0)
    # The answer is a model output too (training-data attribution runs on it), and is logged
    assert (answer.output.prompt, answer.output.completion) == (answer.prompt, answer.text)
    assert answer.output.state == "succeeded"
    entry = LedgerEntry.objects.get(event="rag.answered", subject_id=str(answer.pk))
    assert entry.payload["chunks"] == [p["chunk"] for p in answer.passages]
    assert entry.payload["shares"] == {str(k): round(v, 6) for k, v in sorted(shares.items())}
    # Idempotent: a second run leaves the finished answer as it is
    assert answer_run(answer_id=answer.pk) is None
    assert LedgerEntry.objects.filter(event="rag.answered").count() == 1


def test_with_one_passage_its_contribution_is_what_leaving_it_out_costs(rag):
    """The surrogate's weight for a lone passage is the difference between the answer's
    logit-probability with and without it (less Lasso's small shrinkage): the ablations were
    read by the model, not made up."""
    answer = answered(rag, "pear trees flowering in the orchard", k=1)
    [passage] = answer.passages
    assert "orchard" in passage["text"]
    assert passage["leave_one_out"] != 0
    assert passage["contribution"] == pytest.approx(passage["leave_one_out"], abs=0.1)


def test_an_answer_never_rests_on_a_refused_source_or_a_tombstoned_document(rag):
    question = "the astronomer watched a comet by candlelight"
    comet = set(Chunk.objects.filter(text__contains="comet").values_list("pk", flat=True))
    before = answered(rag, question, k=2)
    assert {p["chunk"] for p in before.passages} & comet
    usage.opt_out_signal_record(source=rag["sky"], actor=None, kind="http_header",
                                value="Content-Usage: train-ai=n, ai-use=n")
    after = answered(rag, question, k=5)
    sky = rag["sky"].pk
    assert not any(s["id"] == sky for p in after.passages for s in p["sources"])
    assert not {p["chunk"] for p in after.passages} & comet
    assert not AnswerShare.objects.filter(answer=after, source=sky).exists()
    orchard = Document.objects.get(text=ORCHARD)
    assert orchard.pk in {p["document"] for p in answered(rag, "pear blossom", k=2).passages}
    document_tombstone(document=orchard, actor=None, reason="takedown 9")
    assert orchard.pk not in {p["document"] for p in answered(rag, "pear blossom", k=5).passages}


def test_demonstrations_are_chosen_by_similarity_and_diversity(rag):
    answer = answered(rag, "barges carrying coal to the foundry", k=2, mode="demonstrations")
    assert len(answer.passages) == 2 and answer.prompt.count("Example: ") == 2
    assert "Passage: " not in answer.prompt
    assert len({p["chunk"] for p in answer.passages}) == 2
    assert any("foundry" in p["text"] for p in answer.passages)


@pytest.mark.parametrize(("options", "field"), [
    ({"question": "  "}, "question"), ({"k": 0}, "k"), ({"k": 11}, "k"),
    ({"ablations": 4}, "ablations"), ({"mode": "poem"}, "mode"),
    ({"params": {"temperature": -1}}, "params")])
def test_bad_answers_are_refused_by_field(rag, options, field):
    with pytest.raises(ValidationError) as refused:
        answer_create(**{"datastore": rag["store"], "checkpoint": rag["checkpoint"],
                         "question": "why?", "actor": None, "enqueue": False, **options})
    assert field in refused.value.message_dict
    assert not Answer.objects.exists()


@pytest.mark.parametrize(("change", "field"), [
    ({"k": 0}, "k"), ({"ablations": 1000}, "ablations"), ({"question": ""}, "question"),
    ({"mode": "poem"}, "mode"), ({"checkpoint": 0}, "checkpoint"),
    ({"params": {"beams": 3}}, "params")])
def test_bad_answer_requests_name_the_field(rag, client_as, change, field):
    body = {"datastore": rag["store"].pk, "checkpoint": rag["checkpoint"].pk,
            "question": "why?", **change}
    refused = client_as("researcher").post("/api/v1/rag/answers/", body, format="json")
    assert refused.status_code == 400 and field in refused.json(), refused.json()
    assert client_as("holder_a").post("/api/v1/rag/answers/", body,
                                      format="json").status_code == 403
    assert not Answer.objects.exists()


@pytest.mark.parametrize(("query", "field"), [
    ({"period": "fortnight"}, "period"), ({"since": "2026-13-01"}, "since"),
    ({"source": "x"}, "source")])
def test_bad_share_queries_name_the_parameter(client_as, query, field):
    refused = client_as("auditor").get("/api/v1/rag/shares/", query)
    assert refused.status_code == 400 and field in refused.json()
    assert client_as("anonymous").get("/api/v1/rag/shares/").status_code == 403


def test_an_erasure_reaches_the_chunks_and_the_answers_that_held_the_text(rag):
    """A purged document's text is gone from retrieval too: its chunks (text and embedding) are
    deleted, and the answers that had it in context keep the passage's place without its text,
    in the passages, the prompt and the model output's prompt; the ledger says what was erased."""
    orchard = Document.objects.get(text=ORCHARD)
    answer = answered(rag, "pear blossom in the orchard", k=2)
    [held] = [p for p in answer.passages if p["document"] == orchard.pk]
    assert held["text"] in answer.prompt
    store_chunks = rag["store"].chunk_count
    chunks = Chunk.objects.filter(document=orchard).count()
    document_tombstone(document=orchard, actor=None, reason="erasure", purge_text=True)
    assert not Chunk.objects.filter(document=orchard).exists()
    rag["store"].refresh_from_db()
    assert rag["store"].chunk_count == store_chunks - chunks
    answer.refresh_from_db()
    [erased] = [p for p in answer.passages if p["document"] == orchard.pk]
    assert erased["text"] == "" and erased["erased"] is True
    assert held["text"] not in answer.prompt and "[passage erased]" in answer.prompt
    assert held["text"] not in answer.output.prompt
    kept = [p for p in answer.passages if p["document"] != orchard.pk]
    assert all(p["text"] and p["text"] in answer.prompt for p in kept)
    entry = LedgerEntry.objects.get(event="document.removed", subject_id=str(orchard.pk))
    assert entry.payload["copies_erased"] == {"chunks": chunks, "answers": 1}


@pytest.mark.parametrize("mode", ["passages", "demonstrations"])
def test_with_every_source_refused_the_answer_has_no_context_and_owes_none(rag, mode):
    for source in ("port", "farm", "sky"):
        usage.opt_out_signal_record(source=rag[source], actor=None, kind="http_header",
                                    value="Content-Usage: ai-use=n")
    answer = answered(rag, "who kept the harbour ledger?", k=3, mode=mode)
    assert answer.passages == [] and answer.attribution == {} and answer.spans == []
    assert "without context" in answer.note and not answer.shares.exists()
    assert "Passage" not in answer.prompt and "Example" not in answer.prompt
    assert answer.output.prompt == answer.prompt
