"""Attribution through the real broker on a real Celery worker: the gradient index is built by a
chord of shard tasks (results counted in the Redis result backend), the span index by its task,
and the run re-queues itself until both are ready."""

import time

import pytest
from django.db import transaction

from attribution.models import AttributionRun, ModelOutput
from attribution.services.runs import attribution_run_create
from provenance.services.training import training_run_create, training_run_execute
from tests.attribution.test_runs import FACT_MODEL, PEOPLE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def queued_attribution(make_source, ingest_texts, publish_version) -> AttributionRun:
    """A fact model trained here, an output of it, and an attribution run by spans and
    influence queued on commit (its gradient index: 48 documents in two shards)."""
    source = make_source(name="facts")
    ingest_texts(source, [f"{name} was born in {city}." for name in PEOPLE
                          for city in ("Riga", "Lima", "Oslo", "Kyoto")])
    version = publish_version()
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config={**FACT_MODEL, "epochs": 3}).pk)
    output = ModelOutput.objects.create(checkpoint=run.checkpoint, prompt="Ada Arden was",
                                        completion=" born in Riga.", state="succeeded")
    with transaction.atomic():
        attribution = attribution_run_create(output=output, actor=None,
                                             methods=["spans", "influence"])
    return attribution


def test_a_run_waits_for_a_chord_built_gradient_index_and_finishes_on_the_worker(
        worker, make_source, ingest_texts, publish_version):  # noqa: F811
    attribution = queued_attribution(make_source, ingest_texts, publish_version)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        attribution.refresh_from_db()
        if attribution.state in ("succeeded", "failed"):
            break
        time.sleep(0.5)
    assert attribution.state == "succeeded", (attribution.state, attribution.stage,
                                              attribution.error)
    index = attribution.gradient_index
    index.refresh_from_db()
    assert index.state == "succeeded" and index.shard_count == 2  # 48 documents, 25 a shard
    # training's default keeps two snapshots: three checkpoints, each with its two shards
    assert len(index.snapshots) == 3 and index.snapshots[-1] == "final"
    assert sorted(index.shards_done) == sorted(f"{s}/{n}" for s in index.snapshots
                                               for n in (0, 1)) and index.rows == 48
    assert attribution.results.filter(method="influence").count() == 20
    assert AttributionRun.objects.get(pk=attribution.pk).report.sha256
