from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from provenance.engine.text import content_hash
from provenance.models import DataSource, Document, VersionExclusion
from provenance.services import datasets, sources
from provenance.services.documents import document_tombstone
from tests.factories import DatasetFactory
from tests.helpers import words

pytestmark = pytest.mark.django_db
R = VersionExclusion.Reason


def _near(text: str) -> str:
    w = text.split()
    w[-5] = "edited"
    return " ".join(w)


@pytest.fixture
def corpus(make_source, ingest_texts):
    now = timezone.now()
    ok = make_source(license_expression="CC0-1.0", name="ok")
    nc = make_source(license_expression="CC-BY-NC-4.0", name="nc")
    opted = make_source(name="opted-out")
    late = make_source(name="opted-out-after-cutoff")
    flipped = make_source(name="opted-out-then-in")
    paused = make_source(name="paused")
    sources.opt_out_signal_record(source=opted, actor=None, kind="ai_txt", value="Disallow: /",
                                  opted_out=True, observed_at=now - timedelta(days=3))
    sources.opt_out_signal_record(source=late, actor=None, kind="tdmrep",
                                  value="tdm-reservation: 1", opted_out=True,
                                  observed_at=now - timedelta(hours=1))
    sources.opt_out_signal_record(source=flipped, actor=None, kind="robots_txt",
                                  value="Disallow: /", opted_out=True,
                                  observed_at=now - timedelta(days=5))
    sources.opt_out_signal_record(source=flipped, actor=None, kind="robots_txt", value="Allow: /",
                                  opted_out=False, observed_at=now - timedelta(days=4))
    sources.source_update(source=paused, actor=None, status=DataSource.Status.SUSPENDED)
    t = {name: words(seed, 120) for seed, name in enumerate(
        ["a", "b", "gone", "dup", "shared", "nc", "opted", "late", "flipped", "paused"])}
    t["dup2"] = _near(t["dup"])
    ingest_texts(ok, [t["a"], t["b"], t["gone"], t["dup"], t["dup2"], t["shared"]])
    ingest_texts(nc, [t["nc"], t["shared"]])
    ingest_texts(opted, [t["opted"]])
    ingest_texts(late, [t["late"]])
    ingest_texts(flipped, [t["flipped"]])
    ingest_texts(paused, [t["paused"]])
    document_tombstone(document=Document.objects.get(sha256=content_hash(t["gone"])), actor=None,
                       reason="takedown")
    cutoff = (now - timedelta(days=1)).isoformat()
    return t, cutoff


def _curate(recipe):
    plan = datasets.curation_plan(datasets.recipe_validate(recipe))
    texts = dict(Document.objects.values_list("pk", "text"))
    members = {texts[d] for d, _, _ in plan.members}
    excluded = {(texts[d], reason) for d, _, reason, _ in plan.exclusions}
    return plan, members, excluded


def test_commercial_curation_drops_exactly_what_it_should(corpus):
    t, cutoff = corpus
    plan, members, excluded = _curate({"intended_use": "commercial", "opt_out_cutoff": cutoff})
    dup_kept, dup_dropped = sorted([t["dup"], t["dup2"]], key=content_hash)
    assert members == {t["a"], t["b"], dup_kept, t["late"], t["flipped"]}
    assert excluded == {
        (t["gone"], R.TOMBSTONED),
        (dup_dropped, R.NEAR_DUPLICATE),
        (t["nc"], R.LICENSE),
        (t["shared"], R.LICENSE),  # also in a non-commercial source: the stricter source wins
        (t["opted"], R.OPT_OUT),
        (t["paused"], R.SOURCE_INACTIVE),
    }


def test_a_non_commercial_recipe_admits_nc_sources_and_dedup_can_be_switched_off(corpus):
    t, cutoff = corpus
    _, members, excluded = _curate({"intended_use": "non-commercial", "opt_out_cutoff": cutoff,
                                    "near_duplicate_threshold": None})
    assert {t["nc"], t["shared"], t["dup"], t["dup2"]} <= members
    assert {r for _, r in excluded} == {R.TOMBSTONED, R.OPT_OUT, R.SOURCE_INACTIVE}


