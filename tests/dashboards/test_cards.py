"""A dataset version's cards: rendered when the version is published, edited by a researcher,
published with one action (in the ledger, with the digest of each document), downloadable in
three formats that their own libraries validate."""

from __future__ import annotations

import hashlib
import json

import mlcroissant as mlc
import pytest

from dashboards.models import VersionCard
from dashboards.services import version_card_render
from dashboards.tasks import card_render_task
from provenance.models import Document, LedgerEntry
from takedowns.services.scoping import takedown_scope
from tests.fixtures.scoping import file_and_accept

pytestmark = pytest.mark.django_db


def test_publishing_a_version_renders_its_cards_in_three_formats(published):
    card = VersionCard.objects.get(version=published)
    assert card.state == "draft" and card.rendered_at is not None
    assert "| essays |" in card.hf_card and "| forum |" in card.hf_card
    assert "license:\n- cc-by-4.0\n- mit" in card.hf_card
    document = json.loads(card.croissant)
    mlc.Metadata.from_json(ctx=mlc.Context(), json_=document)  # raises when invalid
    assert "text" in [f["name"] for f in document["recordSet"][0]["field"]]
    graph = {node.get("spdxId"): node for node in json.loads(card.spdx)["@graph"]}
    assert graph[next(k for k in graph if k and k.endswith("/version"))]["name"] == str(published)
    assert set(card.digests) == {"hf", "croissant", "spdx"}


def test_a_researcher_edits_then_publishes_the_card_and_the_ledger_holds_its_digests(
        published, client_as):
    url = f"/api/v1/versions/{published.pk}/card/"
    researcher = client_as("researcher")
    assert client_as("anonymous").get(url).status_code == 404  # a draft is not public yet
    assert client_as("auditor").get(url).json()["state"] == "draft"
    bad = researcher.patch(url, {"words": {"colour": "blue"}}, format="json")
    assert bad.status_code == 400 and "colour" in bad.json()
    assert researcher.patch(url, {"words": {"uses": 7}}, format="json").json() == {
        "uses": ["must be text"]}
    assert client_as("holder_a").patch(url, {"words": {"uses": "x"}},
                                       format="json").status_code == 403
    edited = researcher.patch(url, {"words": {"uses": "Studying provenance tools.",
                                              "biases": "Two essays, one post."}},
                              format="json")
    assert edited.status_code == 200, edited.json()
    card = VersionCard.objects.get(version=published)
    assert "Studying provenance tools." in card.hf_card
    assert json.loads(card.croissant)["rai:dataBiases"] == ["Two essays, one post."]

    done = researcher.post(f"{url}publish/")
    assert done.status_code == 200 and done.json()["state"] == "published"
    entry = LedgerEntry.objects.get(event="dataset_card.published")
    anonymous = client_as("anonymous")
    for fmt, media in (("hf", "text/markdown"), ("croissant", "application/ld+json"),
                       ("spdx", "application/spdx+json")):
        response = anonymous.get(f"{url}{fmt}/")
        assert response.status_code == 200 and response["Content-Type"].startswith(media)
        digest = hashlib.sha256(response.content).hexdigest()
        assert digest == response["X-Content-SHA256"] == entry.payload["digests"][fmt]
    assert json.loads(anonymous.get(f"{url}croissant/").content)["conformsTo"].endswith("1.1")
    assert researcher.patch(url, {"words": {"uses": "later"}},
                            format="json").status_code == 409
    assert researcher.post(f"{url}publish/").status_code == 409
    assert anonymous.get(f"{url}pdf/").status_code == 404


def test_a_card_names_the_takedowns_of_its_lineage_and_the_models_trained_on_it(
        corpus, client_as):  # noqa: F811
    request = file_and_accept(corpus)
    takedown_scope(request_id=request.pk)
    work = Document.objects.get(text=corpus["work"])
    curator = client_as("curator")
    url = f"/api/v1/takedowns/{request.pk}/"
    others = [m["document"] for m in curator.get(f"{url}matches/").json()["results"]
              if m["document"] != work.pk]
    curator.post(f"{url}review-scope/", {"confirm": [work.pk], "dismiss": others},
                 format="json")
    done = curator.post(f"{url}remediate-data/", {}, format="json")
    assert done.status_code == 200, done.json()
    new_version = done.json()["scope"]["remediation"]["versions"][0]["to"]

    after = version_card_render(version_id=new_version)
    assert f"{request.reference} (voluntary): 1 document(s) removed" in after.hf_card
    assert request.reference in json.loads(after.croissant)["rai:dataSocialImpact"]
    assert "+0 / -1 documents" in after.hf_card

    before = version_card_render(version_id=corpus["version"].pk)
    assert "No takedown request has removed" in before.hf_card
    checkpoint = corpus["checkpoint"]
    trained_on = [n for n in json.loads(before.spdx)["@graph"]
                  if n.get("relationshipType") == "trainedOn"]
    assert [n["from"].rsplit("/", 1)[-1] for n in trained_on] == [f"checkpoint-{checkpoint.pk}"]
    assert f"{checkpoint.name} (trained" in before.hf_card


