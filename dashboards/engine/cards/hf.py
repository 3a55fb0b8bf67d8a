"""The Hugging Face dataset card: YAML metadata and the standard sections, built with
huggingface_hub's DatasetCard from our own template."""

from __future__ import annotations

from pathlib import Path

from dashboards.engine.cards import spdx_licensing
from dashboards.engine.cards.facts import SourceFacts, TakedownFacts, VersionFacts, stage_lines
from dashboards.engine.cards.markdown import fence, inline, prose

# Licence ids the Hub's metadata accepts as they are (lower-cased SPDX ids); others are "other".
HUB_LICENSES = frozenset({
    "apache-2.0", "mit", "openrail", "bigscience-openrail-m", "creativeml-openrail-m",
    "bigscience-bloom-rail-1.0", "bigcode-openrail-m", "afl-3.0", "artistic-2.0", "bsl-1.0",
    "bsd", "bsd-2-clause", "bsd-3-clause", "bsd-3-clause-clear", "c-uda", "cc", "cc0-1.0",
    "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0",
    "cc-by-nc-nd-4.0", "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0", "cdla-sharing-1.0",
    "cdla-permissive-1.0", "cdla-permissive-2.0", "wtfpl", "ecl-2.0", "epl-1.0", "epl-2.0",
    "etalab-2.0", "eupl-1.1", "eupl-1.2", "agpl-3.0", "gfdl", "gpl", "gpl-2.0", "gpl-3.0", "lgpl",
    "lgpl-2.1", "lgpl-3.0", "isc", "h-research", "intel-research", "lppl-1.3c", "ms-pl",
    "apple-ascl", "apple-amlr", "mpl-2.0", "odc-by", "odbl", "openmdw-1.0", "openrail++", "osl-3.0",
    "postgresql", "ofl-1.1", "ncsa", "unlicense", "zlib", "pddl", "lgpl-lr", "deepfloyd-if-license",
    "fair-noncommercial-research-license", "llama2", "llama3", "llama3.1", "llama3.2", "llama3.3",
    "llama4", "grok2-community", "gemma", "unknown", "other",
})

# The card's body: the Hub's standard sections, plus the takedowns and models of this version.
TEMPLATE = (Path(__file__).parent / "dataset_card.md.j2").read_text()

def _license_keys(expression: str) -> set[str]:
    try:
        return set(spdx_licensing().license_keys(expression))
    except Exception:  # an unparsable expression is still named in the card's text
        return {expression}


def hub_licenses(facts: VersionFacts) -> list[str]:
    """The Hub's `license` list: each licence the Hub knows once, and "other" once for all the
    rest (named by `other_licenses`)."""
    keys = {k.lower() for s in facts.sources for k in _license_keys(s.license)}
    return sorted({k if k in HUB_LICENSES else "other" for k in keys}) or ["unknown"]


def other_licenses(facts: VersionFacts) -> tuple[list[str], list[str]]:
    """The licences behind "other", each once: (`license_name`, `license_link`). An SPDX id
    links to its page on spdx.org; a LicenseRef or an unparsable string to the terms of the
    first source that declares it (or nothing)."""
    links: dict[str, str] = {}
    for source in facts.sources:
        for key in sorted(_license_keys(source.license)):
            if key.lower() in HUB_LICENSES or key in links:
                continue
            known = not key.startswith("LicenseRef-") and " " not in key and "(" not in key
            links[key] = (f"https://spdx.org/licenses/{key}.html" if known
                          else source.terms_url or source.uri)
    return sorted(k.lower() for k in links), [links[k] for k in sorted(links, key=str.lower)]


