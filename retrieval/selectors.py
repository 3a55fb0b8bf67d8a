"""What each user may read of retrieval: datastores and answers (everyone who reads all), and
the per-period shares of answers (a rights-holder: those of its own sources)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, QuerySet, Sum
from django.db.models.functions import Trunc

from core.permissions import Capability, can
from provenance import selectors as prov
from retrieval.models import Answer, AnswerShare, Datastore

PERIODS = ("day", "week", "month", "quarter", "year")


def datastore_list(user: Any) -> QuerySet[Datastore]:
    return Datastore.objects.all() if can(user, Capability.READ_ALL) else \
        Datastore.objects.none()


def answer_list(user: Any) -> QuerySet[Answer]:
    if can(user, Capability.READ_ALL):
        return Answer.objects.prefetch_related("shares__source")
    return Answer.objects.none()


def share_periods(user: Any, *, period: str = "month", since: dt.date | None = None,
                  until: dt.date | None = None, source: int | None = None) -> list[dict[str, Any]]:
    """Per period (by the time each answer finished, UTC) and source: how many answers owed the
    source a share, and the sum of those shares (one answer counts 1 in all). Answers without
    shares owe nothing and are not counted here."""
    if period not in PERIODS:
        raise ValueError(f"period: one of {', '.join(PERIODS)}")
    rows = AnswerShare.objects.filter(source__in=prov.source_list(user),
                                      answer__state=Answer.State.SUCCEEDED)
    if since is not None:
        rows = rows.filter(answer__finished_at__date__gte=since)
    if until is not None:
        rows = rows.filter(answer__finished_at__date__lte=until)
    if source is not None:
        rows = rows.filter(source_id=source)
    grouped = (rows.annotate(period=Trunc("answer__finished_at", period, tzinfo=dt.UTC))
               .values("period", "source_id", "source__name", "source__owner__name")
               .annotate(answers=Count("answer", distinct=True), share=Sum("share"))
               .order_by("period", "source_id"))
    return [{"period": row["period"].date().isoformat(), "period_kind": period,
             "source": row["source_id"], "name": row["source__name"],
             "rights_holder": row["source__owner__name"] or "", "answers": row["answers"],
             "share": round(row["share"], 6)} for row in grouped]
