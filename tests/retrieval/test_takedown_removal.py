"""A takedown, through its real steps, reaches retrieval at once: the scope names the datastore
that held the work, and from the commit of the data remediation no probe retrieves it and no
answer rests on it; the ledger records the scope and each removal."""

import pytest

from provenance.models import Document, LedgerEntry
from provenance.services.embeddings import embed_texts
from retrieval.models import Chunk
from retrieval.services.search import retrieve
from takedowns.services.requests import takedown_decide, takedown_file
from takedowns.services.scoping import takedown_scope, takedown_scope_start
from tests.fixtures.rag import HARBOUR, LONG

pytestmark = pytest.mark.django_db

PROBES = ["harbour master ledger of ships and the tide", "captain signed for salt timber wool",
          "river barges carrying coal to the foundry", "furnaces burned day and night"]


def found(store, documents):
    """How many probes retrieve a chunk of these documents (both legs, k = 5)."""
    vectors, _ = embed_texts(PROBES)
    return sum(any(h.document in documents for h in retrieve(store, q, v, k=5))
               for q, v in zip(PROBES, vectors, strict=True))


def test_a_takedown_removes_the_work_from_retrieval_with_its_commit(rag, client_as):
    users, store = rag["users"], rag["store"]
    works = set(Document.objects.filter(text__in=[HARBOUR, LONG]).values_list("pk", flat=True))
    assert found(store, works) == len(PROBES)
    request = takedown_file(actor=users["holder_a"], claimed_sources=[rag["port"]], data={
        "legal_basis": "voluntary", "claimant_name": "Ann", "claimant_email": "a@a.example",
        "works": [{"title": "Port records", "identifiers": ["port records"]}]})
    takedown_decide(request=request, actor=users["curator"], to="accepted")
    scoped = takedown_scope(request_id=takedown_scope_start(request=request,
                                                            actor=users["curator"]).pk)
    [held] = scoped.scope["datastores"]
    assert (held["id"], held["name"]) == (store.pk, "answers")
    assert held["chunks"] == Chunk.objects.filter(document__in=works).count()
    url = f"/api/v1/takedowns/{request.pk}/"
    curator = client_as("curator")
    matched = {m["document"] for m in curator.get(f"{url}matches/").json()["results"]}
    assert works <= matched
    curator.post(f"{url}review-scope/", {"confirm": sorted(matched)}, format="json")
    done = curator.post(f"{url}remediate-data/", {}, format="json")
    assert done.status_code == 200, done.json()
    # At once, with no rebuild: the chunks are still stored, and none is retrieved
    assert found(store, works) == 0
    assert Chunk.objects.filter(document__in=works).exists()
    removed = set(LedgerEntry.objects.filter(event="document.removed")
                  .values_list("subject_id", flat=True))
    assert {str(pk) for pk in works} <= removed
    scoped_entry = LedgerEntry.objects.get(event="takedown.scoped")
    assert scoped_entry.payload["datastores"] == [store.pk]
