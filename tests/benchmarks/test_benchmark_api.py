"""The benchmarks API: set up, refused by field, and a whole run on a real worker (the chord of
trials on the gpu queue, the leaderboard on the default one)."""

from __future__ import annotations

import pytest

from benchmarks.models import BenchmarkRun
from tests.benchmarks.conftest import BUDGET, TRAINING
from tests.fixtures.workers import running_worker, wait_for_row


@pytest.mark.django_db
def test_a_benchmark_is_set_up_through_the_api_and_bad_options_answer_400_by_name(
        bench_world, client_as):
    researcher = client_as("researcher")
    body = {"name": "api bench", "evaluation": bench_world["evaluation"].pk,
            "token_budget": BUDGET, "training": TRAINING,
            "probes": [{"prompt": "a heron by the", "choices": ["weir", "comet"], "answer": 5}]}
    refused = researcher.post("/api/v1/benchmarks/", body, format="json")
    assert refused.status_code == 400 and "probes[0].answer" in refused.json()
    refused = researcher.post("/api/v1/benchmarks/", {**body, "probes": [],
                                                      "training": {"n_layer": 0}}, format="json")
    assert refused.status_code == 400 and "n_layer" in refused.json()["training"][0]
    made = researcher.post("/api/v1/benchmarks/", {**body, "probes": []}, format="json")
    assert made.status_code == 201, made.json()
    assert made.json()["training"]["max_steps"] == BUDGET // (8 * TRAINING["seq_len"])
    url = f"/api/v1/benchmarks/{made.json()['id']}/"
    entered = researcher.post(url + "entries/", {"version": bench_world["everything"].pk,
                                                 "label": "all", "reference": True},
                              format="json")
    assert entered.status_code == 201, entered.json()
    again = researcher.post(url + "entries/", {"version": bench_world["commercial"].pk,
                                               "label": "all"}, format="json")
    assert again.status_code == 400 and "label" in again.json()
    assert researcher.post(url + "runs/", {}, format="json").json() == {
        "benchmark": ["at least one entry besides the reference"]}
    assert client_as("holder_a").get("/api/v1/benchmarks/").status_code == 403
    shown = client_as("auditor").get(url).json()
    assert [e["label"] for e in shown["entries"]] == ["all"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_benchmark_runs_from_the_api_on_a_worker_to_its_leaderboard(
        bench_world, client_as, tmp_path):
    researcher = client_as("researcher")
    started = researcher.post(f"/api/v1/benchmarks/{bench_world['benchmark'].pk}/runs/", {},
                              format="json")
    assert started.status_code == 202, started.json()
    assert (started.json()["state"], started.json()["total"]) == ("queued", 6)
    with running_worker(tmp_path):
        wait_for_row(BenchmarkRun, started.json()["id"], {"succeeded", "failed"}, timeout=240)
    shown = client_as("auditor").get(f"/api/v1/benchmark-runs/{started.json()['id']}/").json()
    assert shown["state"] == "succeeded", (shown["error"], [t["error"] for t in shown["trials"]])
    assert shown["percent"] == 100.0 and len(shown["trials"]) == 6
    assert {t["state"] for t in shown["trials"]} == {"succeeded"}
    assert [r["label"] for r in shown["results"]["rows"]] == shown["results"]["ranking"]
