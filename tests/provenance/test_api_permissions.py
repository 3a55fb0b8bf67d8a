"""Every endpoint × every role: who may read, who may write, and nothing leaks across holders.

Each row names an operation and the status each role gets; a role not named gets `other`.
Rights-holders see only their own holder's rows, so another holder's object answers 404 (it does
not exist for them) rather than 403.
"""

from dataclasses import dataclass, field
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

# One world for the whole module, rolled back after it (tests/fixtures/shared_world.py).
from tests.fixtures.shared_world import (  # noqa: F401
    artifacts_in_shared_folder,
    holder_a,
    holder_b,
    provenance_world,
    shared_state,
    users,
)

pytestmark = pytest.mark.django_db
ROLES = ["admin", "curator", "holder_a", "holder_b", "auditor", "researcher", "anonymous"]
SIGNED_IN = {r: 200 for r in ROLES if r != "anonymous"}
STAFF_WRITE = {"admin": None, "curator": None}


@pytest.fixture
def world(provenance_world):
    """This module's tests read the holders' world (the conftest's `world` is the matrix's)."""
    return provenance_world


@dataclass
class Op:
    name: str
    method: str
    path: str
    expect: dict[str, int]
    other: int = 403
    body: Any = None
    multipart: bool = False
    extra: dict = field(default_factory=dict)


def upload(w: dict) -> dict:
    return {"source": w["sa"], "file": SimpleUploadedFile("new.jsonl", b'{"text": "uploaded"}\n')}


