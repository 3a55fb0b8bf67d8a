"""The rights-holder portal in the browser's terms: forms posted, pages read."""

import pytest
from django.core import mail

from takedowns.models import TakedownRequest

pytestmark = pytest.mark.django_db

FORM = {"legal_basis": "dmca_512", "remedy": "both", "claimant_name": "Ann Owner",
        "claimant_email": "ann@holder-a.example", "authority": "owner",
        "postal_address": "1 Quay Street", "work_title": "Tide Essays",
        "work_urls": "https://holder-a.example/tide\n", "work_sample": "The tide came in.",
        "statement_good_faith": "1", "statement_accuracy": "1",
        "statement_authority_under_perjury": "1", "signature": "Ann Owner"}


def test_a_rights_holder_files_on_the_portal_and_follows_the_request(
        client, users, django_capture_on_commit_callbacks, django_assert_max_num_queries):
    client.force_login(users["holder_a"])
    assert b"File a takedown request" in client.get("/takedowns/new/").content
    with django_capture_on_commit_callbacks(execute=True):
        answer = client.post("/takedowns/new/", FORM)
    filed = TakedownRequest.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/takedowns/{filed.pk}/"
    assert filed.state == "validating" and filed.works.get().urls == [
        "https://holder-a.example/tide"]
    page = client.get(f"/takedowns/{filed.pk}/").content.decode()
    assert filed.reference in page and "validating" in page and filed.deadlines["decide"] in page
    assert mail.outbox and filed.reference in mail.outbox[0].subject
    with django_assert_max_num_queries(6):
        listing = client.get("/takedowns/")
    assert filed.reference.encode() in listing.content


def test_a_notice_that_lacks_elements_says_what_and_takes_them_on_its_page(client, users):
    client.force_login(users["holder_a"])
    client.post("/takedowns/new/", {**FORM, "signature": "", "statement_accuracy": ""})
    filed = TakedownRequest.objects.get()
    page = client.get(f"/takedowns/{filed.pk}/").content.decode()
    assert filed.state == "needs_info"
    assert "typed full name" in page and "notice is accurate" in page
    answer = client.post(f"/takedowns/{filed.pk}/", {"action": "supplement",
                                                     "signature": "Ann Owner",
                                                     "statement_accuracy": "1"})
    assert answer.status_code == 302
    filed.refresh_from_db()
    assert filed.state == "validating" and filed.missing == []
    again = client.post(f"/takedowns/{filed.pk}/", {"action": "supplement", "signature": "x"})
    assert again.status_code == 409 and b"cannot supplement" in again.content
    client.post(f"/takedowns/{filed.pk}/", {"action": "withdraw", "reason": "settled"})
    filed.refresh_from_db()
    assert filed.state == "withdrawn"


def test_bad_input_is_shown_on_the_form_and_nothing_is_saved(client, users):
    client.force_login(users["holder_a"])
    answer = client.post("/takedowns/new/", {**FORM, "work_urls": "not a url",
                                             "claimant_email": "nobody"})
    assert answer.status_code == 400
    assert b"works: item 1, urls, item 1: Enter a valid URL." in answer.content  # API's words
    assert b"Enter a valid email address." in answer.content
    assert TakedownRequest.objects.count() == 0


def test_the_portal_shows_each_holder_only_its_own_and_auditors_cannot_file(client, users):
    client.force_login(users["holder_a"])
    client.post("/takedowns/new/", FORM)
    filed = TakedownRequest.objects.get()
    client.force_login(users["holder_b"])
    assert client.get(f"/takedowns/{filed.pk}/").status_code == 404
    assert filed.reference.encode() not in client.get("/takedowns/").content
    client.force_login(users["auditor"])
    assert client.get(f"/takedowns/{filed.pk}/").status_code == 200
    assert client.get("/takedowns/new/").status_code == 403
    client.logout()
    assert client.get("/takedowns/")["Location"].startswith("/accounts/login/")


def test_works_uploaded_as_text_files_become_works_with_their_text_as_sample(client, users):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from provenance.engine.text import content_hash, normalise

    client.force_login(users["holder_a"])
    essay = "The tide came in over the quay and the lanterns went out one by one."
    files = [SimpleUploadedFile("tide.txt", essay.encode(), "text/plain"),
             SimpleUploadedFile("notes.md", b"# Notes\nShort notes.", "text/markdown")]
    form = {**FORM, "work_title": "", "work_urls": "", "work_sample": ""}
    answer = client.post("/takedowns/new/", {**form, "work_files": files})
    assert answer.status_code == 302
    works = TakedownRequest.objects.get().works.order_by("pk")
    assert [(w.title, w.identifiers) for w in works] == [
        ("tide.txt", ["file:tide.txt"]), ("notes.md", ["file:notes.md"])]
    assert works[0].sample_sha256 == content_hash(normalise(essay))
    binary = SimpleUploadedFile("scan.pdf", b"%PDF-1.7", "application/pdf")
    refused = client.post("/takedowns/new/", {**form, "work_files": [binary]})
    assert refused.status_code == 400 and b"scan.pdf: only text files" in refused.content
    latin = SimpleUploadedFile("old.txt", "café".encode("latin-1"), "text/plain")
    refused = client.post("/takedowns/new/", {**form, "work_files": [latin]})
    assert refused.status_code == 400 and b"old.txt: not UTF-8 text" in refused.content
    assert TakedownRequest.objects.count() == 1
