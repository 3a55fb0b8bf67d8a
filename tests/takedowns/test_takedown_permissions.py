"""Takedown and transparency-log endpoints × every role: claimants see and act on their own
requests only (another holder's request does not exist for them), only staff move a request
along, auditors read and never write, anonymous visitors read the public log and nothing else."""

from __future__ import annotations

import pytest

from takedowns.services.requests import takedown_file
from tests.helpers import NOTICE
from tests.provenance.test_api_permissions import ROLES, Op

pytestmark = pytest.mark.django_db
STAFF_READ = {"admin": 200, "curator": 200, "auditor": 200}
OWN_READ = {**STAFF_READ, "holder_a": 200, "holder_b": 404, "researcher": 404}
STAFF_ONLY = {"admin": 409, "curator": 409}  # allowed, refused by the workflow's state
EVERYONE = {role: 200 for role in ROLES}


@pytest.fixture
def world(users):
    mine = takedown_file(actor=users["holder_a"], data=NOTICE)
    theirs = takedown_file(actor=users["holder_b"], data=NOTICE)
    return {"td": mine.pk, "other": theirs.pk}


OPS = [
    Op("list takedowns", "get", "/api/v1/takedowns/", {r: 200 for r in ROLES[:-1]}),
    Op("read a takedown", "get", "/api/v1/takedowns/{td}/", OWN_READ),
    Op("file a takedown", "post", "/api/v1/takedowns/",
       {"admin": 201, "curator": 201, "holder_a": 201, "holder_b": 201}, body=NOTICE),
    Op("supplement", "post", "/api/v1/takedowns/{td}/supplement/",
       {"admin": 409, "curator": 409, "holder_a": 409, "holder_b": 404},
       body={"telephone": "1"}),
    Op("withdraw", "post", "/api/v1/takedowns/{td}/withdraw/",
       {"admin": 200, "curator": 200, "holder_a": 200, "holder_b": 404}, body={}),
    Op("decide", "post", "/api/v1/takedowns/{td}/decide/", {"admin": 200, "curator": 200},
       body={"to": "accepted"}),
    Op("start scoping", "post", "/api/v1/takedowns/{td}/scope/", STAFF_ONLY, body={}),
    Op("list matches", "get", "/api/v1/takedowns/{td}/matches/", OWN_READ),
    Op("review the scope", "post", "/api/v1/takedowns/{td}/review-scope/", STAFF_ONLY,
       body={"confirm": [], "dismiss": []}),
    Op("add documents to the scope", "post", "/api/v1/takedowns/{td}/add-to-scope/", STAFF_ONLY,
       body={"documents": [1], "reason": "a quotation inside a longer text"}),
    Op("search the corpus to add to a scope", "get",
       "/api/v1/takedowns/{td}/scope-search/?q=quiet+harbour", {"admin": 200, "curator": 200}),
    Op("remediate the data", "post", "/api/v1/takedowns/{td}/remediate-data/", STAFF_ONLY,
       body={}),
    Op("remediate the models", "post", "/api/v1/takedowns/{td}/remediate-models/", STAFF_ONLY,
       body={"methods": ["retrain"]}),
    Op("list remediation runs", "get", "/api/v1/takedowns/{td}/runs/", OWN_READ),
    Op("cancel a run", "post", "/api/v1/takedowns/{td}/cancel-run/",
       {"admin": 404, "curator": 404}, body={"run": 999_999}),
    Op("verify again", "post", "/api/v1/takedowns/{td}/verify/", STAFF_ONLY, body={}),
    Op("download the receipt", "get", "/api/v1/takedowns/{td}/receipt/", OWN_READ),
    Op("record a counter notice", "post", "/api/v1/takedowns/{td}/counter-notice/", STAFF_ONLY,
       body={"claimant_name": "Bo", "address": "1 Road", "telephone": "1", "email": "b@b.example",
             "material": "the essay", "location": "https://a.example/tide",
             "statements": {"good_faith_mistake": True, "consent_to_jurisdiction": True},
             "signature": "Bo"}),
    Op("restore", "post", "/api/v1/takedowns/{td}/restore/", STAFF_ONLY, body={}),
    Op("read the log's checkpoint", "get", "/api/v1/log/checkpoint/", EVERYONE),
    Op("prove an inclusion", "get", "/api/v1/log/inclusion/?seq=1", EVERYONE),
    Op("prove consistency", "get", "/api/v1/log/consistency/?first=1", EVERYONE),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_takedown_and_log_role_matrix(op: Op, role: str, world, client_as,
                                      django_capture_on_commit_callbacks):
    path = op.path.format(**world)
    client = client_as(role)
    with django_capture_on_commit_callbacks(execute=False):
        response = getattr(client, op.method)(path, op.body, format="json") \
            if op.body is not None else getattr(client, op.method)(path)
    assert response.status_code == op.expect.get(role, op.other), (role, op.name,
                                                                     response.content[:300])


def test_each_holder_lists_only_its_own_requests(world, client_as):
    def ids(role: str) -> set[int]:
        return {r["id"] for r in client_as(role).get("/api/v1/takedowns/").json()["results"]}

    assert ids("holder_a") == {world["td"]} and ids("holder_b") == {world["other"]}
    assert ids("auditor") == ids("curator") == {world["td"], world["other"]}
    assert ids("researcher") == set()


def test_the_takedown_list_reads_in_a_fixed_number_of_queries(users, client_as):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from takedowns.services.requests import takedown_decide

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client_as("curator").get("/api/v1/takedowns/").status_code == 200
        return len(captured)

    def more(n: int) -> None:
        for _ in range(n):
            request = takedown_file(actor=users["holder_a"], data=NOTICE)
            takedown_decide(request=request, actor=users["curator"], to="accepted")

    more(2)
    few = queries()
    more(6)
    assert queries() == few  # no query per request, work, event or actor
