"""Benchmarks and their entries: validated, audited, immutable once entered.

A benchmark fixes what every entry shares: the model and its steps (so every entry trains on
the same number of tokens), the seeds, and the evaluation. An entry is a published version that
holds none of the evaluation's texts: the same text is refused here, in SQL, at once; a
near-duplicate (MinHash) is looked for when a run starts, before anything trains.
"""

from __future__ import annotations

import math
from typing import Any

from django.core.exceptions import ValidationError
from django.db import connection, transaction

from benchmarks.models import Benchmark, Entry
from provenance.engine.lm_config import PRESETS, TrainConfig
from provenance.ledger.append import ledger_append
from provenance.models import DatasetVersion, User

MIN_SEEDS, MAX_SEEDS = 3, 10
MAX_PROBES = 1000


def training_validate(training: Any, token_budget: Any) -> dict[str, Any]:
    """The full training configuration: a preset under the options given, every seed trained
    for the steps the token budget buys (the data repeated as needed), no documents held out
    (the evaluation is the benchmark's own) and no snapshots (no influence index is built)."""
    if not isinstance(training, dict):
        raise ValidationError({"training": "must be a JSON object"})
    options = dict(training)
    preset = options.pop("preset", "tiny")
    if preset not in PRESETS:
        raise ValidationError({"training.preset": f"one of {sorted(PRESETS)}, not {preset!r}"})
    for fixed in ("seed", "max_steps", "epochs", "heldout_fraction"):
        if fixed in options:
            raise ValidationError({f"training.{fixed}": "set by the benchmark (its seeds, its "
                                                        "token budget, its evaluation)"})
    try:
        config = TrainConfig.from_dict({**PRESETS[preset], **options, "heldout_fraction": 0.0,
                                        "snapshots": options.get("snapshots", 0)})
    except (TypeError, ValueError) as exc:
        raise ValidationError({"training": str(exc)}) from exc
    if isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget <= 0:
        raise ValidationError({"token_budget": "must be a positive number of tokens"})
    per_step = config.batch_size * config.seq_len
    if token_budget < per_step:
        raise ValidationError({"token_budget": f"at least one step: {per_step} tokens "
                                               f"(batch_size x seq_len)"})
    config.max_steps = math.ceil(token_budget / per_step)
    out = config.to_dict()
    out.pop("seed")
    return out


def seeds_validate(seeds: Any) -> list[int]:
    if not isinstance(seeds, list) or not all(isinstance(s, int) and not isinstance(s, bool)
                                              for s in seeds):
        raise ValidationError({"seeds": "must be a list of integers"})
    if len(set(seeds)) != len(seeds):
        raise ValidationError({"seeds": "each seed once"})
    if not MIN_SEEDS <= len(seeds) <= MAX_SEEDS:
        raise ValidationError({"seeds": f"between {MIN_SEEDS} and {MAX_SEEDS} seeds (decision "
                                        "accuracy compares each seed with the others)"})
    return sorted(seeds)


def probes_validate(probes: Any) -> list[dict[str, Any]]:
    """Multiple-choice questions: {prompt, choices (2 or more), answer (the right one's
    index)}. Errors name the item: probes[3].answer."""
    if not isinstance(probes, list):
        raise ValidationError({"probes": "must be a list"})
    if len(probes) > MAX_PROBES:
        raise ValidationError({"probes": f"at most {MAX_PROBES}"})
    out = []
    for i, probe in enumerate(probes):
        where = f"probes[{i}]"
        if not isinstance(probe, dict):
            raise ValidationError({where: "must be an object {prompt, choices, answer}"})
        unknown = sorted(set(probe) - {"prompt", "choices", "answer"})
        if unknown:
            raise ValidationError({where: f"unknown key(s): {', '.join(unknown)}"})
        prompt, choices, answer = probe.get("prompt"), probe.get("choices"), probe.get("answer")
        if not isinstance(prompt, str) or not prompt.strip():
            raise ValidationError({f"{where}.prompt": "must be a non-empty string"})
        if not isinstance(choices, list) or len(choices) < 2 or not all(
                isinstance(c, str) and c.strip() for c in choices):
            raise ValidationError({f"{where}.choices": "must be 2 or more non-empty strings"})
        if len({c.strip() for c in choices}) != len(choices):
            raise ValidationError({f"{where}.choices": "each choice once"})
        if isinstance(answer, bool) or not isinstance(answer, int) \
                or not 0 <= answer < len(choices):
            raise ValidationError({f"{where}.answer": f"the right choice's index, 0 to "
                                                      f"{len(choices) - 1}"})
        out.append({"prompt": prompt, "choices": choices, "answer": answer})
    return out


