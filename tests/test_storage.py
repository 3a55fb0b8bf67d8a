"""The artifact store against a real S3 API (moto's server, a process of its own): what one host
publishes another fetches whole, byte for byte, and never half a folder."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from core.storage import (
    MARKER,
    ArtifactMissing,
    artifact_local,
    artifact_path,
    artifact_publish,
    artifact_remove,
)


def _host(settings, tmp_path, name):
    settings.ARTIFACT_DIR = tmp_path / name
    return settings.ARTIFACT_DIR


def test_a_folder_and_a_file_published_on_one_host_are_fetched_whole_on_another(
        s3_store, settings, tmp_path):
    one = _host(settings, tmp_path, "one")
    model = one / "runs" / "7"
    (model / "snapshots" / "step-10").mkdir(parents=True)
    (model / "config.json").write_text('{"n_layer": 2}')
    (model / "model.safetensors").write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    (model / "snapshots" / "step-10" / "weights.bin").write_bytes(b"\x00\x01" * 10)
    upload = one / "uploads" / "abc" / "data.jsonl"
    upload.parent.mkdir(parents=True)
    upload.write_text('{"text": "hello"}\n')
    artifact_publish(model)
    artifact_publish(upload)

    two = _host(settings, tmp_path, "two")
    fetched = artifact_local(two / "runs" / "7")
    assert fetched == two / "runs" / "7"
    assert sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*") if p.is_file()) \
        == ["config.json", "model.safetensors", "snapshots/step-10/weights.bin"]
    weights = "model.safetensors"
    assert (fetched / weights).read_bytes() == (model / weights).read_bytes()
    assert artifact_local(two / "uploads" / "abc" / "data.jsonl").read_text() == \
        '{"text": "hello"}\n'
    assert not [p for p in two.rglob("*") if "partial" in p.name]  # no leftovers


def test_an_artifact_not_published_or_published_in_part_is_missing_not_half_there(
        s3_store, settings, tmp_path):
    _host(settings, tmp_path, "one")
    with pytest.raises(ArtifactMissing, match="runs/8 is not in the store"):
        artifact_local(settings.ARTIFACT_DIR / "runs" / "8")
    # A folder whose upload stopped before its marker (the publisher died half way).
    client = boto3.client("s3")
    client.put_object(Bucket=s3_store["bucket"], Key="artifacts/runs/9/config.json", Body=b"{}")
    with pytest.raises(ArtifactMissing):
        artifact_local(settings.ARTIFACT_DIR / "runs" / "9")
    assert not (settings.ARTIFACT_DIR / "runs" / "9").exists()
    assert not list((settings.ARTIFACT_DIR / "runs").iterdir())


def test_a_removed_artifact_leaves_the_store_and_the_host(s3_store, settings, tmp_path):
    one = _host(settings, tmp_path, "one")
    folder = one / "exports" / "x"
    folder.mkdir(parents=True)
    (folder / "a.txt").write_text("a")
    artifact_publish(folder)
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(
        Bucket=s3_store["bucket"])["Contents"]]
    assert sorted(keys) == ["artifacts/exports/x/" + MARKER, "artifacts/exports/x/a.txt"]
    artifact_remove(folder)
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=s3_store["bucket"])
    assert not folder.exists()
    with pytest.raises(ArtifactMissing):
        artifact_local(folder)


def test_without_a_store_the_folder_is_the_store(settings, tmp_path):
    settings.TRAILMARK = {**settings.TRAILMARK, "ARTIFACT_STORE": ""}
    path = _host(settings, tmp_path, "one") / "runs" / "1"
    artifact_publish(path)  # nothing to do, nothing to fail
    assert artifact_local(path) == path and not path.exists()


def test_a_path_outside_the_artifact_folder_is_not_the_stores(s3_store, settings, tmp_path):
    _host(settings, tmp_path, "one")
    own = tmp_path / "staff-model"
    own.mkdir()
    (own / "config.json").write_text("{}")
    artifact_publish(own)
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=s3_store["bucket"])
    assert artifact_local(own) == own


def _another_host(settings, name):
    """Another host: an empty artifact folder at a path of its own (rows name artifacts by key,
    so hosts need not agree on the path); what the last host wrote is out of reach."""
    root = Path(settings.ARTIFACT_DIR)
    settings.ARTIFACT_DIR = root.with_name(f"host-{name}")
    settings.ARTIFACT_DIR.mkdir(parents=True)


@pytest.mark.django_db
def test_an_upload_and_a_model_made_on_one_host_are_used_on_another(
        s3_store, settings, tmp_path, make_source, publish_version):
    """The web host stores an upload, a worker on another host ingests it; a gpu worker trains a
    model, another one generates with it: each through the store, nothing shared on disk."""
    from attribution.services.outputs import model_output_create, model_output_generate
    from provenance.engine.lm_config import directory_sha256
    from provenance.models import Document
    from provenance.services.ingest import ingest_job_create_from_upload, ingest_run
    from provenance.services.training import training_run_create, training_run_execute
    from tests.helpers import TINY_MODEL, words

    source = make_source()
    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    body = "".join(f'{{"text": "{words(i, 40)}"}}\n' for i in range(30)).encode()
    job = ingest_job_create_from_upload(source=source, chunks=[body], name="corpus.jsonl",
                                        actor=None)
    _another_host(settings, "web")
    assert not artifact_path(job.path).exists()
    assert ingest_run(job_id=job.pk).rows_added == 30
    assert Document.objects.count() == 30

    run = training_run_execute(run_id=training_run_create(
        version=publish_version("stored"), actor=None, enqueue=False,
        config={**TINY_MODEL, "epochs": 1}).pk)
    checkpoint = run.checkpoint
    _another_host(settings, "gpu-1")
    assert not artifact_path(checkpoint.path).exists()
    output = model_output_generate(output_id=model_output_create(
        checkpoint=checkpoint, prompt="w1 w2", actor=None, enqueue=False).pk)
    assert output.state == "succeeded" and output.completion
    assert directory_sha256(artifact_path(checkpoint.path)) == checkpoint.sha256  # fetched whole


@pytest.mark.django_db
def test_indexes_built_in_shards_on_several_hosts_serve_a_run_on_another(
        s3_store, settings, tmp_path, make_source, ingest_texts, publish_version):
    """A gradient index's shards built by workers on different hosts, joined on a third, a span
    index built on a fourth, and the attribution run that reads both on a fifth."""
    from attribution.models import ModelOutput
    from attribution.services.influence import (
        gradient_index_finalize,
        gradient_index_plan,
        gradient_shard_build,
    )
    from attribution.services.runs import attribution_run_create, attribution_run_execute
    from attribution.services.spans import span_index_build
    from provenance.services.training import training_run_create, training_run_execute
    from tests.helpers import TINY_MODEL, words

    settings.ARTIFACT_DIR = tmp_path / "artifacts"
    settings.TRAILMARK = {**settings.TRAILMARK, "ATTRIBUTION_SHARD_DOCUMENTS": 8}
    texts = [words(700 + i, 12) + "." for i in range(20)]
    ingest_texts(make_source(license_expression="CC0-1.0"), texts)
    checkpoint = training_run_execute(run_id=training_run_create(
        version=publish_version("sharded"), actor=None, enqueue=False,
        config={**TINY_MODEL, "epochs": 2, "snapshots": 1}).pk).checkpoint
    output = ModelOutput.objects.create(checkpoint=checkpoint, prompt="",
                                        completion=texts[3], state="succeeded")
    run = attribution_run_create(output=output, actor=None, methods=["spans", "influence"],
                                 enqueue=False)
    _another_host(settings, "trainer")
    work = gradient_index_plan(index_id=run.gradient_index.pk)
    assert len(work) >= 4  # 3 shards x 2 snapshots
    for n, (snapshot, shard, ids) in enumerate(work):
        assert gradient_shard_build(index_id=run.gradient_index.pk, snapshot=snapshot,
                                    shard=shard, doc_ids=ids)
        _another_host(settings, f"shard-worker-{n}")
    assert gradient_index_finalize(index_id=run.gradient_index.pk).state == "succeeded"
    _another_host(settings, "finalizer")
    assert span_index_build(index_id=run.span_index.pk).state == "succeeded"
    _another_host(settings, "span-builder")
    assert attribution_run_execute(run_id=run.pk) == "done"
    run.refresh_from_db()
    assert run.state == "succeeded", run.error
    methods = set(run.results.values_list("method", flat=True))
    assert {"spans", "influence"} <= methods
