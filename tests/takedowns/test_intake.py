"""Filing a takedown request, its validation per legal basis, and the workflow's guard rails,
through the API as each role would use it."""

import pytest
from django.core import mail

from provenance.models import LedgerEntry
from takedowns.models import TakedownRequest

pytestmark = pytest.mark.django_db
URL = "/api/v1/takedowns/"


@pytest.fixture
def client_as(client_as, django_capture_on_commit_callbacks):
    """Clients whose writes also run what waits for the commit (the e-mails), as a real
    request's transaction would."""
    def make(name):
        client = client_as(name)
        post = client.post

        def committed(*args, **kwargs):
            with django_capture_on_commit_callbacks(execute=True):
                return post(*args, **kwargs)

        client.post = committed
        return client

    return make


def dmca(**over):
    notice = {
        "legal_basis": "dmca_512", "remedy": "both",
        "claimant_name": "Ann Owner", "claimant_email": "ann@holder-a.example",
        "authority": "owner", "postal_address": "1 Quay Street, Harbor",
        "works": [{"title": "Tide Essays", "urls": ["https://holder-a.example/tide"],
                   "sample_text": "The tide came in over the old harbour wall."}],
        "statements": {"good_faith": True, "accuracy": True, "authority_under_perjury": True},
        "signature": "Ann Owner",
    }
    return {**notice, **over}


def test_a_mail_server_that_hangs_up_neither_fails_the_filing_nor_files_it_twice(
        client_as, settings):
    """The acknowledgement was sent inside the request after commit: a mail failure answered 500
    to a filing that was saved, and a client that retried filed a duplicate."""
    from core.mail import MAIL_TASK
    from tests.helpers import RefusingEmailBackend

    settings.EMAIL_BACKEND = "tests.helpers.RefusingEmailBackend"
    RefusingEmailBackend.attempts = 0
    answer = client_as("holder_a").post(URL, dmca(), format="json")
    assert answer.status_code == 201, answer.content
    assert TakedownRequest.objects.count() == 1 and not mail.outbox
    # the task tried, and tried again (its backoff is skipped when run in-process)
    assert RefusingEmailBackend.attempts == MAIL_TASK["max_retries"] + 1


def test_a_complete_notice_is_acknowledged_with_deadlines_and_waits_for_review(client_as):
    answer = client_as("holder_a").post(URL, dmca(), format="json")
    assert answer.status_code == 201, answer.json()
    body = answer.json()
    assert body["state"] == "validating" and body["missing"] == []
    assert body["reference"].startswith("TD-") and body["signed_at"]
    assert set(body["deadlines"]) == {"acknowledge", "decide"}
    assert [e["to_state"] for e in body["events"]] == ["received", "acknowledged", "validating"]
    assert all(e["ledger_seq"] for e in body["events"])
    takedown = TakedownRequest.objects.get(pk=body["id"])
    assert takedown.rights_holder.name == "Holder A"
    assert len(takedown.works.get().sample_sha256) == 64
    ledger = LedgerEntry.objects.filter(event__startswith="takedown.")
    assert ledger.count() == 3 and not any("ann@" in str(e.payload) for e in ledger)
    assert len(mail.outbox) == 1 and body["reference"] in mail.outbox[0].subject
    assert body["deadlines"]["decide"] in mail.outbox[0].body


def test_a_notice_missing_elements_goes_to_needs_info_until_they_are_supplied(client_as):
    client = client_as("holder_a")
    notice = dmca(statements={"good_faith": True}, postal_address="", signature="")
    body = client.post(URL, notice, format="json").json()
    assert body["state"] == "needs_info"
    assert {m["element"] for m in body["missing"]} == {
        "signature", "postal_address", "statements.accuracy",
        "statements.authority_under_perjury"}
    assert "penalty of perjury" in mail.outbox[-1].body  # the e-mail lists what is missing
    partial = client.post(f"{URL}{body['id']}/supplement/",
                          {"signature": "Ann Owner", "telephone": "+1 555 0100"},
                          format="json").json()
    assert partial["state"] == "needs_info" and len(partial["missing"]) == 2
    done = client.post(f"{URL}{body['id']}/supplement/", {"statements": {
        "accuracy": True, "authority_under_perjury": True}}, format="json").json()
    assert done["state"] == "validating" and done["missing"] == []
    assert done["statements"] == {"good_faith": True, "accuracy": True,
                                  "authority_under_perjury": True}
    again = client.post(f"{URL}{body['id']}/supplement/", {"signature": "x"}, format="json")
    assert again.status_code == 409  # nothing is missing any more


