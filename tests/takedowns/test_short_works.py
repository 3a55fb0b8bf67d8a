"""Short works (one-line quotations) stored inside longer documents ("... -- Author"): found by
containment, added by a curator when no method finds them (who and why in the ledger), and the
decision notice names the works that were not found instead of a bare count."""

from __future__ import annotations

import pytest

from provenance.models import Document, LedgerEntry
from takedowns.models import TakedownMatch
from takedowns.services.decision import notice_text
from takedowns.services.requests import takedown_decide, takedown_file
from takedowns.services.scoping import takedown_scope, takedown_scope_start

pytestmark = pytest.mark.django_db
QUOTES = [
    "The only thing we have to fear is fear itself. -- Franklin D. Roosevelt",
    "Ask not what your country can do for you; ask what you can do for your country. "
    "-- John F. Kennedy",
    "That's one small step for man, one giant leap for mankind. -- Neil Armstrong",
    "In the middle of difficulty lies opportunity. -- Albert Einstein",
    "Fear is the path to the dark side. -- Yoda",
]

COLLECTION = "Famous quotations, a page of them\n\n" + "\n\n".join(QUOTES[1:])


@pytest.fixture
def quotes(users, make_source, ingest_texts, publish_version):
    source = make_source(owner=users["holder_b"].rights_holder, name="quotations")
    ingest_texts(source, [*QUOTES, COLLECTION])
    return publish_version("quotes")


def _file(users, works, remedy="exclude_future"):
    request = takedown_file(actor=users["holder_a"], data={
        "legal_basis": "voluntary", "claimant_name": "Estate", "remedy": remedy,
        "claimant_email": "estate@example.org", "works": works})
    takedown_decide(request=request, actor=users["curator"], to="accepted")
    return takedown_scope_start(request=request, actor=users["curator"])


def test_a_one_line_quotation_is_found_inside_its_attributed_document(users, quotes):
    request = _file(users, [
        {"title": "Fear itself", "sample_text": "the only thing we have to FEAR is fear itself"},
        {"title": "Too short", "sample_text": "fear itself ok"},  # 3 words: not searched alone
        {"title": "Giant leap",
         "sample_text": "That's one small step for man,\none giant leap for mankind."}])
    done = takedown_scope(request_id=request.pk)
    found = {(m.document.text, m.method, m.work.title) for m in
             done.matches.select_related("document", "work")}
    assert (QUOTES[0], "containment", "Fear itself") in found
    assert (QUOTES[2], "containment", "Giant leap") in found
    assert (COLLECTION, "containment", "Giant leap") in found
    # the other quotations (one shares "fear", one "fear ... path") stay out
    assert {text for text, _, _ in found} == {QUOTES[0], QUOTES[2], COLLECTION}
    assert all(m.score >= 0.9 for m in done.matches.filter(method="containment"))
    # on a page of quotations, the line is found by containment alone
    assert {method for text, method, _ in found if text == COLLECTION} == {"containment"}
    assert done.scope["documents"] == 3


