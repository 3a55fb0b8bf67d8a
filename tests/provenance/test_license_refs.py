"""A LicenseRef- key (a licence SPDX does not list) is accepted with an unknown use class until a
curator classifies it, with a reason; then every source naming it takes those terms, and the
next curation follows them."""

from __future__ import annotations

import pytest

from provenance.models import DataSource, LedgerEntry

pytestmark = pytest.mark.django_db
KEY = "LicenseRef-Acme-Data-Terms"
URL = "/api/v1/license-refs/"


def test_a_curator_classifies_a_licence_ref_and_its_sources_and_curation_follow(
        client_as, make_source, ingest_texts, publish_version):
    alone = make_source(license_expression=KEY)
    both = make_source(license_expression=f"MIT AND {KEY}")
    other = make_source(license_expression="CC-BY-4.0")
    ingest_texts(alone, ["a text under Acme's own terms"])
    assert (alone.use_class, both.use_class) == ("unknown", "unknown")
    before = publish_version("before", "commercial")
    assert before.document_count == 0  # unknown terms: left out of a commercial version

    curator = client_as("curator")
    set_terms = curator.post(URL, {"key": KEY, "use_class": "commercial",
                                   "requires_attribution": True,
                                   "reason": "Acme's terms (acme.example/terms) allow any use "
                                             "with credit"}, format="json")
    assert set_terms.status_code == 200, set_terms.json()
    alone.refresh_from_db()
    both.refresh_from_db()
    other.refresh_from_db()
    assert (alone.use_class, alone.requires_attribution) == ("commercial", True)
    assert (both.use_class, both.requires_attribution) == ("commercial", True)
    assert other.use_class == "commercial"
    entry = LedgerEntry.objects.filter(event="license_ref.classified").get()
    assert entry.payload["sources"] == sorted([alone.pk, both.pk])
    assert "acme.example" in entry.payload["reason"]
    assert LedgerEntry.objects.filter(event="source.terms_changed").count() == 2
    after = publish_version("after", "commercial")
    assert after.document_count == 1
    # a source registered later with the key takes its terms at once; a stricter class later
    # moves every source again
    later = make_source(license_expression=KEY)
    assert later.use_class == "commercial"
    assert curator.post(URL, {"key": KEY, "use_class": "academic-only",
                              "reason": "new terms of 2026-12"},
                        format="json").status_code == 200
    later.refresh_from_db()
    assert later.use_class == "academic-only"
    assert [r["key"] for r in client_as("holder_a").get(URL).json()["results"]] == [KEY]


def test_bad_classifications_name_the_field(client_as):
    curator = client_as("curator")
    for body, field in (({"key": "MIT", "use_class": "commercial", "reason": "x"}, "key"),
                        ({"key": "LicenseRef-Trailmark-Academic-Only", "use_class": "commercial",
                          "reason": "x"}, "key"),
                        ({"key": KEY, "use_class": "free", "reason": "x"}, "use_class"),
                        ({"key": KEY, "use_class": "commercial", "reason": " "}, "reason")):
        response = curator.post(URL, body, format="json")
        assert response.status_code == 400 and field in response.json(), body
    assert client_as("holder_a").post(URL, {"key": KEY, "use_class": "commercial",
                                            "reason": "mine"}, format="json").status_code == 403
    assert not DataSource.objects.exists()
