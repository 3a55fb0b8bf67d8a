"""The answers API on a real worker (the gpu queue generates and ablates), and the per-period
shares export with each reader's rows."""

import datetime as dt

import pytest

from retrieval.models import Answer
from tests.fixtures.workers import running_worker, wait_for_row

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_an_answer_is_queued_generated_on_a_worker_and_its_shares_exported(
        rag, client_as, tmp_path):
    researcher = client_as("researcher")
    body = {"datastore": rag["store"].pk, "checkpoint": rag["checkpoint"].pk,
            "question": "the harbour master and the captain who signed for the salt",
            "k": 2, "ablations": 16, "params": {"max_new_tokens": 6}}
    queued = researcher.post("/api/v1/rag/answers/", body, format="json")
    assert queued.status_code == 202, queued.json()
    assert (queued.json()["state"], queued.json()["total"]) == ("queued", 16 + 8 + 2 + 1)
    with running_worker(tmp_path, queues="gpu"):
        wait_for_row(Answer, queued.json()["id"], {"succeeded", "failed"}, timeout=180)
    shown = client_as("auditor").get(f"/api/v1/rag/answers/{queued.json()['id']}/").json()
    assert shown["state"] == "succeeded", shown["error"]
    assert len(shown["passages"]) == 2 and shown["percent"] == 100.0
    assert shown["output"] and shown["attribution_runs"] == []
    assert shown["attribution"]["ablations"] == 16
    owed = {s["source"]: s["share"] for s in shown["shares"]}
    # The export: today's rows, each source's answers and summed shares
    today = dt.datetime.now(dt.UTC).date().isoformat()
    rows = client_as("curator").get("/api/v1/rag/shares/", {"period": "day"}).json()
    assert {r["source"]: r["share"] for r in rows} == pytest.approx(owed)
    assert all(r["period"] == today and r["answers"] == 1 for r in rows)
    # A rights-holder reads its own sources' rows only
    mine = client_as("holder_a").get("/api/v1/rag/shares/").json()
    assert {r["source"] for r in mine} == {rag["port"].pk} & set(owed)
    assert client_as("holder_a").get("/api/v1/rag/answers/").status_code == 403