def test_a_later_cutoff_honours_the_later_opt_out(corpus):
    t, _ = corpus
    _, members, excluded = _curate({"intended_use": "commercial",
                                    "opt_out_cutoff": timezone.now().isoformat()})
    assert t["late"] not in members and (t["late"], R.OPT_OUT) in excluded


def test_the_same_recipe_on_the_same_data_gives_the_same_version(corpus):
    _, cutoff = corpus
    dataset = DatasetFactory()
    recipe = datasets.recipe_validate({"intended_use": "commercial", "opt_out_cutoff": cutoff})
    roots = []
    for _ in range(2):
        version = datasets.version_create_from_plan(dataset=dataset, recipe=recipe,
                                                    plan=datasets.curation_plan(recipe), actor=None)
        roots.append((version.manifest_root, version.document_count, version.counts_by_source))
    assert roots[0] == roots[1]


def test_a_curation_job_records_counts_and_publishes_when_asked(corpus):
    _, cutoff = corpus
    dataset = DatasetFactory()
    job = datasets.curation_job_create(dataset=dataset, actor=None, enqueue=False,
                                       recipe={"intended_use": "commercial", "publish": True,
                                               "opt_out_cutoff": cutoff})
    job = datasets.curation_run(job_id=job.pk)
    version = job.version
    assert job.state == "succeeded" and version.is_published
    assert version.document_count == 5
    assert version.exclusions_by_reason == {"license": 2, "near_duplicate": 1, "opt_out": 1,
                                            "source_inactive": 1, "tombstoned": 1}
    assert sum(version.counts_by_source.values()) == 5
    assert version.counts_by_license_class == {"commercial": 5}
    assert version.exclusions.count() == 6
    with pytest.raises(IntegrityError, match="published and immutable"), transaction.atomic():
        version.exclusions.update(reason=R.LICENSE)


@pytest.mark.parametrize(("recipe", "field"), [
    ([], "recipe"),
    ({}, "recipe.intended_use"),
    ({"intended_use": "world-domination"}, "recipe.intended_use"),
    ({"intended_use": "commercial", "sources": [999999]}, "recipe.sources"),
    ({"intended_use": "commercial", "sources": "all"}, "recipe.sources"),
    ({"intended_use": "commercial", "opt_out_cutoff": "yesterday"}, "recipe.opt_out_cutoff"),
    ({"intended_use": "commercial", "opt_out_cutoff": "2026-01-01T00:00:00"},
     "recipe.opt_out_cutoff"),
    ({"intended_use": "commercial", "near_duplicate_threshold": 2},
     "recipe.near_duplicate_threshold"),
    ({"intended_use": "commercial", "publish": "yes"}, "recipe.publish"),
    ({"intended_use": "commercial", "colour": "blue"}, "recipe"),
])
def test_a_bad_recipe_is_refused_naming_the_field(recipe, field):
    with pytest.raises(ValidationError) as err:
        datasets.recipe_validate(recipe)
    assert field in err.value.message_dict


def test_a_holdout_fraction_sets_aside_texts_by_hash_never_trained_on(make_source, ingest_texts):
    ingest_texts(make_source(), [words(i, 30) for i in range(200)])
    recipe = datasets.recipe_validate({"intended_use": "commercial", "holdout_fraction": 0.25})
    plan = datasets.curation_plan(recipe)
    held = {doc for doc, _, reason, _ in plan.exclusions if reason == R.HELD_OUT}
    members = {doc for doc, _, _ in plan.members}
    assert 25 <= len(held) <= 75 and not held & members and len(held | members) == 200
    shas = dict(Document.objects.values_list("pk", "sha256"))
    assert all(datasets.held_out(shas[d], 0.25) for d in held)
    assert not any(datasets.held_out(shas[d], 0.25) for d in members)
    again = datasets.curation_plan(recipe)
    assert {doc for doc, _, reason, _ in again.exclusions if reason == R.HELD_OUT} == held
    with pytest.raises(ValidationError, match="holdout_fraction"):
        datasets.recipe_validate({"intended_use": "commercial", "holdout_fraction": 0.9})