def test_a_curator_adds_a_document_with_a_reason_and_the_notice_names_works_not_found(
        users, quotes, client_as, pages_as, django_capture_on_commit_callbacks):
    request = _file(users, [
        {"title": "Fear itself", "sample_text": "The only thing we have to fear is fear itself"},
        {"title": "The dark side", "sample_text": "Fear leads to the path of the dark side."},
        {"title": "Unpublished poem", "sample_text": "Words that were never in this corpus."}])
    takedown_scope(request_id=request.pk)
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    # the paraphrased quotation is found by nobody: the curator searches and adds it
    search = curator.get(f"{url}scope-search/", {"q": "path to the dark"})
    assert search.status_code == 200
    yoda = Document.objects.get(text=QUOTES[4])
    hits = {h["document"]: h for h in search.json()}
    assert set(hits) == {yoda.pk, Document.objects.get(text=COLLECTION).pk}
    assert hits[yoda.pk]["sources"] == ["quotations"] and "dark" in hits[yoda.pk]["excerpt"]
    assert curator.get(f"{url}scope-search/", {"q": "ab"}).status_code == 400
    assert client_as("holder_a").get(f"{url}scope-search/", {"q": "dark side"}).status_code \
        == 403
    assert curator.post(f"{url}add-to-scope/", {"documents": [yoda.pk], "reason": "  "},
                        format="json").status_code == 400
    missing = curator.post(f"{url}add-to-scope/", {"documents": [10**9], "reason": "x"},
                           format="json")
    assert missing.status_code == 400 and "documents" in missing.json()
    assert curator.post(f"{url}add-to-scope/", {"documents": [yoda.pk], "reason": "x",
                                                "work": 10**9},
                        format="json").status_code == 400
    assert client_as("holder_a").post(f"{url}add-to-scope/", {
        "documents": [yoda.pk], "reason": "mine"}, format="json").status_code == 403
    work = request.works.get(title="The dark side")
    added = curator.post(f"{url}add-to-scope/", {
        "documents": [yoda.pk], "work": work.pk,
        "reason": "the same line, reworded in the film's script"}, format="json")
    assert added.status_code == 200, added.json()
    match = TakedownMatch.objects.get(request=request, method="curator")
    assert (match.document_id, match.confirmed, match.reviewed_by, match.note) == (
        yoda.pk, True, users["curator"], "the same line, reworded in the film's script")
    entry = LedgerEntry.objects.get(event="takedown.scope_added")
    assert entry.payload["documents"] == [yoda.pk] and "reworded" in entry.payload["reason"]
    # scanning again keeps what the curator added
    takedown_scope_start(request=request, actor=users["curator"])
    again = takedown_scope(request_id=request.pk)
    assert again.matches.filter(method="curator", confirmed=True).count() == 1
    fear = again.matches.get(method="containment")
    curator.post(f"{url}review-scope/", {"confirm": [fear.document_id]}, format="json")
    done = curator.post(f"{url}remediate-data/", {}, format="json")
    assert done.status_code == 200, done.json()
    with django_capture_on_commit_callbacks(execute=True):
        decided = curator.post(f"{url}decide/", {"to": "decided"}, format="json")
    assert decided.status_code == 200, decided.json()
    notice = decided.json()["decision"]
    assert notice["found"]["confirmed"] == 2 and notice["found"]["added_by_curator"] == 1
    assert notice["works"]["listed"] == 3 and notice["works"]["found"] == 2
    assert [w["title"] for w in notice["works"]["not_found"]] == ["Unpublished poem"]
    text = "\n".join(notice_text(notice))
    assert "holding 2 of the 3 works you listed" in text
    assert 'Not found in our data: 1 work(s): "Unpublished poem"' in text
    page = pages_as("holder_a").get(f"/takedowns/{request.pk}/")
    assert page.status_code == 200 and b"Unpublished poem" in page.content


def test_the_takedown_page_lets_a_curator_search_and_add(users, quotes, pages_as):
    request = _file(users, [{"title": "Dark", "sample_text": "A paraphrase nobody matches."}])
    takedown_scope(request_id=request.pk)
    page = pages_as("curator")
    found = page.get(f"/takedowns/{request.pk}/", {"find": "small step for man"})
    doc = Document.objects.get(text=QUOTES[2])
    assert found.status_code == 200 and f"{doc.pk}: That".encode() in found.content
    posted = page.post(f"/takedowns/{request.pk}/", {"action": "add_to_scope",
                                                     "documents": f"{doc.pk}",
                                                     "note": "quoted in the claimant's book"})
    assert posted.status_code == 302
    assert TakedownMatch.objects.get(request=request, method="curator").note == \
        "quoted in the claimant's book"
    refused = page.post(f"/takedowns/{request.pk}/", {"action": "add_to_scope",
                                                      "documents": "x", "note": "why"})
    assert refused.status_code == 400