OPS = [
    # rights-holders
    Op("list holders", "get", "/api/v1/rights-holders/", SIGNED_IN),
    Op("read own holder", "get", "/api/v1/rights-holders/{ha}/",
       {**SIGNED_IN, "holder_b": 404}),
    Op("create holder", "post", "/api/v1/rights-holders/", {"admin": 201, "curator": 201},
       body={"name": "New Holder"}),
    Op("list licence refs", "get", "/api/v1/license-refs/", SIGNED_IN),
    Op("classify a licence ref", "post", "/api/v1/license-refs/", {"admin": 200, "curator": 200},
       body={"key": "LicenseRef-Matrix-Terms", "use_class": "commercial", "reason": "terms"}),
    Op("onboard a holder", "post", "/api/v1/rights-holders/onboard/",
       {"admin": 201, "curator": 201},
       body={"name": "Onboarded Holder", "username": "onboarded", "email": "o@example.org"}),
    Op("edit holder", "patch", "/api/v1/rights-holders/{ha}/", {"admin": 200, "curator": 200,
                                                                "holder_b": 403},
       body={"contact_name": "Ada"}),
    # sources
    Op("list sources", "get", "/api/v1/sources/", SIGNED_IN),
    Op("read a source", "get", "/api/v1/sources/{sa}/", {**SIGNED_IN, "holder_b": 404}),
    # holder_b names holder_a's objects: answered like ids that do not exist (400)
    Op("create a source", "post", "/api/v1/sources/",
       {"admin": 201, "curator": 201, "holder_a": 201, "holder_b": 400},
       body=lambda w: {"owner": w["ha"], "name": "another", "license_expression": "MIT"}),
    Op("edit a source", "patch", "/api/v1/sources/{sa}/",
       {"admin": 200, "curator": 200, "holder_a": 200, "holder_b": 404},
       body={"description": "new words"}),
    Op("list opt-outs", "get", "/api/v1/sources/{sa}/opt-out-signals/",
       {**SIGNED_IN, "holder_b": 404}),
    Op("record an opt-out", "post", "/api/v1/sources/{sa}/opt-out-signals/",
       {"admin": 201, "curator": 201, "holder_a": 201, "holder_b": 404},
       body={"kind": "ai_txt", "value": "User-agent: *\nDisallow: /"}),
    Op("read a source's descendants", "get", "/api/v1/sources/{sa}/descendants/",
       {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200, "holder_a": 403},
       other=403),
    Op("read a source's verdicts", "get", "/api/v1/sources/{sa}/verdicts/",
       {**SIGNED_IN, "holder_b": 404}),
    Op("add a licence signal", "post", "/api/v1/sources/{sa}/license-signals/",
       {"admin": 201, "curator": 201},
       body={"origin": "terms", "expression": "CC-BY-NC-4.0"}),
    # documents
    Op("list documents", "get", "/api/v1/documents/", SIGNED_IN),
    Op("read a document", "get", "/api/v1/documents/{da}/", {**SIGNED_IN, "holder_b": 404}),
    Op("tombstone a document", "post", "/api/v1/documents/{da}/tombstone/",
       {"admin": 200, "curator": 200}, body={"reason": "takedown 7"}),
    # datasets and versions
    Op("list datasets", "get", "/api/v1/datasets/", {r: 200 for r in ROLES}),
    Op("create a dataset", "post", "/api/v1/datasets/",
       {"admin": 201, "curator": 201, "researcher": 201}, body={"slug": "new", "title": "New"}),
    Op("list versions", "get", "/api/v1/versions/", {r: 200 for r in ROLES}),
    Op("read a published version", "get", "/api/v1/versions/{pub}/", {r: 200 for r in ROLES}),
    Op("read a draft", "get", "/api/v1/versions/{draft}/",
       {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200}, other=404),
    Op("publish a draft", "post", "/api/v1/versions/{draft}/publish/",
       {"admin": 200, "curator": 200, "researcher": 200}),
    Op("discard a draft", "delete", "/api/v1/versions/{draft}/",
       {"admin": 204, "curator": 204, "researcher": 204}),
    Op("download a manifest", "get", "/api/v1/versions/{pub}/manifest/", {r: 200 for r in ROLES}),
    Op("download a version's records", "get", "/api/v1/versions/{pub}/records/",
       {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200}),
    Op("diff versions", "get", "/api/v1/versions/{pub}/diff/?against={pub}",
       {r: 200 for r in ROLES}),
    Op("list exclusions", "get", "/api/v1/versions/{pub}/exclusions/",
       {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200}),
    # jobs
    Op("list ingest jobs", "get", "/api/v1/ingest-jobs/",
       {"admin": 200, "curator": 200, "auditor": 200, "holder_a": 200, "holder_b": 200}),
    Op("read an ingest job", "get", "/api/v1/ingest-jobs/{job_a}/",
       {"admin": 200, "curator": 200, "auditor": 200, "holder_a": 200, "holder_b": 404}),
    Op("start an ingest", "post", "/api/v1/ingest-jobs/",
       {"admin": 202, "curator": 202, "holder_a": 202, "holder_b": 400}, body=upload,
       multipart=True),
    Op("list curation jobs", "get", "/api/v1/curation-jobs/", SIGNED_IN),
    Op("start a curation", "post", "/api/v1/curation-jobs/",
       {"admin": 202, "curator": 202, "researcher": 202},
       body=lambda w: {"dataset": w["dataset"], "recipe": {"intended_use": "academic"}}),
    Op("register a canary", "post", "/api/v1/sources/{sa}/canary/",
       {"admin": 201, "curator": 201, "holder_a": 201, "holder_b": 404},
       body={"spec": {"copies": 4}}),
    # models
    Op("list training runs", "get", "/api/v1/training-runs/",
       {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200}),
    Op("start a training run", "post", "/api/v1/training-runs/",
       {"admin": 202, "curator": 202, "researcher": 202},
       body=lambda w: {"version": w["pub"], "config": {"epochs": 1}}),
    Op("list checkpoints", "get", "/api/v1/checkpoints/",
       {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200}),
    Op("list outputs", "get", "/api/v1/outputs/",
       {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200}),
    Op("list canary tests", "get", "/api/v1/canary-tests/",
       {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200}),
    # ledger
    Op("read the ledger", "get", "/api/v1/ledger/", {"admin": 200, "curator": 200,
                                                      "auditor": 200}),
    Op("verify the ledger", "get", "/api/v1/ledger/verify/", {"admin": 200, "curator": 200,
                                                               "auditor": 200}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_role_matrix(op: Op, role: str, world, client_as, django_capture_on_commit_callbacks):
    client = client_as(role)
    path = op.path.format(**world)
    body = op.body(world) if callable(op.body) else op.body
    kwargs = {"format": "multipart" if op.multipart else "json"} if body is not None else {}
    with django_capture_on_commit_callbacks(execute=False):  # no tasks: this is about access
        response = getattr(client, op.method)(path, body, **kwargs) if body is not None else \
            getattr(client, op.method)(path)
    expected = op.expect.get(role, op.other)
    assert response.status_code == expected, (role, op.name, getattr(response, "data", None))


def _ids(response) -> set[int]:
    return {row["id"] for row in response.json()["results"]}


def test_rights_holders_see_only_their_own_rows(world, client_as):
    a = client_as("holder_a")
    assert _ids(a.get("/api/v1/sources/")) == {world["sa"]}
    assert _ids(a.get("/api/v1/rights-holders/")) == {world["ha"]}
    assert world["db"] not in _ids(a.get("/api/v1/documents/"))
    assert world["da"] in _ids(a.get("/api/v1/documents/"))
    assert _ids(a.get(f"/api/v1/documents/?source={world['sb']}")) == set()
    b_jobs = _ids(client_as("holder_b").get("/api/v1/ingest-jobs/"))
    assert len(b_jobs) == 1 and world["job_a"] not in b_jobs


def test_anonymous_visitors_see_only_published_versions(world, client_as):
    anon = client_as("anonymous")
    assert _ids(anon.get("/api/v1/versions/")) == {world["pub"]}
    assert _ids(client_as("researcher").get("/api/v1/versions/")) == {world["pub"],
                                                                       world["draft"]}


def test_a_rights_holder_cannot_register_a_source_for_another_holder(world, client_as):
    response = client_as("holder_a").post(
        "/api/v1/sources/", {"owner": world["hb"], "name": "x", "license_expression": "MIT"},
        format="json")
    assert response.status_code == 400  # as if that holder did not exist
    assert response.json()["owner"] == [f'Invalid pk "{world["hb"]}" - object does not exist.']


def test_a_rights_holder_cannot_ingest_into_another_holders_source(world, client_as):
    response = client_as("holder_b").post("/api/v1/ingest-jobs/", upload(world),
                                          format="multipart")
    assert response.status_code == 400  # as if that source did not exist
    assert response.json()["source"] == [f'Invalid pk "{world["sa"]}" - object does not exist.']
