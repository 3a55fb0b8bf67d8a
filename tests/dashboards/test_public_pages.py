"""The public transparency site, read without signing in: a dataset version's page with its
composition charts, lineage and cards, and the transparency page with takedown statistics and
the ledger's latest checkpoint. Every figure is stored, so each page takes a fixed number of
queries."""

from __future__ import annotations

import pytest

from dashboards.services import version_card_render

pytestmark = pytest.mark.django_db


def test_a_published_versions_page_shows_its_composition_and_cards(
        published, client, client_as, django_assert_max_num_queries):  # noqa: F811
    url = f"/datasets/{published.dataset.slug}/v{published.number}/"
    with django_assert_max_num_queries(8):
        page = client.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert published.manifest_root in text
    assert 'role="img"' in text and "<td>essays</td><td>2</td><td>66.7%</td>" in text
    assert "<td>forum</td><td>1</td><td>33.3%</td>" in text
    assert "not published yet" in text
    client_as("researcher").post(f"/api/v1/versions/{published.pk}/card/publish/")
    text = client.get(url).content.decode()
    assert f"/api/v1/versions/{published.pk}/card/croissant/" in text
    assert client.get(f"/datasets/{published.dataset.slug}/v99/").status_code == 404


def test_the_page_cost_does_not_grow_with_the_data(
        published, client, ingest_texts, make_source, publish_version,  # noqa: F811
        django_assert_max_num_queries):
    ingest_texts(make_source(name="more"), [f"another text {i}" for i in range(40)])
    bigger = publish_version("bigger")
    version_card_render(version_id=bigger.pk)  # what the worker does on publication
    with django_assert_max_num_queries(8):
        assert client.get(f"/datasets/{bigger.dataset.slug}/v1/").status_code == 200


def test_the_transparency_page_counts_takedowns_and_shows_the_signed_checkpoint(
        users, client, django_assert_max_num_queries):
    from datetime import timedelta

    from django.utils import timezone

    from takedowns.models import TakedownEvent, TakedownRequest
    from takedowns.services.requests import takedown_decide, takedown_file
    from tests.helpers import NOTICE

    first = takedown_file(actor=users["holder_a"], data=NOTICE)
    second = takedown_file(actor=users["holder_b"], data=NOTICE)
    third = takedown_file(actor=users["holder_b"], data={**NOTICE, "legal_basis": "dmca_512"})
    takedown_decide(request=first, actor=users["curator"], to="accepted")
    takedown_decide(request=second, actor=users["curator"], to="rejected",
                    reasons="Not our data.")
    takedown_decide(request=third, actor=users["curator"], to="rejected", reasons="Not ours.")
    # Received 2 and 5 days before their decisions: a median of 3.5 days. A second decision of
    # the same request (after an appeal, say) does not move its time to the first one.
    now = timezone.now()
    TakedownRequest.objects.filter(pk=second.pk).update(received_at=now - timedelta(days=2))
    TakedownRequest.objects.filter(pk=third.pk).update(received_at=now - timedelta(days=5))
    TakedownEvent.objects.create(request=third, from_state="rejected", to_state="decided",
                                 at=now + timedelta(days=30))
    assert client.get("/api/v1/log/checkpoint/").status_code == 200  # signs one
    with django_assert_max_num_queries(8):
        page = client.get("/transparency/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "3 received, 1 accepted, 2 rejected; 2 decided, in a median of 3.5 days" in text
    assert "<td>Voluntary request</td><td>2</td><td>1</td><td>1</td>" in text
    assert "<td>DMCA §512 notice</td><td>1</td><td>0</td><td>1</td>" in text
    assert "Latest signed checkpoint" in text and "— trailmark.invalid/ledger" in text


def test_a_researcher_publishes_the_cards_from_the_versions_page(published, users):  # noqa: F811
    from django.test import Client

    from dashboards.models import VersionCard
    from provenance.models import LedgerEntry

    url = f"/datasets/{published.dataset.slug}/v{published.number}/"
    anonymous, auditor, researcher = Client(), Client(), Client()
    auditor.force_login(users["auditor"])
    researcher.force_login(users["researcher"])
    assert "Publish the cards" not in anonymous.get(url).content.decode()
    assert "Publish the cards" not in auditor.get(url).content.decode()
    assert auditor.post(url).status_code == 403
    assert anonymous.post(url).status_code == 403
    assert "Publish the cards" in researcher.get(url).content.decode()
    assert researcher.post(url).status_code == 302
    card = VersionCard.objects.get(version=published)
    assert card.state == "published"
    assert LedgerEntry.objects.filter(event="dataset_card.published").count() == 1
    text = anonymous.get(url).content.decode()
    assert f"sha256 {card.digests['croissant']}" in text and " download>" in text
    again = researcher.post(url)  # already published: a clear refusal, nothing written
    assert again.status_code == 409 and "cannot" in again.content.decode()
    assert LedgerEntry.objects.filter(event="dataset_card.published").count() == 1



def test_the_version_page_charts_languages_counted_once_at_publication(
        make_source, write_jsonl, publish_version, client, django_assert_max_num_queries):
    from dashboards.models import VersionComposition
    from provenance.services.ingest import ingest_path

    source = make_source(name="multilingual")
    rows = ([{"text": f"texte numéro {i}", "language": "fr"} for i in range(3)]
            + [{"text": f"text number {i}", "language": "en-US"} for i in range(2)]
            + [{"text": "undeclared text"}])
    ingest_path(source=source, path=write_jsonl(rows), actor=None)
    version = publish_version("languages")
    url = f"/datasets/{version.dataset.slug}/v1/"
    client.get(url)  # the first reader counts, if the card task has not yet
    composition = VersionComposition.objects.get(version=version)
    assert composition.by_language == {"fr": 3, "en": 2, "": 1}
    assert composition.by_source == {str(source.pk): {"documents": 6,
                                                      "tokens": version.token_estimate}}
    with django_assert_max_num_queries(8):
        text = client.get(url).content.decode()
    chart = text.split('id="by-language-title"')[1].split("</figure>")[0]
    assert "<td>French</td><td>3</td><td>50.0%</td>" in chart
    assert "<td>English</td><td>2</td>" in chart and "<td>not declared</td><td>1</td>" in chart
