"""The demo workspace: a small corpus Trailmark writes itself (no download), seven sources under
five licence situations, an opted-out source, content shared between sources and near-duplicates,
so that a curated version visibly drops what it should.

The texts come from seeded templates: the same seed gives the same corpus, byte for byte.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

THEMES = {
    "encyclopedia": (
        ["The river delta", "The mountain railway", "The old harbour", "The glass observatory",
         "The salt marsh", "The northern archive", "The copper mine", "The lighthouse"],
        ["was founded in", "was rebuilt after", "expanded rapidly during", "declined sharply in",
         "was surveyed in", "became a protected site in"],
        ["the early colonial period", "the great flood of 1893", "the industrial boom",
         "the long winter of 1947", "a decade of careful restoration", "the census of 1911"],
    ),
    "essay": (
        ["Memory", "A quiet street", "The habit of reading", "Every unfinished letter",
         "Our grandmother's kitchen", "The last train home", "A borrowed coat", "Winter light"],
        ["teaches us", "reminds the writer", "returns to", "refuses to explain",
         "slowly reveals", "is built from"],
        ["how little we notice", "what the city forgets", "the patience of small rooms",
         "a promise nobody kept", "the weight of ordinary days", "the cost of leaving"],
    ),
    "letter": (
        ["Dear Margaret", "My dear brother", "Dearest Thomas", "To my friend at Dunmore",
         "Dear cousin Ellen", "My dear Mr Hale"],
        ["the harvest came in", "the roof was mended", "your parcel arrived",
         "the river froze over", "the school reopened", "our mother recovered"],
        ["before the rains", "on the first of March", "much to everyone's relief",
         "after a long delay", "while you were away", "just as you predicted"],
    ),
    "lecture": (
        ["Lecture 4 covers", "This session introduces", "Today we derive",
         "The problem set asks you to prove", "Section 2 revisits", "We now generalise"],
        ["the spectral theorem", "Bayes' rule for continuous variables", "the Nyquist limit",
         "the law of large numbers", "gradient descent with momentum", "Noether's theorem"],
        ["for symmetric matrices", "under weak assumptions", "with worked examples",
         "in two dimensions first", "using only linear algebra", "as an exercise"],
    ),
    "news": (
        ["The city council", "Regional farmers", "The harbour authority", "Local teachers",
         "The transit agency", "Hospital staff"],
        ["voted on Tuesday to", "announced plans to", "warned that they may",
         "agreed after long talks to", "are expected to", "refused to"],
        ["raise the water tariff", "extend the night bus routes", "close the eastern pier",
         "delay the new school year", "open a second clinic", "cut parking fees"],
    ),
    "forum": (
        ["Has anyone tried", "Quick question about", "My experience with",
         "Unpopular opinion on", "Help needed with", "Long review of"],
        ["the new firmware", "sourdough starters", "second-hand bicycles", "the museum pass",
         "rooftop gardens", "cheap film cameras"],
        ["after three months", "on a tight budget", "in a small flat", "for beginners",
         "compared to last year", "with mixed results"],
    ),
}


def _paragraph(rng: random.Random, theme: str, sentences: int) -> str:
    subjects, verbs, objects = THEMES[theme]
    out = []
    for _ in range(sentences):
        tail = rng.choice(["", f" Records from {rng.randint(1850, 2020)} confirm it.",
                           f" Witnesses counted {rng.randint(2, 900)} of them.",
                           f" It is noted under reference {rng.randint(1000, 99999)}."])
        out.append(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}.{tail}")
    return " ".join(out)


def _texts(rng: random.Random, theme: str, n: int) -> list[str]:
    seen: set[str] = set()
    texts: list[str] = []
    while len(texts) < n:
        text = _paragraph(rng, theme, rng.randint(5, 9))
        if text not in seen:
            seen.add(text)
            texts.append(text)
    return texts


def _near_duplicate(rng: random.Random, text: str) -> str:
    """One word changed: a near-duplicate well above a 0.8 Jaccard threshold on word 5-grams
    for texts of ~60+ words."""
    words = text.split()
    i = rng.randrange(len(words) // 2, len(words))
    words[i] = words[i] + "s"
    return " ".join(words)


@dataclass
class DemoSource:
    key: str
    owner: str
    name: str
    license_expression: str
    fmt: str
    texts: list[str] = field(default_factory=list)
    opt_out: dict[str, str] | None = None
    uri: str = ""
    acquisition: str = "crawled"


def build_corpus(seed: int = 7, per_source: int = 40) -> list[DemoSource]:
    rng = random.Random(seed)
    enc = _texts(rng, "encyclopedia", per_source)
    essays = _texts(rng, "essay", per_source)
    letters = _texts(rng, "letter", per_source)
    lectures = _texts(rng, "lecture", per_source)
    news = _texts(rng, "news", per_source)
    forum = _texts(rng, "forum", per_source)
    # The mirror re-publishes essays verbatim (shared content: one document, two sources) and
    # lightly edited encyclopedia articles (near-duplicates), next to some letters of its own.
    mirror = essays[:6] + [_near_duplicate(rng, t) for t in enc[:6]] + \
        _texts(rng, "letter", per_source // 2)
    return [
        DemoSource("encyclopedia", "Commons Foundation", "Open Encyclopedia", "CC-BY-SA-4.0",
                   "jsonl", enc, uri="https://encyclopedia.example.org",
                   acquisition="public_dataset"),
        DemoSource("essays", "Harbor Press", "Harbor Press Essays", "CC-BY-NC-4.0", "csv",
                   essays, uri="https://harborpress.example.com/essays", acquisition="licensed"),
        DemoSource("letters", "Commons Foundation", "Public Domain Letters", "CC0-1.0", "folder",
                   letters, uri="https://letters.example.org"),
        DemoSource("lectures", "Aldermoor University", "Aldermoor Lecture Notes",
                   "LicenseRef-Trailmark-Academic-Only", "parquet", lectures,
                   uri="https://aldermoor.example.ac.uk/notes", acquisition="licensed"),
        DemoSource("news", "Northwind Media", "Northwind News", "CC-BY-4.0", "jsonl", news,
                   uri="https://northwind.example.net",
                   opt_out={"kind": "robots_txt", "url": "https://northwind.example.net/robots.txt",
                            "value": "User-agent: GPTBot\nDisallow: /\n"
                                     "User-agent: CCBot\nDisallow: /"}),
        # The forum lets models train on it but not answer from it (Cloudflare's signals).
        DemoSource("forum", "Forum Collective", "Community Forum Archive", "NOASSERTION", "jsonl",
                   forum, uri="https://forum.example.com",
                   opt_out={"kind": "robots_txt", "url": "https://forum.example.com/robots.txt",
                            "value": "User-agent: *\nContent-Signal: search=yes, ai-train=yes, "
                                     "ai-input=no\nAllow: /"}),
        DemoSource("mirror", "Commons Foundation", "Open Commons Mirror", "MIT", "jsonl", mirror,
                   uri="https://mirror.example.org"),
    ]


def write_files(source: DemoSource, folder: Path) -> Path:
    """Write a source's texts in its format; return what to ingest."""
    folder.mkdir(parents=True, exist_ok=True)
    if source.fmt == "jsonl":
        path = folder / f"{source.key}.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for i, text in enumerate(source.texts):
                out.write(json.dumps({"id": f"{source.key}-{i}", "text": text,
                                      "url": f"{source.uri}/{i}", "language": "en"}) + "\n")
        return path
    if source.fmt == "csv":
        path = folder / f"{source.key}.csv"
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["id", "title", "text", "lang"])
            for i, text in enumerate(source.texts):
                writer.writerow([f"{source.key}-{i}", text.split(".")[0], text, "en-GB"])
        return path
    if source.fmt == "folder":
        path = folder / source.key
        path.mkdir(exist_ok=True)
        for i, text in enumerate(source.texts):
            (path / f"{i:04d}.txt").write_text(text + "\n", encoding="utf-8")
        return path
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / f"{source.key}.parquet"
    table = pa.table({"id": [f"{source.key}-{i}" for i in range(len(source.texts))],
                      "text": source.texts})
    pq.write_table(table, path)
    return path
