import json

import pytest
from transformers import AutoTokenizer

from attribution.engine.spans import PackedSpans, SpanParams, SpanShard
from attribution.models import ModelOutput, SpanIndex
from attribution.services.spans import (
    span_index_build,
    span_index_create,
    trace_output,
    trained_texts,
)
from attribution.tasks import span_index_build_task
from core.storage import artifact_path
from provenance.engine.canary import CanarySpec, canary_sequence
from provenance.engine.watermark import ALPHABET
from provenance.models import Document
from provenance.services.canaries import canary_register
from provenance.services.documents import document_tombstone
from provenance.services.training import training_run_create, training_run_execute
from tests.helpers import TINY_MODEL, words

pytestmark = pytest.mark.django_db


@pytest.fixture
def indexed(make_source, ingest_texts, publish_version):
    a, b = make_source(name="a"), make_source(name="b")
    canary_register(source=a, actor=None, spec={"copies": 3})
    ingest_texts(a, [f"harbour {words(i, 40)}." for i in range(20)])
    ingest_texts(b, [f"winter {words(100 + i, 40)}." for i in range(20)])
    version = publish_version()
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config={**TINY_MODEL, "epochs": 1}).pk)
    index = span_index_create(version=version, checkpoint=run.checkpoint, actor=None,
                              enqueue=False)
    span_index_build_task(index.pk)
    index.refresh_from_db()
    return index, run.checkpoint, a, b


def test_an_index_has_one_shard_per_source(indexed):
    index, _, a, b = indexed
    assert index.state == "succeeded", index.error
    assert set(index.shards) == {str(a.pk), str(b.pk)}
    assert all(s["documents"] == 20 and s["tokens"] > 0 for s in index.shards.values())
    packed = PackedSpans.open(artifact_path(index.path))  # small sources: one suffix array for both
    meta = json.loads((artifact_path(index.path) / "packed.json").read_text())
    assert meta["sources"] == [sorted(index.shards)] and len(packed.buckets) == 1
    assert len(packed.tokens) == sum(s["tokens"] for s in index.shards.values())
    assert not (artifact_path(index.path) / "groups").exists()  # the parts are removed
    assert span_index_build(index_id=index.pk) is None  # built once


def test_an_index_built_before_packing_answers_the_same(indexed, tmp_path):
    """An index saved as one folder per source (before packed indexes) is packed in memory
    when opened, and traces an output to the same spans."""
    index, checkpoint, a, _ = indexed
    doc = Document.objects.filter(occurrences__source=a).order_by("pk")[5]
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt="x", state="succeeded",
                                        completion=f"New words. {doc.text[20:300]} The end.")
    packed = trace_output(output=output, index=index, params=SpanParams(min_length=8))
    assert packed and packed[0]["documents"][0]["document"] == doc.pk
    tokenizer = AutoTokenizer.from_pretrained(checkpoint.local_path, local_files_only=True)
    texts = trained_texts(checkpoint, index.version)  # as the build read them
    for source in index.shards:
        docs = [(pk, texts[pk]) for pk in Document.objects.filter(
            occurrences__source_id=int(source)).order_by("pk").values_list("pk", flat=True)]
        ids = tokenizer([t for _, t in docs], add_special_tokens=False)["input_ids"]
        SpanShard.build(zip([d for d, _ in docs], ids, strict=True)).save(tmp_path / source)
    SpanIndex.objects.filter(pk=index.pk).update(path=str(tmp_path))
    index.refresh_from_db()
    assert trace_output(output=output, index=index, params=SpanParams(min_length=8)) == packed


def test_a_copied_passage_is_traced_to_its_document_and_a_takedown_blocks_it(indexed):
    index, checkpoint, a, _ = indexed
    doc = Document.objects.filter(occurrences__source=a).order_by("pk")[3]
    passage = " ".join(doc.text.split()[5:30])
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt="x", state="succeeded",
                                        completion=f"Something new. {passage} And more.")
    spans = trace_output(output=output, index=index, params=SpanParams(min_length=8))
    assert spans and spans[0]["documents"][0] == {"document": doc.pk, "blocked": False}
    assert spans[0]["count"] == 1 and spans[0]["text"].strip() in passage + " "
    document_tombstone(document=doc, actor=None, reason="takedown", purge_text=True)
    again = trace_output(output=output, index=index, params=SpanParams(min_length=8))
    assert again[0]["count"] == 1  # still counted, no rebuild
    assert again[0]["documents"] == [{"document": doc.pk, "blocked": True}]


def test_one_index_per_version_and_tokenizer(indexed):
    index, checkpoint, _, _ = indexed
    assert span_index_create(version=index.version, checkpoint=checkpoint, actor=None,
                             enqueue=False) == index


def test_a_canary_is_indexed_as_trained_and_traced_to_all_its_carriers(indexed):
    """The index holds the text the model trained on: a memorised canary (here the output is
    the canary itself, with watermark characters in it) points at every document carrying it,
    and after a takedown of one carrier that one is still counted but blocked."""
    index, checkpoint, a, _ = indexed
    canary = a.canary
    sequence = canary_sequence(CanarySpec.from_dict(canary.spec), canary.secret)
    carriers = sorted(checkpoint.run.marks["canaries"][str(a.pk)])
    assert len(carriers) == 3
    assert not any(sequence in d.text for d in Document.objects.all())  # stored text: no canary
    marked = sequence.replace(" ", " " + ALPHABET[0], 1)  # a watermark character inside
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt="x", state="succeeded",
                                        completion=f" {marked}")
    spans = trace_output(output=output, index=index, params=SpanParams(min_length=8))
    assert len(spans) == 1 and spans[0]["count"] == 3
    assert sorted(d["document"] for d in spans[0]["documents"]) == carriers
    document_tombstone(document=Document.objects.get(pk=carriers[0]), actor=None,
                       reason="takedown", purge_text=True)
    again = trace_output(output=output, index=index, params=SpanParams(min_length=8))
    assert {d["document"]: d["blocked"] for d in again[0]["documents"]} == {
        carriers[0]: True, carriers[1]: False, carriers[2]: False}
