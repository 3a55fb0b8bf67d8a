"""Datastores built from published versions, and retrieval governed at query time: a tombstone or
an ai-input refusal takes effect with its commit, with no rebuild."""

import pytest
from django.core.exceptions import ValidationError

from provenance.models import LedgerEntry
from provenance.services import usage
from provenance.services.documents import document_tombstone
from provenance.services.embeddings import embed_texts
from retrieval.models import Chunk, Datastore
from retrieval.services import datastores
from retrieval.services.search import retrieve
from tests.fixtures.rag import LONG, governed_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def corpus(make_source, ingest_texts, publish_version):
    return governed_store(make_source, ingest_texts, publish_version, "governed", 48, 8,
                          uri="https://port.example/records")


def top(store, query, k=3, vector=True):
    embedded = embed_texts([query])[0][0] if vector else None
    return retrieve(store, query, embedded, k=k)


def test_a_build_chunks_every_member_within_the_window_and_records_itself(corpus):
    store = corpus["store"]
    assert (store.state, store.stage, store.percent) == ("succeeded", "done", 100.0)
    assert store.document_count == 4 and store.chunk_count == Chunk.objects.count() > 4
    assert store.embedder in ("int8", "fp32")
    long_chunks = list(Chunk.objects.filter(document__text=LONG).order_by("ordinal"))
    assert len(long_chunks) > 5 and long_chunks[0].start == 0 and long_chunks[-1].end == len(LONG)
    for chunk in long_chunks:
        assert chunk.text == LONG[chunk.start:chunk.end] and chunk.embedding is not None
    events = list(LedgerEntry.objects.filter(event__startswith="datastore.").values_list(
        "event", flat=True))
    assert events == ["datastore.created", "datastore.built"]


def test_keyword_and_vector_legs_both_find_the_passage(corpus):
    # Keywords alone: the words are there.
    [hit, *_] = top(corpus["store"], "comet notebook candlelight", vector=False)
    assert "comet" in hit.text and hit.keyword_rank == 1 and hit.vector_rank is None
    # A paraphrase sharing no content word: the vector leg finds it.
    hits = top(corpus["store"], "bees visiting flowering fruit trees")
    assert "orchard" in hits[0].text and hits[0].vector_rank == 1
    assert {s["name"] for s in hits[0].sources} == {"farm letters"}
    assert hits[0].sources[0]["license"] == "CC-BY-4.0"


def test_the_keyword_leg_finds_a_question_with_words_its_passage_lacks(corpus):
    """Any of the question's words, not all: a question wording things its own way (here
    "decade" and "vessels", in no document) still finds the passage by the words it shares."""
    [hit, *_] = top(corpus["store"], "In which decade did the captain sign for the salt vessels?",
                    vector=False)
    assert hit.text.startswith("The harbour master") and hit.keyword_rank == 1
    assert top(corpus["store"], "the of and which", vector=False) == []  # stop words only


def test_the_keyword_weight_decides_which_leg_leads_when_they_disagree(corpus, settings):
    """Keywords point at the comet, the embedding at the orchard: the weight given the keyword
    leg, as an argument or as RETRIEVAL_KEYWORD_WEIGHT, decides which leads. (On four documents
    the vector leg lists every chunk, the comet's too: only a weight of 0 lets the orchard lead.)"""
    store = corpus["store"]
    words, meaning = "comet notebook candlelight", embed_texts(["bees visiting fruit trees"])[0][0]

    def first(**kwargs):
        return retrieve(store, words, meaning, k=3, **kwargs)[0].text

    assert "comet" in first(keyword_weight=2.0) and "orchard" in first(keyword_weight=0.0)
    settings.TRAILMARK = {**settings.TRAILMARK, "RETRIEVAL_KEYWORD_WEIGHT": 0.0}
    assert "orchard" in first()
    settings.TRAILMARK = {**settings.TRAILMARK, "RETRIEVAL_KEYWORD_WEIGHT": 2.0}
    assert "comet" in first()


