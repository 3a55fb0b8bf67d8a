"""A source's signals resolve into two verdicts, train and ai-input, each with what decided it."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.db import connection
from django.utils import timezone

from provenance.models import LedgerEntry, OptOutSignal
from provenance.services import curation, datasets, usage

pytestmark = pytest.mark.django_db

ROBOTS_NO_TRAIN = "User-agent: GPTBot\nDisallow: /\nUser-agent: CCBot\nDisallow: /\n"
SIGNALS_NO_INPUT = "User-agent: *\nContent-Signal: search=yes, ai-train=yes, ai-input=no\n"


@pytest.fixture
def admin(client_as):
    return client_as("admin")


@pytest.fixture
def news(make_source, holder_a):
    return make_source(owner=holder_a, name="news", uri="https://news.example/articles")


def record(source, kind, value, days_ago=0, **fields):
    return usage.opt_out_signal_record(source=source, actor=None, kind=kind, value=value,
                                       observed_at=timezone.now() - timedelta(days=days_ago),
                                       **fields)


def test_a_robots_txt_refusing_training_crawlers_is_a_train_no_with_its_words(admin, news):
    response = admin.post(f"/api/v1/sources/{news.pk}/opt-out-signals/",
                          {"kind": "robots_txt", "value": ROBOTS_NO_TRAIN,
                           "url": "https://news.example/robots.txt"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["train"], body["ai_input"], body["opted_out"]) == ("no", "unknown", True)
    assert body["reading"]["path"] == "/articles"
    verdicts = admin.get(f"/api/v1/sources/{news.pk}/verdicts/").json()
    assert verdicts["train"]["verdict"] == "no"
    decided = verdicts["train"]["decided_by"]
    assert decided["says"] == "User-agent: GPTBot / Disallow at /articles"
    assert (decided["vocabulary"], decided["url"]) == ("robots-agents",
                                                       "https://news.example/robots.txt")
    assert verdicts["ai_input"] == {"verdict": "unknown", "decided_by": None}


def test_the_latest_signal_of_a_kind_replaces_the_one_before_and_at_reads_the_past(
        admin, news):
    record(news, "robots_txt", ROBOTS_NO_TRAIN, days_ago=10)
    record(news, "robots_txt", "User-agent: *\nAllow: /\n", days_ago=2)  # the opt-out lifted
    assert usage.source_verdicts(news)["train"].pref == "unknown"
    past = (timezone.now() - timedelta(days=5)).isoformat()
    response = admin.get(f"/api/v1/sources/{news.pk}/verdicts/", {"at": past})
    assert response.json()["train"]["verdict"] == "no"
    # The same kind observed at another URL is another statement: both stand.
    record(news, "robots_txt", ROBOTS_NO_TRAIN, days_ago=1, url="https://mirror.example/robots.txt")
    assert usage.source_verdicts(news)["train"].pref == "no"


def test_kinds_combine_most_restrictively_and_each_use_on_its_own(news):
    record(news, "http_header", "Content-Usage: train-ai=y, ai-use=y", days_ago=3)
    verdicts = usage.source_verdicts(news)
    assert (verdicts["train"].pref, verdicts["ai_input"].pref) == ("yes", "yes")
    record(news, "robots_txt", SIGNALS_NO_INPUT, days_ago=1)
    verdicts = usage.source_verdicts(news)
    assert (verdicts["train"].pref, verdicts["ai_input"].pref) == ("yes", "no")
    assert verdicts["ai_input"].term.says == "Content-Signal: ai-input=no"
    assert verdicts["ai_input"].signal.kind == "robots_txt"


def test_a_registry_entry_carries_the_reading_its_recorder_gives(admin, news):
    response = admin.post(f"/api/v1/sources/{news.pk}/opt-out-signals/",
                          {"kind": "registry", "value": "Do-Not-Train registry, entry 4411",
                           "train": "no"}, format="json")
    assert response.status_code == 201 and response.json()["train"] == "no"
    assert response.json()["ai_input"] == "unknown"
    decided = usage.source_verdicts(news)["train"]
    assert (decided.term.vocabulary, decided.term.says) == ("registry",
                                                            "Do-Not-Train registry, entry 4411")


def test_terms_no_reader_knows_are_reported_and_decide_nothing(admin, news, client, users):
    record(news, "http_header", "Content-Usage: train-genai=n\nX-Llm-Policy: nope")
    verdicts = admin.get(f"/api/v1/sources/{news.pk}/verdicts/").json()
    assert verdicts["train"]["verdict"] == "unknown"
    [unread] = verdicts["unread"]
    assert unread["terms"] == ["Content-Usage: train-genai=n", "X-Llm-Policy: nope"]
    client.force_login(users["holder_a"])  # the owner reads it on its source's page
    page = client.get(f"/sources/{news.pk}/").content.decode()
    assert "train-genai=n" in page and "decide nothing" in page


def test_each_recorded_signal_is_in_the_ledger_with_its_reading(news):
    record(news, "robots_txt", SIGNALS_NO_INPUT)
    entry = LedgerEntry.objects.filter(event="source.opt_out_signal_recorded").last()
    assert (entry.payload["train"], entry.payload["ai_input"]) == ("yes", "no")


def test_a_bad_at_is_a_400_naming_it(admin, news):
    response = admin.get(f"/api/v1/sources/{news.pk}/verdicts/", {"at": "yesterday"})
    assert response.status_code == 400 and "at" in response.json()
    naive = admin.get(f"/api/v1/sources/{news.pk}/verdicts/", {"at": "2026-01-01T00:00:00"})
    assert naive.status_code == 400


def test_curation_honours_the_train_verdict_only(make_source, ingest_texts):
    refuses_training = make_source(name="no-train", license_expression="CC0-1.0")
    refuses_input = make_source(name="no-input", license_expression="CC0-1.0")
    record(refuses_training, "rsl", '<rsl xmlns="https://rslstandard.org/rsl"><content url="/">'
                                    '<license><prohibits type="usage">ai-train</prohibits>'
                                    '</license></content></rsl>', days_ago=2)
    record(refuses_input, "robots_txt", SIGNALS_NO_INPUT, days_ago=2)
    ingest_texts(refuses_training, ["a text whose owner refuses training"])
    ingest_texts(refuses_input, ["a text whose owner refuses only answering from it"])
    recipe = datasets.recipe_validate({"intended_use": "commercial",
                                       "opt_out_cutoff": timezone.now().isoformat()})
    plan = curation.curation_plan(recipe)
    reasons = curation.source_verdicts(recipe)
    assert set(reasons) == {refuses_training.pk}
    assert 'rsl observed' in reasons[refuses_training.pk][1]
    assert '<prohibits type="usage"> ai-train' in reasons[refuses_training.pk][1]
    assert len(list(plan.members)) == 1


def test_the_migration_keeps_each_earlier_reading_and_reports_the_value_unread(news):
    migration = importlib.import_module(
        "provenance.migrations.0020_opt_out_signals_read_for_train_and_ai_input")
    now = timezone.now()
    # As rows stood before: a person's reading only (opted_out), no preferences.
    old = [OptOutSignal.objects.create(source=news, kind=kind, value=value, opted_out=out,
                                       train="no" if out else "unknown", observed_at=now)
           for kind, value, out in [("robots_txt", ROBOTS_NO_TRAIN, True),
                                    ("registry", "entry 9", True),
                                    ("robots_txt", "User-agent: *\nAllow: /", False)]]
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE provenance_optoutsignal DISABLE TRIGGER opt_out_append_only")
        cursor.execute("UPDATE provenance_optoutsignal SET reading = '{}'::jsonb "
                       "WHERE id = ANY(%s)", [[s.pk for s in old]])
        cursor.execute("ALTER TABLE provenance_optoutsignal ENABLE TRIGGER opt_out_append_only")
    with connection.schema_editor() as editor:
        migration.read_existing(apps, editor)
        migration.read_existing(apps, editor)  # rerunnable: nothing left to read
    rows = {s.pk: s for s in OptOutSignal.objects.filter(pk__in=[s.pk for s in old])}
    robots, registry, allow = (rows[s.pk] for s in old)
    for refused in (robots, registry):
        assert (refused.train, refused.ai_input, refused.opted_out) == ("no", "no", True)
        assert refused.reading["terms"][0]["vocabulary"] == "recorded"
        assert refused.reading["path"] == "/articles"
    assert (allow.train, allow.ai_input, allow.opted_out) == ("unknown", "unknown", False)
    assert "record it again" in allow.reading["unknown"][0]
    assert usage.source_verdicts(news)["train"].term.vocabulary == "recorded"


def test_the_sql_verdicts_retrieval_filters_by_equal_the_services(make_source):
    import random

    from provenance.services.usage import SOURCE_PREFS_SQL

    rng = random.Random(5)
    values = [("robots_txt", ROBOTS_NO_TRAIN), ("robots_txt", SIGNALS_NO_INPUT),
              ("robots_txt", "User-agent: *\nAllow: /"),
              ("http_header", "Content-Usage: train-ai=y, ai-use=y"),
              ("http_header", "Content-Usage: ai-use=n"), ("tdmrep", "tdm-reservation: 0"),
              ("tdmrep", "tdm-reservation: 1")]
    made = [make_source(name=f"mixed-{i}") for i in range(12)]
    for source in made:
        for _ in range(rng.randint(0, 5)):
            kind, value = rng.choice(values)
            record(source, kind, value, days_ago=rng.randint(0, 30),
                   url=rng.choice(["", "https://a.example/robots.txt"]))
    with connection.cursor() as cursor:
        cursor.execute(SOURCE_PREFS_SQL)
        in_sql = {row[0]: (row[1], row[2]) for row in cursor.fetchall()}
    for source in made:
        verdicts = usage.source_verdicts(source)
        assert in_sql.get(source.pk, ("unknown", "unknown")) == (
            verdicts["train"].pref.value, verdicts["ai_input"].pref.value), source.name
    assert {v for pair in in_sql.values() for v in pair} >= {"yes", "no"}
