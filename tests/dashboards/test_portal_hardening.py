"""What the outside probe sent the portal and the API that answered 500 or told too much: NUL
characters, malformed staff fields, foreign ids, orderings over many-to-many fields, staff
usernames shown to claimants, and filings without end."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from provenance.models import Document
from takedowns.models import TakedownRequest
from takedowns.services.requests import takedown_file
from tests.dashboards.test_portal import FORM

pytestmark = pytest.mark.django_db
NOTICE = {"legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
          "works": [{"title": "Tide", "urls": ["https://a.example/tide"]}]}


@pytest.mark.parametrize(("fields", "where"), [
    ({"claimant_name": "Ann\x00Owner"}, "claimant_name"),
    ({"work_sample": "the tide\x00came"}, "works"),
    ({"work_urls": "javascript:alert(1)"}, "works"),
    ({"work_identifiers": "x" * 201}, "works"),
])
def test_the_portal_refuses_what_the_api_refuses_with_a_400(pages_as, fields, where):
    answer = pages_as("holder_a").post("/takedowns/new/", {**FORM, **fields})
    assert answer.status_code == 400, answer.content[:300]
    assert where.encode() in answer.content
    assert not TakedownRequest.objects.exists()


def test_an_uploaded_work_file_with_nul_bytes_is_a_400_naming_it(pages_as):
    upload = SimpleUploadedFile("essay.txt", b"an essay\x00with a NUL")
    answer = pages_as("holder_a").post("/takedowns/new/", {**FORM, "work_files": [upload]})
    assert answer.status_code == 400 and b"Null characters are not allowed" in answer.content
    assert not TakedownRequest.objects.exists()


def test_the_api_caps_the_number_of_works(client_as):
    many = {**NOTICE, "works": [{"title": f"w{i}"} for i in range(1001)]}
    answer = client_as("holder_a").post("/api/v1/takedowns/", many, format="json")
    assert answer.status_code == 400 and "no more than 1000" in str(answer.json()["works"])


@pytest.mark.parametrize("post", [
    {"action": "review", "doc_abc": "confirm"},
    {"action": "cancel_run", "run": "abc"},
    {"action": "decide", "to": "rejected", "reasons": "no\x00reason"},
    {"action": "withdraw", "reason": "x\x00y"},
])
def test_malformed_staff_and_claimant_fields_are_a_400(pages_as, users, post):
    filed = takedown_file(actor=users["holder_a"], data=NOTICE)
    who = "holder_a" if post["action"] == "withdraw" else "curator"
    answer = pages_as(who).post(f"/takedowns/{filed.pk}/", post)
    assert answer.status_code == 400, answer.content[:300]


def test_nul_in_any_json_string_is_a_400(client_as):
    answer = client_as("admin").post("/api/v1/curation-jobs/",
                                     {"dataset": 1, "recipe": {"intended_use": "a\x00b"}},
                                     format="json")
    assert answer.status_code == 400 and "U+0000" in answer.json()["detail"]


@pytest.mark.parametrize("against", ["²", "٣", "99999999999999999999", "-1", ""])
def test_a_version_diff_against_a_strange_number_is_a_400(client_as, publish_version,
                                                         against):
    version = publish_version()
    answer = client_as("curator").get(f"/api/v1/versions/{version.pk}/diff/",
                                      {"against": against})
    assert answer.status_code == 400 and "against" in answer.json()


def test_a_rights_holder_sees_only_its_own_sources_of_a_shared_document(
        client_as, users, make_source, ingest_texts):
    mine = make_source(owner=users["holder_a"].rights_holder)
    theirs = make_source(owner=users["holder_b"].rights_holder)
    ingest_texts(mine, ["a text both hold"])
    ingest_texts(theirs, ["a text both hold", "only theirs"])
    holder = client_as("holder_a")
    [row] = holder.get("/api/v1/documents/").json()["results"]
    assert row["sources"] == [mine.pk]
    assert holder.get("/api/v1/documents/", {"source": theirs.pk}).json()["count"] == 0
    assert holder.get("/api/v1/documents/", {"source": mine.pk}).json()["count"] == 1
    shared = Document.objects.get(text="a text both hold")
    assert holder.get(f"/api/v1/documents/{shared.pk}/").json()["sources"] == [mine.pk]
    assert sorted(client_as("curator").get(f"/api/v1/documents/{shared.pk}/").json()[
        "sources"]) == sorted([mine.pk, theirs.pk])


def test_ordering_is_limited_to_allowed_fields_and_pages_never_overlap(client_as, make_source,
                                                                      ingest_texts):
    source = make_source()
    ingest_texts(source, [f"text number {i}" for i in range(7)])
    curator = client_as("curator")
    bad = curator.get("/api/v1/documents/", {"ordering": "sources"})
    assert bad.status_code == 400 and "cannot order by sources" in bad.json()["ordering"]
    seen = []
    for offset in range(0, 7, 2):  # created_at ties: the id breaks them
        page = curator.get("/api/v1/documents/", {"ordering": "-created_at", "limit": 2,
                                                  "offset": offset}).json()
        seen += [row["id"] for row in page["results"]]
    assert len(seen) == len(set(seen)) == 7


def test_a_foreign_id_is_answered_like_one_that_does_not_exist(client_as, users, make_source):
    theirs = make_source(owner=users["holder_b"].rights_holder)
    holder = client_as("holder_a")
    answers = []
    for source in (theirs.pk, 999_999):
        answer = holder.post("/api/v1/ingest-jobs/", {
            "source": source, "file": SimpleUploadedFile("a.jsonl", b'{"text": "x"}\n')},
            format="multipart")
        claimed = holder.post("/api/v1/takedowns/", {**NOTICE, "claimed_sources": [source]},
                              format="json")
        answers.append((answer.status_code, claimed.status_code))
        assert f'Invalid pk \\"{source}\\"' in answer.content.decode()
        assert f'Invalid pk \\"{source}\\"' in claimed.content.decode()
    assert answers == [(400, 400), (400, 400)]
    owner = holder.post("/api/v1/sources/", {"owner": users["holder_b"].rights_holder_id,
                                             "name": "x", "license_expression": "MIT"},
                        format="json")
    assert owner.status_code == 400 and "Invalid pk" in str(owner.json()["owner"])


def test_a_claimant_sees_a_role_not_the_staff_members_username(client_as, pages_as, users):
    filed = takedown_file(actor=users["holder_a"], data=NOTICE)
    assert client_as("curator").post(f"/api/v1/takedowns/{filed.pk}/decide/",
                                     {"to": "rejected", "reasons": "not ours"},
                                     format="json").status_code == 200
    events = client_as("holder_a").get(f"/api/v1/takedowns/{filed.pk}/").json()["events"]
    assert [e["actor"] for e in events][-1] == "curator"
    assert events[0]["actor"] == "holder_a"  # its own user, by name
    page = pages_as("holder_a").get(f"/takedowns/{filed.pk}/").content.decode()
    assert "by curator" in page
    users["curator"].username = "jane.smith"
    users["curator"].save()
    page = pages_as("holder_a").get(f"/takedowns/{filed.pk}/").content.decode()
    assert "jane.smith" not in page and "by curator" in page
    staff = client_as("auditor").get(f"/api/v1/takedowns/{filed.pk}/").json()["events"]
    assert staff[-1]["actor"] == "jane.smith"


def test_a_holder_that_files_past_its_quota_is_told_when_it_may_file_again(client_as, settings,
                                                                          pages_as):
    settings.TRAILMARK = {**settings.TRAILMARK, "TAKEDOWN_QUOTA": "3/day"}
    holder = client_as("holder_a")
    answers = [holder.post("/api/v1/takedowns/", NOTICE, format="json").status_code
               for _ in range(4)]
    assert answers == [201, 201, 201, 429]
    refused = holder.post("/api/v1/takedowns/", NOTICE, format="json")
    assert int(refused["Retry-After"]) > 80_000 and "quota" in refused.json()["detail"]
    assert pages_as("holder_a").post("/takedowns/new/", FORM).status_code == 429
    assert client_as("holder_b").post("/api/v1/takedowns/", NOTICE,
                                      format="json").status_code == 201  # per holder
    assert client_as("curator").post("/api/v1/takedowns/", NOTICE,
                                     format="json").status_code == 201  # staff: no quota
    assert TakedownRequest.objects.count() == 5


def test_another_apis_paging_parameters_are_refused_not_ignored(client_as):
    answer = client_as("curator").get("/api/v1/sources/", {"page_size": 5})
    assert answer.status_code == 400 and "limit" in answer.json()["page_size"]
    assert client_as("curator").get("/api/v1/sources/", {"limit": 5}).status_code == 200


def test_the_transparency_table_of_requests_is_headed_requests(client, users):
    takedown_file(actor=users["holder_a"], data=NOTICE)
    page = client.get("/transparency/").content.decode()
    table = page.split('id="by-basis-title"')[1].split("</table>")[0]
    assert '<th scope="col">Requests</th>' in table and ">Documents<" not in table


def test_the_schema_says_when_a_sources_owner_is_required():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    owner = schema["components"]["schemas"]["SourceInRequest"]["properties"]["owner"]
    assert "required from staff" in owner["description"]


NO_LOCATION = {"legal_basis": "dmca_512", "claimant_name": "Ann", "claimant_email":
               "a@a.example", "authority": "owner", "postal_address": "1 Quay St",
               "signature": "Ann", "statements": {"good_faith": True, "accuracy": True,
                                                  "authority_under_perjury": True},
               "works": [{"title": "A quotation"}]}


def test_a_notice_in_needs_info_for_its_location_can_be_completed(client_as, pages_as):
    """A work named by its title only could never leave needs_info: supplements only added
    works. Now a supplement completes a work by its id, and a sample of the text locates a
    work in Trailmark's own datasets."""
    holder = client_as("holder_a")
    filed = holder.post("/api/v1/takedowns/", NO_LOCATION, format="json").json()
    assert filed["state"] == "needs_info"
    assert [m["element"] for m in filed["missing"]] == ["works", "location"]
    work = filed["works"][0]["id"]
    url = f"/api/v1/takedowns/{filed['id']}/supplement/"
    short = holder.post(url, {"works": [{"id": work, "sample_text": "too short"}]},
                        format="json").json()
    assert short["state"] == "needs_info" and [m["element"] for m in short["missing"]] == [
        "location"]  # a title and a sample: a work; 9 characters do not locate it
    done = holder.post(url, {"works": [{"id": work, "sample_text":
                                        "The tide came in over the quay at dawn."}]},
                       format="json").json()
    assert done["state"] == "validating" and done["missing"] == []
    assert len(done["works"]) == 1 and done["works"][0]["sample_sha256"]