def test_words_the_statistics_call_common_are_left_out_of_the_keyword_leg(corpus, monkeypatch):
    """The build refreshes the planner's statistics; a word they count in more than COMMON_ROWS
    chunks does not select passages (here the bar is lowered to 0: every word they list)."""
    from retrieval.services import search

    assert top(corpus["store"], "comet notebook candlelight", vector=False)
    lowered = search.KEYWORD_SQL.replace(f"> {search.COMMON_ROWS})", "> 0)")
    assert lowered != search.KEYWORD_SQL
    monkeypatch.setattr(search, "KEYWORD_SQL", lowered)
    assert top(corpus["store"], "comet notebook candlelight", vector=False) == []


def test_a_tombstoned_document_is_never_returned_from_the_commit_on(corpus):
    assert any("comet" in h.text for h in top(corpus["store"], "astronomer comet"))
    comet = Chunk.objects.filter(text__contains="comet").first().document
    document_tombstone(document=comet, actor=None, reason="takedown 7")
    assert not any("comet" in h.text for h in top(corpus["store"], "astronomer comet", k=10))
    assert Chunk.objects.filter(document=comet).exists()  # no rebuild: refused at query time


def test_an_ai_input_refusal_removes_the_source_and_a_training_refusal_does_not(corpus):
    query = "ship cargo captain tide"
    assert "harbour" in top(corpus["store"], query)[0].text
    # Refusing training says nothing of answering from the text.
    usage.opt_out_signal_record(source=corpus["port"], actor=None, kind="robots_txt",
                                value="User-agent: GPTBot\nDisallow: /\n")
    assert "harbour" in top(corpus["store"], query)[0].text
    # The harbour text is also in "sky notes": one source refusing ai-input is enough.
    usage.opt_out_signal_record(source=corpus["sky"], actor=None, kind="robots_txt",
                                value="User-agent: *\nContent-Signal: ai-input=no\n")
    hits = top(corpus["store"], query, k=10)
    assert not any("harbour" in h.text or "comet" in h.text for h in hits)
    assert hits  # the rest of the datastore still answers
    # Lifted: a later robots.txt without the signal replaces it.
    usage.opt_out_signal_record(source=corpus["sky"], actor=None, kind="robots_txt",
                                value="User-agent: *\nAllow: /\n")
    assert "harbour" in top(corpus["store"], query)[0].text


def test_each_hit_carries_its_sources_verdicts(corpus):
    usage.opt_out_signal_record(source=corpus["farm"], actor=None, kind="http_header",
                                value="Content-Usage: train-ai=n, ai-use=y")
    [hit] = top(corpus["store"], "orchard blossom bees", k=1)
    assert [(s["train"], s["ai_input"]) for s in hit.sources] == [("no", "yes")]


def test_a_build_resumes_after_its_last_batch_and_writes_each_chunk_once(corpus, monkeypatch):
    clean = {(c.document_id, c.ordinal, c.start, c.end)
             for c in Chunk.objects.filter(datastore=corpus["store"])}
    store = datastores.datastore_create(version=corpus["version"], name="again", actor=None,
                                        chunk_tokens=48, overlap_tokens=8, enqueue=False)
    monkeypatch.setattr(datastores, "BATCH", 2)
    written = []
    real = datastores._write

    def dies_after_one_batch(s, batch):
        if written:
            raise RuntimeError("worker lost")
        written.append(real(s, batch))

    monkeypatch.setattr(datastores, "_write", dies_after_one_batch)
    assert datastores.datastore_build(datastore_id=store.pk).state == "failed"
    assert store.chunks.count() == written[0] > 0
    Datastore.objects.filter(pk=store.pk).update(state="running")  # as a retry finds it
    monkeypatch.setattr(datastores, "_write", real)
    store = datastores.datastore_build(datastore_id=store.pk)
    assert store.state == "succeeded" and store.position == 4
    assert {(c.document_id, c.ordinal, c.start, c.end) for c in store.chunks.all()} == clean


@pytest.mark.parametrize(("fields", "field"), [
    ({"chunk_tokens": 8}, "chunk_tokens"), ({"chunk_tokens": 300}, "chunk_tokens"),
    ({"overlap_tokens": 128}, "overlap_tokens"), ({"name": "governed"}, "name")])
def test_bad_settings_name_their_field(corpus, fields, field):
    with pytest.raises(ValidationError) as raised:
        datastores.datastore_create(**{"version": corpus["version"], "name": "x", "actor": None,
                                       "enqueue": False, **fields})
    assert field in raised.value.message_dict
