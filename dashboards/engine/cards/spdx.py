"""An SPDX 3.0.1 document with the Dataset profile, built with spdx-python-model: the version as
a DatasetPackage with its declared and concluded licences, each source as a DatasetPackage it
contains, its parent version, and every checkpoint trained on it (AIPackage `trainedOn`)."""

from __future__ import annotations

import io
import json
from datetime import datetime
from typing import Any

from dashboards.engine.cards.croissant import Distribution
from dashboards.engine.cards.facts import VersionFacts, all_of, stage_lines

PROFILES = ["core", "software", "dataset", "ai", "simpleLicensing"]


def _time(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def spdx_document(facts: VersionFacts, concluded: dict[int, str] | None = None,
                  tool_version: str = "", files: Distribution | None = None) -> dict[str, Any]:
    """`concluded`: per source id, the licence Trailmark concluded (its licence signals),
    where it differs from the declared one. `files`: the version's records export, which the
    version's package downloads from and is verified by (the sha256 of its bytes)."""
    from spdx_python_model import v3_0_1 as spdx  # loaded when a card is made

    base = facts.url.rstrip("/") + "/spdx/"
    created = _time(facts.published_at)
    info = spdx.CreationInfo()
    info.specVersion = "3.0.1"
    info.created = created
    publisher = spdx.Organization(_id=base + "publisher", creationInfo=info,
                                  name=facts.publisher)
    tool = spdx.Tool(_id=base + "tool", creationInfo=info,
                     name=f"Trailmark {tool_version}".strip())
    info.createdBy = [publisher]
    info.createdUsing = [tool]
    elements: list[Any] = [publisher, tool]
    count = iter(range(1, 1_000_000))

    def relate(source: Any, kind: Any, targets: list[Any]) -> None:
        elements.append(spdx.Relationship(_id=f"{base}relationship-{next(count)}",
                                          creationInfo=info, from_=source,
                                          relationshipType=kind, to=targets))

    def license_of(name: str, expression: str) -> Any:
        element = spdx.simplelicensing_LicenseExpression(
            _id=f"{base}license-{name}", creationInfo=info,
            simplelicensing_licenseExpression=expression)
        elements.append(element)
        return element

    version = _dataset(base + "version", info, facts.name, facts)
    version.dataset_datasetSize = facts.bytes
    version.dataset_intendedUse = facts.words.uses or (
        f"training and evaluating language models ({facts.intended_use} use)")
    version.dataset_dataCollectionProcess = "Documents from registered sources, each with an " \
        "owner and a licence; opt-out signals honoured."
    version.dataset_dataPreprocessing = [
        "texts stored as submitted, hashed with sha256 (the manifest's member hash); a "
        "normalised form (Unicode NFC, whitespace folded) for matching only",
        "exact and MinHash near-duplicate removal",
        f"licence policy for {facts.intended_use} use", *stage_lines(facts.recipe)]
    version.dataset_hasSensitivePersonalInformation = spdx.PresenceType.noAssertion
    if facts.words.biases:
        version.dataset_knownBias = [facts.words.biases]
    version.software_packageVersion = str(facts.number)
    version.comment = (f"Members identified by the Merkle root {facts.manifest_root} over their "
                       f"sha256 (the version's manifest).")
    if files is not None:
        version.software_downloadLocation = files.jsonl.url
        version.verifiedUsing = [_hash(files.jsonl.sha256, info)]
    version.suppliedBy = publisher
    elements.append(version)
    relate(version, spdx.RelationshipType.hasDeclaredLicense,
           [license_of("declared", facts.license_expression)])
    concluded = concluded or {}
    relate(version, spdx.RelationshipType.hasConcludedLicense, [license_of(
        "concluded", all_of(concluded.get(s.id, s.license) for s in facts.sources))])
    parts = []
    for source in facts.sources:
        package = _dataset(f"{base}source-{source.id}", info, source.name, facts)
        package.software_downloadLocation = source.uri or "NOASSERTION"
        package.summary = f"{source.documents} document(s) in {facts.name}; owner {source.owner}"
        elements.append(package)
        parts.append(package)
        relate(package, spdx.RelationshipType.hasDeclaredLicense,
               [license_of(f"source-{source.id}", source.license or "NOASSERTION")])
        if source.generator is not None:  # synthetic: the model that wrote it, and its data
            lineage = source.generator
            writer = spdx.ai_AIPackage(_id=f"{base}generator-{source.id}", creationInfo=info,
                                       name=lineage.name, summary=lineage.line())
            writer.software_primaryPurpose = spdx.software_SoftwarePurpose.model
            writer.software_downloadLocation = "NOASSERTION"
            writer.verifiedUsing = [_hash(lineage.sha256, info)]
            taught = _dataset(f"{base}generator-{source.id}-data", info, lineage.trained_on,
                              facts)
            taught.software_downloadLocation = "NOASSERTION"
            elements += [writer, taught]
            relate(writer, spdx.RelationshipType.generates, [package])
            relate(writer, spdx.RelationshipType.trainedOn, [taught])
    if parts:
        relate(version, spdx.RelationshipType.contains, parts)
    if facts.parent:
        parent = _dataset(base + "parent", info, facts.parent, facts)
        elements.append(parent)
        relate(version, spdx.RelationshipType.descendantOf, [parent])
    for checkpoint in facts.checkpoints:
        model = spdx.ai_AIPackage(_id=f"{base}checkpoint-{checkpoint.id}", creationInfo=info,
                                  name=checkpoint.name)
        model.software_primaryPurpose = spdx.software_SoftwarePurpose.model
        model.software_downloadLocation = "NOASSERTION"
        model.releaseTime = _time(checkpoint.created_at)
        model.verifiedUsing = [_hash(checkpoint.sha256, info)]
        elements.append(model)
        relate(model, spdx.RelationshipType.trainedOn, [version])
    document = spdx.SpdxDocument(
        _id=base + "document", creationInfo=info, name=f"{facts.name} (SPDX)",
        rootElement=[version], element=list(elements),
        profileConformance=[getattr(spdx.ProfileIdentifierType, p) for p in PROFILES])
    objects = spdx.SHACLObjectSet()
    for element in [document, *elements]:
        objects.add(element)
    out = io.BytesIO()
    spdx.JSONLDSerializer().write(objects, out)
    return json.loads(out.getvalue())


def _dataset(spdx_id: str, info: Any, name: str, facts: VersionFacts) -> Any:
    from spdx_python_model import v3_0_1 as spdx  # loaded when a card is made

    package = spdx.dataset_DatasetPackage(_id=spdx_id, creationInfo=info, name=name)
    package.software_primaryPurpose = spdx.software_SoftwarePurpose.data
    package.dataset_datasetType = [spdx.dataset_DatasetType.text]
    package.software_downloadLocation = facts.url
    package.builtTime = _time(facts.published_at)
    package.releaseTime = _time(facts.published_at)
    return package


def _hash(hex_sha256: str, info: Any) -> Any:
    from spdx_python_model import v3_0_1 as spdx  # loaded when a card is made

    digest = spdx.Hash()
    digest.algorithm = spdx.HashAlgorithm.sha256
    digest.hashValue = hex_sha256
    return digest