def test_bad_input_is_a_400_that_names_the_field(client_as):
    client = client_as("holder_a")
    for notice, field in [(dmca(legal_basis="dmca"), "legal_basis"),
                          (dmca(works=[{"title": "x", "urls": ["not a url"]}]), "works"),
                          (dmca(claimant_email="nobody"), "claimant_email"),
                          (dmca(ground="z"), "ground"),
                          (dmca(statements={"good_faith": "perhaps"}), "statements")]:
        answer = client.post(URL, notice, format="json")
        assert answer.status_code == 400 and field in answer.json(), (field, answer.json())
    assert TakedownRequest.objects.count() == 0


def test_reviewers_move_a_request_only_along_the_workflow(client_as):
    filed = client_as("holder_a").post(URL, dmca(), format="json").json()
    curator = client_as("curator")
    decide = f"{URL}{filed['id']}/decide/"
    assert curator.post(decide, {"to": "closed"}, format="json").status_code == 409
    assert curator.post(decide, {"to": "rejected"}, format="json").json() == {
        "reasons": ["say why the request is rejected"]}
    accepted = curator.post(decide, {"to": "accepted"}, format="json")
    assert accepted.status_code == 200 and accepted.json()["state"] == "accepted"
    assert curator.post(decide, {"to": "accepted"}, format="json").status_code == 409
    assert "accepted" in mail.outbox[-1].subject
    events = TakedownRequest.objects.get(pk=filed["id"]).events.all()
    assert events.last().actor.username == "curator"


def test_a_rejection_gives_reasons_and_how_to_appeal_and_a_duplicate_names_its_original(
        client_as):
    holder = client_as("holder_a")
    first = holder.post(URL, dmca(), format="json").json()
    second = holder.post(URL, dmca(), format="json").json()
    curator = client_as("curator")
    assert curator.post(f"{URL}{second['id']}/decide/", {"to": "duplicate"},
                        format="json").status_code == 400
    dup = curator.post(f"{URL}{second['id']}/decide/", {"to": "duplicate",
                                                         "duplicate_of": first["id"]},
                       format="json").json()
    assert dup["state"] == "duplicate" and dup["duplicate_of"] == first["id"]
    rejected = curator.post(f"{URL}{first['id']}/decide/", {
        "to": "rejected", "reasons": "The essays are the service's own."}, format="json").json()
    assert rejected["state"] == "rejected"
    assert "own" in mail.outbox[-1].body and "appeal" in mail.outbox[-1].body


def test_each_role_sees_and_changes_only_what_it_may(client_as):
    filed = client_as("holder_a").post(URL, dmca(), format="json").json()
    item = f"{URL}{filed['id']}/"
    assert client_as("holder_b").get(item).status_code == 404
    assert client_as("holder_b").get(URL).json()["count"] == 0
    assert client_as("holder_b").post(f"{item}withdraw/", {}, format="json").status_code == 404
    assert client_as("auditor").get(item).status_code == 200
    assert client_as("auditor").post(f"{item}decide/", {"to": "accepted"},
                                     format="json").status_code == 403
    assert client_as("holder_a").post(f"{item}decide/", {"to": "accepted"},
                                      format="json").status_code == 403
    assert client_as("anonymous").post(URL, dmca(), format="json").status_code in (401, 403)
    assert client_as("researcher").post(URL, dmca(), format="json").status_code == 403
    withdrawn = client_as("holder_a").post(f"{item}withdraw/", {"reason": "settled"},
                                           format="json").json()
    assert withdrawn["state"] == "withdrawn"
    assert client_as("holder_a").post(f"{item}withdraw/", {},
                                      format="json").status_code == 409
