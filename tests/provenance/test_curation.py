import random
from datetime import timedelta

import pytest
from datasketch import MinHashLSH
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connections, transaction
from django.utils import timezone

from core.jobs import job_progress, job_progress_close
from provenance.engine.text import NUM_PERM, content_hash, minhash_from_bytes
from provenance.models import CurationJob, DataSource, Document, VersionExclusion
from provenance.services import curation, datasets, sources, usage
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
    usage.opt_out_signal_record(source=opted, actor=None, kind="ai_txt",
                                value="User-Agent: *\nDisallow: /",
                                observed_at=now - timedelta(days=3))
    usage.opt_out_signal_record(source=late, actor=None, kind="tdmrep",
                                value="tdm-reservation: 1", observed_at=now - timedelta(hours=1))
    usage.opt_out_signal_record(source=flipped, actor=None, kind="robots_txt",
                                value="User-agent: GPTBot\nDisallow: /",
                                observed_at=now - timedelta(days=5))
    usage.opt_out_signal_record(source=flipped, actor=None, kind="robots_txt",
                                value="User-agent: GPTBot\nAllow: /",
                                observed_at=now - timedelta(days=4))
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
    plan = curation.curation_plan(datasets.recipe_validate(recipe))
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
        version = curation.version_create_from_plan(dataset=dataset, recipe=recipe,
                                                    plan=curation.curation_plan(recipe), actor=None)
        roots.append((version.manifest_root, version.document_count, version.counts_by_source))
    assert roots[0] == roots[1]


def test_a_curation_job_records_counts_and_publishes_when_asked(corpus):
    _, cutoff = corpus
    dataset = DatasetFactory()
    job = datasets.curation_job_create(dataset=dataset, actor=None, enqueue=False,
                                       recipe={"intended_use": "commercial", "publish": True,
                                               "opt_out_cutoff": cutoff})
    job = curation.curation_run(job_id=job.pk)
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
    plan = curation.curation_plan(recipe)
    held = {doc for doc, _, reason, _ in plan.exclusions if reason == R.HELD_OUT}
    members = {doc for doc, _, _ in plan.members}
    assert 25 <= len(held) <= 75 and not held & members and len(held | members) == 200
    shas = dict(Document.objects.values_list("pk", "sha256"))
    assert all(curation.held_out(shas[d], 0.25) for d in held)
    assert not any(curation.held_out(shas[d], 0.25) for d in members)
    again = curation.curation_plan(recipe)
    assert {doc for doc, _, reason, _ in again.exclusions if reason == R.HELD_OUT} == held
    with pytest.raises(ValidationError, match="holdout_fraction"):
        datasets.recipe_validate({"intended_use": "commercial", "holdout_fraction": 0.9})


def _drift(seed: int, steps: int, n: int = 60) -> list[str]:
    """A text and `steps` descendants, each one more word edited than the last: neighbours in the
    chain are near-duplicates at 0.8, texts two edits apart are not."""
    rng = random.Random(seed)
    chain = [words(seed, n).split()]
    for step in range(steps):
        text = list(chain[-1])
        text[rng.randrange(n)] = f"edit{seed}x{step}"
        chain.append(text)
    return [" ".join(t) for t in chain]


def _datasketch_decisions(threshold: float) -> dict[int, int]:
    """What the in-memory datasketch index (the curation before issue 20) decides: each document
    in sha256 order is out if a kept one in its LSH buckets reaches the threshold."""
    lsh, kept, out = MinHashLSH(threshold=threshold, num_perm=NUM_PERM), {}, {}
    for doc, blob in Document.objects.order_by("sha256").values_list("pk", "minhash"):
        sketch = minhash_from_bytes(bytes(blob))
        near = [k for k in lsh.query(sketch) if kept[k].jaccard(sketch) >= threshold]
        if near:
            out[doc] = min(near)
            continue
        lsh.insert(doc, sketch)
        kept[doc] = sketch
    return out


@pytest.mark.parametrize("threshold", [0.8, 0.6])
def test_near_duplicates_found_in_sql_are_those_of_the_in_memory_index(
        make_source, ingest_texts, threshold):
    texts = [t for seed in range(40) for t in _drift(seed, 5)]
    ingest_texts(make_source(license_expression="CC0-1.0"), texts)
    expected = _datasketch_decisions(threshold)
    recipe = datasets.recipe_validate({"intended_use": "commercial",
                                       "near_duplicate_threshold": threshold})
    plan = curation.curation_plan(recipe)
    found = {doc: detail for doc, _, reason, detail in plan.exclusions
             if reason == R.NEAR_DUPLICATE}
    assert found == {doc: f"near-duplicate of document {near}" for doc, near in expected.items()}
    assert len(found) >= 40 and len(plan.members) == len(texts) - len(found)
    # The greedy order matters here: some kept text is near one that was itself found out.
    sketches = {d: minhash_from_bytes(bytes(b))
                for d, b in Document.objects.values_list("pk", "minhash")}
    kept = [d for d, _, _ in plan.members]
    assert any(sketches[k].jaccard(sketches[o]) >= threshold for k in kept for o in found)


def test_a_job_inside_its_transaction_shows_progress_to_other_connections(
        transactional_db, make_source):
    job = datasets.curation_job_create(dataset=DatasetFactory(), actor=None, enqueue=False,
                                       recipe={"intended_use": "commercial"})
    reader = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with transaction.atomic():
            job_progress(CurationJob, job.pk, 1234)
            with reader.cursor() as cursor:
                cursor.execute("SELECT position FROM provenance_curationjob WHERE id = %s",
                               [job.pk])
                assert cursor.fetchone()[0] == 1234
    finally:
        reader.close()
        job_progress_close()
