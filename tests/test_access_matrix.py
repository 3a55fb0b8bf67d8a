"""The whole access matrix: every OpenAPI operation and every URL in the URLconf, for each of the
seven principals. The per-app matrices (provenance, takedowns) hold most operations; this module
holds the model, attribution and remaining ones, the HTML pages, and two completeness checks that
fail when an endpoint is added without a row here.

What the rows encode: no cross-holder reads or writes (another holder's object answers 404),
no anonymous writes, auditors read and start attribution runs but change nothing, rights-holders
see no models.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from takedowns.services.requests import takedown_file

# One world for the whole module, rolled back after it (tests/fixtures/shared_world.py).
from tests.fixtures.shared_world import (  # noqa: F401
    artifacts_in_shared_folder,
    holder_a,
    holder_b,
    provenance_world,
    shared_objects,
    shared_state,
    users,
    world,
)
from tests.helpers import NOTICE
from tests.provenance import test_api_permissions as provenance_matrix
from tests.provenance.test_api_permissions import ROLES, Op
from tests.takedowns import test_takedown_permissions as takedown_matrix

pytestmark = pytest.mark.django_db
MODELS_READ = {"admin": 200, "curator": 200, "auditor": 200, "researcher": 200}
SIGNED_IN = {r: 200 for r in ROLES if r != "anonymous"}
EVERYONE = {r: 200 for r in ROLES}
DRAFT_READ = MODELS_READ
CARD_WRITE = {"admin": 200, "curator": 200, "researcher": 200}


OPS = [
    # training runs and checkpoints
    Op("read a training run", "get", "/api/v1/training-runs/{run}/", MODELS_READ),
    Op("plan a training run", "get", "/api/v1/training-runs/plans/?version={pub}", MODELS_READ),
    Op("cancel a training run", "post", "/api/v1/training-runs/{run}/cancel/",
       {"admin": 200, "curator": 200, "researcher": 200}, body={}),
    Op("read a checkpoint", "get", "/api/v1/checkpoints/{ck}/", MODELS_READ),
    Op("register a local checkpoint", "post", "/api/v1/checkpoints/",
       {"admin": 400, "curator": 400},  # allowed; the path is outside TRAILMARK_IMPORT_DIRS
       body=lambda w: {"path": "/etc", "version": w["pub"], "name": "mine"}),
    Op("start a canary test", "post", "/api/v1/canary-tests/",
       {"admin": 202, "curator": 202, "researcher": 202}, body=lambda w: {"checkpoint": w["ck"]}),
    Op("read a canary test", "get", "/api/v1/canary-tests/{canary}/", MODELS_READ),
    Op("read a source's canary", "get", "/api/v1/sources/{sa}/canary/",
       {**SIGNED_IN, "holder_b": 404}),
    Op("list a source's licence signals", "get", "/api/v1/sources/{sa}/license-signals/",
       {**SIGNED_IN, "holder_b": 404}),
    Op("detect watermarks", "post", "/api/v1/watermarks/detect/", SIGNED_IN,
       body={"text": "a text to look for watermarks in"}),
    # outputs and attribution
    Op("generate an output", "post", "/api/v1/outputs/",
       {"admin": 202, "curator": 202, "researcher": 202},
       body=lambda w: {"checkpoint": w["ck"], "prompt": "Once"}),
    Op("read an output", "get", "/api/v1/outputs/{out}/", MODELS_READ),
    Op("list gradient indexes", "get", "/api/v1/gradient-indexes/", MODELS_READ),
    Op("read a gradient index", "get", "/api/v1/gradient-indexes/{gidx}/", MODELS_READ),
    Op("build a gradient index", "post", "/api/v1/gradient-indexes/",
       {"admin": 202, "curator": 202}, body=lambda w: {"checkpoint": w["ck"]}),
    Op("rebuild a gradient index", "post", "/api/v1/gradient-indexes/{gidx}/rebuild/",
       {"admin": 202, "curator": 202}, body={}),
    Op("list attribution runs", "get", "/api/v1/attribution-runs/", MODELS_READ),
    Op("start an attribution run", "post", "/api/v1/attribution-runs/",
       {**MODELS_READ, "admin": 202, "curator": 202, "auditor": 202, "researcher": 202},
       body=lambda w: {"output": w["out"]}),
    Op("read an attribution run", "get", "/api/v1/attribution-runs/{arun}/", MODELS_READ),
    Op("read a report", "get", "/api/v1/attribution-runs/{arun}/report/", MODELS_READ),
    Op("download a report as PDF", "get", "/api/v1/attribution-runs/{arun}/report-pdf/",
       MODELS_READ),
    # datastores: built by those who build datasets, read and searched by those who read all
    Op("list datastores", "get", "/api/v1/datastores/", MODELS_READ),
    Op("read a datastore", "get", "/api/v1/datastores/{store}/", MODELS_READ),
    Op("build a datastore", "post", "/api/v1/datastores/",
       {"admin": 202, "curator": 202, "researcher": 202},
       body=lambda w: {"name": "another store", "version": w["pub"]}),
    Op("search a datastore", "post", "/api/v1/datastores/{store}/search/", MODELS_READ,
       body={"query": "text of a"}),
    # answers: asked by those who generate, read (passages of every holder) by those who read
    # all; the shares export by everyone signed in, a rights-holder's rows its own
    Op("list answers", "get", "/api/v1/rag/answers/", MODELS_READ),
    Op("read an answer", "get", "/api/v1/rag/answers/{answer}/", MODELS_READ),
    Op("ask a question", "post", "/api/v1/rag/answers/",
       {"admin": 202, "curator": 202, "researcher": 202},
       body=lambda w: {"datastore": w["store"], "checkpoint": w["ck"], "question": "why?"}),
    Op("export answer shares per period", "get", "/api/v1/rag/shares/?period=month", SIGNED_IN),
    # synthesis: asked by those who generate, read by those who read all
    Op("list synthesis jobs", "get", "/api/v1/synthesis-jobs/", MODELS_READ),
    Op("read a synthesis job", "get", "/api/v1/synthesis-jobs/{synth}/", MODELS_READ),
    Op("start a synthesis job", "post", "/api/v1/synthesis-jobs/",
       {"admin": 202, "curator": 202, "researcher": 202},
       body=lambda w: {"checkpoint": w["ck"], "owner": w["ha"], "name": "synthetic",
                       "license_expression": "CC0-1.0", "template": "Once", "count": 2}),
    # recipe benchmarks: set up and run by those who train, read by those who read all
    Op("list benchmarks", "get", "/api/v1/benchmarks/", MODELS_READ),
    Op("read a benchmark", "get", "/api/v1/benchmarks/{bench}/", MODELS_READ),
    Op("create a benchmark", "post", "/api/v1/benchmarks/",
       {"admin": 201, "curator": 201, "researcher": 201},
       body=lambda w: {"name": "another bench", "evaluation": w["pub"], "token_budget": 4096}),
    Op("enter a version", "post", "/api/v1/benchmarks/{bench}/entries/",
       {"admin": 400, "curator": 400, "researcher": 400},  # allowed; it is the evaluation
       body=lambda w: {"version": w["pub"], "label": "mine"}),
    Op("run a benchmark", "post", "/api/v1/benchmarks/{bench}/runs/",
       {"admin": 400, "curator": 400, "researcher": 400}, body={}),  # allowed; no entries
    Op("list benchmark runs", "get", "/api/v1/benchmark-runs/", MODELS_READ),
    Op("read a benchmark run", "get", "/api/v1/benchmark-runs/{brun}/", MODELS_READ),
    Op("cancel a benchmark run", "post", "/api/v1/benchmark-runs/{brun}/cancel/",
       {"admin": 409, "curator": 409, "researcher": 409}, body={}),  # allowed; it has ended
    # dataset cards: a draft is for staff, auditors and researchers; writers edit and publish
    Op("read a version's card", "get", "/api/v1/versions/{pub}/card/", DRAFT_READ, other=404),
    Op("edit a card", "patch", "/api/v1/versions/{pub}/card/", CARD_WRITE,
       body={"words": {"uses": "Research."}}),
    Op("publish a card", "post", "/api/v1/versions/{pub}/card/publish/", CARD_WRITE, body={}),
    # the world's card is a draft: writers are told to edit it instead (409)
    Op("revise a card", "post", "/api/v1/versions/{pub}/card/revise/",
       {"admin": 409, "curator": 409, "researcher": 409}, body={"reason": "a correction"}),
    Op("download a card", "get", "/api/v1/versions/{pub}/card/{fmt}/", DRAFT_READ, other=404),
    Op("read a model card", "get", "/api/v1/checkpoints/{ck}/card/", EVERYONE),
    # data, jobs and tokens
    Op("read a dataset", "get", "/api/v1/datasets/{dataset}/", EVERYONE),
    Op("read a curation job", "get", "/api/v1/curation-jobs/{curation}/",
       {**SIGNED_IN, "holder_a": 404, "holder_b": 404}),
    Op("retry an ingest", "post", "/api/v1/ingest-jobs/{job_a}/retry/",
       {"admin": 409, "curator": 409, "holder_a": 409, "holder_b": 404}, body={}),
    Op("get an API token", "post", "/api/v1/auth/token/", {r: 400 for r in ROLES},
       body={"username": "admin", "password": "wrong"}),
    # the matrix signs in without a token: there is no "this token" to revoke
    Op("revoke this API token", "post", "/api/v1/auth/logout/",
       {r: 400 for r in ROLES if r != "anonymous"}, body={}),
    Op("revoke all of one's API tokens", "post", "/api/v1/auth/logout-all/",
       {r: 204 for r in ROLES if r != "anonymous"}, body={}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("op", OPS, ids=lambda op: op.name)
def test_model_attribution_and_remaining_operations_role_matrix(
        op: Op, role: str, world, client_as, django_capture_on_commit_callbacks):
    client = client_as(role)
    body = op.body(world) if callable(op.body) else op.body
    with django_capture_on_commit_callbacks(execute=False):
        response = getattr(client, op.method)(op.path.format(**world), body, format="json") \
            if body is not None else getattr(client, op.method)(op.path.format(**world))
    assert response.status_code == op.expect.get(role, op.other), (
        role, op.name, response.content[:300])


@dataclass
class Page:
    name: str
    path: str
    expect: dict[str, int]
    other: int = 302  # to the sign-in page
    login: str = "/accounts/login/"


STAFF_PAGE = {"admin": 200, "curator": 200, "anonymous": 302}
AUDIT_PAGE = {"admin": 200, "curator": 200, "auditor": 200, "anonymous": 302}
HIDDEN = {"anonymous": 302}  # models are not public: sign in, then 404 unless your role reads them
PAGES = [
    Page("home", "/", EVERYONE),
    Page("health", "/health/", EVERYONE),
    Page("transparency", "/transparency/", EVERYONE),
    Page("a published version", "/datasets/{slug}/v{number}/", EVERYONE),
    Page("sign in", "/accounts/login/", {"anonymous": 200}),  # the signed-in are sent home
    Page("sign out (a form posts here)", "/accounts/logout/", {r: 405 for r in ROLES}),
    # an invitation link: a wrong token answers 200 with "not valid any more", for anyone
    Page("an invitation", "/accounts/invitation/{uid}/{token}/", EVERYONE),
    Page("training runs", "/runs/", SIGNED_IN),
    Page("a training run", "/runs/{run}/", {**MODELS_READ, **HIDDEN}, other=404),
    Page("a checkpoint", "/checkpoints/{ck}/", {**MODELS_READ, **HIDDEN}, other=404),
    Page("watermark check", "/watermarks/", SIGNED_IN),
    Page("a source", "/sources/{sa}/", {**SIGNED_IN, "holder_b": 404}),
    Page("datastores", "/datastores/", {**MODELS_READ, **HIDDEN}, other=403),
    Page("a datastore searched", "/datastores/{store}/?q=text", {**MODELS_READ, **HIDDEN},
         other=403),
    Page("synthetic data", "/synthesis/", {**MODELS_READ, **HIDDEN}, other=403),
    Page("a synthesis job", "/synthesis/{synth}/", {**MODELS_READ, **HIDDEN}, other=403),
    Page("benchmarks", "/benchmarks/", {**MODELS_READ, **HIDDEN}, other=403),
    Page("a benchmark's leaderboard", "/benchmarks/{bench}/", {**MODELS_READ, **HIDDEN},
         other=403),
    Page("a benchmark run", "/benchmarks/runs/{brun}/", {**MODELS_READ, **HIDDEN}, other=403),
    Page("answers", "/answers/", {**MODELS_READ, **HIDDEN}, other=403),
    Page("an answer", "/answers/{answer}/", {**MODELS_READ, **HIDDEN}, other=403),
    Page("answer shares per period", "/answers/shares/?period=week", {**SIGNED_IN, **HIDDEN}),
    Page("the same as CSV", "/answers/shares.csv?period=week", {**SIGNED_IN, **HIDDEN}),
    Page("an output", "/outputs/{out}/", {**MODELS_READ, **HIDDEN}, other=404),
    Page("an attribution run", "/attribution/{arun}/", {**MODELS_READ, **HIDDEN}, other=404),
    Page("takedowns", "/takedowns/", SIGNED_IN),
    Page("file a takedown", "/takedowns/new/",
         {"admin": 200, "curator": 200, "holder_a": 200, "holder_b": 200, "auditor": 403,
          "researcher": 403}),
    Page("a takedown", "/takedowns/{td}/",
         {"admin": 200, "curator": 200, "auditor": 200, "holder_a": 200, "holder_b": 404,
          "researcher": 404}),
    Page("a takedown's receipt", "/takedowns/{td}/receipt.json",
         {"admin": 200, "curator": 200, "auditor": 200, "holder_a": 200, "holder_b": 404,
          "researcher": 404}),
    Page("a model card", "/models/{ck}/", EVERYONE),
    Page("a model's training-content summary", "/models/{ck}/ai-act/", EVERYONE),
    Page("the same as PDF", "/models/{ck}/ai-act.pdf", EVERYONE),
    Page("operations (staff)", "/staff/", STAFF_PAGE, other=403),
    Page("its live jobs section", "/staff/?part=jobs", STAFF_PAGE, other=403),
    Page("audit", "/audit/", AUDIT_PAGE, other=403),
    Page("an audit export", "/audit/export/{export}.{ext}", AUDIT_PAGE, other=403),
    Page("the admin site", "/admin/", {"admin": 200}, login="/admin/login/"),
    Page("the admin site's sign-in (rate-limited)", "/admin/login/", {"admin": 302}, other=200,
         login="/admin/"),  # a signed-in superuser is sent on to the site
    Page("the OpenAPI schema", "/api/schema/", EVERYONE),
    Page("the API docs", "/api/docs/", EVERYONE),
    Page("the API root", "/api/v1/", {**SIGNED_IN, "anonymous": 403}),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_role_matrix(page: Page, role: str, world, users):
    client = Client()
    if role != "anonymous":
        client.force_login(users[role])
    response = client.get(page.path.format(**world))
    expected = page.expect.get(role, page.other)
    assert response.status_code == expected, (role, page.name, response.content[:200])
    if expected == 302:
        where = "/" if page.path == "/accounts/login/" else page.login
        assert response["Location"].split("?")[0] == where, response["Location"]


def test_a_holders_takedown_list_page_links_only_its_own_requests(world, users):
    theirs = takedown_file(actor=users["holder_b"], data=NOTICE)
    for role, expected in (("holder_a", {world["td"]}), ("holder_b", {theirs.pk}),
                           ("curator", {world["td"], theirs.pk})):
        client = Client()
        client.force_login(users[role])
        page = client.get("/takedowns/").content.decode()
        assert {int(m) for m in re.findall(r'href="/takedowns/(\d+)/"', page)} == expected


def _template(path: str) -> str:
    """/api/v1/sources/{sa}/canary/?x=1 and /api/v1/sources/{id}/canary/ both become
    /api/v1/sources/{}/canary/."""
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0])


def _all_ops() -> list[Op]:
    return provenance_matrix.OPS + takedown_matrix.OPS + OPS


def test_every_openapi_operation_has_a_row_in_a_matrix():
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    in_schema = {(method.upper(), _template(path)) for path, item in schema["paths"].items()
                 for method in item}
    in_matrix = {(op.method.upper(), _template(op.path)) for op in _all_ops()}
    assert len(in_schema) >= 80
    assert in_schema - in_matrix == set(), "operations with no row"
    assert in_matrix - in_schema == set(), "rows for operations that do not exist"


def _url_templates(patterns, prefix: str = "") -> set[str]:
    found: set[str] = set()
    for p in patterns:
        route = prefix + str(p.pattern)
        if isinstance(p, URLResolver):
            if route == "admin/":
                found.add("/admin/")  # Django's own site: staff only, covered as one page
                continue
            found |= _url_templates(p.url_patterns, route)
        elif isinstance(p, URLPattern):
            found.add(route)
    return found


def _normalise(route: str) -> str | None:
    """A URLconf route (path or router regex) as a path template; None for the routers' format
    suffix variants (`.json`), which serve the same view as the path without one."""
    if "format" in route:
        return None
    route = route.replace("^", "").replace("$", "")
    route = re.sub(r"<[^>]+>|\(\?P<[^>]+>[^)]*\)", "{}", route)
    return "/" + route.replace("\\.", ".") if not route.startswith("/") else route


def test_every_url_in_the_urlconf_is_covered_by_a_matrix():
    routes = {_normalise(r) for r in _url_templates(get_resolver().url_patterns)} - {None}
    covered = {_template(op.path) for op in _all_ops()} | {_template(p.path) for p in PAGES}
    assert len(routes) > 60
    assert routes - covered == set(), "URLs with no row in any matrix"
