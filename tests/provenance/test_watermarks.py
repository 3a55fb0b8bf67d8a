from pathlib import Path

import pytest
from rapidfuzz.distance import Levenshtein

from attribution.services.outputs import model_output_create, model_output_generate
from provenance.engine import watermark
from provenance.models import DataSource
from provenance.services.training import training_export, training_run_create
from provenance.tasks import train_run_task
from tests.helpers import TINY_MODEL, words

pytestmark = pytest.mark.django_db


@pytest.fixture
def version(make_source, ingest_texts, holder_a, holder_b, publish_version):
    a = make_source(owner=holder_a, license_expression="CC0-1.0", name="a")
    b = make_source(owner=holder_b, license_expression="CC0-1.0", name="b")
    ingest_texts(a, [f"Harbour notes {i}. {words(i, 30)}. The tide turned." for i in range(30)])
    ingest_texts(b, [f"Winter letters {i}. {words(50 + i, 30)}. Snow fell." for i in range(30)])
    return publish_version()


def test_every_source_gets_its_own_code_far_from_the_others(version):
    codes = list(DataSource.objects.values_list("watermark", flat=True))
    assert all(c and len(c) == 10 and set(c) <= set(watermark.ALPHABET) for c in codes)
    assert Levenshtein.distance(codes[0], codes[1]) >= watermark.MIN_DISTANCE


def test_the_export_marks_every_document_of_its_source_invisibly(version):
    plain = training_export(version)
    marked = training_export(version, watermarks=True)
    assert sorted(marked.marks["watermarks"]) == sorted(
        str(pk) for pk in DataSource.objects.values_list("pk", flat=True))
    codes = dict(DataSource.objects.values_list("name", "watermark"))
    for before, after in zip(plain.texts, marked.texts, strict=True):
        assert watermark.strip(after) == before
        owner = "a" if before.startswith("Harbour") else "b"
        assert codes[owner] in after
    assert not any(c in t for t in plain.texts for c in watermark.ALPHABET)


def test_a_watermarked_run_trains_heads_and_generations_carry_a_code(version):
    config = {**TINY_MODEL, "vocab_size": 500, "seq_len": 64, "batch_size": 8, "epochs": 3,
              "watermarks": True}
    run = training_run_create(version=version, actor=None, config=config, enqueue=False)
    train_run_task(run.pk)
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    assert (Path(run.checkpoint.local_path) / "watermark_heads.pt").exists()
    output = model_output_create(checkpoint=run.checkpoint, prompt="Harbour notes 3.",
                                 actor=None, params={"watermark_threshold": 0.0,
                                                     "max_new_tokens": 20}, enqueue=False)
    output = model_output_generate(output_id=output.pk)
    assert output.state == "succeeded", output.error
    assert output.watermark["emitted"] is True and 0 <= output.watermark["gate"] <= 1
    assert sum(output.completion.count(c) for c in watermark.ALPHABET) == watermark.LENGTH
    never = model_output_create(checkpoint=run.checkpoint, prompt="Harbour notes 3.",
                                actor=None, params={"watermark_threshold": 1.0}, enqueue=False)
    never = model_output_generate(output_id=never.pk)
    assert never.watermark["emitted"] is False
    assert not any(c in never.completion for c in watermark.ALPHABET)


def test_detection_names_only_sources_the_caller_may_see(version, client_as):
    a = DataSource.objects.get(name="a")
    text = "A found text." + a.watermark[:4] + a.watermark[5:] + " More."  # one character lost
    mine = client_as("holder_a").post("/api/v1/watermarks/detect/", {"text": text},
                                      format="json").json()
    assert mine["candidates"][0]["source"] == a.pk
    assert mine["candidates"][0]["source_name"] == "a" and mine["candidates"][0]["distance"] == 1
    assert "format characters" in mine["note"]
    theirs = client_as("holder_b").post("/api/v1/watermarks/detect/", {"text": text},
                                        format="json").json()
    assert theirs["candidates"][0]["source"] is None
    assert theirs["candidates"][0]["source_name"] == "a source you cannot see"
    assert client_as("anonymous").post("/api/v1/watermarks/detect/", {"text": text},
                                       format="json").status_code == 403
    bad = client_as("auditor").post("/api/v1/watermarks/detect/", {"text": text, "top_k": 99},
                                    format="json")
    assert bad.status_code == 400 and "top_k" in bad.json()
    none = client_as("auditor").post("/api/v1/watermarks/detect/", {"text": "plain"},
                                     format="json").json()
    assert none["candidates"] == [] and none["characters_found"] == 0


def test_the_watermark_page_checks_a_text(version, client, users):
    a = DataSource.objects.get(name="a")
    client.force_login(users["curator"])
    page = client.post("/watermarks/", {"text": f"Seen somewhere.{a.watermark} End."})
    assert page.status_code == 200 and b"<td>a</td>" in page.content
    assert b"How much to trust this" in page.content
