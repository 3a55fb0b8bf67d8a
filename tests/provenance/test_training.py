import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from attribution.services.outputs import model_output_create, model_output_generate
from attribution.tasks import generate_task
from core.storage import artifact_path
from provenance.engine.lm_config import directory_sha256
from provenance.models import LedgerEntry, ModelCheckpoint, TrainingRun
from provenance.services import curation, datasets
from provenance.services.documents import document_tombstone
from provenance.services.training import (
    checkpoint_register_local,
    training_export,
    training_run_cancel,
    training_run_create,
    training_run_execute,
)
from provenance.tasks import train_run_task
from tests.helpers import TINY_MODEL, words

pytestmark = pytest.mark.django_db
TINY = {**TINY_MODEL, "batch_size": 8, "epochs": 2, "warmup_steps": 2, "checkpoint_every": 5}


@pytest.fixture
def version(make_source, ingest_texts, publish_version):
    source = make_source(license_expression="CC0-1.0")
    ingest_texts(source, [words(i, 60).replace("w", "river w") for i in range(40)])
    return publish_version("lm")


def test_a_run_trains_a_checkpoint_with_its_lineage(version, users):
    run = training_run_create(version=version, actor=users["researcher"], config=TINY,
                              enqueue=False)
    train_run_task(run.pk)  # what the worker runs
    run.refresh_from_db()
    assert run.state == TrainingRun.State.SUCCEEDED, run.error
    assert run.position == run.total > 0 and run.tokens > 0 and run.loss is not None
    checkpoint = ModelCheckpoint.objects.get(run=run)
    assert (checkpoint.kind, checkpoint.version, checkpoint.parent) == ("trained", version, None)
    checkpoint_path = Path(checkpoint.local_path)
    assert checkpoint.sha256 == directory_sha256(checkpoint_path)
    assert (checkpoint_path / "config.json").exists()
    assert checkpoint.metrics["heldout_loss"] is not None
    assert checkpoint.metrics["documents"] == version.document_count
    assert checkpoint.config["n_embd"] == 32 and checkpoint.config["seed"] == 0
    events = list(LedgerEntry.objects.filter(event__startswith="training_run").values_list(
        "event", flat=True)) + list(LedgerEntry.objects.filter(
            event="checkpoint.created").values_list("event", flat=True))
    assert events == ["training_run.created", "checkpoint.created"]


def test_running_a_finished_run_again_makes_no_second_checkpoint(version):
    run = training_run_create(version=version, actor=None, config=TINY, enqueue=False)
    training_run_execute(run_id=run.pk)
    assert training_run_execute(run_id=run.pk) is None
    assert ModelCheckpoint.objects.count() == 1


def test_a_run_can_be_cancelled_while_queued_or_running(version):
    queued = training_run_create(version=version, actor=None, config=TINY, enqueue=False)
    assert training_run_cancel(run=queued, actor=None).state == "cancelled"
    assert training_run_execute(run_id=queued.pk) is None

    running = training_run_create(version=version, actor=None,
                                  config={**TINY, "epochs": 20}, enqueue=False)

    def cancel_on_first_report(progress):
        training_run_cancel(run=TrainingRun.objects.get(pk=running.pk), actor=None)

    run = training_run_execute(run_id=running.pk, on_progress=cancel_on_first_report)
    assert run.state == "cancelled" and 0 < run.position < run.total
    assert not ModelCheckpoint.objects.filter(run=run).exists()


def test_training_skips_documents_removed_after_publication(version):
    before = training_export(version).texts
    doc = version.members.order_by("document__sha256").first().document
    document_tombstone(document=doc, actor=None, reason="takedown", purge_text=True)
    after = training_export(version).texts
    assert len(after) == len(before) - 1 and doc.text not in after


def test_only_published_versions_are_trained_on_and_options_are_checked(version):
    recipe = datasets.recipe_validate({"intended_use": "commercial"})
    draft = curation.version_create_from_plan(dataset=version.dataset, recipe=recipe,
                                              plan=curation.curation_plan(recipe), actor=None)
    with pytest.raises(ValidationError) as err:
        training_run_create(version=draft, actor=None, enqueue=False)
    assert "version" in err.value.message_dict
    with pytest.raises(ValidationError) as err:
        training_run_create(version=version, actor=None, config={"epochs": -1}, enqueue=False)
    assert "config" in err.value.message_dict


