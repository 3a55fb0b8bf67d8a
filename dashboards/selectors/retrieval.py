"""The datastore pages: the list with each build's progress, and one datastore with a search."""

from __future__ import annotations

from typing import Any

from core.permissions import Capability, require


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