def size_category(documents: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
              (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]
    return next((label for bound, label in bounds if documents < bound), "n>100M")


def citation(facts: VersionFacts) -> str:
    key = f"{facts.slug}_v{facts.number}".replace("-", "_")
    year = facts.published_at[:4]
    return (f"@misc{{{key},\n  title = {{{facts.title} ({facts.name})}},\n"
            f"  author = {{{facts.publisher}}},\n  year = {{{year}}},\n"
            f"  howpublished = {{{facts.url}}},\n  note = {{manifest {facts.manifest_root}}}\n}}")


def dataset_card(facts: VersionFacts) -> str:
    """Every name and free text escaped for Markdown (dashboards.engine.cards.markdown)."""
    from huggingface_hub import DatasetCard, DatasetCardData  # loaded when a card is made

    words = facts.words
    names, links = other_licenses(facts)
    data = DatasetCardData(
        license=hub_licenses(facts), license_name=names or None, license_link=links or None,
        language=sorted(facts.languages) or None,
        pretty_name=f"{facts.title} ({facts.name})", size_categories=[size_category(
            facts.documents)], task_categories=["text-generation"],
        tags=["trailmark", "provenance", f"intended-use-{facts.intended_use}"])
    diff = facts.diff
    sources = [SourceFacts(id=s.id, name=inline(s.name), owner=inline(s.owner),
                           uri=inline(s.uri), license=inline(s.license),
                           use_class=inline(s.use_class), documents=s.documents,
                           license_as_written=inline(s.license_as_written))
               for s in facts.sources]
    takedowns = [TakedownFacts(reference=inline(t.reference), legal_basis=t.legal_basis,
                               documents=t.documents, decided_at=t.decided_at)
                 for t in facts.takedowns]
    checkpoints = [{"name": inline(c.name), "kind": c.kind, "sha256": c.sha256}
                   for c in facts.checkpoints]
    cite = words.citation or citation(facts)
    card = DatasetCard.from_template(
        data, template_str=TEMPLATE, title=inline(facts.title), name=inline(facts.name),
        summary=prose(words.summary) if words.summary else inline(
            f"{facts.title}, version {facts.number}: {facts.documents} documents from "
            f"{len(facts.sources)} registered source(s), curated for {facts.intended_use} use."),
        publisher=inline(facts.publisher), published_at=facts.published_at,
        documents=facts.documents, tokens=facts.tokens, bytes=facts.bytes,
        manifest_root=facts.manifest_root, license_expression=facts.license_expression,
        parent=inline(facts.parent),
        diff_line=f"+{diff.get('added', 0)} / -{diff.get('removed', 0)} documents",
        url=inline(facts.url),
        uses=prose(words.uses) if words.uses else f"Training and evaluating language models "
        f"where every source's licence allows {facts.intended_use} use.",
        out_of_scope=prose(words.out_of_scope or "Uses the sources' licences do not allow; "
                           "re-identifying people named in the text; redistributing the text "
                           "apart from its licences' terms."),
        curation_rationale=prose(words.curation_rationale or _rationale(facts)),
        sources=sources, exclusions=sorted(facts.exclusions.items()),
        personal_information=prose(words.personal_information or "Not assessed document by "
                                   "document. Texts may name people; erasure requests are "
                                   "handled as takedowns."),
        biases=prose(words.biases or "The mix of sources above decides what the data over- and "
                     "under-represents; no balancing beyond the recipe was applied."),
        limitations=prose(words.limitations or "Licences are as registered by each source's "
                          "owner and checked against its licence signals; they are not legal "
                          "advice."),
        takedowns=takedowns, checkpoints=checkpoints, citation=cite, fence=fence(cite),
        benchmarks=[inline(b.line()) for b in facts.benchmarks],
        synthetic=[{"name": inline(s.name), "line": inline(s.generator.line())}
                   for s in facts.sources if s.generator is not None])
    return str(card)


def _rationale(facts: VersionFacts) -> str:
    recipe = facts.recipe
    parts = [f"licence policy for {facts.intended_use} use",
             "opt-out signals honoured" if recipe.get("opt_out_cutoff") else "",
             f"near-duplicates above {recipe['near_duplicate_threshold']} Jaccard removed"
             if recipe.get("near_duplicate_threshold") else "",
             f"{recipe['holdout_fraction']:.0%} of each source held out for evaluation"
             if recipe.get("holdout_fraction") else "", *stage_lines(recipe)]
    return "Curated by Trailmark's recipe: " + "; ".join(p for p in parts if p) + "."
