"""Croissant 1.1 JSON-LD with the Responsible-AI (RAI) vocabulary.

Written as plain JSON here, so that the worker needs no mlcroissant (and its pandas, rdflib...);
the tests validate every document with mlcroissant itself."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboards.engine.cards.facts import VersionFacts, stage_lines
from dashboards.engine.cards.hf import citation
from provenance.engine.records import COLUMNS, DESCRIPTIONS

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
    "equivalentProperty": "cr:equivalentProperty",
}
# The record set's fields: every column of the export but the metadata object, whose keys differ
# from source to source (it is in the files, described in the file's description).
FIELDS = [(name, "sc:Integer" if name == "id" else "sc:Text", DESCRIPTIONS[name])
          for name in COLUMNS if name != "metadata"]


@dataclass(frozen=True)
class ExportFile:
    """A file the card points at, with the sha256 of its bytes as served."""

    url: str
    sha256: str


@dataclass(frozen=True)
class Distribution:
    jsonl: ExportFile
    parquet: ExportFile
    manifest: ExportFile


def _license_urls(facts: VersionFacts) -> list[str]:
    from dashboards.engine.cards import spdx_licensing

    licensing = spdx_licensing()
    urls: set[str] = set()
    for source in facts.sources:
        try:
            keys = licensing.license_keys(source.license)
        except Exception:
            keys = []
        urls |= {f"https://spdx.org/licenses/{key}.html" for key in keys}
    return sorted(urls)


def croissant(facts: VersionFacts, files: Distribution) -> dict[str, Any]:
    """The version's metadata, pointing at its records export (JSON Lines and Parquet, each with
    the sha256 of its bytes) and at its manifest (whose Merkle root is the version's identity)."""
    words = facts.words
    file_id = f"{facts.slug}-v{facts.number}.jsonl"
    stem = f"{facts.slug}-v{facts.number}"
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": facts.name,
        "description": words.summary or f"{facts.title}, version {facts.number}: "
        f"{facts.documents} documents from {len(facts.sources)} registered source(s).",
        "conformsTo": CONFORMS_TO,
        "citeAs": words.citation or citation(facts),
        "creator": {"@type": "sc:Organization", "name": facts.publisher},
        "datePublished": facts.published_at[:10],
        "version": f"{facts.number}.0.0",
        "license": _license_urls(facts) or ["https://spdx.org/licenses/NOASSERTION"],
        "url": facts.url,
        "keywords": ["language model training data", "provenance", facts.intended_use],
        **({"inLanguage": sorted(facts.languages)} if facts.languages else {}),
        # The version's identity: the Merkle root over its members' sha256 (the manifest's).
        "identifier": f"trailmark-manifest-merkle-root:{facts.manifest_root}",
        "distribution": [{
            "@type": "cr:FileObject", "@id": file_id, "name": file_id,
            "description": "the version's documents, one JSON object per line, with each "
                           "record's metadata (its other fields, as it came) under 'metadata'; "
                           "documents removed by a takedown after publication are left out",
            "contentUrl": files.jsonl.url, "encodingFormat": "application/jsonlines",
            "sha256": files.jsonl.sha256,
        }, {
            "@type": "cr:FileObject", "@id": f"{stem}.parquet", "name": f"{stem}.parquet",
            "description": "the same records as Parquet (metadata as JSON text)",
            "contentUrl": files.parquet.url, "encodingFormat": "application/x-parquet",
            "sha256": files.parquet.sha256,
        }, {
            "@type": "cr:FileObject", "@id": f"{stem}.manifest.txt",
            "name": f"{stem}.manifest.txt",
            "description": f"the members' sha256, sorted, one per line; their Merkle root is "
                           f"{facts.manifest_root} (recompute it with `python -m "
                           f"provenance.engine.merkle FILE`)",
            "contentUrl": files.manifest.url, "encodingFormat": "text/plain",
            "sha256": files.manifest.sha256,
        }],
        "recordSet": [{
            "@type": "cr:RecordSet", "@id": "documents", "name": "documents",
            "description": "one record per document",
            "field": [{
                "@type": "cr:Field", "@id": f"documents/{name}", "name": name,
                "description": description, "dataType": data_type,
                "source": {"fileObject": {"@id": file_id}, "extract": {"jsonPath": name}},
            } for name, data_type, description in FIELDS],
        }],
        **rai(facts),
    }


def rai(facts: VersionFacts) -> dict[str, Any]:
    words = facts.words
    sources = ", ".join(f"{s.name} ({s.owner}, {s.license}"
                        + (f" as written \"{s.license_as_written}\"" if s.license_as_written
                           else "") + f", {s.documents} documents)" for s in facts.sources)
    left_out = ", ".join(f"{reason}: {n}" for reason, n in sorted(facts.exclusions.items()))
    removed = "; ".join(f"{t.reference} ({t.legal_basis}): {t.documents} removed"
                        for t in facts.takedowns)
    return {
        "rai:dataCollection": f"Documents from registered sources, each with an owner and a "
                              f"licence: {sources}." + "".join(
                                  f" Synthetic source {s.name}: {s.generator.line()}."
                                  for s in facts.sources if s.generator is not None),
        "rai:dataCollectionType": ["Secondary Data Analysis"],
        "rai:dataPreprocessingProtocol": [
            "texts stored as submitted (sha256 of their UTF-8 bytes, the manifest's member "
            "hash); a normalised form (Unicode NFC, whitespace folded, with its own sha256) "
            "for matching only",
            "exact and MinHash near-duplicate removal",
            f"licence policy for {facts.intended_use} use; opt-out signals honoured",
            *stage_lines(facts.recipe),
            f"left out: {left_out or 'nothing'}",
        ],
        "rai:dataUseCases": [words.uses or f"training and evaluating language models "
                                            f"({facts.intended_use} use)",
                             *(f"benchmarked: {b.line()}" for b in facts.benchmarks)],
        "rai:dataBiases": [words.biases or "Source mix decides coverage; see the sources."],
        "rai:dataLimitations": [words.limitations or "Licences as registered and checked "
                                "against licence signals; not legal advice."],
        "rai:personalSensitiveInformation": [
            words.personal_information or "Not assessed per document; texts may name people. "
            "Erasure requests are handled as takedowns."],
        "rai:dataSocialImpact": "Takedowns applied to this lineage: " + (removed or "none") + ".",
        "rai:dataReleaseMaintenancePlan": [
            "Versions are immutable; a takedown or a new recipe produces a new version with a "
            "diff to its parent, recorded in a public, verifiable ledger."],
    }