def test_the_portal_completes_a_work_and_refuses_another_requests_work(pages_as, users):
    filed = takedown_file(actor=users["holder_a"], data=NO_LOCATION)
    other = takedown_file(actor=users["holder_a"], data=NOTICE)
    assert filed.state == "needs_info"
    work = filed.works.get()
    page = pages_as("holder_a")
    wrong = page.post(f"/takedowns/{filed.pk}/", {
        "action": "supplement", f"work_{other.works.get().pk}_urls": "https://a.example/x"})
    assert wrong.status_code == 400 and b"names no work with id" in wrong.content
    answer = page.post(f"/takedowns/{filed.pk}/", {
        "action": "supplement", f"work_{work.pk}_urls": "https://holder-a.example/quote"})
    assert answer.status_code == 302
    filed.refresh_from_db()
    work.refresh_from_db()
    assert filed.state == "validating" and work.urls == ["https://holder-a.example/quote"]
    assert work.title == "A quotation" and filed.works.count() == 1


def test_every_form_on_a_request_page_is_one_row_of_the_table_the_api_shares():
    """The portal's steps go through one table (dashboards.portal.ACTIONS) onto the API's
    services, each needing the capability the API's action needs."""
    import re
    from pathlib import Path

    from dashboards.portal import ACTIONS
    from takedowns.apis import TakedownViewSet
    from takedowns.services.workflow import STEP_CAPABILITIES

    template = (Path(__file__).resolve().parents[2] / "dashboards" / "templates" / "dashboards"
                / "takedown.html").read_text()
    forms = set(re.findall(r'name="action" value="(\w+)"', template))
    assert forms == set(ACTIONS)
    assert TakedownViewSet.action_capabilities is STEP_CAPABILITIES
    api_actions = {name.replace("-", "_") for name in dir(TakedownViewSet)
                   if hasattr(getattr(TakedownViewSet, name), "mapping")}
    for step, _ in ACTIONS.values():
        assert step in STEP_CAPABILITIES and step in api_actions, step
