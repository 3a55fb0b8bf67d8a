"""The three dataset-card formats, rendered from plain facts and read back by the libraries made
for each: huggingface_hub parses the card's metadata, mlcroissant validates the Croissant
document, spdx-python-model deserializes the SPDX one."""

from __future__ import annotations

import io
import json

import mlcroissant as mlc
import pytest
from huggingface_hub import DatasetCard
from spdx_python_model import v3_0_1 as spdx

from dashboards.engine.cards.croissant import CONFORMS_TO, Distribution, ExportFile, croissant
from dashboards.engine.cards.facts import (
    CardWords,
    CheckpointFacts,
    SourceFacts,
    TakedownFacts,
    VersionFacts,
)
from dashboards.engine.cards.hf import dataset_card, hub_licenses, size_category
from dashboards.engine.cards.spdx import spdx_document

FACTS = VersionFacts(
    slug="demo-research", title="Demo research corpus", number=2,
    url="https://trailmark.example/datasets/demo-research/v2/", publisher="Demo Lab",
    published_at="2026-11-27T10:00:00+00:00", manifest_root="ab" * 32, documents=1234,
    tokens=456_000, bytes=2_345_678, intended_use="academic",
    recipe={"near_duplicate_threshold": 0.8, "holdout_fraction": 0.1,
            "opt_out_cutoff": "2026-11-27T00:00:00+00:00"},
    sources=(SourceFacts(1, "Harbor essays", "Harbor Press", "https://harbor.example/",
                         "CC-BY-4.0", "commercial", 800),
             SourceFacts(2, "Forum posts", "Northwind", "https://northwind.example/",
                         "MIT OR Apache-2.0", "commercial", 434),
             SourceFacts(3, "Odd terms", "Someone", "", "LicenseRef-odd-terms", "unknown", 0)),
    by_license_class={"commercial": 1234}, exclusions={"near_duplicate": 12, "takedown": 3},
    languages={"en": 1200}, parent="demo-research@v1", diff={"added": 2, "removed": 3},
    takedowns=(TakedownFacts("TD-2026-000001", "dmca_512", 3, "2026-11-26"),),
    checkpoints=(CheckpointFacts(7, "demo-model", "trained", "cd" * 32,
                                 "2026-11-27T11:00:00+00:00"),),
    words=CardWords(uses="Research on provenance.", biases="Mostly essays."),
)


def test_the_hugging_face_card_has_its_metadata_and_every_standard_section():
    text = dataset_card(FACTS)
    card = DatasetCard(text)
    meta = card.data.to_dict()
    assert meta["pretty_name"] == "Demo research corpus (demo-research@v2)"
    assert meta["license"] == ["apache-2.0", "cc-by-4.0", "mit", "other"]
    assert meta["language"] == ["en"] and meta["size_categories"] == ["1K<n<10K"]
    for section in ("## Uses", "### Out-of-scope use", "## Dataset structure",
                    "### Curation rationale", "### Source data",
                    "### Personal and sensitive information", "## Bias, risks, and limitations",
                    "## Takedowns applied", "## Citation"):
        assert section in card.text, section
    assert "| Harbor essays | Harbor Press | `CC-BY-4.0` | commercial | 800 |" in card.text
    assert "TD-2026-000001 (dmca_512): 3 document(s) removed" in card.text
    assert "Research on provenance." in card.text and "Mostly essays." in card.text
    assert "+2 / -3 documents" in card.text and "@misc{demo_research_v2" in card.text


@pytest.mark.parametrize("n, label", [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"),
                                      (10**6, "1M<n<10M"), (10**9, "n>100M")])
def test_size_categories_follow_the_hubs_bins(n, label):
    assert size_category(n) == label


def test_an_unparsable_licence_is_other_on_the_hub():
    odd = VersionFacts(**{**FACTS.__dict__, "sources": (
        SourceFacts(9, "x", "y", "", "not a licence ((", "unknown", 1),)})
    assert hub_licenses(odd) == ["other"]


def _croissant_issues(document: dict) -> tuple[list[str], list[str]]:
    ctx = mlc.Context()
    try:
        mlc.Metadata.from_json(ctx=ctx, json_=document)
    except mlc.ValidationError as exc:  # raised when there are errors
        return [str(exc)], sorted(ctx.issues.warnings)
    return sorted(ctx.issues.errors), sorted(ctx.issues.warnings)


API = "https://trailmark.example/api/v1/versions/2"
FILES = Distribution(jsonl=ExportFile(f"{API}/records/", "a" * 64),
                     parquet=ExportFile(f"{API}/records/?format=parquet", "b" * 64),
                     manifest=ExportFile(f"{API}/manifest/", "c" * 64))