def test_a_draft_version_has_no_card_to_write(client_as, make_source, ingest_texts):
    from provenance.services import curation, datasets
    from tests.factories import DatasetFactory

    ingest_texts(make_source(), ["text"])
    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    draft = curation.version_create_from_plan(dataset=DatasetFactory(slug="d"), recipe=recipe,
                                              plan=curation.curation_plan(recipe), actor=None)
    answer = client_as("curator").patch(f"/api/v1/versions/{draft.pk}/card/",
                                        {"words": {"uses": "x"}}, format="json")
    assert answer.status_code == 409 and "publish the version first" in answer.json()["detail"]
    assert version_card_render(version_id=draft.pk) is None


def test_a_model_card_shows_its_training_data_lineage_and_remediations(
        trained, client_as, django_capture_on_commit_callbacks):  # noqa: F811
    from huggingface_hub import ModelCard

    from provenance.models import ModelCheckpoint
    from takedowns.models import UnlearningRun
    from tests.fixtures.remediation import data_remediated

    checkpoint = trained["checkpoint"]
    request = data_remediated(trained, client_as)
    with django_capture_on_commit_callbacks(execute=False):  # the run is not started here
        started = client_as("curator").post(
            f"/api/v1/takedowns/{request.pk}/remediate-models/", {"methods": ["graddiff"]},
            format="json")
    assert started.status_code == 202, started.json()
    run = UnlearningRun.objects.get(request=request)
    child = ModelCheckpoint.objects.create(
        name=f"{checkpoint.name}-unlearned", kind="unlearned", version=checkpoint.version,
        parent=checkpoint, path="/nonexistent", sha256="e" * 64)
    UnlearningRun.objects.filter(pk=run.pk).update(result=child, verdict="pass",
                                                    state="succeeded")

    answer = client_as("anonymous").get(f"/api/v1/checkpoints/{checkpoint.pk}/card/")
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/markdown")
    card = ModelCard(answer.content.decode())
    assert card.data.to_dict()["datasets"][0].endswith(
        f"/datasets/{checkpoint.version.dataset.slug}/v{checkpoint.version.number}/")
    assert f"Trained on **{checkpoint.version}**" in card.text
    assert "| commercial |" in card.text  # the licence mix
    assert (f"{request.reference} (voluntary): graddiff, succeeded, verdict pass, "
            f"remediated model {child.name}") in card.text
    derived = client_as("anonymous").get(f"/api/v1/checkpoints/{child.pk}/card/").content
    assert f"derived by graddiff for {request.reference} from {checkpoint.name}" in \
        derived.decode()
    assert client_as("anonymous").get("/api/v1/checkpoints/999999/card/").status_code == 404
    # A retrain's card says what it is for (it has no parent to derive from)
    from provenance.models import TrainingRun

    retrained = ModelCheckpoint.objects.create(
        name=f"{checkpoint.name}-retrained", kind="trained", version=checkpoint.version,
        run=TrainingRun.objects.create(version=checkpoint.version, state="succeeded"),
        path="/nonexistent", sha256="f" * 64)
    UnlearningRun.objects.create(request=request, checkpoint=checkpoint, method="retrain",
                                 result=retrained, state="succeeded", verdict="pass")
    origin = client_as("anonymous").get(f"/api/v1/checkpoints/{retrained.pk}/card/").content
    assert (f"**Origin:** Made by retrain for takedown {request.reference} (voluntary), to "
            f"replace {checkpoint.name} (sha256 {checkpoint.sha256[:16]}…): trained from "
            f"scratch on the version without the claimed work.") in origin.decode()
    # The same card as a public page, linked from the transparency page
    page = client_as("anonymous").get(f"/models/{checkpoint.pk}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"Model card: {checkpoint.name}" in html and checkpoint.sha256 in html
    assert f'href="/datasets/{checkpoint.version.dataset.slug}/v{checkpoint.version.number}/"' \
        in html and "<td>commercial</td>" in html
    assert f"{request.reference} (voluntary): graddiff, succeeded, verdict pass" in html
    assert f'href="/models/{checkpoint.pk}/"' in \
        client_as("anonymous").get("/transparency/").content.decode()
    assert client_as("anonymous").get("/models/999999/").status_code == 404


def test_a_person_rights_holders_name_is_in_no_public_card(users, make_source, ingest_texts,
                                                          publish_version, monkeypatch,
                                                          django_capture_on_commit_callbacks,
                                                          client_as, client):
    """The ledger keeps a person holder's name only as an erasable commitment; the published
    cards printed it. Cards, public pages and roles without a need for it (auditors,
    researchers) now see "a private individual"; staff and the holder's own users see it."""
    from provenance.services.sources import rights_holder_create

    person = rights_holder_create(actor=None, name="Ada Lovelace-Writer", kind="person",
                                  contact_name="Ada", contact_email="ada@example.org")
    mine = make_source(owner=person, name="poems", license_expression="CC-BY-4.0")
    ingest_texts(mine, ["a poem", "another poem"])
    monkeypatch.setattr(card_render_task, "delay",
                        lambda version_id: version_card_render(version_id=version_id))
    with django_capture_on_commit_callbacks(execute=True):
        version = publish_version("people", "commercial")
    card = VersionCard.objects.get(version=version)
    for text in (card.hf_card, card.croissant, card.spdx):
        assert "Ada" not in text and "a private individual" in text
    assert "Ada" not in client.get("/").content.decode()  # the public home page lists sources
    for role in ("auditor", "researcher"):
        holder = client_as(role).get(f"/api/v1/rights-holders/{person.pk}/").json()
        assert (holder["name"], holder["contact_name"], holder["contact_email"]) == (
            "a private individual", "", "")
        source = client_as(role).get(f"/api/v1/sources/{mine.pk}/").json()
        assert source["owner_name"] == "a private individual"
    for role in ("curator", "admin"):
        holder = client_as(role).get(f"/api/v1/rights-holders/{person.pk}/").json()
        assert (holder["name"], holder["contact_email"]) == ("Ada Lovelace-Writer",
                                                             "ada@example.org")
    organisation = client_as("researcher").get(
        f"/api/v1/rights-holders/{users['holder_a'].rights_holder_id}/").json()
    assert organisation["name"] == "Holder A" and organisation["contact_email"] == ""


def test_names_with_control_characters_are_refused(client_as, users):
    admin = client_as("admin")
    for url, body, field in (
            ("/api/v1/rights-holders/", {"name": "Evil\nPress"}, "name"),
            ("/api/v1/sources/", {"owner": users["holder_a"].rights_holder_id,
                                  "name": "x\u202eevil", "license_expression": "MIT"}, "name"),
            ("/api/v1/datasets/", {"slug": "x", "title": "T\r\n# heading"}, "title")):
        response = admin.post(url, body, format="json")
        assert response.status_code == 400 and "control or format character" in \
            response.json()[field][0], response.json()


def test_the_schema_describes_each_card_download_as_what_it_is():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    content = schema["paths"]["/api/v1/versions/{version_id}/card/{fmt}/"]["get"]["responses"][
        "200"]["content"]
    assert content["text/markdown"]["schema"]["type"] == "string"
    assert content["application/ld+json"]["schema"]["type"] == "object"
    assert content["application/spdx+json"]["schema"]["type"] == "object"


def test_a_published_card_is_corrected_by_a_new_revision_and_both_stay(
        published, client_as, settings, pages_as):
    url = f"/api/v1/versions/{published.pk}/card/"
    researcher, anonymous = client_as("researcher"), client_as("anonymous")
    assert researcher.post(f"{url}revise/", {"reason": "too early"}).status_code == 409  # draft
    first = researcher.post(f"{url}publish/").json()
    assert first["revision"] == 1
    old_croissant = anonymous.get(f"{url}croissant/").content
    # the public URL was wrong when it was published: correct it with a new revision
    settings.TRAILMARK = {**settings.TRAILMARK, "PUBLIC_URL": "https://data.example.org"}
    assert researcher.post(f"{url}revise/", {"reason": " "}).json() == {
        "reason": ["This field may not be blank."]}
    assert client_as("holder_a").post(f"{url}revise/", {"reason": "x"}).status_code == 403
    draft = researcher.post(f"{url}revise/", {"reason": "cards named the wrong host"})
    assert draft.status_code == 201, draft.json()
    assert (draft.json()["revision"], draft.json()["state"]) == (2, "draft")
    assert researcher.post(f"{url}revise/", {"reason": "again"}).status_code == 409
    # the public still reads revision 1 while revision 2 is a draft
    assert anonymous.get(url).json()["revision"] == 1
    assert anonymous.get(f"{url}croissant/").content == old_croissant
    assert researcher.patch(url, {"words": {"uses": "Corrected."}},
                            format="json").status_code == 200
    published_2 = researcher.post(f"{url}publish/").json()
    assert (published_2["revision"], published_2["state"]) == (2, "published")
    new = anonymous.get(f"{url}croissant/")
    assert b"https://data.example.org/api/v1/versions/" in new.content
    assert anonymous.get(f"{url}croissant/", {"revision": 1}).content == old_croissant
    assert [r["revision"] for r in anonymous.get(url).json()["revisions"]] == [2, 1]
    # the ledger keeps both, the second naming the one it supersedes and why
    entries = list(LedgerEntry.objects.filter(event="dataset_card.published").order_by("pk"))
    assert [e.payload["revision"] for e in entries] == [1, 2]
    assert entries[1].payload["supersedes"] == {"revision": 1,
                                                "digests": entries[0].payload["digests"]}
    assert entries[1].payload["reason"] == "cards named the wrong host"
    assert entries[1].payload["digests"]["croissant"] == new["X-Content-SHA256"]
    for bad in ("0", "x", "3"):
        assert anonymous.get(url, {"revision": bad}).status_code in (400, 404)
    page = pages_as("anonymous").get(f"/datasets/{published.dataset.slug}/v1/")
    assert b"Revision 2" in page.content and b"cards named the wrong host" in page.content
    assert b"croissant/?revision=2" in page.content
