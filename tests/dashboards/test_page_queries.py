"""Every page reads a fixed number of rows-independent queries: measured on a small world, then
again after the data grows; a page whose count grows reads per row (an N+1)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from provenance.models import DataSource
from takedowns.services.requests import takedown_file
from tests.helpers import NOTICE

pytestmark = pytest.mark.django_db
PAGES = ["/", "/transparency/", "/datasets/{slug}/v{number}/", "/runs/", "/runs/{run}/",
         "/checkpoints/{ck}/", "/sources/{sa}/", "/outputs/{out}/", "/attribution/{arun}/",
         "/takedowns/", "/takedowns/{td}/", "/models/{ck}/", "/models/{ck}/ai-act/", "/audit/",
         "/staff/", "/staff/?part=jobs", "/watermarks/", "/takedowns/new/",
         "/models/{ck}/ai-act.pdf"]


def _queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert client.get(path).status_code == 200, path
    return len(captured)


@pytest.mark.parametrize("page", PAGES)
def test_a_page_reads_the_same_number_of_queries_as_the_data_grows(
        page, world, users, make_source, ingest_texts, publish_version):  # noqa: F811
    from attribution.models import AttributionRun, ModelOutput
    from provenance.models import ModelCheckpoint, TrainingRun

    client = Client()
    client.force_login(users["admin"])
    path = page.format(**world)
    before = _queries(client, path)
    source = DataSource.objects.get(pk=world["sa"])
    for n in range(4):
        ingest_texts(make_source(owner=source.owner, name=f"more-{n}"), [f"text {n} {i}"
                                                                         for i in range(3)])
        takedown_file(actor=users["holder_a"], data=NOTICE)
    checkpoint = ModelCheckpoint.objects.get(pk=world["ck"])
    for n in range(3):
        version = publish_version(f"grown-{n}")
        TrainingRun.objects.create(version=version)
        output = ModelOutput.objects.create(checkpoint=checkpoint, prompt=f"p{n}",
                                            completion="c", state="succeeded")
        AttributionRun.objects.create(output=output, state="succeeded")
        AttributionRun.objects.create(output=output, state="failed", error="out of memory")
    assert _queries(client, path) == before, f"{path}: {before} queries before the data grew"
    assert before <= 25, f"{path}: {before} queries"
