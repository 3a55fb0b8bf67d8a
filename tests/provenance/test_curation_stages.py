"""A recipe's research stages on the real database: language and quality filters, semantic
deduplication over the stored MiniLM embeddings, and diverse selection under a token budget,
each exclusion recorded with its reason; a recipe reproduces its version; bad parameters are a
400 naming the field."""

import random

import pytest

from provenance.models import Document, VersionExclusion
from provenance.services import curation, datasets
from provenance.services.ingest import ingest_path
from provenance.services.stages import language_matches
from tests.factories import DatasetFactory

pytestmark = pytest.mark.django_db

TOPICS = {
    "sea": "harbour ship tide sailor lighthouse anchor storm fishing net gull",
    "farm": "orchard harvest wheat barn cattle plough meadow hay pear tractor",
    "sky": "comet telescope star orbit planet eclipse moon astronomer night galaxy",
    "city": "tram bridge market tower street office traffic square crowd station",
}


def essay(topic: str, seed: int, sentences: int = 8) -> str:
    """Prose that passes the quality rules: sentences of the topic's words and stop words."""
    rng = random.Random(f"{topic}-{seed}")
    words = TOPICS[topic].split()
    return " ".join(
        f"The {rng.choice(words)} and the {rng.choice(words)} of that {rng.choice(words)} "
        f"were known to {rng.choice(['every', 'each', 'no'])} {rng.choice(words)} with a "
        f"{rng.choice(words)} {rng.choice(['before', 'after', 'during'])} the "
        f"{rng.choice(words)}." for _ in range(sentences))


@pytest.fixture
def ingest_records(write_jsonl):
    counter = iter(range(1000))

    def run(source, records):
        path = write_jsonl(records, name=f"records-{next(counter)}.jsonl")
        return ingest_path(source=source, path=path, actor=None)

    return run


@pytest.fixture
def admin(client_as):
    return client_as("admin")


def curate(**recipe):
    recipe = datasets.recipe_validate({"intended_use": "commercial",
                                       "near_duplicate_threshold": None, **recipe})
    version = curation.version_create_from_plan(dataset=DatasetFactory(), recipe=recipe,
                                                plan=curation.curation_plan(recipe), actor=None)
    return version, recipe


def excluded(version, reason):
    return {e.document.text: e.detail for e in VersionExclusion.objects.filter(
        version=version, reason=reason).select_related("document")}


def test_language_and_quality_filters_record_what_they_measured(make_source, ingest_records):
    source = make_source()
    good, german, short, listy = essay("sea", 0), essay("farm", 1), "Too short a text.", \
        "\n".join(f"- {essay('city', i, 1)}" for i in range(8))
    ingest_records(source, [{"text": good, "language": "en-GB"},
                            {"text": german, "language": "de"},
                            {"text": essay("sky", 2)},  # no language declared
                            {"text": short, "language": "en"},
                            {"text": listy, "language": "en"}])
    version, recipe = curate(stages=[{"stage": "language", "allow": ["en"]},
                                     {"stage": "quality"}])
    assert recipe["stages"][1]["min_words"] == 50  # Gopher's defaults, stored with the recipe
    language = excluded(version, VersionExclusion.Reason.LANGUAGE)
    assert language[german] == "language de not in en"
    assert list(language.values()).count("language unknown") == 1
    quality = excluded(version, VersionExclusion.Reason.QUALITY)
    assert quality[short].startswith("min_words: words 4 < 50")
    assert quality[listy].startswith("max_bullet_lines: share of bulleted lines 1 > 0.9")
    assert version.document_count == 1
    assert version.exclusions_by_reason == {"language": 2, "quality": 2}
    # keep_unknown keeps the undeclared one; a null rule turns it off
    version, _ = curate(stages=[{"stage": "language", "allow": ["en"], "keep_unknown": True},
                                {"stage": "quality", "min_words": None,
                                 "max_bullet_lines": None, "min_sentences": 1,
                                 "min_stop_words": None}])
    assert version.document_count == 4


