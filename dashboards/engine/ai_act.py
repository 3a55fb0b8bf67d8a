"""The EU AI Act training-content summary (Art. 53(1)(d)) of a model, computed from the data it
was trained on, in the order of the Commission's template: general information (modalities and
size ranges), the sources by type (with the top domains by share), and the data-processing
aspects (reservations of rights honoured, takedowns handled). Rendered as HTML by a template and
as PDF here (fpdf2)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from urllib.parse import urlsplit

# The template's size ranges for text, in tokens.
TEXT_SIZE_RANGES = [(10**9, "less than 1 billion tokens"),
                    (10**13, "1 billion to 10 trillion tokens")]
ACQUISITION_ORDER = ["public_dataset", "licensed", "crawled", "user_data", "synthetic", "other"]


@dataclass(frozen=True)
class SourceShare:
    name: str
    owner: str
    acquisition: str      # DataSource.Acquisition value
    uri: str
    license: str
    documents: int
    tokens: int
    # synthetic text: the model that wrote it and every source upstream, with the decisive one
    chain: str = ""


@dataclass(frozen=True)
class AiActSummary:
    provider: str
    model: str
    model_sha256: str
    versions: tuple[str, ...]          # the dataset versions it was trained on, nearest first
    generated_at: str
    sources: tuple[SourceShare, ...]
    opt_out_kinds: tuple[str, ...]     # the kinds of signal the curation reads
    sources_with_opt_out: int          # sources with a reservation observed
    excluded_for_opt_out: int          # documents left out for an opt-out
    takedowns_received: int
    takedowns_accepted: int
    takedowns_rejected: int
    documents_removed_by_takedowns: int
    transparency_url: str

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.sources)

    @property
    def size_range(self) -> str:
        return next((label for bound, label in TEXT_SIZE_RANGES if self.tokens < bound),
                    "more than 10 trillion tokens")

    def by_type(self) -> list[tuple[str, list[SourceShare], float]]:
        """Each source type with its sources and its share of the tokens."""
        total = self.tokens or 1
        groups = []
        for kind in ACQUISITION_ORDER:
            members = [s for s in self.sources if s.acquisition == kind]
            if members:
                groups.append((kind, members, sum(s.tokens for s in members) / total))
        return groups

    def top_domains(self) -> list[tuple[str, float]]:
        """The top 10% of domain names by share of the tokens (at least one, at most 1,000),
        as the template asks of crawled data; here over every source with a web address."""
        tokens: Counter[str] = Counter()
        for source in self.sources:
            host = urlsplit(source.uri).hostname if "://" in source.uri else None
            if host:
                tokens[host.removeprefix("www.")] += source.tokens
        total = sum(tokens.values()) or 1
        keep = min(1000, max(1, math.ceil(len(tokens) * 0.1)))
        return [(host, n / total) for host, n in tokens.most_common(keep)]


LABELS = {"public_dataset": "Publicly available datasets",
          "licensed": "Private datasets licensed from rights-holders",
          "crawled": "Data crawled and scraped from online sources",
          "user_data": "User data", "synthetic": "Synthetic data", "other": "Other sources"}


def summary_pdf(summary: AiActSummary) -> bytes:
    from provenance.engine.pdf import TextDocument  # fpdf: loaded when a PDF is made

    pdf = TextDocument(spacing=1)
    line = pdf.paragraph

    line("Public summary of training content (EU AI Act, Art. 53(1)(d))", 15, bold=True)
    line(f"Provider: {summary.provider}. Model: {summary.model} (sha256 "
         f"{summary.model_sha256}). Generated {summary.generated_at} from the training data.", 9)
    line("1. General information", 12, bold=True)
    line(f"Modalities: text. Training data size: {summary.size_range} (about "
         f"{summary.tokens:,} tokens, {sum(s.documents for s in summary.sources):,} documents). "
         f"Dataset versions: {', '.join(summary.versions)}.")
    line("2. List of data sources", 12, bold=True)
    for kind, members, share in summary.by_type():
        line(f"{LABELS[kind]} ({share:.0%} of tokens)", 10, bold=True)
        for s in members:
            line(f"- {s.name} ({s.owner}; {s.license}; {s.documents:,} documents)"
                 + (f"; {s.chain}" if s.chain else ""), 9)
    domains = summary.top_domains()
    if domains:
        line("Top domain names by share of content", 10, bold=True)
        for host, share in domains:
            line(f"- {host}: {share:.1%}", 9)
    line("3. Data processing aspects", 12, bold=True)
    line(f"Reservations of rights (Art. 4(3) DSM Directive): the curation reads "
         f"{', '.join(summary.opt_out_kinds)} signals per source and leaves out every document "
         f"of a source whose signals reserved the rights against training (its train verdict) "
         f"before the recipe's cut-off. "
         f"{summary.sources_with_opt_out} source(s) had reserved their rights against training; "
         f"{summary.excluded_for_opt_out:,} document(s) were left out for it.")
    line(f"Takedown handling: {summary.takedowns_received} request(s) received, "
         f"{summary.takedowns_accepted} accepted, {summary.takedowns_rejected} rejected; "
         f"{summary.documents_removed_by_takedowns:,} document(s) removed from this model's "
         f"training data lineage. Statistics: {summary.transparency_url}")
    return bytes(pdf.output())
