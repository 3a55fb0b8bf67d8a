"""What the pages show, read from the database (selectors: reads only, no writes). One module
per kind of page; everything is importable from here."""

from __future__ import annotations

from dashboards.selectors.benchmarks import (
    benchmark_context,
    benchmark_run_context,
    benchmarks_context,
)
from dashboards.selectors.cards import (
    ai_act_summary,
    ancestry_cache_key,
    checkpoint_facts,
    takedowns_touching,
    version_facts,
    version_lineage,
)
from dashboards.selectors.pages import (
    attribution_context,
    checkpoint_context,
    health,
    home_context,
    models_context,
    open_takedowns,
    output_context,
    source_context,
    training_run,
)
from dashboards.selectors.public import (
    bars,
    transparency,
    version_page,
)
from dashboards.selectors.retrieval import (
    answer_context,
    answers_context,
    datastore_context,
    datastores_context,
    shares_context,
)
from dashboards.selectors.staff import (
    FAILED_SHOWN_FOR,
    audit_context,
    jobs_board,
    staff_context,
)

__all__ = [
    "answer_context",
    "answers_context",
    "datastore_context",
    "datastores_context",
    "shares_context",
    "FAILED_SHOWN_FOR",
    "ai_act_summary",
    "ancestry_cache_key",
    "attribution_context",
    "audit_context",
    "bars",
    "checkpoint_context",
    "checkpoint_facts",
    "health",
    "home_context",
    "jobs_board",
    "benchmark_context",
    "benchmark_run_context",
    "benchmarks_context",
    "models_context",
    "open_takedowns",
    "output_context",
    "source_context",
    "staff_context",
    "takedowns_touching",
    "training_run",
    "transparency",
    "version_facts",
    "version_lineage",
    "version_page",
]
