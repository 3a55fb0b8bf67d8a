"""A governed datastore over three sources and a tiny checkpoint trained on the same version:
what answers are generated and attributed from."""

import pytest

from provenance.services.training import training_run_create, training_run_execute
from retrieval.services import datastores
from tests.retrieval.test_datastores import HARBOUR, LONG, OBSERVATORY, ORCHARD

MODEL = {"vocab_size": 400, "n_layer": 1, "n_head": 2, "n_embd": 32, "seq_len": 128,
         "epochs": 3, "batch_size": 8, "snapshots": 0}


@pytest.fixture
def rag(users, make_source, ingest_texts, publish_version):
    port = make_source(name="port records", license_expression="CC0-1.0",
                       owner=users["holder_a"].rights_holder)
    farm = make_source(name="farm letters", license_expression="CC-BY-4.0")
    sky = make_source(name="sky notes", license_expression="CC0-1.0")
    ingest_texts(port, [HARBOUR, LONG])
    ingest_texts(farm, [ORCHARD])
    ingest_texts(sky, [OBSERVATORY, HARBOUR])  # the harbour text is in two sources
    version = publish_version()
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config=MODEL).pk)
    assert run.state == "succeeded", run.error
    store = datastores.datastore_create(version=version, name="answers", actor=None,
                                        chunk_tokens=32, overlap_tokens=4, enqueue=False)
    store = datastores.datastore_build(datastore_id=store.pk)
    return {"port": port, "farm": farm, "sky": sky, "store": store,
            "checkpoint": run.checkpoint}
