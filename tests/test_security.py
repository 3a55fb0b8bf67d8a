"""The web layer's defences: security headers and a strict Content-Security-Policy, CSRF on
session-authenticated writes, request-rate limits on public and password endpoints, limits on
what may be uploaded, and a deployment check that passes under the production settings."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent
NOTICE = {"legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
          "works": [{"title": "Tide", "urls": ["https://a.example/tide"]}]}


def _signed_in(user, *, csrf: bool) -> APIClient:
    client = APIClient(enforce_csrf_checks=csrf)
    assert client.login(username=user.username, password="pw")
    return client


@pytest.mark.parametrize("path", ["/", "/api/v1/datasets/", "/accounts/login/", "/api/docs/"])
def test_every_response_carries_the_security_headers(path, client):
    response = client.get(path)
    assert response.status_code == 200
    csp = response["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives["script-src"] == "'self'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_no_template_carries_inline_script_or_style_that_the_policy_would_block():
    templates = list((ROOT / "dashboards" / "templates").rglob("*.html"))
    assert templates
    for template in templates:
        text = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), template.name
        assert not re.search(r"\sstyle=|<style", text), template.name
        assert not re.search(r"\son[a-z]+=", text), template.name  # onclick= and the like


def test_the_api_docs_are_served_from_our_own_static_files(client):
    page = client.get("/api/docs/").content.decode()
    assert "cdn" not in page.lower() and "/static/drf_spectacular_sidecar/" in page


def test_a_session_write_without_the_csrf_token_is_refused(users):
    client = _signed_in(users["holder_a"], csrf=True)
    refused = client.post("/api/v1/takedowns/", NOTICE, format="json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    client.get("/takedowns/new/")  # a page with a form sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    accepted = client.post("/api/v1/takedowns/", NOTICE, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201


def test_a_portal_form_without_the_csrf_token_is_refused(users):
    client = _signed_in(users["holder_a"], csrf=True)
    response = client.post("/takedowns/new/", {"legal_basis": "voluntary"})
    assert response.status_code == 403


def test_a_token_client_needs_no_csrf_token(users):
    from knox.models import AuthToken

    client = APIClient(enforce_csrf_checks=True)
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=users['holder_a'])[1]}")
    assert client.post("/api/v1/takedowns/", NOTICE, format="json").status_code == 201


@pytest.fixture
def low_rates(monkeypatch):
    # DRF reads the rates once, at import; tests lower them on the class.
    monkeypatch.setattr(SimpleRateThrottle, "THROTTLE_RATES",
                        {"anon": "5/min", "user": "8/min", "auth": "3/min"})


def test_anonymous_reads_are_rate_limited_per_address(low_rates, client):
    answers = [client.get("/api/v1/log/checkpoint/").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    refused = client.get("/api/v1/datasets/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "throttled" in refused.json()["detail"].lower()
    other = client.get("/api/v1/datasets/", REMOTE_ADDR="10.1.2.3")
    assert other.status_code == 200


def test_signed_in_clients_are_rate_limited_per_user(low_rates, client_as):
    curator = client_as("curator")
    assert [curator.get("/api/v1/sources/").status_code for _ in range(9)][-2:] == [200, 429]
    assert client_as("auditor").get("/api/v1/sources/").status_code == 200


def test_password_guessing_is_slowed_on_the_token_and_sign_in_endpoints(low_rates, users,
                                                                        client):
    token = [client.post("/api/v1/auth/token/", {"username": "admin", "password": "x"})
             .status_code for _ in range(4)]
    assert token == [400, 400, 400, 429]
    pages = [client.post("/accounts/login/", {"username": "admin", "password": "x"})
             for _ in range(4)]
    # The sign-in page shares the token endpoint's count for this address.
    assert [p.status_code for p in pages] == [429] * 4
    assert b"Too many sign-in attempts" in pages[-1].content and pages[-1]["Retry-After"]
    elsewhere = client.post("/accounts/login/", {"username": "admin", "password": "pw"},
                            REMOTE_ADDR="10.9.9.9")
    assert elsewhere.status_code == 302


def test_the_admin_sites_sign_in_shares_the_password_limit(low_rates, users, client):
    """The outside probe made 25 wrong guesses at the superuser's password on /admin/login/,
    then the right one, all answered."""
    guesses = [client.post("/admin/login/", {"username": "admin", "password": f"guess{i}"},
                           REMOTE_ADDR="10.7.7.7").status_code for i in range(5)]
    assert guesses == [200, 200, 200, 429, 429]
    right = client.post("/admin/login/", {"username": "admin", "password": "pw"},
                        REMOTE_ADDR="10.7.7.7")
    assert right.status_code == 429 and int(right["Retry-After"]) > 0
    token = client.post("/api/v1/auth/token/", {"username": "admin", "password": "pw"},
                        REMOTE_ADDR="10.7.7.7")
    assert token.status_code == 429  # one count for the address across the three endpoints
    assert client.get("/admin/login/", REMOTE_ADDR="10.7.7.7").status_code == 200


def test_an_upload_of_an_unreadable_type_is_refused_before_it_is_stored(client_as, make_source,
                                                                        holder_a):
    source = make_source(owner=holder_a)
    response = client_as("holder_a").post(
        "/api/v1/ingest-jobs/",
        {"source": source.pk, "file": SimpleUploadedFile("tool.exe", b"MZ\x90\x00")},
        format="multipart")
    assert response.status_code == 400
    assert "tool.exe" in str(response.json()["file"])
    assert not (Path(settings.ARTIFACT_DIR) / "uploads").exists()


def test_an_upload_over_the_size_limit_is_refused(client_as, make_source, holder_a, settings):
    settings.TRAILMARK = {**settings.TRAILMARK, "UPLOAD_MAX_BYTES": 16}
    source = make_source(owner=holder_a)
    response = client_as("holder_a").post(
        "/api/v1/ingest-jobs/",
        {"source": source.pk, "file": SimpleUploadedFile("big.jsonl", b'{"text": "x"}\n' * 4)},
        format="multipart")
    assert response.status_code == 400 and "upload limit" in str(response.json()["file"])


def test_a_request_body_over_the_memory_limit_is_a_clear_4xx(client_as, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = {**NOTICE, "description": "x" * 4096}
    response = client_as("holder_a").post("/api/v1/takedowns/", body, format="json")
    assert response.status_code in (400, 413)
    assert "too large" in response.content.decode().lower()


def test_the_deployment_check_passes_under_the_production_settings(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.production",
           "DJANGO_SECRET_KEY": secrets.token_urlsafe(64), "TRAILMARK_STATE_DIR": str(tmp_path),
           "DJANGO_ALLOWED_HOSTS": "trailmark.example"}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy",
                             "--fail-level", "WARNING"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(("who", "path", "body"), [
    ("anonymous", "/api/v1/auth/token/", '{"username": "admin", "password": %s}'),
    ("holder_a", "/api/v1/takedowns/",
     '{"legal_basis": "voluntary", "claimant_name": "A", "works": [{"title": %s}]}'),
    ("admin", "/api/v1/curation-jobs/", '{"dataset": 1, "recipe": {"filters": %s}}'),
    ("curator", "/api/v1/training-runs/", '{"version": 1, "config": %s}'),
])
@pytest.mark.parametrize("depth", [40, 100_000])
def test_deeply_nested_json_is_a_400_that_names_the_limit(client_as, who, path, body, depth):
    """100,000 levels raised RecursionError in the parser (a 500, anonymously on the token
    endpoint); 40 levels parsed, then could exhaust the recursion of what reads it next."""
    response = client_as(who).post(path, body % _nested(depth), content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested deeper than 32 levels" in response.json()["detail"]


@pytest.mark.parametrize(("content_type", "path"), [
    ("multipart/form-data; boundary=x", "/api/v1/ingest-jobs/"),
    ("application/json", "/api/v1/takedowns/"),
    ("application/x-www-form-urlencoded", "/takedowns/new/")])
def test_a_body_over_its_limit_is_refused_on_its_declared_length(client_as, content_type, path,
                                                                settings):
    settings.TRAILMARK = {**settings.TRAILMARK, "UPLOAD_MAX_BYTES": 1 << 30}
    response = client_as("holder_a").generic("POST", path, b"--x\r\n", content_type=content_type,
                                             CONTENT_LENGTH=str(3 << 30))
    assert response.status_code == 413
    assert "3221225472 bytes declared" in response.content.decode()
    assert "nothing was read" in response.content.decode()


def test_make_run_shows_the_projects_error_pages_not_djangos_technical_ones(client, tmp_path):
    from config.embedded import prepare_state

    prepare_state(tmp_path)  # as `make run` does before loading the local settings
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", TRAILMARK_STATE_DIR=str(tmp_path))
    debug = subprocess.run([sys.executable, "-c", "import django; django.setup(); "
                            "from django.conf import settings; print(settings.DEBUG)"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert debug.stdout.strip() == "False", debug.stderr
    page = client.get("/no/such/page/")
    assert page.status_code == 404 and b"There is nothing at this address" in page.content
    assert b"URLconf" not in page.content  # Django's technical page lists the URL patterns


def test_the_public_url_follows_the_port_make_run_serves_on(tmp_path):
    """Cards published on a `make run` started on another port named port 8000."""
    from config.embedded import prepare_state

    prepare_state(tmp_path)  # as `make run` does before loading the local settings
    env = {k: v for k, v in os.environ.items() if k != "TRAILMARK_PUBLIC_URL"}
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", TRAILMARK_STATE_DIR=str(tmp_path),
               TRAILMARK_HOST="0.0.0.0", TRAILMARK_PORT="8123")
    read = [sys.executable, "-c", "import django; django.setup(); from django.conf import "
            "settings; print(settings.TRAILMARK['PUBLIC_URL'])"]
    done = subprocess.run(read, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "http://127.0.0.1:8123/", done.stderr
    env["TRAILMARK_PUBLIC_URL"] = "https://trailmark.example.org/"
    done = subprocess.run(read, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "https://trailmark.example.org/"
