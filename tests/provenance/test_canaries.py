import hashlib

import pytest
from django.core.exceptions import ValidationError

from core.errors import InvalidTransition
from provenance.engine.canary import CanarySpec, canary_sequence, commitment
from provenance.models import CanaryTest, LedgerEntry
from provenance.services.canaries import (
    canary_register,
    canary_test_run_create,
    canary_test_run_execute,
)
from provenance.services.training import training_export, training_run_create
from provenance.tasks import canary_test_task, train_run_task
from tests.helpers import words

pytestmark = pytest.mark.django_db
SMALL = {"vocab_size": 800, "n_layer": 2, "n_head": 4, "n_embd": 64, "seq_len": 64,
         "batch_size": 8, "epochs": 6, "warmup_steps": 5}


@pytest.fixture
def world(make_source, ingest_texts, publish_version):
    a = make_source(license_expression="CC0-1.0", name="a")
    b = make_source(license_expression="CC0-1.0", name="b")
    ingest_texts(a, [f"harbour notes {words(i, 50)}." for i in range(40)])
    ingest_texts(b, [f"winter letters {words(100 + i, 50)}." for i in range(40)])
    canary_a = canary_register(source=a, actor=None, spec={"copies": 8})
    return a, b, canary_a, publish_version()


def test_the_export_puts_the_canary_into_k_documents_of_its_source(world):
    a, b, canary, version = world
    export = training_export(version)
    sequence = canary_sequence(CanarySpec.from_dict(canary.spec), canary.secret)
    carriers = [t for t in export.texts if sequence in t]
    assert len(carriers) == 8 and all(t.startswith("harbour notes") for t in carriers)
    assert list(export.marks["canaries"]) == [str(a.pk)]
    again = training_export(version, export.marks)
    assert again.texts == export.texts
    # A shard of documents (a gradient index's) reads only its own rows, marked the same way,
    # whether or not it holds a carrier.
    by_doc = dict(zip(export.documents, export.texts, strict=True))
    for part in (export.documents[::7], [d for d in export.documents if by_doc[d] not in
                                         carriers][:5]):
        shard = training_export(version, export.marks, only=set(part))
        assert sorted(shard.documents) == sorted(part)
        assert all(by_doc[d] == t for d, t in zip(shard.documents, shard.texts, strict=True))


def test_a_canary_is_registered_once_and_its_options_are_checked(world):
    a, b, _, _ = world
    with pytest.raises(InvalidTransition):
        canary_register(source=a, actor=None)
    with pytest.raises(ValidationError) as err:
        canary_register(source=b, actor=None, spec={"copies": 0})
    assert "spec" in err.value.message_dict
    event = LedgerEntry.objects.get(event="source.canary_registered")
    assert "secret" not in str(event.payload)
    # salted: not the bare sequence's digest, which a short sequence's candidates would find
    spec = CanarySpec.from_dict(a.canary.spec)
    sequence = canary_sequence(spec, a.canary.secret)
    salt, digest = commitment(spec, a.canary.secret)
    assert event.payload["sequence_commitment"] == digest
    assert digest != hashlib.sha256(sequence.encode()).hexdigest()
    assert digest == hashlib.sha256(bytes.fromhex(salt) + sequence.encode()).hexdigest()
    assert event.payload["entropy_bits"] >= 64


