"""The staff dashboard: every kind of job in progress with its progress, recent failures, the
takedowns overdue or nearly due, the latest attribution runs and the sources."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from attribution.models import AttributionRun, ModelOutput
from provenance.models import IngestJob, ModelCheckpoint, TrainingRun
from provenance.services.usage import opt_out_signal_record
from takedowns.models import TakedownRequest
from takedowns.services.requests import takedown_file
from tests.helpers import NOTICE

pytestmark = pytest.mark.django_db


@pytest.fixture
def curator(pages_as) -> Client:
    return pages_as("curator")


def test_jobs_of_every_kind_show_their_progress_and_failures_show_their_error(
        curator, world):  # noqa: F811
    source_id = world["sa"]
    ingest = IngestJob.objects.create(source_id=source_id, path="/x", format="jsonl",
                                      state="running", stage="writing", position=250,
                                      total=1000, unit="rows")
    training = TrainingRun.objects.create(version_id=world["pub"], state="queued")
    output = ModelOutput.objects.get(pk=world["out"])
    failed = AttributionRun.objects.create(output=output, state="failed",
                                           error="the gradient index is gone")
    old = AttributionRun.objects.create(output=output, state="failed", error="long ago")
    AttributionRun.objects.filter(pk=old.pk).update(
        updated_at=timezone.now() - timedelta(days=8))
    AttributionRun.objects.create(output=output, state="succeeded")

    page = curator.get("/staff/").content.decode()
    assert f'href="/sources/{source_id}/">ingest #{ingest.pk}</a>' in page
    assert 'value="25.0"' in page and "250 / 1000 rows" in page
    assert f'href="/runs/{training.pk}/">training #{training.pk}</a>' in page
    assert f"attribution #{failed.pk}" in page and "the gradient index is gone" in page
    assert f"attribution #{old.pk}" not in page and "long ago" not in page

    part = curator.get("/staff/?part=jobs").content.decode()
    assert "<html" not in part and f"ingest #{ingest.pk}" in part
    active = int(re.search(r'data-active="(\d+)"', part).group(1))
    IngestJob.objects.filter(pk=ingest.pk).update(state="succeeded")
    after = curator.get("/staff/?part=jobs").content.decode()
    assert int(re.search(r'data-active="(\d+)"', after).group(1)) == active - 1
    assert f"ingest #{ingest.pk}" not in after


def test_takedowns_overdue_or_nearly_due_are_listed_overdue_first(curator, users):
    today = timezone.localdate()
    overdue, soon, later = (takedown_file(actor=users["holder_a"], data=NOTICE)
                            for _ in range(3))
    TakedownRequest.objects.filter(pk=overdue.pk).update(
        overdue_since=today - timedelta(days=2),
        deadlines={"decide": (today - timedelta(days=2)).isoformat()})
    TakedownRequest.objects.filter(pk=soon.pk).update(
        deadlines={"decide": (today + timedelta(days=1)).isoformat()})
    TakedownRequest.objects.filter(pk=later.pk).update(
        deadlines={"decide": (today + timedelta(days=20)).isoformat()})
    # Decided: its decision deadline no longer runs, though its date has passed.
    decided = takedown_file(actor=users["holder_a"], data=NOTICE)
    TakedownRequest.objects.filter(pk=decided.pk).update(
        state="decided", deadlines={"decide": (today - timedelta(days=1)).isoformat()})
    page = curator.get("/staff/").content.decode()
    due = page.split('id="due-heading"')[1].split("</table>")[0]
    assert due.index(overdue.reference) < due.index(soon.reference)
    assert later.reference not in due and decided.reference not in due
    assert "4 open takedown requests, 1 overdue" in page


def test_attribution_runs_show_their_top_source_and_sources_their_opt_outs(
        curator, world, users):  # noqa: F811
    output = ModelOutput.objects.get(pk=world["out"])
    run = AttributionRun.objects.create(
        output=output, state="succeeded", methods=["spans"],
        summary={"sources": [{"source": world["sa"], "name": "Essays A", "share": 0.62}]})
    from provenance.models import DataSource

    source = DataSource.objects.get(pk=world["sa"])
    opt_out_signal_record(actor=users["curator"], source=source, kind="robots_txt",
                          value="User-agent: *\nDisallow: /")
    page = curator.get("/staff/").content.decode()
    runs = page.split('id="runs-heading"')[1].split("</table>")[0]
    assert f'href="/attribution/{run.pk}/">#{run.pk}</a>' in runs and "Essays A (62%)" in runs
    checkpoint = ModelCheckpoint.objects.get(pk=world["ck"])
    assert checkpoint.name in runs
    sources = page.split('id="sources-heading"')[1].split("</table>")[0]
    row = re.search(rf'href="/sources/{source.pk}/">.*?</tr>', sources, re.S).group(0)
    assert "<td>1</td>" in row  # one opt-out signal


def test_only_curators_and_admins_see_it_and_only_they_get_the_link(pages_as):
    for role, status in (("admin", 200), ("curator", 200), ("auditor", 403),
                         ("researcher", 403), ("holder_a", 403)):
        client = pages_as(role)
        assert client.get("/staff/").status_code == status, role
        assert ('href="/staff/"' in client.get("/").content.decode()) is (status == 200), role


def test_takedown_verification_and_scoping_are_jobs_on_the_board_too(curator, users):
    """Verifications ran 3 to 8 minutes with no sign of them on the jobs board."""
    verifying = takedown_file(actor=users["holder_a"], data=NOTICE)
    TakedownRequest.objects.filter(pk=verifying.pk).update(verification={
        "state": "running", "position": 3, "total": 12})
    scoping = takedown_file(actor=users["holder_a"], data=NOTICE)
    TakedownRequest.objects.filter(pk=scoping.pk).update(
        state="scoping", scope={"job": {"state": "failed", "error": "the span index is gone"}})
    reviewing = takedown_file(actor=users["holder_a"], data=NOTICE)  # done: not a job now
    TakedownRequest.objects.filter(pk=reviewing.pk).update(
        state="scoping", scope={"job": {"state": "done", "matches": 3}})
    page = curator.get("/staff/").content.decode()
    assert f'href="/takedowns/{verifying.pk}/">verification #{verifying.pk}</a>' in page
    assert 'value="25.0"' in page  # 3 of 12 measurements
    assert f"scoping #{scoping.pk}" in page and "the span index is gone" in page
    assert f"scoping #{reviewing.pk}" not in page


def test_an_empty_completion_says_so_on_its_page(curator, world):  # noqa: F811
    from attribution.services.outputs import EMPTY

    ModelOutput.objects.filter(pk=world["out"]).update(completion="", note=EMPTY)
    page = curator.get(f"/outputs/{world['out']}/").content.decode()
    assert "the completion is empty, and there is nothing to attribute" in page
