"""Shared fixtures. Tests run against the real services `make test` starts (embedded PostgreSQL +
pgvector and Redis unless DATABASE_URL / CELERY_BROKER_URL point elsewhere)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.db import transaction
from django.db.backends.postgresql.operations import DatabaseOperations
from django.test import Client
from rest_framework.test import APIClient

from provenance.models import DatasetVersion, DataSource, RightsHolder, User
from provenance.services import curation, datasets, sources
from provenance.services.ingest import ingest_path
from tests.factories import DatasetFactory, RightsHolderFactory, UserFactory

# The fixtures more than one test module uses live in tests/fixtures/; importing them here shares
# them with every test (a test module that defines one of the same name uses its own).
from tests.fixtures.cards import published  # noqa: E402,F401
from tests.fixtures.rag import rag  # noqa: E402,F401
from tests.fixtures.remediation import trained  # noqa: E402,F401
from tests.fixtures.scoping import corpus  # noqa: E402,F401
from tests.fixtures.storage import s3_server, s3_store  # noqa: E402,F401
from tests.fixtures.workers import worker  # noqa: E402,F401
from tests.fixtures.worlds import provenance_world, world  # noqa: E402,F401

Role = User.Role
_flush = DatabaseOperations.execute_sql_flush


def _flush_past_the_guards(self: DatabaseOperations, sql_list: list[str]) -> None:
    """Between transactional tests Django empties every table with one TRUNCATE, which the
    evidence tables refuse (migration 0011). The tests connect as the superuser, which may set
    session_replication_role = replica for that one transaction; the application's role may not
    (tests/provenance/test_database_guards.py)."""
    with transaction.atomic(using=self.connection.alias):
        with self.connection.cursor() as cursor:
            cursor.execute("SET LOCAL session_replication_role = replica")
        _flush(self, sql_list)


DatabaseOperations.execute_sql_flush = _flush_past_the_guards  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _ledger_witness_in_tmp(settings, tmp_path: Path) -> None:
    # Each test has a ledger of its own, so a witness of its own.
    settings.TRAILMARK = {**settings.TRAILMARK, "LEDGER_WITNESS_FILE": tmp_path / "witness"}


@pytest.fixture(autouse=True)
def _artifacts_in_tmp(settings, tmp_path: Path) -> None:
    settings.ARTIFACT_DIR = tmp_path / "artifacts"


@pytest.fixture(autouse=True)
def _no_progress_connection_left_open() -> Iterator[None]:
    # A job run inside a test's transaction writes its progress on a connection of its own; it
    # must not outlive the test (it would hold the test database open).
    yield
    from core.jobs import job_progress_close

    job_progress_close()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


@pytest.fixture(autouse=True)
def _mail_tasks_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mail cannot be delivered here: the mail tasks run in the test's process (Celery's eager
    apply, retries included) into Django's locmem outbox, instead of on a worker."""
    from core.tasks import send_mail_task
    from takedowns.tasks import takedown_notify_task

    for task in (send_mail_task, takedown_notify_task):
        monkeypatch.setattr(task, "delay", lambda *args, task=task: task.apply(args))


@pytest.fixture
def holder_a(db) -> RightsHolder:
    return RightsHolderFactory(name="Holder A")


@pytest.fixture
def holder_b(db) -> RightsHolder:
    return RightsHolderFactory(name="Holder B")


@pytest.fixture
def users(db, holder_a: RightsHolder, holder_b: RightsHolder) -> dict[str, User]:
    return make_users(holder_a, holder_b)


def make_users(holder_a: RightsHolder, holder_b: RightsHolder) -> dict[str, User]:
    """One user of each role, and a rights-holder user for each of the two holders."""
    return {
        "admin": UserFactory(username="admin", role=Role.ADMIN, is_staff=True,
                             is_superuser=True),  # as `make run` creates it
        "curator": UserFactory(username="curator", role=Role.CURATOR),
        "holder_a": UserFactory(username="holder_a", role=Role.RIGHTS_HOLDER,
                                rights_holder=holder_a),
        "holder_b": UserFactory(username="holder_b", role=Role.RIGHTS_HOLDER,
                                rights_holder=holder_b),
        "auditor": UserFactory(username="auditor", role=Role.AUDITOR),
        "researcher": UserFactory(username="researcher", role=Role.RESEARCHER),
    }


@pytest.fixture
def client_as(users: dict[str, User]) -> Callable[[str], APIClient]:
    def make(name: str) -> APIClient:
        client = APIClient()
        if name != "anonymous":
            client.force_authenticate(users[name])
        return client

    return make


@pytest.fixture
def pages_as(users: dict[str, User]) -> Callable[[str], Client]:
    """A browser-like client for the HTML pages, signed in with a session (forms and CSRF as a
    browser meets them), or anonymous."""
    def make(name: str) -> Client:
        client = Client()
        if name != "anonymous":
            client.force_login(users[name])
        return client

    return make


@pytest.fixture
def make_source(db) -> Callable[..., DataSource]:
    counter = iter(range(10_000))

    def make(owner: RightsHolder | None = None, license_expression: str = "CC-BY-4.0",
             name: str | None = None, **fields: Any) -> DataSource:
        owner = owner or RightsHolderFactory()
        return sources.source_create(actor=None, owner=owner, license_expression=license_expression,
                                     name=name or f"source-{next(counter)}", **fields)

    return make


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    def write(rows: list[Any], name: str = "data.jsonl") -> Path:
        path = tmp_path / name
        with path.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write((row if isinstance(row, str) else json.dumps(row)) + "\n")
        return path

    return write


@pytest.fixture
def ingest_texts(write_jsonl: Callable[..., Path]) -> Callable[..., Any]:
    """Ingest a list of texts into a source, in this process; returns the finished job."""
    counter = iter(range(10_000))

    def run(source: DataSource, texts: list[str]):  # type: ignore[no-untyped-def]
        path = write_jsonl([{"text": t} for t in texts], name=f"texts-{next(counter)}.jsonl")
        return ingest_path(source=source, path=path, actor=None)

    return run



@pytest.fixture
def publish_version(db) -> Callable[..., DatasetVersion]:
    """Curate every source into a new version of a (new) dataset and publish it."""

    def publish(slug: str | None = None, intended_use: str = "commercial",
                **recipe: Any) -> DatasetVersion:
        recipe = datasets.recipe_validate({"intended_use": intended_use, **recipe})
        dataset = DatasetFactory(**({"slug": slug} if slug else {}))
        draft = curation.version_create_from_plan(dataset=dataset, recipe=recipe,
                                                  plan=curation.curation_plan(recipe), actor=None)
        return datasets.dataset_version_publish(version=draft, actor=None)

    return publish
