"""Bad input gets a 4xx that names the field; it is never a 5xx. And the happy paths work."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from provenance.models import Document, IngestJob
from provenance.tasks import curate_run_task, ingest_run_task
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(client_as):
    return client_as("admin")


@pytest.fixture
def source(make_source, holder_a):
    return make_source(owner=holder_a, license_expression="CC0-1.0", name="src")


def test_an_unknown_licence_key_is_a_400_naming_the_field_and_the_key(admin, holder_a):
    response = admin.post("/api/v1/sources/", {"owner": holder_a.pk, "name": "s",
                                               "license_expression": "MIT OR Not-A-Licence"},
                          format="json")
    assert response.status_code == 400
    assert "Not-A-Licence" in response.json()["license_expression"][0]


@pytest.mark.parametrize(("body", "field"), [
    ({"license_expression": "MIT"}, "name"),
    ({"name": "s"}, "license_expression"),
    ({"name": "s", "license_expression": "MIT", "owner": 999999}, "owner"),
    ({"name": "s", "license_expression": "MIT", "terms_url": "not a url"}, "terms_url"),
    ({"name": "s", "license_expression": "MIT", "status": "gone"}, "status"),
    ({"name": "s", "license_expression": "MIT AND"}, "license_expression"),
])
def test_source_creation_names_the_bad_field(admin, holder_a, body, field):
    body = {"owner": holder_a.pk, **body}
    response = admin.post("/api/v1/sources/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_a_duplicate_source_name_is_a_400(admin, source):
    response = admin.post("/api/v1/sources/", {"owner": source.owner_id, "name": "src",
                                               "license_expression": "MIT"}, format="json")
    assert response.status_code == 400 and "name" in response.json()


def test_changing_a_licence_recomputes_the_use_class_and_keeps_history(admin, source):
    response = admin.patch(f"/api/v1/sources/{source.pk}/",
                           {"license_expression": "cc-by-nc-4.0"}, format="json")
    assert response.status_code == 200
    assert (response.json()["license_expression"], response.json()["use_class"]) == (
        "CC-BY-NC-4.0", "non-commercial")
    history = admin.get(f"/api/v1/sources/{source.pk}/license-signals/").json()
    assert [(h["expression"], h["active"]) for h in history] == [("CC0-1.0", False),
                                                                ("CC-BY-NC-4.0", True)]
    assert admin.patch(f"/api/v1/sources/{source.pk}/", {"owner": 1},
                       format="json").status_code == 400


def test_a_stricter_licence_signal_makes_the_source_stricter(admin, source):
    response = admin.post(f"/api/v1/sources/{source.pk}/license-signals/",
                          {"origin": "terms", "expression": "LicenseRef-Trailmark-Academic-Only"},
                          format="json")
    assert response.status_code == 201
    assert admin.get(f"/api/v1/sources/{source.pk}/").json()["use_class"] == "academic-only"
    bad = admin.post(f"/api/v1/sources/{source.pk}/license-signals/",
                     {"origin": "declared", "expression": "MIT"}, format="json")
    assert bad.status_code == 400 and "origin" in bad.json()


@pytest.mark.parametrize(("body", "field"), [
    ({"kind": "carrier_pigeon", "value": "x"}, "kind"),
    ({"kind": "ai_txt"}, "value"),
    ({"kind": "ai_txt", "value": "   "}, "value"),
    ({"kind": "ai_txt", "value": "x", "observed_at": "soon"}, "observed_at"),
    ({"kind": "ai_txt", "value": "x", "url": "https://a.example/\nb"}, "url"),
    # A machine-readable kind is read, not told; a registry entry has to be told.
    ({"kind": "robots_txt", "value": "User-agent: *", "train": "no"}, "train"),
    ({"kind": "registry", "value": "Spawning DNT entry 123"}, "train"),
    ({"kind": "registry", "value": "entry 123", "ai_input": "perhaps"}, "ai_input"),
    ({"kind": "rsl", "value": "#" * 600_000}, "value"),
])
def test_opt_out_signals_name_the_bad_field(admin, source, body, field):
    response = admin.post(f"/api/v1/sources/{source.pk}/opt-out-signals/", body, format="json")
    assert response.status_code == 400 and field in response.json()


def test_an_opt_out_observed_in_the_future_is_refused(admin, source):
    future = (timezone.now() + timedelta(days=1)).isoformat()
    response = admin.post(f"/api/v1/sources/{source.pk}/opt-out-signals/",
                          {"kind": "ai_txt", "value": "x", "observed_at": future},
                          format="json")
    assert response.status_code == 400 and "observed_at" in response.json()


def test_malformed_json_is_a_400(admin):
    response = admin.generic("POST", "/api/v1/sources/", "{not json",
                             content_type="application/json")
    assert response.status_code == 400


def test_bad_filters_and_ids_are_4xx(admin, source):
    assert admin.get("/api/v1/documents/?source=abc").status_code == 400
    assert admin.get("/api/v1/sources/?use_class=purple").status_code == 400
    assert admin.get("/api/v1/versions/abc/").status_code == 404
    assert admin.get("/api/v1/sources/999999/").status_code == 404
    bad_page = admin.get("/api/v1/documents/?limit=-1")
    assert bad_page.status_code == 400 and "from 1 to 1000" in bad_page.json()["limit"]
    assert admin.get("/api/v1/documents/?offset=x").json()["offset"].startswith("must be")
    assert admin.get("/api/v1/documents/?limit=2&offset=0").status_code == 200


def test_tombstoning_twice_is_a_409_and_needs_a_reason(admin, source, ingest_texts):
    ingest_texts(source, ["to remove"])
    doc = Document.objects.get()
    assert admin.post(f"/api/v1/documents/{doc.pk}/tombstone/", {}, format="json"
                      ).status_code == 400
    first = admin.post(f"/api/v1/documents/{doc.pk}/tombstone/",
                       {"reason": "takedown", "purge_text": True}, format="json")
    assert first.status_code == 200 and first.json()["text_purged"]
    second = admin.post(f"/api/v1/documents/{doc.pk}/tombstone/", {"reason": "again"},
                        format="json")
    assert second.status_code == 409 and "removed" in second.json()["detail"]
    assert admin.get(f"/api/v1/documents/{doc.pk}/").json()["text"] == ""


def test_ingest_by_upload_runs_as_a_task_and_reports_bad_rows(admin, source,
                                                             django_capture_on_commit_callbacks):
    data = b'{"text": "one"}\n{"text": "two"}\nnot json\n'
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = admin.post("/api/v1/ingest-jobs/", {
            "source": source.pk, "file": SimpleUploadedFile("batch.jsonl", data)},
            format="multipart")
    assert response.status_code == 202, response.json()
    assert response.json()["state"] == "queued" and len(queued) == 1
    ingest_run_task(response.json()["id"])  # what the worker runs
    job = admin.get(f"/api/v1/ingest-jobs/{response.json()['id']}/").json()
    assert (job["state"], job["rows_added"], job["rows_bad"], job["percent"]) == (
        "succeeded", 2, 1, 100.0)
    assert job["errors"] == [{"file": "batch.jsonl", "line": 3,
                              "reason": "invalid JSON: Expecting value at column 1"}]


@pytest.mark.parametrize(("body", "field"), [
    ({}, "file"),
    ({"format": "xlsx"}, "format"),
    ({"path": "/etc/passwd"}, "path"),
])
def test_ingest_requests_name_the_bad_field(admin, source, body, field, settings, tmp_path):
    settings.TRAILMARK = {**settings.TRAILMARK, "IMPORT_DIRS": [tmp_path]}
    response = admin.post("/api/v1/ingest-jobs/", {"source": source.pk, **body},
                          format="multipart")
    assert response.status_code == 400 and field in response.json(), response.json()


def test_an_upload_without_the_text_column_is_refused_before_a_job(admin, source, settings):
    response = admin.post("/api/v1/ingest-jobs/", {
        "source": source.pk, "file": SimpleUploadedFile("x.csv", b"id,body\n1,hi\n")},
        format="multipart")
    assert response.status_code == 400 and "no column 'text'" in response.json()["file"][0]
    assert not IngestJob.objects.exists()
    uploads = settings.ARTIFACT_DIR / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())  # the refused upload is deleted


def test_staff_can_ingest_from_an_import_folder(admin, source, settings, tmp_path,
                                                django_capture_on_commit_callbacks):
    settings.TRAILMARK = {**settings.TRAILMARK, "IMPORT_DIRS": [tmp_path]}
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A heading\n\nSome words.")
    with django_capture_on_commit_callbacks(execute=False):
        response = admin.post("/api/v1/ingest-jobs/", {"source": source.pk,
                                                       "path": str(tmp_path / "docs")},
                              format="multipart")
    assert response.status_code == 202
    ingest_run_task(response.json()["id"])
    job = IngestJob.objects.get()
    assert (job.state, job.rows_added, job.format) == ("succeeded", 1, "folder")


def test_curation_through_the_api(admin, source, ingest_texts, django_capture_on_commit_callbacks):
    ingest_texts(source, ["alpha text", "beta text"])
    dataset = DatasetFactory()
    bad = admin.post("/api/v1/curation-jobs/", {"dataset": dataset.pk,
                                                "recipe": {"intended_use": "everything"}},
                     format="json")
    assert bad.status_code == 400 and "recipe.intended_use" in bad.json()
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = admin.post("/api/v1/curation-jobs/", {
            "dataset": dataset.pk, "recipe": {"intended_use": "commercial"}}, format="json")
    assert response.status_code == 202 and len(queued) == 1
    curate_run_task(response.json()["id"])
    job = admin.get(f"/api/v1/curation-jobs/{response.json()['id']}/").json()
    assert job["state"] == "succeeded"
    version = admin.get(f"/api/v1/versions/{job['version']}/").json()
    assert (version["state"], version["document_count"]) == ("draft", 2)
    published = admin.post(f"/api/v1/versions/{job['version']}/publish/")
    assert published.status_code == 200 and published.json()["state"] == "published"
    again = admin.post(f"/api/v1/versions/{job['version']}/publish/")
    assert again.status_code == 409
    delete = admin.delete(f"/api/v1/versions/{job['version']}/")
    assert delete.status_code == 409
    manifest = admin.get(f"/api/v1/versions/{job['version']}/manifest/")
    lines = b"".join(manifest.streaming_content).decode().split()
    assert len(lines) == 2 and manifest["X-Manifest-Root"] == version["manifest_root"]


@pytest.mark.parametrize("query", ["", "?against=abc", "?against=999999"])
def test_a_diff_needs_a_version_to_compare_with(admin, query):
    dataset = DatasetFactory()
    from provenance.services import curation, datasets

    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    v = curation.version_create_from_plan(dataset=dataset, recipe=recipe,
                                          plan=curation.curation_plan(recipe), actor=None)
    response = admin.get(f"/api/v1/versions/{v.pk}/diff/{query}")
    assert response.status_code == 400 and "against" in response.json()


def test_exclusion_filter_rejects_unknown_reasons(admin):
    from provenance.services import curation, datasets

    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    v = curation.version_create_from_plan(dataset=DatasetFactory(), recipe=recipe,
                                          plan=curation.curation_plan(recipe), actor=None)
    assert admin.get(f"/api/v1/versions/{v.pk}/exclusions/?reason=bored").status_code == 400
    assert admin.get(f"/api/v1/versions/{v.pk}/exclusions/?reason=license").status_code == 200


def test_datasets_need_a_unique_slug(admin):
    assert admin.post("/api/v1/datasets/", {"slug": "Not a slug", "title": "x"},
                      format="json").status_code == 400
    assert admin.post("/api/v1/datasets/", {"slug": "ok", "title": "x"},
                      format="json").status_code == 201
    dup = admin.post("/api/v1/datasets/", {"slug": "ok", "title": "x"}, format="json")
    assert dup.status_code == 400 and "slug" in dup.json()


def test_token_authentication(users, client_as):
    from rest_framework.test import APIClient

    client = APIClient()
    bad = client.post("/api/v1/auth/token/", {"username": "admin", "password": "nope"})
    assert bad.status_code == 400
    token = client.post("/api/v1/auth/token/", {"username": "admin", "password": "pw"})
    assert token.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert client.get("/api/v1/sources/").status_code == 200


def test_the_schema_and_docs_are_served(client_as):
    anon = client_as("anonymous")
    schema = anon.get("/api/schema/")
    assert schema.status_code == 200 and b"/api/v1/versions/" in schema.content
    assert anon.get("/api/docs/").status_code == 200


def test_a_folder_ingest_does_not_follow_links_out_of_the_import_folders(
        admin, source, settings, tmp_path, django_capture_on_commit_callbacks):
    """The outside probe linked the system's password file and the installation's secret key
    into an import folder: both became documents. Now each is a bad row, never read."""
    state = tmp_path / "state"
    (state / "artifacts").mkdir(parents=True)
    (state / "secret_key").write_text("the installation's secret key")
    settings.STATE_DIR, settings.ARTIFACT_DIR = state, state / "artifacts"
    imports = tmp_path / "imports"
    folder = imports / "docs"
    folder.mkdir(parents=True)
    # The worst case: an import folder that holds the state folder too.
    settings.TRAILMARK = {**settings.TRAILMARK, "IMPORT_DIRS": [tmp_path]}
    (folder / "a.md").write_text("an honest document")
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "key.txt").symlink_to(state / "secret_key")
    (imports / "other.txt").write_text("in another import folder: may be linked")
    (folder / "other.txt").symlink_to(imports / "other.txt")
    with django_capture_on_commit_callbacks(execute=False):
        response = admin.post("/api/v1/ingest-jobs/", {"source": source.pk, "path": str(folder)},
                              format="multipart")
    assert response.status_code == 202, response.json()
    ingest_run_task(response.json()["id"])
    job = IngestJob.objects.get()
    assert (job.state, job.rows_added, job.rows_bad) == ("succeeded", 2, 2)
    assert {e["file"]: e["reason"].split(":")[0] for e in job.errors} == {
        "key.txt": "its real path is inside Trailmark's state folder",
        "passwd.txt": "its real path is outside the import folders (a link out of them)"}
    texts = set(Document.objects.values_list("text", flat=True))
    assert texts == {"an honest document", "in another import folder: may be linked"}


def test_the_state_folder_cannot_be_ingested_through_an_import_folder(admin, source, settings,
                                                                      tmp_path):
    state = tmp_path / "var"
    state.mkdir()
    (state / "secret_key").write_text("secret")
    settings.STATE_DIR = state
    settings.TRAILMARK = {**settings.TRAILMARK, "IMPORT_DIRS": [tmp_path]}
    for path in (state, state / "secret_key"):
        response = admin.post("/api/v1/ingest-jobs/", {"source": source.pk, "path": str(path)},
                              format="multipart")
        assert response.status_code == 400 and "state folder" in response.json()["path"][0]
    assert not IngestJob.objects.exists()


def test_api_tokens_are_stored_as_digests_expire_and_can_be_revoked(users, settings):
    from datetime import timedelta

    from django.utils import timezone
    from knox.models import AuthToken
    from rest_framework.test import APIClient

    client = APIClient()
    issued = client.post("/api/v1/auth/token/", {"username": "curator", "password": "pw"}).json()
    token = issued["token"]
    stored = AuthToken.objects.get(user=users["curator"])
    assert token not in (stored.digest, stored.token_key) and len(stored.digest) == 128
    assert timezone.now() < stored.expiry <= timezone.now() + timedelta(hours=24, minutes=1)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/sources/").status_code == 200
    AuthToken.objects.filter(pk=stored.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert client.get("/api/v1/sources/").status_code == 403  # expired: refused, and deleted
    assert not AuthToken.objects.filter(pk=stored.pk).exists()

    fresh = APIClient()
    token = fresh.post("/api/v1/auth/token/", {"username": "curator", "password": "pw"}).json()
    other = fresh.post("/api/v1/auth/token/", {"username": "curator", "password": "pw"}).json()
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {token['token']}")
    assert fresh.post("/api/v1/auth/logout/").status_code == 204
    assert fresh.get("/api/v1/sources/").status_code == 403  # this one revoked
    fresh.credentials(HTTP_AUTHORIZATION=f"Token {other['token']}")
    assert fresh.get("/api/v1/sources/").status_code == 200  # the other still works
    assert fresh.post("/api/v1/auth/logout-all/").status_code == 204
    assert not AuthToken.objects.filter(user=users["curator"]).exists()


def test_a_source_keeps_its_licence_as_written_beside_its_spdx_form(client_as, users):
    admin = client_as("admin")
    made = admin.post("/api/v1/sources/", {"owner": users["holder_a"].rights_holder_id,
                                           "name": "debian docs",
                                           "license_expression": "GPL-2+ or Artistic"},
                      format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["license_expression"] == "GPL-2.0-or-later OR Artistic-1.0"
    assert body["license_as_written"] == "GPL-2+ or Artistic"
    assert body["use_class"] == "commercial"
    spdx = admin.post("/api/v1/sources/", {"owner": users["holder_a"].rights_holder_id,
                                           "name": "plain", "license_expression": "MIT"},
                      format="json").json()
    assert spdx["license_as_written"] == ""  # SPDX already: nothing was read differently
    bad = admin.post("/api/v1/sources/", {"owner": users["holder_a"].rights_holder_id,
                                          "name": "typo", "license_expression": "Apche-2.0"},
                     format="json")
    assert bad.status_code == 400
    assert "did you mean Apache-2.0" in bad.json()["license_expression"][0]
