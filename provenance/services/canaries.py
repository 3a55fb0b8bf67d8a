"""Canaries: registration, and membership tests of checkpoints against them."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from core.errors import InvalidTransition
from core.jobs import claim_row, job_run
from provenance.engine.canary import (
    CanarySpec,
    bonferroni,
    calibration,
    canary_sequence,
    commitment,
    membership_test,
    min_null_size,
    null_sequences,
)
from provenance.ledger.append import ledger_append
from provenance.models import (
    CanaryTest,
    CanaryTestRun,
    DataSource,
    ModelCheckpoint,
    SourceCanary,
    User,
)
from provenance.services.lineage import canary_teachers

PROBES = 100  # never-inserted sequences per source for the calibration check


@transaction.atomic
def canary_register(*, source: DataSource, actor: User | None,
                    spec: dict[str, Any] | None = None) -> SourceCanary:
    """Opt a source in. Once: a changed canary would make earlier checkpoints untestable."""
    if SourceCanary.objects.filter(source=source).exists():
        raise InvalidTransition(f"source {source.pk}", "canaried", "register a second canary for")
    try:
        parsed = CanarySpec.from_dict(spec or {})
    except (TypeError, ValueError) as exc:
        raise ValidationError({"spec": str(exc)}) from exc
    canary = SourceCanary.objects.create(source=source, spec=parsed.to_dict(),
                                         secret=secrets.token_hex(16), created_by=actor)
    # A salted commitment to the sequence: proves later which canary was registered, reveals
    # nothing, and cannot be opened by hashing every candidate of a short sequence.
    _, digest = commitment(parsed, canary.secret)
    ledger_append(actor=actor, event="source.canary_registered", subject=source,
                  payload={"spec": parsed.to_dict(), "sequence_commitment": digest,
                           "commitment": "sha256(salt || sequence), the salt revealed with the "
                                         "sequence to open it",
                           "entropy_bits": round(parsed.bits, 1)})
    return canary


@transaction.atomic
def canary_test_run_create(*, checkpoint: ModelCheckpoint, actor: User | None,
                           sources: list[int] | None = None, null_size: int = 1000,
                           alpha: float = 0.01, enqueue: bool = True) -> CanaryTestRun:
    registered = set(SourceCanary.objects.values_list("source_id", flat=True))
    chosen = sorted(registered if sources is None else set(sources))
    missing = sorted(set(chosen) - registered)
    if missing:
        raise ValidationError({"sources": f"no canary registered for source(s) {missing}"})
    if not chosen:
        raise ValidationError({"sources": "no source has a canary"})
    if not 100 <= null_size <= 100_000:
        raise ValidationError({"null_size": "must be from 100 to 100000"})
    if not 0 < alpha < 1:
        raise ValidationError({"alpha": "must be in (0, 1)"})
    # Enough null sequences that a detection is attainable after Bonferroni over the sources.
    null_size = max(null_size, min_null_size(len(chosen), alpha))
    run = CanaryTestRun.objects.create(checkpoint=checkpoint, sources=chosen,
                                       null_size=null_size, alpha=alpha, created_by=actor,
                                       unit="sources", total=len(chosen))
    if enqueue:
        from provenance.tasks import canary_test_task

        canary_test_task.delay_on_commit(run.pk)
    return run


def _inserted(checkpoint: ModelCheckpoint, source_id: int) -> bool | None:
    if checkpoint.run is None:
        return None  # an imported model: what it was trained on is its owner's word
    return str(source_id) in checkpoint.run.marks.get("canaries", {})


def canary_test_run_execute(*, run_id: int) -> CanaryTestRun | None:
    from provenance.engine import lm

    with job_run("canary_test", run_id, model=CanaryTestRun,
                 claim=claim_row(CanaryTestRun, related=("checkpoint__run",))) as run:
        if run is None:
            return None
        model, tokenizer = lm.load(run.checkpoint.local_path)
        measured = []
        probes_null, probes = [], []
        for done, canary in enumerate(SourceCanary.objects.filter(
                source_id__in=run.sources).order_by("source_id"), start=1):
            spec = CanarySpec.from_dict(canary.spec)
            sequences = [canary_sequence(spec, canary.secret),
                         *null_sequences(spec, canary.secret, run.null_size),
                         *null_sequences(spec, canary.secret, PROBES, stream="probe")]
            losses = lm.sequence_loss(model, tokenizer, sequences,
                                      exclude=lm.text_space(run.checkpoint.local_path, tokenizer))
            observed, null = losses[0], losses[1:1 + run.null_size]
            measured.append((canary, spec, membership_test(observed, null)))
            probes_null.append(null)
            probes.append(losses[1 + run.null_size:])
            CanaryTestRun.objects.filter(pk=run_id).update(position=done)
        _finish(run, measured, probes_null, probes)
    run.refresh_from_db()
    return run


@transaction.atomic
def _finish(run: CanaryTestRun, measured: list, probes_null: list, probes: list) -> None:
    adjusted = bonferroni([m.p_value for _, _, m in measured])
    rows = []
    for (canary, spec, m), p_adj in zip(measured, adjusted, strict=True):
        rows.append(CanaryTest(
            run=run, checkpoint=run.checkpoint, source_id=canary.source_id,
            inserted=_inserted(run.checkpoint, canary.source_id), observed_loss=m.observed,
            p_value=m.p_value, p_adjusted=p_adj, z=m.z, detected=p_adj < run.alpha,
            evidence={"null_n": m.null_n, "null_mean": m.null_mean, "null_sd": m.null_sd,
                      "null_quantiles": m.null_quantiles, "spec": spec.to_dict(),
                      "tested_together": len(measured),
                      # teachers that had the canary and wrote text this model learned from
                      "inherited_from": canary_teachers(run.checkpoint, canary.source_id)}))
    CanaryTest.objects.filter(run=run).delete()  # a rerun replaces, never duplicates
    CanaryTest.objects.bulk_create(rows)
    trained = [r for r in rows if r.inserted]
    power = sum(r.detected for r in trained) / len(trained) if trained else None
    rates = [calibration(null, probe, run.alpha) for null, probe in zip(probes_null, probes,
                                                                         strict=True)]
    CanaryTestRun.objects.filter(pk=run.pk).update(
        state=run.State.SUCCEEDED, position=len(rows), power=power,
        calibration=sum(rates) / len(rates), finished_at=timezone.now())
    ledger_append(actor=run.created_by, event="canary_test.finished", subject=run.checkpoint,
                  payload={"run": run.pk, "results": {str(r.source_id): {
                      "p_adjusted": r.p_adjusted, "detected": r.detected} for r in rows},
                      "power": power})