def test_the_croissant_document_validates_with_mlcroissant_and_carries_the_rai_fields():
    document = croissant(FACTS, FILES)
    errors, warnings = _croissant_issues(json.loads(json.dumps(document)))
    assert errors == [] and warnings == []
    assert document["conformsTo"] == CONFORMS_TO
    assert document["license"] == [
        "https://spdx.org/licenses/Apache-2.0.html", "https://spdx.org/licenses/CC-BY-4.0.html",
        "https://spdx.org/licenses/LicenseRef-odd-terms.html",
        "https://spdx.org/licenses/MIT.html"]
    for key in ("rai:dataCollection", "rai:dataPreprocessingProtocol", "rai:dataUseCases",
                "rai:dataBiases", "rai:dataLimitations", "rai:personalSensitiveInformation",
                "rai:dataSocialImpact", "rai:dataReleaseMaintenancePlan"):
        assert document[key], key
    assert "TD-2026-000001" in document["rai:dataSocialImpact"]
    fields = [f["name"] for f in document["recordSet"][0]["field"]]
    assert fields == ["id", "sha256", "normalised_sha256", "text", "source", "license",
                      "language", "external_id", "url"]
    # each file with the digest of its bytes; the Merkle root under a name of its own
    assert [(f["contentUrl"], f["sha256"]) for f in document["distribution"]] == [
        (f"{API}/records/", "a" * 64), (f"{API}/records/?format=parquet", "b" * 64),
        (f"{API}/manifest/", "c" * 64)]
    assert document["identifier"] == f"trailmark-manifest-merkle-root:{FACTS.manifest_root}"


def test_mlcroissant_would_catch_a_broken_document():
    """The validation above can fail: a record field pointing at no file is an error."""
    document = croissant(FACTS, FILES)
    document["recordSet"][0]["field"][0]["source"]["fileObject"]["@id"] = "missing.jsonl"
    errors, _ = _croissant_issues(document)
    assert errors and "missing.jsonl" in errors[0]


def test_the_spdx_document_links_licences_sources_parent_and_trained_models():
    document = spdx_document(FACTS, concluded={2: "MIT"}, files=FILES)
    assert document["@context"] == "https://spdx.org/rdf/3.0.1/spdx-context.jsonld"
    objects = spdx.SHACLObjectSet()
    spdx.JSONLDDeserializer().read(io.BytesIO(json.dumps(document).encode()), objects)
    by_id = {o._id: o for o in objects.objects if getattr(o, "_id", None)}
    base = FACTS.url.rstrip("/") + "/spdx/"
    version = by_id[base + "version"]
    assert isinstance(version, spdx.dataset_DatasetPackage) and version.name == FACTS.name
    assert version.dataset_datasetSize == FACTS.bytes
    assert version.verifiedUsing[0].hashValue == "a" * 64  # the records export's bytes
    assert version.software_downloadLocation == f"{API}/records/"
    assert FACTS.manifest_root in version.comment

    def targets(source_id: str, kind: str) -> list:
        return [t for r in objects.objects if isinstance(r, spdx.Relationship)
                and r.from_._id == source_id and r.relationshipType.endswith(kind)
                for t in r.to]

    declared = targets(base + "version", "hasDeclaredLicense")[0]
    assert declared.simplelicensing_licenseExpression == \
        "CC-BY-4.0 AND LicenseRef-odd-terms AND (MIT OR Apache-2.0)"
    concluded = targets(base + "version", "hasConcludedLicense")[0]
    assert concluded.simplelicensing_licenseExpression == \
        "CC-BY-4.0 AND LicenseRef-odd-terms AND MIT"
    assert {t._id for t in targets(base + "version", "contains")} == {
        base + "source-1", base + "source-2", base + "source-3"}
    assert [t._id for t in targets(base + "version", "descendantOf")] == [base + "parent"]
    assert [t._id for t in targets(base + "checkpoint-7", "trainedOn")] == [base + "version"]
    doc = next(o for o in objects.objects if isinstance(o, spdx.SpdxDocument))
    assert {str(p).rsplit("/", 1)[-1] for p in doc.profileConformance} >= {"dataset", "ai"}


def test_the_summary_sizes_its_data_and_keeps_the_top_tenth_of_domains():
    from dashboards.engine.ai_act import AiActSummary, SourceShare

    shares = tuple(SourceShare(f"s{i}", "o", "crawled", f"https://www.site{i}.example/x", "MIT",
                               10, tokens) for i, tokens in enumerate([500, 300, 200] + [1] * 8))
    summary = AiActSummary("p", "m", "0" * 64, ("v@v1",), "2026-11-27", shares, ("robots_txt",),
                           0, 0, 0, 0, 0, 0, "https://x.example/transparency/")
    assert summary.size_range == "less than 1 billion tokens"
    assert summary.top_domains() == [("site0.example", 500 / 1008), ("site1.example",
                                                                     300 / 1008)]
    big = AiActSummary(**{**summary.__dict__, "sources": (
        SourceShare("b", "o", "licensed", "", "MIT", 1, 2 * 10**9),)})
    assert big.size_range == "1 billion to 10 trillion tokens" and big.top_domains() == []
    assert [kind for kind, _, _ in summary.by_type()] == ["crawled"]


