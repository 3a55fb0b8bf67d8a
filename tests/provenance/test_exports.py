"""A version's records export, as its Croissant card points at it: mlcroissant loads the records
of a published version over HTTP (the sha256 it checks is the bytes' own), the Parquet export
holds the same records, pages follow their Link, and a document taken down after publication
leaves every later export."""

from __future__ import annotations

import hashlib
import io
import json

import mlcroissant as mlc
import pyarrow.parquet as pq
import pytest
from etils.epath import Path as EPath
from knox.models import AuthToken

from dashboards.services import version_card_render
from provenance.models import Document
from provenance.services.documents import document_tombstone
from provenance.services.ingest import ingest_path

VERSE = "Roses are red,\n    violets are blue;\n\nsugar is sweet.\n"
RECORDS = [
    {"text": VERSE, "id": "poem-1", "author": "Anon", "tags": ["verse"],
     "url": "https://example.org/poem-1"},
    {"text": "To be, or not to be -- Shakespeare", "id": "q-2", "author": "Shakespeare",
     "title": "Hamlet", "language": "en"},
    {"text": "A third document, plain prose.", "category": "prose"},
]


@pytest.fixture
def published(make_source, write_jsonl, publish_version):
    source = make_source(name="quotations", license_expression="CC-BY-4.0")
    ingest_path(source=source, path=write_jsonl(RECORDS), actor=None)
    return publish_version(slug="quotes")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_mlcroissant_loads_the_records_of_a_published_version(
        live_server, settings, published, users, monkeypatch, tmp_path):
    settings.TRAILMARK = {**settings.TRAILMARK, "PUBLIC_URL": live_server.url}
    card = version_card_render(version_id=published.pk)
    document = json.loads(card.croissant)
    # mlcroissant sends HTTP Basic credentials only: the password is an API token
    token = AuthToken.objects.create(user=users["researcher"])[1]
    monkeypatch.setenv("CROISSANT_BASIC_AUTH_USERNAME", users["researcher"].username)
    monkeypatch.setenv("CROISSANT_BASIC_AUTH_PASSWORD", token)
    from mlcroissant._src.core import constants

    monkeypatch.setattr(constants, "DOWNLOAD_PATH", EPath(tmp_path / "download"))
    monkeypatch.setattr(constants, "EXTRACT_PATH", EPath(tmp_path / "extract"))

    dataset = mlc.Dataset(jsonld=document)  # checks the download against the card's sha256
    rows = list(dataset.records(record_set="documents"))

    def text(value):
        return value.decode() if isinstance(value, bytes) else value

    got = {text(r["documents/sha256"]): text(r["documents/text"]) for r in rows}
    assert got == {d.sha256: d.text for d in Document.objects.all()}
    assert got[_digest(VERSE.encode())] == VERSE  # the layout came through
    by_text = {text(r["documents/text"]): r for r in rows}
    quote = by_text["To be, or not to be -- Shakespeare"]
    assert text(quote["documents/external_id"]) == "q-2"
    assert text(quote["documents/source"]) == "quotations"
    assert text(quote["documents/language"]) == "en"
    # the card gives the bytes' digest (what mlcroissant checked), the Merkle root apart
    jsonl = document["distribution"][0]
    assert jsonl["sha256"] != published.manifest_root
    assert document["identifier"].endswith(published.manifest_root)


