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


def test_model_pages_show_lineage_and_progress(client, users, make_source, ingest_texts,
                                               django_assert_max_num_queries):
    from attribution.services.outputs import model_output_create
    from provenance.services.training import training_run_create, training_run_execute

    ingest_texts(make_source(license_expression="CC0-1.0"), [f"text number {i} " * 10
                                                             for i in range(30)])
    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    v = datasets.dataset_version_publish(version=datasets.version_create_from_plan(
        dataset=DatasetFactory(slug="pages"), recipe=recipe, plan=datasets.curation_plan(recipe),
        actor=None), actor=None)
    run = training_run_execute(run_id=training_run_create(
        version=v, actor=None, enqueue=False,
        config={"vocab_size": 400, "n_layer": 1, "n_head": 2, "n_embd": 32, "seq_len": 32,
                "epochs": 1}).pk)
    model_output_create(checkpoint=run.checkpoint, prompt="text number", actor=None,
                        enqueue=False)
    assert client.get("/runs/").status_code == 302  # sign in first
    client.force_login(users["researcher"])
    with django_assert_max_num_queries(6):
        listing = client.get("/runs/")
    assert run.checkpoint.name.encode() in listing.content
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200 and b"<progress" in page.content
    with django_assert_max_num_queries(6):
        ckpt = client.get(f"/checkpoints/{run.checkpoint.pk}/")
    assert v.manifest_root.encode() in ckpt.content and b"text number" in ckpt.content
    client.force_login(users["holder_a"])
    assert client.get(f"/checkpoints/{run.checkpoint.pk}/").status_code == 404
