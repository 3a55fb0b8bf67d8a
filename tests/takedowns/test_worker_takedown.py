"""A whole takedown through the real broker and a real Celery worker: scoping on the default
queue, the retrain and the verification on the gpu queue, queued by the services on commit."""

from __future__ import annotations

import json
import time

import pytest

from provenance.engine.verify import check_receipt
from provenance.services.training import training_run_create, training_run_execute
from takedowns.models import TakedownRequest
from tests.fixtures.remediation import MODEL, prose

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def verification_env(monkeypatch):
    """The worker reads its thresholds from the environment (a corpus this small has fewer than
    the default 100 forget documents)."""
    monkeypatch.setenv("TRAILMARK_TAKEDOWN_VERIFICATION",
                       json.dumps({"min_documents": 5, "bootstrap": 200}))


def wait(request: TakedownRequest, done, what: str, timeout: float = 240) -> TakedownRequest:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        request.refresh_from_db()
        if done(request):
            return request
        time.sleep(0.5)
    raise AssertionError(f"{what}: still {request.state} {request.verification}")


def test_a_takedown_runs_from_filing_to_receipt_on_a_worker(
        verification_env, worker, users, client_as, make_source,  # noqa: F811
        ingest_texts, publish_version):
    essays = make_source(owner=users["holder_a"].rights_holder, name="essays")
    ingest_texts(essays, [prose(i) for i in range(30)])
    ingest_texts(make_source(name="other"), [prose(1000 + i) for i in range(60)])
    version = publish_version("worked", holdout_fraction=0.3)
    training_run_execute(run_id=training_run_create(version=version, actor=None,
                                                    enqueue=False, config=MODEL).pk)
    holder, curator = client_as("holder_a"), client_as("curator")
    filed = holder.post("/api/v1/takedowns/", {
        "legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
        "works": [{"title": "Essays", "identifiers": ["essays"]}],
        "claimed_sources": [essays.pk]}, format="json")
    assert filed.status_code == 201, filed.json()
    url = f"/api/v1/takedowns/{filed.json()['id']}/"
    request = TakedownRequest.objects.get(pk=filed.json()["id"])
    assert curator.post(f"{url}decide/", {"to": "accepted"}, format="json").status_code == 200
    assert curator.post(f"{url}scope/", {}, format="json").status_code == 202
    request = wait(request, lambda r: "versions" in r.scope, "scoping")  # written at the end
    documents = [m["document"] for m in curator.get(f"{url}matches/").json()["results"]]
    assert curator.post(f"{url}review-scope/", {"confirm": documents},
                        format="json").status_code == 200
    assert curator.post(f"{url}remediate-data/", {}, format="json").status_code == 200
    started = curator.post(f"{url}remediate-models/", {"methods": ["retrain"]}, format="json")
    assert started.status_code == 202, started.json()
    request = wait(request, lambda r: r.verification.get("state") in ("done", "failed"),
                   "remediation and verification")
    assert request.verification["state"] == "done", request.verification
    [run] = curator.get(f"{url}runs/").json()
    assert run["state"] == "succeeded" and run["percent"] == 100.0 and run["result"]
    assert run["verdict"] == request.verification["checkpoints"][0]["runs"][0]["verdict"]
    reasons = "" if request.verification["verdict"] == "pass" else "reviewed"
    decided = curator.post(f"{url}decide/", {"to": "decided", "reasons": reasons},
                           format="json")
    assert decided.status_code == 200, decided.json()
    assert decided.json()["decision"]["models"][0]["method"].startswith("Full retrain")
    receipt = holder.get(f"{url}receipt/").json()
    assert receipt["state"] == "decided" and check_receipt(receipt) == []