def test_generation_stores_the_completion_and_its_parameters(version):
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, config=TINY, enqueue=False).pk)
    output = model_output_create(checkpoint=run.checkpoint, prompt="river w1", actor=None,
                                 params={"max_new_tokens": 12}, enqueue=False)
    generate_task(output.pk)
    output.refresh_from_db()
    assert output.state == "succeeded" and output.completion
    assert output.params == {"max_new_tokens": 12, "temperature": 0.0, "top_p": 1.0, "seed": 0,
                             "watermark_threshold": 0.1}
    again = model_output_create(checkpoint=run.checkpoint, prompt="river w1", actor=None,
                                params={"max_new_tokens": 12}, enqueue=False)
    assert model_output_generate(output_id=again.pk).completion == output.completion  # greedy


def test_a_local_model_folder_can_be_registered_with_its_version(version, tmp_path):
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, config=TINY, enqueue=False).pk)
    mine = tmp_path / "my-model"
    shutil.copytree(run.checkpoint.local_path, mine)
    checkpoint = checkpoint_register_local(path=mine, version=version, name="my model",
                                           actor=None, parent=run.checkpoint)
    assert (checkpoint.kind, checkpoint.parent, checkpoint.sha256) == (
        "imported", run.checkpoint, run.checkpoint.sha256)
    assert checkpoint.config["model_type"] == "gpt2"
    output = model_output_create(checkpoint=checkpoint, prompt="river", actor=None,
                                 enqueue=False)
    assert model_output_generate(output_id=output.pk).state == "succeeded"
    (mine / "model.safetensors").unlink()
    with pytest.raises(ValidationError, match="weights"):
        checkpoint_register_local(path=mine, version=version, name="broken", actor=None)
    with pytest.raises(ValidationError, match="config.json"):
        checkpoint_register_local(path=tmp_path, version=version, name="empty", actor=None)


def test_the_train_command_prints_the_checkpoint(version):
    out = StringIO()
    call_command("train", "lm@v1", "--config", '{"vocab_size": 400, "n_layer": 1, "n_head": 2,'
                 ' "n_embd": 32, "seq_len": 32}', "--epochs", "1", "--quiet", stdout=out)
    assert "checkpoint" in out.getvalue() and "held-out loss" in out.getvalue()
    assert ModelCheckpoint.objects.count() == 1


