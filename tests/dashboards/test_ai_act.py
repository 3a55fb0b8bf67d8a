"""The EU AI Act training-content summary of a model, computed from its training data: sizes,
sources by type, top domains, reservations of rights honoured, takedown handling; public, as HTML
and PDF."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from provenance.services import usage
from provenance.services.training import training_run_create, training_run_execute
from tests.helpers import TINY_MODEL

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(users, make_source, ingest_texts, publish_version):
    essays = make_source(name="essays", license_expression="CC-BY-4.0",
                         uri="https://harbor.example/essays", acquisition="licensed")
    forum = make_source(name="forum", license_expression="MIT",
                        uri="https://www.forum.example/threads", acquisition="crawled")
    news = make_source(name="news", license_expression="CC-BY-4.0",
                       uri="https://news.example/", acquisition="crawled")
    ingest_texts(essays, [f"essay number {i} about the harbour and the tide" for i in range(12)])
    ingest_texts(forum, [f"forum post {i} on lanterns" for i in range(6)])
    ingest_texts(news, [f"news item {i}" for i in range(5)])
    usage.opt_out_signal_record(
        source=news, actor=users["curator"], kind="robots_txt",
        value="User-agent: *\nDisallow: /", observed_at=timezone.now() - timedelta(days=3))
    version = publish_version("summarised")
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config={**TINY_MODEL, "epochs": 1}).pk)
    assert run.state == "succeeded", run.error
    return run.checkpoint


def test_anyone_reads_a_models_training_content_summary(model, client):
    page = client.get(f"/models/{model.pk}/ai-act/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "less than 1 billion tokens" in text and "18 documents" in text
    assert "Private datasets licensed from rights-holders" in text
    assert "Data crawled and scraped from online sources" in text
    assert "<li>harbor.example:" in text  # 3 domains: the top 10%, rounded up, is one
    assert "forum.example" not in text.split("Top domain names")[1].split("</ol>")[0]
    assert ("1 source(s) had reserved their rights against training; 5 document(s) were left "
            "out") in text, text.split("Reservations of rights")[1][:500]
    assert "robots_txt" in text
    pdf = client.get(f"/models/{model.pk}/ai-act.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and len(pdf.content) > 1500
    assert client.get("/models/999999/ai-act/").status_code == 404


def test_a_derived_models_summary_counts_each_document_of_its_ancestry_once(model, client):
    from dashboards.selectors import ai_act_summary
    from provenance.models import ModelCheckpoint
    from provenance.services.curation import version_derive

    version = model.version
    removed = set(version.members.order_by("document_id").values_list("document_id",
                                                                       flat=True)[:4])
    derived = version_derive(parent=version, detail="a takedown", actor=None, remove=removed)
    child = ModelCheckpoint.objects.create(name="unlearned", kind="unlearned", version=derived,
                                           parent=model, path="/nonexistent", sha256="f" * 64)
    parent_summary, child_summary = ai_act_summary(model), ai_act_summary(child)
    assert child_summary.versions == (str(derived), str(version))
    # The derived version is a subset: the union is the parent's data, each document once.
    assert [(s.name, s.documents, s.tokens) for s in child_summary.sources] == \
        [(s.name, s.documents, s.tokens) for s in parent_summary.sources]
    assert sum(s.documents for s in child_summary.sources) == 18
    assert "18 documents" in client.get(f"/models/{child.pk}/ai-act/").content.decode()
