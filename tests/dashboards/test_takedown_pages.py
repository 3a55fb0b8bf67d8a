"""A takedown driven through its page: the curator moves it along, the claimant reads the
verification and the decision and downloads a receipt that verifies."""

from __future__ import annotations

import json

import pytest

from provenance.engine.verify import check_receipt
from takedowns.models import TakedownRequest, UnlearningRun
from takedowns.services.scoping import takedown_scope
from takedowns.services.unlearning import unlearning_run_execute
from takedowns.services.verification import takedown_verify

pytestmark = pytest.mark.django_db


def test_a_curator_takes_a_request_from_acceptance_to_decision_on_its_page(
        client, users, trained, django_capture_on_commit_callbacks,  # noqa: F811
        django_assert_max_num_queries):
    client.force_login(users["holder_a"])
    client.post("/takedowns/new/", {
        "legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
        "work_title": "Essays", "work_identifiers": "essays"})
    request = TakedownRequest.objects.get()
    request.claimed_sources.set([trained["essays"]])
    page = f"/takedowns/{request.pk}/"
    refused = client.post(page, {"action": "decide", "to": "accepted"})
    assert refused.status_code == 403  # a claimant does not move its own request

    client.force_login(users["curator"])
    assert request.reference.encode() in client.get("/").content  # open requests, for staff
    assert client.post(page, {"action": "decide", "to": "accepted"}).status_code == 302
    with django_capture_on_commit_callbacks(execute=False):
        assert client.post(page, {"action": "scope"}).status_code == 302
    takedown_scope(request_id=request.pk)
    review = client.get(page).content.decode()
    assert "Matches to review" in review
    documents = set(request.matches.values_list("document_id", flat=True))
    assert f"{len(documents)} document(s) matched" in review
    answer = client.post(page, {"action": "review",
                                **{f"doc_{d}": "confirm" for d in documents}})
    assert answer.status_code == 302
    assert client.post(page, {"action": "remediate_data"}).status_code == 302
    assert "Data remediation" in client.get(page).content.decode()
    bad = client.post(page, {"action": "remediate_models", "methods": ["teleport"]})
    assert bad.status_code == 400 and "methods" in bad.content.decode()
    assert client.post(page, {"action": "remediate_models",
                              "methods": ["retrain"]}).status_code == 302
    running = client.get(page).content.decode()
    assert "Model remediation" in running and "/runs/" in running  # live progress polls
    [run] = UnlearningRun.objects.filter(request=request)
    unlearning_run_execute(run_id=run.pk)
    takedown_verify(request_id=request.pk)
    with django_assert_max_num_queries(14):
        verified = client.get(page).content.decode()
    assert "Verification" in verified and "privleak" in verified and "separable" in verified
    request.refresh_from_db()
    reasons = "" if request.verification["verdict"] == "pass" else "figures reviewed"
    assert client.post(page, {"action": "decide", "to": "decided",
                              "reasons": reasons}).status_code == 302

    client.force_login(users["holder_a"])
    seen = client.get(page).content.decode()
    assert "Decision" in seen and "Download the receipt" in seen
    download = client.get(f"{page}receipt.json")
    assert download.status_code == 200 and "attachment" in download["Content-Disposition"]
    receipt = json.loads(download.content)
    assert receipt["state"] == "decided" and check_receipt(receipt) == []
    client.force_login(users["holder_b"])
    assert client.get(f"{page}receipt.json").status_code == 404  # not theirs
