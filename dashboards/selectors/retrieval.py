"""The datastore pages (the list with each build's progress, one datastore with a search) and
the answer pages (recent answers and the question form, one answer and its attribution, the
per-period shares)."""

from __future__ import annotations

from typing import Any

from core.permissions import Capability, can, require


def datastores_context(user: Any) -> dict[str, Any]:
    from retrieval.models import Datastore

    require(user, Capability.READ_ALL)
    return {"datastores": list(Datastore.objects.select_related("version__dataset")
                               .order_by("-id")[:200])}


def datastore_context(user: Any, datastore_id: int, query: str) -> dict[str, Any] | None:
    from retrieval.models import Datastore
    from retrieval.services.search import query_vector, retrieve

    require(user, Capability.READ_ALL)
    store = Datastore.objects.select_related("version__dataset").filter(pk=datastore_id).first()
    if store is None:
        return None
    hits, note, legs = [], "", []
    if query and store.state == Datastore.State.SUCCEEDED:
        vector, note = query_vector(query)
        legs = ["keyword"] + (["vector"] if vector is not None else [])
        hits = retrieve(store, query, vector, k=10)
    return {"store": store, "query": query, "hits": hits, "note": note, "legs": legs}


def answers_context(user: Any) -> dict[str, Any]:
    """Recent answers, and what a new question may be asked of (succeeded datastores, the
    checkpoints the asker may read)."""
    from provenance import selectors as prov
    from retrieval.models import Answer, Datastore

    require(user, Capability.READ_ALL)
    return {
        "answers": list(Answer.objects.select_related("datastore", "checkpoint")
                        .order_by("-id")[:100]),
        "datastores": list(Datastore.objects.filter(state=Datastore.State.SUCCEEDED)
                           .order_by("name")),
        "checkpoints": list(prov.checkpoint_list(user).order_by("-id")[:100]),
        "modes": Answer.Mode.choices, "can_ask": can(user, Capability.GENERATE)}


def marked(text: str, spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The answer cut into runs, each either verbatim in some passages (their numbers, from 1)
    or not, for highlighting."""
    covering: list[set[int]] = [set() for _ in text]
    for span in spans:
        for i in range(span["start"], min(span["end"], len(text))):
            covering[i].add(span["passage"] + 1)
    runs: list[dict[str, Any]] = []
    for char, where in zip(text, covering, strict=True):
        if runs and runs[-1]["in"] == where:
            runs[-1]["text"] += char
        else:
            runs.append({"text": char, "in": where})
    return [{"text": r["text"], "passages": ", ".join(map(str, sorted(r["in"])))}
            for r in runs]


def answer_context(user: Any, answer_id: int) -> dict[str, Any] | None:
    from retrieval.models import Answer

    require(user, Capability.READ_ALL)
    answer = (Answer.objects.select_related("datastore", "checkpoint", "output")
              .prefetch_related("shares__source").filter(pk=answer_id).first())
    if answer is None:
        return None
    top = max([abs(p["contribution"]) for p in answer.passages] + [1e-12])
    passages = [{**p, "number": n + 1, "width": round(100 * max(p["contribution"], 0) / top)}
                for n, p in enumerate(answer.passages)]
    runs = list(answer.output.runs.order_by("-id")) if answer.output is not None else []
    return {"answer": answer, "passages": passages, "runs": runs,
            "segments": marked(answer.text, answer.spans),
            "shares": sorted(answer.shares.all(), key=lambda s: -s.share),
            "can_attribute": can(user, Capability.START_ATTRIBUTION)}


def shares_context(user: Any, period: str = "month", since: Any = None, until: Any = None,
                   source: int | None = None) -> dict[str, Any]:
    """Per-period shares of answers: everything for readers of all, a rights-holder's own
    sources for a rights-holder."""
    from retrieval.selectors import PERIODS, share_periods

    require(user, Capability.SIGN_IN)
    rows = share_periods(user, period=period, since=since, until=until, source=source)
    return {"rows": rows, "period": period, "periods": PERIODS, "since": since or "",
            "until": until or ""}
