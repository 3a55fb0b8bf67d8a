"""A checkpoint's model card: what it was trained on (the version, its licence mix), where it
came from, and every remediation asked of it, with huggingface_hub's ModelCard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboards.engine.cards.markdown import inline

TEMPLATE = (Path(__file__).parent / "model_card.md.j2").read_text()


@dataclass(frozen=True)
class ModelFacts:
    name: str
    kind: str
    sha256: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    version: str
    version_url: str
    manifest_root: str
    documents: int
    license_expression: str
    license_mix: dict[str, int]      # licence (use) class -> documents
    lineage: tuple[str, ...]         # parent checkpoints, nearest first, as sentences
    remediations: tuple[str, ...]    # one sentence per remediation run
    origin: str = ""                 # the takedown remediation that made it, if one did


def model_card(facts: ModelFacts) -> str:
    from huggingface_hub import ModelCard, ModelCardData  # loaded when a card is made

    config = facts.config
    architecture = (f"{config['n_layer']} layers, {config['n_embd']} wide, vocabulary "
                    f"{config['vocab_size']}" if {"n_layer", "n_embd", "vocab_size"} <= set(config)
                    else "")
    data = ModelCardData(model_name=facts.name, license="other", license_name="see training data",
                         datasets=[facts.version_url], pipeline_tag="text-generation",
                         library_name="transformers", tags=["trailmark", facts.kind])
    card = ModelCard.from_template(
        data, template_str=TEMPLATE, name=inline(facts.name), kind=facts.kind,
        sha256=facts.sha256, architecture=architecture, version=inline(facts.version),
        manifest_root=facts.manifest_root, documents=facts.documents,
        license_expression=facts.license_expression,
        license_mix=sorted(facts.license_mix.items()),
        lineage=[inline(step) for step in facts.lineage],
        remediations=[inline(step) for step in facts.remediations],
        origin=inline(facts.origin),
        metrics=sorted((inline(k), inline(round(v, 4) if isinstance(v, float) else v))
                       for k, v in facts.metrics.items()))
    return str(card)