def test_the_exports_carry_text_hashes_and_metadata_with_their_digest(
        client_as, published, settings):
    researcher = client_as("researcher")
    url = f"/api/v1/versions/{published.pk}/records/"
    whole = researcher.get(url)
    assert whole.status_code == 200 and whole["Content-Type"] == "application/jsonlines"
    body = b"".join(whole.streaming_content)
    assert whole["X-Content-SHA256"] == _digest(body)
    records = [json.loads(line) for line in body.splitlines()]
    assert [r["id"] for r in records] == sorted(r["id"] for r in records)  # document id order
    assert sorted(r["text"] for r in records) == sorted(r["text"] for r in RECORDS)
    poem = next(r for r in records if r["text"] == VERSE)
    assert poem["sha256"] == _digest(VERSE.encode())
    assert poem["normalised_sha256"] == _digest(b"Roses are red, violets are blue; sugar is sweet.")
    assert poem["metadata"] == {"id": "poem-1", "author": "Anon", "tags": ["verse"],
                                "url": "https://example.org/poem-1"}
    assert (poem["external_id"], poem["url"], poem["license"]) == (
        "poem-1", "https://example.org/poem-1", "CC-BY-4.0")

    parquet = researcher.get(url, {"format": "parquet"})
    assert parquet.status_code == 200
    data = b"".join(parquet.streaming_content)
    assert parquet["X-Content-SHA256"] == _digest(data)
    table = pq.read_table(io.BytesIO(data)).to_pylist()
    assert [(r["id"], r["text"], r["sha256"]) for r in table] == [
        (r["id"], r["text"], r["sha256"]) for r in records]
    assert [json.loads(r["metadata"]) for r in table] == [r["metadata"] for r in records]

    # the card points at these very bytes
    card = version_card_render(version_id=published.pk)
    files = {f["name"]: f["sha256"] for f in json.loads(card.croissant)["distribution"]}
    assert files["quotes-v1.jsonl"] == _digest(body)
    assert files["quotes-v1.parquet"] == _digest(data)
    manifest = b"".join(researcher.get(f"/api/v1/versions/{published.pk}/manifest/")
                        .streaming_content)
    assert files["quotes-v1.manifest.txt"] == _digest(manifest)
    assert json.loads(card.spdx)["@graph"]


def test_pages_follow_their_link_and_bad_parameters_name_the_field(client_as, published):
    researcher = client_as("researcher")
    url = f"/api/v1/versions/{published.pk}/records/"
    seen, next_url = [], f"{url}?limit=2"
    while next_url:
        page = researcher.get(next_url)
        assert page.status_code == 200
        seen += [json.loads(line)["text"] for line in page.content.splitlines()]
        link = page.get("Link", "")
        next_url = link[link.index("/api/"):link.index(">")] if link else None
    assert sorted(seen) == sorted(r["text"] for r in RECORDS) and len(seen) == 3
    for params, field in (({"format": "xml"}, "format"), ({"limit": "0"}, "limit"),
                          ({"limit": "5000"}, "limit"), ({"after": "x"}, "after"),
                          ({"format": "parquet", "limit": "2"}, "format")):
        response = researcher.get(url, params)
        assert response.status_code == 400 and field in response.json(), params


def test_who_may_read_the_records(client_as, published, make_source):
    url = f"/api/v1/versions/{published.pk}/records/"
    assert client_as("holder_a").get(url).status_code == 403
    assert client_as("auditor").get(url).status_code == 200
    from rest_framework.test import APIClient

    anonymous = APIClient().get(url)
    assert anonymous.status_code in (401, 403)
    basic = APIClient().get(url, HTTP_AUTHORIZATION="Basic " + __import__("base64").b64encode(
        b"researcher:not-a-token").decode())
    assert basic.status_code in (401, 403)


def test_a_document_taken_down_after_publication_leaves_later_exports(
        client_as, published):
    researcher = client_as("researcher")
    url = f"/api/v1/versions/{published.pk}/records/"
    before = b"".join(researcher.get(url).streaming_content)
    poem = Document.objects.get(sha256=_digest(VERSE.encode()))
    document_tombstone(document=poem, actor=None, reason="takedown TD-1", purge_text=True)
    after = researcher.get(url)
    body = b"".join(after.streaming_content)
    assert VERSE.encode() not in body and len(body.splitlines()) == 2
    assert after["X-Content-SHA256"] != _digest(before)
    # the manifest is the version as published: the hash stays there
    manifest = b"".join(researcher.get(f"/api/v1/versions/{published.pk}/manifest/")
                        .streaming_content)
    assert poem.sha256.encode() in manifest
