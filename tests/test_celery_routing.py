from config.celery import app


def test_tasks_are_routed_to_queues_by_name():
    router = app.amqp.router

    def queue_of(name: str) -> str:
        route = router.route({}, name)
        return route["queue"].name

    assert queue_of("provenance.ingest_run") == "default"
    assert queue_of("provenance.curate_run") == "default"
    assert queue_of("attribution.run_execute") == "gpu"
    assert queue_of("takedowns.unlearn_run") == "gpu"
    assert queue_of("provenance.train_run") == "gpu"
    assert queue_of("retrieval.answer") == "gpu"
    assert queue_of("retrieval.datastore_build") == "default"
