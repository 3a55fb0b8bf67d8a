"""The answer pages on a real answer: the question form (through the API's serializer and the
service), the answer with its highlighted spans, passages, shares and training-data link, and
the per-period shares with their CSV, a rights-holder's rows its own."""

import pytest

from retrieval.models import Answer
from retrieval.services.answers import answer_run

pytestmark = pytest.mark.django_db


def test_a_question_asked_on_the_page_is_answered_and_shown_with_its_attribution(
        rag, pages_as, django_capture_on_commit_callbacks):
    page = pages_as("researcher")
    form = {"question": "the harbour master and the captain who signed for the salt",
            "datastore": rag["store"].pk, "checkpoint": rag["checkpoint"].pk, "k": 2,
            "mode": "passages"}
    with django_capture_on_commit_callbacks(execute=False):
        asked = page.post("/answers/", form)
    answer = Answer.objects.get()
    assert asked.status_code == 302 and asked["Location"] == f"/answers/{answer.pk}/"
    waiting = page.get(f"/answers/{answer.pk}/").content.decode()
    assert 'data-live="/api/v1/rag/answers/' in waiting and "queued" in waiting
    answer = answer_run(answer_id=answer.pk)
    shown = pages_as("auditor").get(f"/answers/{answer.pk}/").content.decode()
    assert "What the answer rests on" in shown and "LDS" in shown
    for passage in answer.passages:
        assert f"chunk {passage['chunk']}" in shown
    assert f'href="/outputs/{answer.output_id}/"' in shown
    for share in answer.shares.all():
        assert f'href="/sources/{share.source_id}/"' in shown
    listed = page.get("/answers/").content.decode()
    assert f'href="/answers/{answer.pk}/"' in listed

    # The shares: everyone's for the curator, a rights-holder's own (port records)
    owed = {s.source.name for s in answer.shares.all()}
    table = pages_as("curator").get("/answers/shares/?period=day").content.decode()
    assert all(name in table for name in owed)
    csv = b"".join(pages_as("curator").get("/answers/shares.csv?period=day")
                   .streaming_content).decode()
    if owed:
        assert csv.splitlines()[0].startswith("period,period_kind,source,name")
        assert len(csv.splitlines()) == 1 + len(owed)
    mine = pages_as("holder_a").get("/answers/shares/").content.decode()
    assert "farm letters" not in mine and "sky notes" not in mine


def test_a_bad_question_is_refused_on_the_page_with_the_field_named(rag, pages_as):
    page = pages_as("researcher")
    refused = page.post("/answers/", {"question": "why?", "datastore": rag["store"].pk,
                                      "checkpoint": rag["checkpoint"].pk, "k": 99})
    assert refused.status_code == 400 and "k: " in refused.content.decode()
    assert not Answer.objects.exists()
    assert pages_as("auditor").post("/answers/", {"question": "why?"}).status_code == 403
    empty_boxes = pages_as("curator").get("/answers/shares/?period=week&since=&until=")
    assert empty_boxes.status_code == 200  # the form's empty date boxes mean "no bound"
    bad = pages_as("curator").get("/answers/shares/?since=2026-02-30")
    assert bad.status_code == 400 and "since" in bad.content.decode()