@transaction.atomic
def benchmark_create(*, actor: User | None, name: str, evaluation: DatasetVersion,
                     token_budget: int, training: dict[str, Any] | None = None,
                     seeds: list[int] | None = None, probes: list[Any] | None = None,
                     description: str = "", near_duplicate_threshold: float = 0.8,
                     ) -> Benchmark:
    if Benchmark.objects.filter(name=name).exists():
        raise ValidationError({"name": f"a benchmark named {name!r} exists"})
    if not evaluation.is_published:
        raise ValidationError({"evaluation": "a published version (a draft can change)"})
    if not evaluation.document_count:
        raise ValidationError({"evaluation": "the version has no documents"})
    if not 0 < near_duplicate_threshold <= 1:
        raise ValidationError({"near_duplicate_threshold": "must be in (0, 1]"})
    benchmark = Benchmark.objects.create(
        name=name, description=description, evaluation=evaluation, token_budget=token_budget,
        training=training_validate(training or {}, token_budget),
        seeds=seeds_validate([0, 1, 2] if seeds is None else seeds),
        probes=probes_validate(probes or []), near_duplicate_threshold=near_duplicate_threshold,
        created_by=actor)
    ledger_append(actor=actor, event="benchmark.created", subject=benchmark,
                  payload={"name": name, "evaluation": evaluation.pk,
                           "evaluation_root": evaluation.manifest_root,
                           "training": benchmark.training, "seeds": benchmark.seeds,
                           "token_budget": token_budget, "probes": len(benchmark.probes)})
    return benchmark


def shared_texts(version: DatasetVersion, evaluation: DatasetVersion,
                 limit: int = 5) -> tuple[int, list[str]]:
    """How many of the version's documents have the text (normalised) of one of the
    evaluation's, and the first few hashes: one query, answered from the hash index."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) OVER (), d.sha256 FROM provenance_versionmember m "
            "JOIN provenance_document d ON d.id = m.document_id WHERE m.version_id = %s AND "
            "d.normalised_sha256 IN (SELECT e.normalised_sha256 FROM provenance_versionmember x "
            "JOIN provenance_document e ON e.id = x.document_id WHERE x.version_id = %s) "
            "ORDER BY d.sha256 LIMIT %s", [version.pk, evaluation.pk, limit])
        rows = cursor.fetchall()
    return (int(rows[0][0]) if rows else 0), [sha for _, sha in rows]


@transaction.atomic
def entry_add(*, actor: User | None, benchmark: Benchmark, version: DatasetVersion,
              label: str, reference: bool = False) -> Entry:
    if not version.is_published:
        raise ValidationError({"version": "a published version (a draft can change)"})
    if version.pk == benchmark.evaluation_id:
        raise ValidationError({"version": "this is the benchmark's evaluation version"})
    if benchmark.entries.filter(version=version).exists():
        raise ValidationError({"version": f"{version} is entered already"})
    if benchmark.entries.filter(label=label).exists():
        raise ValidationError({"label": f"an entry is labelled {label!r} already"})
    if reference and benchmark.entries.filter(reference=True).exists():
        raise ValidationError({"reference": "the benchmark has its reference already"})
    count, examples = shared_texts(version, benchmark.evaluation)
    if count:
        raise ValidationError({"version": f"{count} of its documents are texts of the "
                                          f"evaluation version (e.g. {', '.join(examples)}): "
                                          "an entry may not train on what it is evaluated on"})
    entry = Entry.objects.create(benchmark=benchmark, version=version, label=label,
                                 reference=reference)
    ledger_append(actor=actor, event="benchmark.entry_added", subject=benchmark,
                  payload={"entry": entry.pk, "version": version.pk, "label": label,
                           "reference": reference, "manifest_root": version.manifest_root})
    return entry