INJECTION = ("Evil | Press\n# Injected heading <img src=x onerror=alert(1)> "
             "[click](javascript:alert(1)) `code` *loud*")


def test_names_cannot_inject_markdown_or_html_into_the_hugging_face_card():
    """The outside probe put newlines, `#`, `|`, an <img onerror> and a javascript: link into a
    source's and a dataset's name: the certified card carried them as structure."""
    from dataclasses import replace

    from markdown_it import MarkdownIt

    facts = replace(
        FACTS, title=INJECTION,
        sources=(SourceFacts(1, INJECTION, INJECTION, "javascript:alert(1)", "CC-BY-4.0",
                             "commercial", 800), *FACTS.sources[1:]),
        words=CardWords(uses="See <script>alert(1)</script> and [this](javascript:alert(2)).",
                        citation="``` \n<img src=x onerror=alert(3)>"))
    body = DatasetCard(dataset_card(facts)).text
    page = MarkdownIt("commonmark").enable("table").render(body)
    assert "<img" not in page and "<script" not in page
    assert 'href="javascript' not in page and "<a " not in page
    assert page.count("<h1>") == 1 and "Injected heading" in page
    table = page.split("<tbody>")[1].split("</tbody>")[0]
    rows = table.count("<tr>")
    assert rows == 3 and table.count("<td>") == 3 * 5  # one row a source, five cells each
    assert "Evil | Press # Injected heading &lt;img src=x onerror=alert(1)&gt;" in page
    assert "<pre><code>" in page and "&lt;img src=x onerror=alert(3)&gt;" in page  # fenced
    assert DatasetCard(dataset_card(FACTS)).text.count("| Harbor essays | Harbor Press |") == 1


def test_the_model_card_escapes_names_too():
    from markdown_it import MarkdownIt

    from dashboards.engine.cards.model import ModelFacts, model_card

    facts = ModelFacts(name=INJECTION, kind="trained", sha256="ab" * 32, config={}, metrics={},
                       version=INJECTION, version_url="https://t.example/v1/",
                       manifest_root="cd" * 32, documents=3, license_expression="MIT",
                       license_mix={"commercial": 3}, lineage=(f"derived from {INJECTION}",),
                       remediations=())
    page = MarkdownIt("commonmark").enable("table").render(model_card(facts).split("---", 2)[2])
    assert "<img" not in page and "<a " not in page and page.count("<h1>") == 1


def test_other_licences_are_named_once_each_with_a_link():
    many = VersionFacts(**{**FACTS.__dict__, "sources": tuple(
        SourceFacts(i, f"s{i}", "o", "https://o.example/", expression, "unknown", 1,
                    terms_url="https://o.example/terms")
        for i, expression in enumerate(["GPL-2.0-or-later", "GPL-2.0-or-later AND MIT",
                                        "LicenseRef-odd-terms", "Zlib", "LicenseRef-odd-terms",
                                        "Artistic-1.0-Perl", "Artistic-1.0-Perl"]))})
    meta = DatasetCard(dataset_card(many)).data.to_dict()
    assert meta["license"] == ["mit", "other", "zlib"]  # "other" once, not once per source
    assert meta["license_name"] == ["artistic-1.0-perl", "gpl-2.0-or-later",
                                    "licenseref-odd-terms"]
    assert meta["license_link"] == ["https://spdx.org/licenses/Artistic-1.0-Perl.html",
                                    "https://spdx.org/licenses/GPL-2.0-or-later.html",
                                    "https://o.example/terms"]


def test_every_card_states_the_recipes_stages_in_order():
    from dataclasses import replace

    stages = [{"stage": "language", "allow": ["en"], "keep_unknown": False},
              {"stage": "quality", "min_words": 50, "max_words": None,
               "reject_curly_bracket": False},
              {"stage": "semdedup", "threshold": 0.95, "clusters": 100, "seed": 0},
              {"stage": "select", "method": "kcenter", "token_budget": 500_000, "seed": 3,
               "mixture": {"1": 2.0, "2": 1.0}}]
    facts = replace(FACTS, recipe={**FACTS.recipe, "stages": stages})
    expected = ["language: only en",
                "quality heuristics (Gopher / C4): min_words 50",
                "semantic deduplication (SemDeDup, 100 clusters): cosine ≥ 0.95 to a kept "
                "document removed",
                "selection by k-center greedy under a 500,000-token budget (seed 3, mixture "
                "source 1: 2, source 2: 1)"]
    card = DatasetCard(dataset_card(facts)).text
    assert "; ".join(expected) in " ".join(card.split())
    protocol = croissant(facts, FILES)["rai:dataPreprocessingProtocol"]
    assert protocol[3:7] == expected
    errors, warnings = _croissant_issues(json.loads(json.dumps(croissant(facts, FILES))))
    assert errors == [] and warnings == []
    assert "semantic deduplication" in json.dumps(spdx_document(facts))
    assert not any("quality heuristics" in line for line in
                   croissant(FACTS, FILES)["rai:dataPreprocessingProtocol"])
