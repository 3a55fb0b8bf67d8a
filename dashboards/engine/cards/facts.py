"""What every card says about a dataset version, gathered once from the database (by
dashboards.selectors.version_facts) and rendered into each standard format here. Plain data: the
renderers read no settings and no database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from provenance.engine.selection import METHODS


@dataclass(frozen=True)
class GeneratorFacts:
    """Where a synthetic source's text came from: the checkpoint that wrote it, the version it
    trained on, and every source upstream, nearest first."""

    checkpoint: int
    name: str
    sha256: str
    trained_on: str                               # slug@vN
    upstream: tuple[tuple[str, str, str], ...]    # (source name, licence, use class)
    decisive: str = ""    # the upstream source whose use class restricts the text most

    def line(self) -> str:
        up = ", ".join(f"{n} ({lic}, {use})" for n, lic, use in self.upstream) or "none known"
        return (f"written by checkpoint {self.name} (sha256 {self.sha256[:16]}…), trained on "
                f"{self.trained_on}; upstream sources: {up}"
                + (f"; the most restrictive: {self.decisive}" if self.decisive else ""))


@dataclass(frozen=True)
class SourceFacts:
    id: int
    name: str
    owner: str
    uri: str
    license: str           # SPDX expression as registered
    use_class: str         # commercial / non-commercial / academic / unknown
    documents: int         # in this version
    terms_url: str = ""
    license_as_written: str = ""  # the owner's own string, when it was read as `license`
    generator: GeneratorFacts | None = None  # synthetic text: its lineage


@dataclass(frozen=True)
class TakedownFacts:
    reference: str
    legal_basis: str
    documents: int         # removed from this version's lineage by the request
    decided_at: str        # ISO date, or "" while undecided


@dataclass(frozen=True)
class CheckpointFacts:
    id: int
    name: str
    kind: str              # trained / imported / unlearned
    sha256: str
    created_at: str        # ISO timestamp


@dataclass(frozen=True)
class BenchmarkFacts:
    """The version's row in the latest finished run of a recipe benchmark it is entered in."""

    benchmark: str
    run: int
    rank: int
    entries: int                 # ranked among
    reference: bool              # this version is the benchmark's everything reference
    reference_label: str
    bits_per_byte: tuple[float, float, float]   # mean, 95% interval over seeds
    relative: tuple[float, float, float]        # over the reference's, seed by seed
    probe: float | None          # mean accuracy over seeds, if the benchmark has a probe
    decision_accuracy: float | None
    seeds: int
    steps: int

    def line(self) -> str:
        b, r = self.bits_per_byte, self.relative
        versus = ("the everything-ingested reference" if self.reference else
                  f"x{r[0]:.3f} [{r[1]:.3f}, {r[2]:.3f}] the reference ({self.reference_label})")
        probe = f", probe accuracy {self.probe:.2f}" if self.probe is not None else ""
        agree = (f"; seeds agree on the ranking's pairs {self.decision_accuracy:.0%} of the time"
                 if self.decision_accuracy is not None else "")
        return (f"{self.benchmark} (run {self.run}, {self.seeds} seeds x {self.steps} steps): "
                f"rank {self.rank} of {self.entries}, {b[0]:.4f} bits per byte "
                f"[{b[1]:.4f}, {b[2]:.4f}], {versus}{probe}{agree}")


@dataclass(frozen=True)
class CardWords:
    """What the researcher writes; every renderer falls back to facts where a field is empty."""

    summary: str = ""
    uses: str = ""
    out_of_scope: str = ""
    curation_rationale: str = ""
    personal_information: str = ""
    biases: str = ""
    limitations: str = ""
    citation: str = ""


@dataclass(frozen=True)
class VersionFacts:
    slug: str
    title: str
    number: int
    url: str                  # the version's public page
    publisher: str            # the organisation running Trailmark
    published_at: str         # ISO timestamp
    manifest_root: str        # Merkle root over member document hashes
    documents: int
    tokens: int
    bytes: int
    intended_use: str         # the recipe's licence policy
    recipe: dict
    sources: tuple[SourceFacts, ...]
    by_license_class: dict[str, int]
    exclusions: dict[str, int]    # reason -> documents the recipe left out
    languages: dict[str, int] = field(default_factory=dict)   # where known
    parent: str = ""              # slug@vN of the parent version
    diff: dict[str, int] = field(default_factory=dict)       # added / removed vs the parent
    takedowns: tuple[TakedownFacts, ...] = ()
    checkpoints: tuple[CheckpointFacts, ...] = ()
    benchmarks: tuple[BenchmarkFacts, ...] = ()
    words: CardWords = CardWords()

    @property
    def name(self) -> str:
        return f"{self.slug}@v{self.number}"

    @property
    def license_expression(self) -> str:
        """The licences the version is declared under, together: each source's, ANDed."""
        return all_of(s.license for s in self.sources)


def all_of(expressions: Iterable[str]) -> str:
    """SPDX expressions that all apply, as one: sorted, compound ones in parentheses."""
    parts = sorted({e for e in expressions if e})
    if not parts:
        return "NOASSERTION"
    return " AND ".join(f"({p})" if " " in p else p for p in parts)


def stage_lines(recipe: dict) -> list[str]:
    """One line per research stage of the recipe, in its order, as the cards state them."""
    lines = []
    for stage in recipe.get("stages", []):
        kind = stage["stage"]
        if kind == "language":
            lines.append(f"language: only {', '.join(stage['allow'])}"
                         + (" (and undeclared)" if stage["keep_unknown"] else ""))
        elif kind == "quality":
            on = [f"{k} {v}" for k, v in stage.items()
                  if k != "stage" and v is not None and v is not False]
            lines.append("quality heuristics (Gopher / C4): " + ", ".join(on))
        elif kind == "semdedup":
            lines.append(f"semantic deduplication (SemDeDup, {stage['clusters']} clusters): "
                         f"cosine ≥ {stage['threshold']:g} to a kept document removed")
        elif kind == "select":
            method = METHODS[stage["method"]]
            mix = (", mixture " + ", ".join(f"source {k}: {w:g}"
                                            for k, w in stage["mixture"].items())
                   if stage.get("mixture") else "")
            lines.append(f"selection by {method} under a {stage['token_budget']:,}-token budget "
                         f"(seed {stage['seed']}{mix})")
    return lines
