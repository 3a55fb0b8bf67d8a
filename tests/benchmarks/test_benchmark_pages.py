"""The benchmark pages: the leaderboard drawn on the server with its tables, the Run button
(the same service as the API), a run's trials, and the run on the jobs board."""

from __future__ import annotations

import json
import re

import pytest

from benchmarks.models import BenchmarkRun
from dashboards.models import VersionCard
from dashboards.selectors import jobs_board
from dashboards.services import version_card_render
from tests.benchmarks.test_runs import run_in_process

pytestmark = pytest.mark.django_db


def test_the_leaderboard_page_charts_each_entry_with_its_interval_and_links_its_models(
        bench_world, pages_as, django_assert_max_num_queries):
    run = run_in_process(bench_world["benchmark"])
    page = pages_as("auditor")
    with django_assert_max_num_queries(12):
        html = page.get(f"/benchmarks/{bench_world['benchmark'].pk}/").content.decode()
    assert html.count('class="whisker"') == 2 and 'class="reference"' in html
    rows = {r["label"]: r for r in run.results["rows"]}
    for label, row in rows.items():
        assert f"{row['bits_per_byte']['mean']:.4f}" in html, label
    assert "×" + f"{rows['commercial only']['relative']['mean']:.3f}" in html
    assert "license 30" in html  # what the commercial-only recipe excluded
    linked = {int(c) for c in re.findall(r'href="/checkpoints/(\d+)/"', html)}
    assert linked == {c["checkpoint"] for r in rows.values() for c in r["checkpoints"]}
    assert "Run the benchmark" not in html  # an auditor reads, does not run
    run_page = page.get(f"/benchmarks/runs/{run.pk}/").content.decode()
    assert run_page.count("succeeded") >= 7 and "Contamination check" in run_page


def test_the_run_button_queues_a_run_for_those_who_train(bench_world, pages_as):
    url = f"/benchmarks/{bench_world['benchmark'].pk}/"
    assert pages_as("auditor").post(url).status_code == 403
    answer = pages_as("researcher").post(url)
    run = BenchmarkRun.objects.get()
    assert answer.status_code == 302 and answer["Location"] == f"/benchmarks/runs/{run.pk}/"
    assert run.state == "queued" and run.total == 6
    again = pages_as("researcher").post(url)
    assert again.status_code == 400 and "under way" in again.content.decode()
    board = jobs_board()
    assert any(j["kind"] == "benchmark" and j["url"] == f"/benchmarks/runs/{run.pk}/"
               for j in board["active"])


def test_a_finished_run_is_written_into_each_entrys_cards(
        bench_world, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as sent:
        run = run_in_process(bench_world["benchmark"])
    assert len(sent) >= 2  # a card render for each entry's version, after the commit
    row = next(r for r in run.results["rows"] if r["label"] == "commercial only")
    version_card_render(version_id=bench_world["commercial"].pk)
    card = VersionCard.objects.get(version=bench_world["commercial"])
    said = f"{row['bits_per_byte']['mean']:.4f} bits per byte"
    assert "## Evaluation in recipe benchmarks" in card.hf_card
    assert "tiny bench (run" in card.hf_card and said in card.hf_card
    uses = json.loads(card.croissant)["rai:dataUseCases"]
    assert any(u.startswith("benchmarked: tiny bench") and said in u for u in uses)
    assert f"rank {row['rank']} of 2" in card.hf_card