def test_semantic_duplicates_are_found_over_stored_embeddings(make_source, ingest_records):
    source = make_source()
    base = essay("sea", 3)
    near = base.replace("The ", "A ", 1)  # one word apart: MiniLM cosine ≈ 0.99
    others = [essay("farm", 4), essay("sky", 5)]
    ingest_records(source, [{"text": t} for t in [base, near, *others]])
    assert Document.objects.filter(embedding__isnull=False).count() == 0  # not yet embedded
    version, _ = curate(stages=[{"stage": "semdedup", "threshold": 0.95, "clusters": 2}])
    found = excluded(version, VersionExclusion.Reason.SEMANTIC_DUPLICATE)
    assert len(found) == 1 and set(found) <= {base, near}
    [(text, detail)] = found.items()
    kept = Document.objects.get(text=near if text == base else base)
    assert detail.startswith(f"cosine ≥ 0.95 to document {kept.pk} (cluster ")
    assert Document.objects.filter(embedding__isnull=False).count() == 4  # embedded and stored
    assert version.document_count == 3
    version, _ = curate(stages=[{"stage": "semdedup", "threshold": 0.9999}])
    assert version.document_count == 4


@pytest.mark.parametrize("method", ["kcenter", "logdet", "random"])
def test_selection_fills_a_token_budget_and_a_recipe_reproduces_its_version(
        make_source, ingest_records, method):
    source = make_source()
    ingest_records(source, [{"text": essay(topic, i)} for topic in TOPICS for i in range(4)])
    tokens = {d.pk: d.token_estimate for d in Document.objects.all()}
    budget = sum(sorted(tokens.values())[:5])
    stage = {"stage": "select", "method": method, "token_budget": budget, "seed": 7}
    version, recipe = curate(stages=[stage])
    members = set(version.members.values_list("document_id", flat=True))
    assert 0 < len(members) <= 5 and sum(tokens[m] for m in members) <= budget
    left_out = excluded(version, VersionExclusion.Reason.NOT_SELECTED)
    assert len(left_out) == 16 - len(members)
    assert all(f"{budget:,}-token budget" in detail for detail in left_out.values())
    again, _ = curate(**{k: v for k, v in recipe.items() if k != "intended_use"},
                      intended_use="commercial")
    assert set(again.members.values_list("document_id", flat=True)) == members
    if method != "random":  # diverse: no two picks from one topic while a topic is missing
        topics = [next(t for t, words in TOPICS.items() if words.split()[0] in d.text
                       or any(w in d.text for w in words.split()[:3]))
                  for d in Document.objects.filter(pk__in=members)]
        assert len(set(topics)) == min(len(members), 4)


def test_the_stored_recipe_rerun_after_a_takedown_leaves_the_work_out_and_refills_the_budget(
        make_source, ingest_records):
    from provenance.services.documents import document_tombstone

    source = make_source()
    ingest_records(source, [{"text": essay(topic, i)} for topic in TOPICS for i in range(4)])
    budget = sum(sorted(Document.objects.values_list("token_estimate", flat=True))[:6])
    version, recipe = curate(stages=[{"stage": "semdedup"},
                                     {"stage": "select", "token_budget": budget}])
    before = set(version.members.values_list("document_id", flat=True))
    work = Document.objects.filter(pk__in=before).order_by("sha256").first()
    document_tombstone(document=work, actor=None, reason="takedown TD-1")
    rerun = {k: v for k, v in recipe.items() if k != "intended_use"}  # the stored recipe
    after_version, _ = curate(**rerun, intended_use="commercial")
    after = set(after_version.members.values_list("document_id", flat=True))
    assert work.pk not in after and len(after) == len(before)  # the budget refilled
    assert excluded(after_version, VersionExclusion.Reason.TOMBSTONED) == {work.text: ""}
    assert sum(Document.objects.filter(pk__in=after).values_list("token_estimate",
                                                                 flat=True)) <= budget
    again, _ = curate(**rerun, intended_use="commercial")
    assert set(again.members.values_list("document_id", flat=True)) == after


def test_a_mixture_splits_the_budget_between_sources(make_source, ingest_records):
    sea, sky = make_source(), make_source()
    ingest_records(sea, [{"text": essay("sea", i)} for i in range(6)])
    ingest_records(sky, [{"text": essay("sky", i)} for i in range(6)])
    each = max(Document.objects.values_list("token_estimate", flat=True))
    version, _ = curate(stages=[{"stage": "select", "token_budget": 4 * each,
                                 "mixture": {str(sea.pk): 3, str(sky.pk): 1}}])
    assert version.counts_by_source == {str(sea.pk): 3, str(sky.pk): 1}
    version, _ = curate(stages=[{"stage": "select", "token_budget": 4 * each,
                                 "mixture": {str(sea.pk): 1}}])
    assert version.counts_by_source == {str(sea.pk): 4}
    assert set(excluded(version, VersionExclusion.Reason.NOT_SELECTED).values()) >= {
        f"source {sky.pk} has no weight in the mixture"}