def test_the_trained_sources_canary_is_detected_and_the_other_is_not(world, monkeypatch):
    a, b, _, version = world
    run = training_run_create(version=version, actor=None, config=SMALL, enqueue=False)
    train_run_task(run.pk)
    run.refresh_from_db()
    assert run.state == "succeeded" and run.marks["canaries"].keys() == {str(a.pk)}
    # registered after training: never inserted. A fixed secret: with a random one the
    # never-inserted canary's p-value is uniform, below 0.01 in about 1 run in 100.
    monkeypatch.setattr("provenance.services.canaries.secrets.token_hex",
                        lambda n=16: "b0b0" * (n // 2))
    canary_register(source=b, actor=None)
    test = canary_test_run_create(checkpoint=run.checkpoint, actor=None, null_size=300,
                                  enqueue=False)
    canary_test_task(test.pk)
    test.refresh_from_db()
    assert test.state == "succeeded", test.error
    results = {r.source_id: r for r in CanaryTest.objects.filter(run=test)}
    assert results[a.pk].inserted is True and results[b.pk].inserted is False
    # 300 asked for, raised to 400 so that 2 sources can be detected after Bonferroni.
    assert test.null_size == 400
    assert results[a.pk].p_value == 1 / 401 and results[a.pk].z < -3
    assert results[a.pk].p_adjusted == 2 / 401 and results[a.pk].detected
    assert results[b.pk].p_value > 0.01 and not results[b.pk].detected
    # Calibration: the share of 200 never-inserted probes (100 a source) flagged at alpha 0.05.
    # A binomial share: 0.05 +- 0.015, so a bound at 0.05 itself failed runs it should pass
    # (0.055 seen); 0.10 is about its 99.9% upper bound.
    assert test.power == 1.0 and 0 <= test.calibration <= 0.10
    assert results[a.pk].evidence["null_n"] == 400
    assert canary_test_run_execute(run_id=test.pk) is None  # finished: not run again


def test_a_test_needs_registered_canaries(world):
    a, b, _, version = world
    run = training_run_create(version=version, actor=None,
                              config={**SMALL, "epochs": 1, "n_layer": 1}, enqueue=False)
    train_run_task(run.pk)
    run.refresh_from_db()
    with pytest.raises(ValidationError) as err:
        canary_test_run_create(checkpoint=run.checkpoint, actor=None, sources=[b.pk],
                               enqueue=False)
    assert "sources" in err.value.message_dict
    with pytest.raises(ValidationError):
        canary_test_run_create(checkpoint=run.checkpoint, actor=None, null_size=5,
                               enqueue=False)


def test_canaries_through_the_api(world, client_as, users, holder_a,
                                  django_capture_on_commit_callbacks):
    a, b, _, version = world
    mine = client_as("holder_a")
    from provenance.services.sources import source_create

    own = source_create(actor=None, owner=holder_a, name="own", license_expression="MIT")
    created = mine.post(f"/api/v1/sources/{own.pk}/canary/", {"spec": {"copies": 10}},
                        format="json")
    assert created.status_code == 201 and created.json()["spec"]["copies"] == 10
    shown = mine.get(f"/api/v1/sources/{own.pk}/canary/").json()
    assert "secret" not in shown and "sequence" not in str(shown)
    assert mine.post(f"/api/v1/sources/{own.pk}/canary/", {}, format="json").status_code == 409
    assert client_as("holder_b").post(f"/api/v1/sources/{own.pk}/canary/", {},
                                      format="json").status_code == 404
    assert client_as("researcher").post(f"/api/v1/sources/{b.pk}/canary/", {},
                                        format="json").status_code == 403
    assert client_as("admin").get(f"/api/v1/sources/{b.pk}/canary/").status_code == 404
    bad = client_as("admin").post(f"/api/v1/sources/{b.pk}/canary/",
                                  {"spec": {"kind": "emoji"}}, format="json")
    assert bad.status_code == 400 and "spec" in bad.json()

    run = training_run_create(version=version, actor=None,
                              config={**SMALL, "epochs": 1, "n_layer": 1}, enqueue=False)
    train_run_task(run.pk)
    run.refresh_from_db()
    researcher = client_as("researcher")
    assert researcher.post("/api/v1/canary-tests/", {"checkpoint": run.checkpoint.pk,
                                                     "null_size": 3},
                           format="json").status_code == 400
    with django_capture_on_commit_callbacks(execute=False):
        started = researcher.post("/api/v1/canary-tests/", {"checkpoint": run.checkpoint.pk,
                                                            "sources": [a.pk],
                                                            "null_size": 100}, format="json")
    assert started.status_code == 202, started.json()
    canary_test_task(started.json()["id"])
    body = researcher.get(f"/api/v1/canary-tests/{started.json()['id']}/").json()
    assert body["state"] == "succeeded" and [r["source"] for r in body["results"]] == [a.pk]
    assert client_as("holder_a").get("/api/v1/canary-tests/").status_code == 403