def test_training_and_generation_through_the_api(version, client_as, tmp_path, settings,
                                                 django_capture_on_commit_callbacks):
    researcher = client_as("researcher")
    bad = researcher.post("/api/v1/training-runs/", {"version": version.pk,
                                                     "config": {"n_layer": "two"}}, format="json")
    assert bad.status_code == 400 and "config" in bad.json()
    assert client_as("holder_a").post("/api/v1/training-runs/", {"version": version.pk},
                                      format="json").status_code == 403
    with django_capture_on_commit_callbacks(execute=False) as queued:
        response = researcher.post("/api/v1/training-runs/",
                                   {"version": version.pk, "config": TINY}, format="json")
    assert response.status_code == 202 and len(queued) == 1
    train_run_task(response.json()["id"])
    run = researcher.get(f"/api/v1/training-runs/{response.json()['id']}/").json()
    assert (run["state"], run["percent"]) == ("succeeded", 100.0) and run["checkpoint"]
    assert researcher.post(f"/api/v1/training-runs/{run['id']}/cancel/").status_code == 409
    checkpoint = researcher.get(f"/api/v1/checkpoints/{run['checkpoint']}/").json()
    assert checkpoint["version"] == version.pk and checkpoint["run"] == run["id"]

    with django_capture_on_commit_callbacks(execute=False):
        out = researcher.post("/api/v1/outputs/", {"checkpoint": checkpoint["id"],
                                                   "prompt": "river w3",
                                                   "params": {"max_new_tokens": 5}},
                              format="json")
    assert out.status_code == 202, out.json()
    generate_task(out.json()["id"])
    assert researcher.get(f"/api/v1/outputs/{out.json()['id']}/").json()["state"] == "succeeded"
    for params, field in [({"max_new_tokens": 0}, "params"), ({"beam": 2}, "params")]:
        bad = researcher.post("/api/v1/outputs/", {"checkpoint": checkpoint["id"],
                                                   "prompt": "x", "params": params},
                              format="json")
        assert bad.status_code == 400 and field in bad.json()
    empty = researcher.post("/api/v1/outputs/", {"checkpoint": checkpoint["id"], "prompt": " "},
                            format="json")
    assert empty.status_code == 400

    settings.TRAILMARK = {**settings.TRAILMARK, "IMPORT_DIRS": [tmp_path]}
    admin = client_as("admin")
    outside = admin.post("/api/v1/checkpoints/", {"name": "x", "path": "/etc",
                                                  "version": version.pk}, format="json")
    assert outside.status_code == 400 and "path" in outside.json()
    shutil.copytree(artifact_path(checkpoint["path"]), tmp_path / "byo")
    registered = admin.post("/api/v1/checkpoints/", {"name": "byo", "path": str(tmp_path / "byo"),
                                                     "version": version.pk}, format="json")
    assert registered.status_code == 201 and registered.json()["kind"] == "imported"
    assert researcher.post("/api/v1/checkpoints/", {"name": "x", "path": str(tmp_path / "byo"),
                                                    "version": version.pk},
                           format="json").status_code == 403


def test_presets_show_their_expected_time_before_starting_and_packing_follows_length(
        client_as, make_source, ingest_texts, publish_version):
    from provenance.engine.lm_config import PRESETS
    from tests.helpers import words

    long_docs = make_source(name="essays")
    ingest_texts(long_docs, [words(i, 300) for i in range(6)])
    essays = publish_version("essays")
    researcher = client_as("researcher")
    plans = researcher.get("/api/v1/training-runs/plans/", {"version": essays.pk})
    assert plans.status_code == 200, plans.json()
    by_preset = {p["preset"]: p for p in plans.json()}
    assert set(by_preset) == {"tiny", "small", "default"}
    seconds = [by_preset[p]["expected"]["cpu_seconds"] for p in ("tiny", "small", "default")]
    assert all(s is not None and s >= 0 for s in seconds) and seconds == sorted(seconds)
    assert by_preset["tiny"]["config"]["n_embd"] == PRESETS["tiny"]["n_embd"]
    assert by_preset["default"]["pack"].startswith("on")  # long documents: packed blocks
    assert "2 CPU cores" in by_preset["tiny"]["summary"]
    assert researcher.get("/api/v1/training-runs/plans/", {"version": "x"}).status_code == 400

    created = researcher.post("/api/v1/training-runs/", {
        "version": essays.pk, "config": {"preset": "tiny", "epochs": 2}}, format="json")
    assert created.status_code == 202, created.json()
    run = created.json()
    assert run["config"]["n_layer"] == PRESETS["tiny"]["n_layer"] and run["config"]["epochs"] == 2
    assert run["plan"]["preset"] == "tiny" and run["plan"]["expected"]["cpu_seconds"] is not None
    bad = researcher.post("/api/v1/training-runs/", {"version": essays.pk,
                                                     "config": {"preset": "huge"}},
                          format="json")
    assert bad.status_code == 400 and "preset" in str(bad.json()["config"])

    facts = make_source(name="facts")
    ingest_texts(facts, [f"Fact {i}: the harbour light is number {i}." for i in range(8)])
    short = publish_version("facts")
    short_run = researcher.post("/api/v1/training-runs/", {"version": short.pk}, format="json")
    assert short_run.json()["config"]["pack"] is False  # short documents: one per row
    assert "median document" in short_run.json()["plan"]["pack"]
    told = researcher.post("/api/v1/training-runs/", {"version": short.pk,
                                                      "config": {"pack": True}}, format="json")
    assert told.json()["config"]["pack"] is True and told.json()["plan"]["pack"] == "as given"
