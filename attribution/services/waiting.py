"""Attribution runs that wait for their indexes. A run whose span or gradient index is still
building ends its task at once (no worker held, nothing polled); the index's last step, whether
it succeeded or failed, sends the runs that wait on it again."""

from __future__ import annotations

from functools import partial

from django.db import transaction

from attribution.models import AttributionRun, GradientIndex, SpanIndex


def runs_waiting_resume(*, span_index: SpanIndex | None = None,
                        gradient_index: GradientIndex | None = None) -> list[int]:
    """Send again, once this transaction commits, every queued run that uses the index; the
    run's own check decides whether it can start. Returns the runs sent."""
    from attribution.tasks import attribution_run_task

    runs = AttributionRun.objects.filter(state=AttributionRun.State.QUEUED)
    if span_index is not None:
        runs = runs.filter(span_index=span_index)
    elif gradient_index is not None:
        runs = runs.filter(gradient_index=gradient_index)
    else:
        return []
    ids = list(runs.order_by("pk").values_list("pk", flat=True))
    for run_id in ids:
        transaction.on_commit(partial(attribution_run_task.delay, run_id))
    return ids
