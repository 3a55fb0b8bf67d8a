"""The datastore API: a build queued from a published version, watched, then searched; the query
embedded by a real worker (the web process never imports torch), or keywords alone without one."""

import pytest

from retrieval.models import Datastore
from retrieval.services import datastores

pytestmark = pytest.mark.django_db

TEXTS = ["The lighthouse keeper trimmed the wick at dusk and logged the passing steamers.",
         "Bread rose slowly in the cold bakery while the ovens warmed before dawn.",
         "A fox crossed the frozen field at first light, leaving a line of prints in the snow."]


@pytest.fixture
def version(make_source, ingest_texts, publish_version):
    ingest_texts(make_source(name="coast", license_expression="CC0-1.0"), TEXTS)
    return publish_version()


@pytest.fixture
def built(client_as, version):
    response = client_as("researcher").post("/api/v1/datastores/", {
        "name": "coast-store", "version": version.pk, "chunk_tokens": 32, "overlap_tokens": 4},
        format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["state"] == "queued"
    return datastores.datastore_build(datastore_id=response.json()["id"])


def test_a_datastore_is_built_watched_and_searched_by_keywords_without_a_worker(
        client_as, built):
    auditor = client_as("auditor")
    shown = auditor.get(f"/api/v1/datastores/{built.pk}/").json()
    assert (shown["state"], shown["percent"], shown["chunk_count"]) == ("succeeded", 100.0, 3)
    answer = auditor.post(f"/api/v1/datastores/{built.pk}/search/",
                          {"query": "lighthouse wick", "k": 2}, format="json").json()
    assert answer["legs"] == ["keyword"] and "keywords only" in answer["note"]
    [hit] = answer["hits"]
    assert hit["text"].startswith("The lighthouse keeper") and hit["keyword_rank"] == 1
    assert hit["sources"][0]["name"] == "coast" and hit["sources"][0]["ai_input"] == "unknown"


def test_a_worker_embeds_the_query_and_the_vector_leg_finds_a_paraphrase(
        client_as, built, settings, tmp_path):
    from tests.fixtures.workers import running_worker

    settings.TRAILMARK = {**settings.TRAILMARK, "RETRIEVAL_EMBED_WAIT": 90}
    with running_worker(tmp_path, queues="default", TRAILMARK_EMBED_BACKEND="fp32"):
        answer = client_as("curator").post(
            f"/api/v1/datastores/{built.pk}/search/",
            {"query": "an animal walking over snowy farmland in the morning", "k": 1},
            format="json").json()
    assert answer["legs"] == ["keyword", "vector"] and answer["note"] == ""
    assert answer["hits"][0]["text"].startswith("A fox") and answer["hits"][0]["vector_rank"] == 1


@pytest.mark.parametrize(("change", "field"), [
    ({"version": None}, "version"), ({"version": 0}, "version"),
    ({"chunk_tokens": 4}, "chunk_tokens"),
    ({"chunk_tokens": 32, "overlap_tokens": 32}, "overlap_tokens"),
    ({"name": "a\nb"}, "name")])
def test_bad_builds_name_the_field(client_as, version, change, field):
    body = {k: v for k, v in {"name": "x", "version": version.pk, **change}.items()
            if v is not None}
    response = client_as("curator").post("/api/v1/datastores/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.json()


def test_a_draft_version_or_an_unbuilt_datastore_is_refused_with_a_reason(
        client_as, version, make_source, ingest_texts):
    from provenance.models import DatasetVersion

    draft = DatasetVersion.objects.create(dataset=version.dataset, number=99)
    response = client_as("curator").post("/api/v1/datastores/",
                                         {"name": "d", "version": draft.pk}, format="json")
    assert response.status_code == 400 and "published" in str(response.json()["version"])
    queued = datastores.datastore_create(version=version, name="q", actor=None, enqueue=False)
    response = client_as("curator").post(f"/api/v1/datastores/{queued.pk}/search/",
                                         {"query": "fox"}, format="json")
    assert response.status_code == 400 and "queued" in str(response.json()["datastore"])
    assert Datastore.objects.count() == 1  # the refused draft made none
