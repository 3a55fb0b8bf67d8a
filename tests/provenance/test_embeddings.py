"""Background embedding of documents: int8 on a CPU (built and checked once per host), fp32
when the build failed its check or fp32 is asked for; each batch recorded, and the backlog and
its pace on the jobs board."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from provenance.engine.embeddings import embed
from provenance.models import Document, EmbeddingBatch
from provenance.services.embeddings import documents_embed, embed_texts, int8_folder
from tests.fixtures.scoping import prose

pytestmark = pytest.mark.django_db


def board(client) -> str:
    part = client.get("/staff/?part=jobs").content.decode()
    return re.sub(r"\s+", " ", part)


def test_documents_are_embedded_in_int8_and_the_board_shows_the_backlog_then_the_pace(
        make_source, ingest_texts, pages_as):
    texts = [prose(400 + i, n=80) for i in range(40)]
    ingest_texts(make_source(), texts)
    curator = pages_as("curator")
    assert "<strong>40</strong> document(s) waiting" in board(curator)
    assert "none embedded in the last hour" in board(curator)

    assert documents_embed(limit=25) == 25
    page = board(curator)
    assert "<strong>15</strong> document(s) waiting" in page
    assert re.search(r"25 embedded in the last hour at [\d.]+ documents/s: the backlog needs "
                     r"about 1 min", page), page
    assert documents_embed(limit=25) == 15
    assert "none waiting" in board(curator)
    batches = list(EmbeddingBatch.objects.order_by("finished_at"))
    assert [(b.documents, b.backend) for b in batches] == [(25, "int8"), (15, "int8")]
    assert all(b.seconds > 0 for b in batches)

    stored = dict(Document.objects.values_list("text", "embedding"))
    fp32 = embed(texts, device="cpu")
    cosine = [float(np.dot(stored[t], v)) for t, v in zip(texts, fp32, strict=True)]
    assert 0.99 <= min(cosine) and max(cosine) < 0.99999  # int8, close to fp32
    build = json.loads((int8_folder() / "build.json").read_text())
    assert build["passed"] and build["cosine_min"] >= 0.99


def test_a_build_that_failed_its_check_is_not_used_and_fp32_is_asked_for_by_setting(
        settings, tmp_path):
    settings.STATE_DIR = tmp_path
    folder = int8_folder()
    folder.mkdir(parents=True)
    (folder / "build.json").write_text(json.dumps({
        "recipe": "r", "alpha": 0.7, "calibration_texts": 8, "check_texts": 8,
        "cosine_min": 0.95, "cosine_mean": 0.97, "min_cosine": 0.99, "passed": False}))
    texts = [prose(500 + i) for i in range(4)]
    vectors, backend = embed_texts(texts)
    assert backend == "fp32"
    assert np.allclose(vectors, embed(texts, device="cpu"), atol=1e-5)
    assert not (folder / "model.onnx").exists()  # it did not try to run (or rebuild) it

    settings.TRAILMARK = {**settings.TRAILMARK, "EMBED_BACKEND": "fp32"}
    (folder / "build.json").unlink()
    assert embed_texts(texts)[1] == "fp32"
    assert not (folder / "build.json").exists()  # fp32 asked for: nothing built