def test_language_ranges_match_as_rfc_4647_basic_filtering():
    assert language_matches("en-GB", ["en"]) and language_matches("EN", ["en"])
    assert not language_matches("eng", ["en"]) and not language_matches("en", ["en-gb"])


@pytest.mark.parametrize(("stages", "field"), [
    ("quality", "recipe.stages"),
    ([{"allow": ["en"]}], "recipe.stages[0]"),
    ([{"stage": "translate"}], "recipe.stages[0].stage"),
    ([{"stage": "language", "allow": []}], "recipe.stages[0].allow"),
    ([{"stage": "language", "allow": ["english!"]}], "recipe.stages[0].allow"),
    ([{"stage": "language", "allow": ["en"], "keep": True}], "recipe.stages[0].keep"),
    ([{"stage": "quality", "min_words": -3}], "recipe.stages[0].min_words"),
    ([{"stage": "quality", "max_words_": 3}], "recipe.stages[0].max_words_"),
    ([{"stage": "semdedup", "threshold": 1.5}], "recipe.stages[0].threshold"),
    ([{"stage": "semdedup", "clusters": 0}], "recipe.stages[0].clusters"),
    ([{"stage": "select", "method": "kcenter"}], "recipe.stages[0].token_budget"),
    ([{"stage": "select", "token_budget": 10, "method": "best"}], "recipe.stages[0].method"),
    ([{"stage": "select", "token_budget": 10, "mixture": {"999999": 1}}],
     "recipe.stages[0].mixture"),
    ([{"stage": "select", "token_budget": 10}, {"stage": "quality"}],
     "recipe.stages[1].stage"),
    ([{"stage": "quality"}, {"stage": "quality"}], "recipe.stages[1].stage"),
])
def test_a_wrong_stage_answers_400_naming_its_field(admin, make_source, stages, field):
    make_source()
    response = admin.post("/api/v1/curation-jobs/", {
        "dataset": DatasetFactory().pk,
        "recipe": {"intended_use": "commercial", "stages": stages}}, format="json")
    assert response.status_code == 400, response.content
    assert field in response.json(), response.json()


def test_the_version_page_shows_the_stages_and_what_changed_from_the_parent(
        make_source, ingest_records, client):
    from provenance.services.datasets import dataset_version_publish

    source = make_source()
    ingest_records(source, [{"text": essay("sea", i)} for i in range(3)]
                   + [{"text": "Too short a text."}])
    dataset = DatasetFactory()
    for stages in ([], [{"stage": "quality", "min_sentences": 2},
                        {"stage": "select", "token_budget": 10_000, "seed": 3}]):
        recipe = datasets.recipe_validate({"intended_use": "commercial", "stages": stages})
        version = dataset_version_publish(version=curation.version_create_from_plan(
            dataset=dataset, recipe=recipe, plan=curation.curation_plan(recipe), actor=None),
            actor=None)
    diff = datasets.version_diff(version, version.parent)
    changes = {row["path"]: (row["before"], row["after"]) for row in diff["recipe"]}
    assert changes["stages[0].quality.min_sentences"] == (None, 2)
    assert changes["stages[1].select.token_budget"] == (None, 10_000)
    assert "opt_out_cutoff" in changes and "intended_use" not in changes
    assert diff["removed"]["total"] == 1  # the short text, left out for quality
    page = client.get(f"/datasets/{dataset.slug}/v2/").content.decode()
    stages = page.split('class="stages"')[1].split("</ol>")[0]
    assert "<strong>quality</strong>" in stages and "min_sentences 2" in stages
    assert "min_words 50" in stages and "reject_curly_bracket False" in stages
    assert "<strong>select</strong>" in stages and "method kcenter" in stages
    table = page.split('class="recipe-diff"')[1].split("</table>")[0]
    assert "<code>stages[1].select.token_budget</code></td><td>—</td><td>10000" in table
