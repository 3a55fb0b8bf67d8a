import pytest

from provenance.services import curation, datasets
from tests.factories import DatasetFactory
from tests.helpers import TINY_MODEL

pytestmark = pytest.mark.django_db


def test_the_front_page_lists_published_versions_in_few_queries(client, make_source, ingest_texts,
                                                                django_assert_max_num_queries):
    ingest_texts(make_source(license_expression="CC0-1.0"), ["one", "two"])
    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    v = curation.version_create_from_plan(dataset=DatasetFactory(slug="front"), recipe=recipe,
                                          plan=curation.curation_plan(recipe), actor=None)
    datasets.dataset_version_publish(version=v, actor=None)
    with django_assert_max_num_queries(4):
        response = client.get("/")
    assert response.status_code == 200
    assert b"front@v1" in response.content and v.manifest_root.encode() in response.content


def test_health_reports_pgvector(client):
    body = client.get("/health/").json()
    assert body["database"] == "ok" and body["pgvector"].startswith("0.")


def test_model_pages_show_lineage_and_progress(client, users, make_source, ingest_texts,
                                               publish_version, django_assert_max_num_queries):
    from attribution.services.outputs import model_output_create
    from provenance.services.training import training_run_create, training_run_execute

    ingest_texts(make_source(license_expression="CC0-1.0"), [f"text number {i} " * 10
                                                             for i in range(30)])
    v = publish_version("pages")
    run = training_run_execute(run_id=training_run_create(
        version=v, actor=None, enqueue=False, config={**TINY_MODEL, "epochs": 1}).pk)
    model_output_create(checkpoint=run.checkpoint, prompt="text number", actor=None,
                        enqueue=False)
    assert client.get("/runs/").status_code == 302  # sign in first
    client.force_login(users["researcher"])
    with django_assert_max_num_queries(6):
        listing = client.get("/runs/")
    assert run.checkpoint.name.encode() in listing.content
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200 and b"<progress" in page.content
    # Constant in the number of outputs: session, user, checkpoint, outputs, canary run and
    # results, the watermark codebook and the names this viewer may see.
    with django_assert_max_num_queries(8):
        ckpt = client.get(f"/checkpoints/{run.checkpoint.pk}/")
    assert v.manifest_root.encode() in ckpt.content and b"text number" in ckpt.content
    client.force_login(users["holder_a"])
    assert client.get(f"/checkpoints/{run.checkpoint.pk}/").status_code == 404


def test_source_page_explains_the_watermark_and_shows_canary_results(client, users, make_source,
                                                                     holder_a):
    from provenance.services.canaries import canary_register

    source = make_source(owner=holder_a, name="visible source")
    canary_register(source=source, actor=None)
    client.force_login(users["holder_a"])
    page = client.get(f"/sources/{source.pk}/")
    assert page.status_code == 200
    assert b"format characters" in page.content and b"No test yet" in page.content
    other = make_source(name="someone else's")
    assert client.get(f"/sources/{other.pk}/").status_code == 404


def test_a_generation_can_be_asked_for_from_the_checkpoint_page(client, users, make_source,
                                                              ingest_texts, publish_version,
                                                              django_capture_on_commit_callbacks):
    from attribution.models import ModelOutput
    from provenance.services.training import training_run_create, training_run_execute

    ingest_texts(make_source(license_expression="CC0-1.0"), [f"line {i} " * 12
                                                             for i in range(20)])
    v = publish_version("gen")
    run = training_run_execute(run_id=training_run_create(
        version=v, actor=None, enqueue=False, config={**TINY_MODEL, "epochs": 1}).pk)
    url = f"/checkpoints/{run.checkpoint.pk}/"
    client.force_login(users["researcher"])
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = client.post(url, {"prompt": "line 3"})
    assert response.status_code == 302 and len(queued) == 1
    assert ModelOutput.objects.get().prompt == "line 3"
    assert client.post(url, {"prompt": "  "}).status_code == 400
    client.force_login(users["auditor"])
    assert client.post(url, {"prompt": "x"}).status_code == 403


def test_every_role_signs_in_on_the_sign_in_page_and_out_again(client, users):
    users["auditor"].set_password("s3cret-pass")
    users["auditor"].save()
    assert client.get("/runs/")["Location"].startswith("/accounts/login/?next=/runs/")
    page = client.get("/accounts/login/?next=/runs/")
    assert page.status_code == 200 and b'name="password"' in page.content
    wrong = client.post("/accounts/login/", {"username": "auditor", "password": "nope",
                                             "next": "/runs/"})
    assert wrong.status_code == 200 and b"didn't match" in wrong.content
    signed = client.post("/accounts/login/", {"username": users["auditor"].username,
                                              "password": "s3cret-pass", "next": "/runs/"})
    assert signed.status_code == 302 and signed["Location"] == "/runs/"
    home = client.get("/")
    assert b"sign out" in home.content and b'href="/admin/"' not in home.content  # not staff
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/runs/").status_code == 302
