import pytest

from provenance.services import datasets
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db


def test_the_front_page_lists_published_versions_in_few_queries(client, make_source, ingest_texts,
                                                                django_assert_max_num_queries):
    ingest_texts(make_source(license_expression="CC0-1.0"), ["one", "two"])
    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    v = datasets.version_create_from_plan(dataset=DatasetFactory(slug="front"), recipe=recipe,
                                          plan=datasets.curation_plan(recipe), actor=None)
    datasets.dataset_version_publish(version=v, actor=None)
    with django_assert_max_num_queries(4):
        response = client.get("/")
    assert response.status_code == 200
    assert b"front@v1" in response.content and v.manifest_root.encode() in response.content


def test_health_reports_pgvector(client):
    body = client.get("/health/").json()
    assert body["database"] == "ok" and body["pgvector"].startswith("0.")
