"""Schemathesis against the live OpenAPI schema: generated requests for every operation, as an
admin (who may call all of them), a rights-holder and an anonymous client, over the WSGI app,
on a world where the ids in paths name real objects half the time. No answer may be a 5xx, and
every answer must conform to the schema: its status code documented, its body valid against
the documented shape.

Two of Schemathesis's phases run. Fuzzing (8 generated requests per operation) runs for every
principal. The coverage phase (every boundary of every constraint in the schema: empty, longest,
wrong type, missing, one past the limit; hundreds of requests for a large body) runs as the admin,
the one principal whose requests reach every operation's validation; a rights-holder's and an
anonymous client's are refused before it, so there it would repeat the refusal."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from knox.models import AuthToken

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

pytestmark = pytest.mark.django_db
ANSWERS: Counter[int] = Counter()
EXISTING: list[int] = []  # ids of the world's objects, filled per test by a fixture
# What is asserted of every answer. Left out: who may call what (the access matrix's job,
# tests/test_access_matrix.py, every operation × 7 principals, not a fuzzer swapping credentials
# behind the token it was handed); and how strictly inputs are read (DRF reads "0" as a string and
# a filter ignores a value it cannot use, as documented), which is not the schema's promise.
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance,
          schemathesis.checks.response_headers_conformance,
          schemathesis.checks.response_schema_conformance]


@pytest.fixture(autouse=True)
def _existing_ids(world):  # noqa: F811
    EXISTING[:] = sorted({v for v in world.values() if isinstance(v, int)})


@pytest.fixture(autouse=True)
def _keep_the_test_connection():
    # A WSGI call closes the database connection when its request ends; the test's transaction
    # lives on that connection, so (as Django's own test client does) keep it open.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def _live_schema(*, coverage: bool) -> schemathesis.schemas.BaseSchema:
    """The schema /api/schema/ serves (the same generator), driving the WSGI app in-process."""
    from drf_spectacular.generators import SchemaGenerator
    from drf_spectacular.renderers import OpenApiJsonRenderer
    from schemathesis.config import SchemathesisConfig

    from config.wsgi import application

    raw = SchemaGenerator().get_schema(request=None, public=True)
    config = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": coverage}}})
    loaded = schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(raw)),
                                            config=config)
    loaded.app = application
    loaded.hook(flatmap_path_parameters)
    loaded.hook(after_call)
    return loaded


def after_call(context, case, response):
    ANSWERS[response.status_code] += 1


def flatmap_path_parameters(context, path_parameters):
    ids = [name for name in path_parameters or {} if name == "id" or name.endswith("_id")]
    if not ids or not EXISTING:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters[ids[0]], *EXISTING]).map(
        lambda id_: {**path_parameters, ids[0]: id_})


schema = _live_schema(coverage=True)
fuzz_only = _live_schema(coverage=False)


@pytest.fixture(scope="module", autouse=True)
def _tally():
    yield
    print(f"\nfuzzed {sum(ANSWERS.values())} requests; answers by status: "
          f"{dict(sorted(ANSWERS.items()))}")


def _call(case, principal: str, users, capture) -> None:
    headers = {}
    if principal != "anonymous":
        _, token = AuthToken.objects.create(user=users[principal])
        headers = {"Authorization": f"Token {token}"}
    with capture(execute=False):  # no worker tasks from the fuzzer
        case.call_and_validate(headers=headers, checks=CHECKS)


@schema.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_gets_a_server_error_or_an_answer_off_the_schema(
        case, users, django_capture_on_commit_callbacks):
    """As the admin, who reaches every operation's code: the coverage phase, then fuzzing."""
    _call(case, "admin", users, django_capture_on_commit_callbacks)


@pytest.mark.parametrize("principal", ["holder_a", "anonymous"])
@fuzz_only.parametrize()
@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_generated_request_from_a_holder_or_a_stranger_gets_a_server_error(
        case, principal, users, django_capture_on_commit_callbacks):
    """As a rights-holder and as nobody: the refusals and the scoped querysets, fuzzed."""
    _call(case, principal, users, django_capture_on_commit_callbacks)
