"""Retrieval-augmented answers, measured end to end on the product's code paths: retrieval recall
on paraphrased questions, the quality of the answers' context attribution, and removal.

    python -m config.embedded exec --throwaway -- .venv/bin/python bench/rag_eval.py
    ... --docs 2000 --questions 100 --answers 10 --seeds 1 --epochs 2    # a quick look

World (seed 0): `--docs` synthetic fact documents (a person, their trade and town, the
organisation they founded, its year, what it became known for), written in three templates and
spread over 20 sources of 4 rights-holders, plus the distinct paragraphs of the Python Language
Reference that CPython ships (`pydoc_data`, offline; 243 on CPython 3.11) as a source of real
prose. They are ingested,
curated into a published version (near-duplicate threshold 0.95: the templates share words) and
built into a datastore by `datastore_build` (chunks, MiniLM embeddings, full-text index).

1. **Recall@5** of the gold document, for the product's hybrid retrieval and, in the same run,
   its keyword leg alone, its vector leg alone, and the keyword leg (alone and fused) as it was
   before this benchmark chose against it (every word of the question), on three question
   sets, none quoting its
   document: "named" (what the organisation a named person started was famous for: the relation
   in other words), "described" (which tradesperson from a town set up an organisation in a
   year: no name at all) and "python" (the 20 hand paraphrases of bench/attribution_realtext.py).
   Every set is split in two halves by index: "tune" and "report". Any word against every word,
   for the keyword leg, was chosen on the tune half of another world (2,000 documents). The
   keyword leg's weight in the fusion is swept over KEYWORD_WEIGHTS from the lists the two legs
   returned (no more queries): the weight with the best recall on the tune halves pooled is
   chosen, and every weight's report-half recall is written. Figures are read on "report".
2. **Context attribution**: a checkpoint (4 layers, 128 wide) is trained by the training
   service (per seed) on question-answering prompts in the product's own format (1 to 4
   passages, a question, "Answer:" and the answer phrase copied from the gold passage, then a
   question and answer about each other passage), built from facts of *other* people, so its
   answers can only come from the context. (The 2-layer default model trained on one question
   per prompt never answered right, 0 of 120: it did not copy from its context at all. Probes of
   the reader alone, 200 questions on held-out people: 4 layers, 4 questions a prompt, 1,904
   steps: 24% right, and its wrong answers are mostly another passage's phrase copied whole;
   8,000 prompts: 24%; mixed question kinds: 4%. A reader trained on exactly 4 passages read
   every ablation as foreign: in a probe, removing any one passage cost the answer ~18 nats
   alike, and in this benchmark its surrogate's top passage was the copied one no more often
   than chance (2026-12-02, first run); so the reader now sees 1 to 4.) For `--answers` named
   questions of the report half,
   `answer_run` (the job behind POST /api/v1/rag/answers/, k = 4) answers and attributes, once
   per `--ablations` setting. Measured per answer: the surrogate's LDS on its held-out ablations;
   whether its top passage is the passage whose removal lowers the answer's logit-probability
   most (leave-one-out, read by the model in the same job), against the cheap baselines of the
   first-retrieved passage and a random one (1/k); whether the answer contains the gold phrase;
   and, for answers whose phrase (2+ words, up to the first full stop) stands in exactly one
   passage, whether the top passage, and the largest removal, is the passage it was copied from:
   a ground truth that holds whether the answer is right or not.
3. **Removal**: 1,000 probes built to retrieve one source (8 words of one of its documents, and
   their embedding). Then its ai-input refusal is recorded (a robots.txt Content-Signal, through
   the service) and the probes run at once: chunks of it returned (goal 0), seconds from the
   commit to the first probe (goal <= 1 s). The same for a takedown's effect on another source:
   every one of its documents tombstoned in one transaction, as data remediation does.
4. **Latency**: p95 of the hybrid retrieval for the recall questions on this datastore; the
   10^5-chunk figure is bench/retrieval_latency.py's (quoted from its JSON, not rerun).

Intervals: Wilson 95% for rates, a percentile bootstrap (2,000 resamples of answers) for mean LDS.
Writes bench/results/rag_eval.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from tqdm import tqdm

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"  # production's defaults
RESULTS = ROOT / "bench" / "results" / "rag_eval.json"
SOURCES, HOLDERS, K = 20, 4, 4
GOALS = {"removal_chunks_returned": 0, "removal_seconds": 1.0, "p95_ms_at_1e5": 50.0}

FIRST = ("Ada Bram Cora Dov Elin Fenna Gil Hale Ines Joss Kai Lena Milo Nora Olav Pia Quin Rosa "
         "Saul Tova Uma Vito Wren Yara Zeno Alma Bodil Cyrus Dagny Emil Freya Gustav Hedda Ivo "
         "Jonna Knut Liv Magnus Nils Orla Petra Runa Sten Tilde Ulrik Vera Wilma Axel Britt"
         ).split()
SYLLABLES = ("bar dol fen gar hol ket lum mor nev pas quel ros sav tor ul ven wel yor zan bri "
             "cal dra est fir gwe hal isk jor kel lin mar nor ost pel rin sel tam ulm vor").split()
JOBS = ("glassblower weaver cooper tanner miller brewer potter joiner saddler chandler "
        "bookbinder clockmaker printer baker smith dyer mason roper thatcher wheelwright "
        "goldsmith fletcher glazier tailor cobbler hatter locksmith engraver luthier vintner"
        ).split()
KINDS = ("workshop bakery school choir press foundry mill guild library theatre dairy "
         "brewery pottery shipyard observatory").split()
ADJECTIVES = ("painted carved woven gilded polished etched glazed hammered dyed pressed "
              "braided stamped").split()
MATERIALS = ("copper oak linen silver clay walnut wool brass amber pewter cedar flax").split()
ITEMS = ("lanterns bowls clocks shawls barrels lutes kettles mirrors saddles bells maps "
         "candles baskets combs ledgers flutes tiles buckles spoons hats").split()
TEMPLATES = [
    "{name}, a {job} from {town}, is remembered for the {product} made at the {org} {kind}, "
    "which {name_first} founded in {year}.",
    "The {org} {kind} in {town} was founded in {year} by {name}, a {job}; it became known "
    "for its {product}.",
    "In {year} the {job} {name} opened the {org} {kind} at {town}, and its {product} were soon "
    "sold across the region.",
]
NAMED = "What was the {kind} started by {name} famous for?"
DESCRIBED = "Which {job} from {town} established a {kind} in {year}?"


@dataclass(frozen=True)
class Fact:
    name: str
    job: str
    town: str
    org: str
    kind: str
    year: int
    product: str
    text: str


def word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def make_facts(n: int, rng: random.Random, taken: set[str]) -> list[Fact]:
    """n facts with unique names and unique (job, town, kind, year): every question has one
    answer document."""
    towns = sorted({word(rng, 2) for _ in range(400)})
    out: list[Fact] = []
    keys: set[tuple[str, str, str, int]] = set()
    while len(out) < n:
        name = f"{rng.choice(FIRST)} {word(rng, 2)}"
        job, town, kind = rng.choice(JOBS), rng.choice(towns), rng.choice(KINDS)
        year = rng.randint(1780, 1990)
        if name in taken or (job, town, kind, year) in keys:
            continue
        taken.add(name)
        keys.add((job, town, kind, year))
        product = f"{rng.choice(ADJECTIVES)} {rng.choice(MATERIALS)} {rng.choice(ITEMS)}"
        org = word(rng, 3)
        text = rng.choice(TEMPLATES).format(name=name, name_first=name.split()[0], job=job,
                                            town=town, org=org, kind=kind, year=year,
                                            product=product)
        out.append(Fact(name, job, town, org, kind, year, product, text))
    return out


def rate(flags: list[bool]) -> dict[str, Any]:
    from attribution_realtext import wilson

    return {"n": len(flags), "rate": round(sum(flags) / len(flags), 4) if flags else None,
            "wilson95": wilson(sum(flags), len(flags))}


def mean_ci(values: list[float], seed: int = 0, boots: int = 2000) -> dict[str, Any]:
    if not values:
        return {"n": 0, "mean": None, "bootstrap95": None}
    a = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = a[rng.integers(0, len(a), (boots, len(a)))].mean(axis=1)
    return {"n": len(a), "mean": round(float(a.mean()), 4),
            "bootstrap95": [round(float(np.percentile(means, 2.5)), 4),
                            round(float(np.percentile(means, 97.5)), 4)]}


def _setup() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def ingest(source: Any, texts: list[str], folder: Path) -> dict[str, int]:
    """The texts through the ingest service; returns text -> document id."""
    from provenance.models import Document
    from provenance.services.ingest import ingest_path

    path = folder / f"source-{source.pk}.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    job = ingest_path(source=source, path=path, actor=None)
    assert job.state == "succeeded", job.error
    return dict((t, pk) for pk, t in Document.objects.filter(occurrences__source=source)
                .values_list("pk", "text"))


def publish(slug: str, sources: list[int]) -> Any:
    from provenance.services import curation, datasets

    recipe = datasets.recipe_validate({"intended_use": "academic", "sources": sources,
                                       "near_duplicate_threshold": 0.95})
    dataset = datasets.dataset_create(actor=None, slug=slug, title=slug)
    draft = curation.version_create_from_plan(dataset=dataset, recipe=recipe,
                                              plan=curation.curation_plan(recipe), actor=None)
    return datasets.dataset_version_publish(version=draft, actor=None)


def build_world(args: Any, folder: Path) -> dict[str, Any]:
    import attribution_realtext as rt

    from provenance.services.sources import rights_holder_create, source_create
    from retrieval.services import datastores

    rng = random.Random(0)
    taken: set[str] = set()
    facts = make_facts(args.docs, rng, taken)
    stamp = time.time_ns()
    holders = [rights_holder_create(actor=None, name=f"RAG bench holder {stamp} {h}",
                                    contact_email=f"h{h}@rag.example", verified=True)
               for h in range(HOLDERS)]
    sources = [source_create(actor=None, owner=holders[s % HOLDERS], name=f"rag-{stamp}-{s}",
                             license_expression="CC-BY-4.0") for s in range(SOURCES)]
    python = source_create(actor=None, owner=holders[0], name=f"rag-{stamp}-python",
                           license_expression="PSF-2.0")
    started = time.perf_counter()
    doc_of: dict[str, int] = {}
    source_of: dict[int, int] = {}
    for s, source in enumerate(tqdm(sources, desc="ingest", unit="source")):
        mine = [f.text for i, f in enumerate(facts) if i % SOURCES == s]
        ids = ingest(source, mine, folder)
        doc_of.update(ids)
        source_of.update({pk: source.pk for pk in ids.values()})
    # pydoc's topics repeat some paragraphs under several keys: each one once
    paragraphs = list(dict.fromkeys(rt.corpus(400)))[:300]
    doc_of.update(ingest(python, paragraphs, folder))
    version = publish(f"rag-bench-{stamp}", [s.pk for s in sources] + [python.pk])
    ingest_s = time.perf_counter() - started
    started = time.perf_counter()
    queued = datastores.datastore_create(version=version, name=f"rag-bench-{stamp}",
                                         actor=None, enqueue=False)
    store = datastores.datastore_build(datastore_id=queued.pk)
    assert store is not None and store.state == "succeeded", store and store.error
    build_s = time.perf_counter() - started
    print(f"datastore: {store.document_count:,} documents, {store.chunk_count:,} chunks "
          f"({store.embedder}) in {build_s:.0f} s; version {version.document_count:,} of "
          f"{len(facts) + len(paragraphs):,} ingested")
    return {"facts": facts, "paragraphs": paragraphs, "doc_of": doc_of, "source_of": source_of,
            "sources": [s.pk for s in sources], "store": store, "version": version,
            "taken": taken, "ingest_s": ingest_s, "build_s": build_s}


def question_sets(world: dict[str, Any], n: int) -> dict[str, list[dict[str, Any]]]:
    import attribution_realtext as rt

    rng = random.Random(1)
    doc_of = world["doc_of"]
    facts = [f for f in world["facts"] if f.text in doc_of]
    picked = rng.sample(facts, min(n, len(facts)))
    named = [{"question": NAMED.format(kind=f.kind, name=f.name), "gold": doc_of[f.text],
              "answer": f.product} for f in picked]
    described = [{"question": DESCRIBED.format(job=f.job, town=f.town, kind=f.kind,
                                               year=f.year), "gold": doc_of[f.text]}
                 for f in rng.sample(facts, min(n, len(facts)))]
    python = []
    for opening, prompt, completion in rt.PARAPHRASES:
        found = sorted({p for p in world["paragraphs"] if p.startswith(opening) and p in doc_of})
        if len(found) == 1:
            python.append({"question": prompt + completion, "gold": doc_of[found[0]]})
    return {"named": named, "described": described, "python": python}


# The product's keyword leg before this benchmark: every word of the question (websearch_to_tsquery
# ANDs them), so that a paraphrase wording the relation differently matches nothing. Chosen
# against on the tuning half of a 2,000-document world (seed 0): hybrid recall@5 0.83 -> 0.97
# (named), 0.73 -> 0.93 (described), 1.0 -> 1.0 (python, n=10).
ALL_WORDS = "websearch_to_tsquery('english', %(q)s) AS any_word(query)"


def all_words_ids(store: Any, query: str) -> list[int]:
    from django.db import connection

    from retrieval.services import search

    sql = search.KEYWORD_SQL.replace(search.ANY_WORD, ALL_WORDS)
    assert sql != search.KEYWORD_SQL
    with connection.cursor() as cursor:
        cursor.execute(sql, {"store": store.pk, "q": query, "k": search.CANDIDATES})
        return [row[0] for row in cursor.fetchall()]


def weight_sweep(lists: dict[str, list[tuple[str, int, list[int], list[int]]]]
                 ) -> dict[str, Any]:
    """Recall@5 of the fused legs at each keyword weight, from the lists the legs returned (no
    more queries), per set and split; the weight with the best pooled tune recall is chosen
    (ties: the one nearest 1), and its report-half recall is the figure to quote."""
    from core.conf import setting
    from retrieval.engine.fusion import reciprocal_rank
    from retrieval.models import Chunk

    ids = {c for rows in lists.values() for _, _, kw, vec in rows for c in kw + vec}
    doc = dict(Chunk.objects.filter(pk__in=ids).values_list("pk", "document_id"))
    table: dict[str, dict[str, dict[str, Any]]] = {}
    pooled: dict[float, list[bool]] = {}
    for weight in KEYWORD_WEIGHTS:
        per: dict[str, dict[str, list[bool]]] = {}
        for name, rows in lists.items():
            per[name] = {"tune": [], "report": []}
            for split, gold, kw, vec in rows:
                top = reciprocal_rank([kw, vec], limit=5, weights=[weight, 1.0])
                per[name][split].append(any(doc[cast(int, f.item)] == gold for f in top))
        pooled[weight] = [hit for by in per.values() for hit in by["tune"]]
        table[str(weight)] = {name: {split: rate(flags) for split, flags in by.items()}
                              for name, by in per.items()}
    chosen = max(KEYWORD_WEIGHTS, key=lambda w: (sum(pooled[w]), -abs(np.log(w))))
    return {"weights": table, "chosen_on_tune": chosen,
            "product_setting": float(setting("RETRIEVAL_KEYWORD_WEIGHT")),
            "tune_pooled": {str(w): rate(pooled[w]) for w in KEYWORD_WEIGHTS}}


# Keyword-leg weights tried in the fusion (the vector leg's is 1): chosen on the tune halves
# pooled, read on the report halves, every one reported.
KEYWORD_WEIGHTS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 8.0)


def recall(world: dict[str, Any], sets: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    from provenance.services.embeddings import embed_texts
    from retrieval.engine.fusion import reciprocal_rank
    from retrieval.models import Chunk
    from retrieval.services import search
    from retrieval.services.search import retrieve

    store = world["store"]
    out: dict[str, Any] = {}
    hybrid_ms: list[float] = []
    lists: dict[str, list[tuple[str, int, list[int], list[int]]]] = {}
    for name, questions in sets.items():
        vectors, _ = embed_texts([q["question"] for q in questions])
        legs = ("hybrid", "keyword", "vector", "keyword_all_words", "hybrid_all_words")
        found: dict[str, dict[str, list[bool]]] = {
            leg: {"tune": [], "report": []} for leg in legs}
        lists[name] = []
        for i, (q, v) in enumerate(tqdm(list(zip(questions, vectors, strict=True)),
                                        desc=f"recall {name}", unit="q", mininterval=2)):
            split = "tune" if i % 2 == 0 else "report"
            started = time.perf_counter()
            hits = retrieve(store, q["question"], v, k=5)
            hybrid_ms.append((time.perf_counter() - started) * 1000)
            found["hybrid"][split].append(any(h.document == q["gold"] for h in hits))
            keyword_hits = retrieve(store, q["question"], None, k=search.CANDIDATES)
            found["keyword"][split].append(any(h.document == q["gold"]
                                               for h in keyword_hits[:5]))
            vector_hits = retrieve(store, "", v, k=search.CANDIDATES)
            found["vector"][split].append(any(h.document == q["gold"] for h in vector_hits[:5]))
            lists[name].append((split, q["gold"], [h.chunk for h in keyword_hits],
                                [h.chunk for h in vector_hits]))
            strict = all_words_ids(store, q["question"])
            fused = [cast(int, f.item) for f in
                     reciprocal_rank([strict, [h.chunk for h in vector_hits]], limit=5)]
            docs = dict(Chunk.objects.filter(pk__in=strict[:5] + fused)
                        .values_list("pk", "document_id"))
            found["keyword_all_words"][split].append(
                any(docs[c] == q["gold"] for c in strict[:5]))
            found["hybrid_all_words"][split].append(any(docs[c] == q["gold"] for c in fused))
        out[name] = {leg: {split: rate(flags) for split, flags in by.items()}
                     for leg, by in found.items()}
    out["keyword_weight"] = weight_sweep(lists)
    a = np.asarray(hybrid_ms)
    out["latency_ms"] = {"p50": round(float(np.percentile(a, 50)), 2),
                         "p95": round(float(np.percentile(a, 95)), 2), "n": len(a)}
    return out


def qa_prompts(facts: list[Fact], count: int, per_prompt: int, rng: random.Random) -> list[str]:
    """Training documents in the product's prompt format: 1 to 4 facts (as many as an ablation
    of a 4-passage context may keep: a reader that only ever saw 4 passages reads any ablation as
    out of its world, and every passage's removal then costs the answer alike), a question about
    one of them and the answer phrase (prompts.prompt, as answers are generated), then up to
    `per_prompt` - 1 more questions and answers, each about another of the same passages."""
    from retrieval.engine.prompts import prompt

    out = []
    for _ in range(count):
        chosen = rng.sample(facts, rng.randint(1, K))
        first, *more = rng.sample(chosen, len(chosen))[:per_prompt]
        text = prompt(NAMED.format(kind=first.kind, name=first.name),
                      [f.text for f in chosen]) + f" {first.product}."
        for fact in more:
            text += (f"\n\nQuestion: {NAMED.format(kind=fact.kind, name=fact.name)}\n"
                     f"Answer: {fact.product}.")
        out.append(text)
    return out


def train_reader(world: dict[str, Any], args: Any, seed: int, folder: Path) -> Any:
    """A checkpoint trained by the training service on QA prompts about people outside the
    datastore (their answers are in the context or nowhere)."""
    from provenance.services.sources import rights_holder_create, source_create
    from provenance.services.training import training_run_create, training_run_execute

    rng = random.Random(100 + seed)
    others = make_facts(args.qa_people, rng, set(world["taken"]))
    stamp = time.time_ns()
    holder = rights_holder_create(actor=None, name=f"RAG reader {stamp}",
                                  contact_email="reader@rag.example", verified=True)
    source = source_create(actor=None, owner=holder, name=f"rag-reader-{stamp}",
                           license_expression="CC0-1.0")
    ingest(source, qa_prompts(others, args.qa_examples, args.qa_per_prompt, rng), folder)
    version = publish(f"rag-reader-{stamp}", [source.pk])
    config = {"vocab_size": 2048, "n_layer": args.reader_layers, "n_head": 4, "n_embd": 128,
              "seq_len": 256,
              "pack": False, "epochs": args.epochs, "batch_size": 16, "seed": seed,
              "snapshots": 0, "learning_rate": 3e-3}
    started = time.perf_counter()
    run = training_run_execute(run_id=training_run_create(
        version=version, actor=None, enqueue=False, config=config).pk)
    assert run is not None and run.state == "succeeded", run and run.error
    print(f"reader seed {seed}: {version.document_count} prompts, held-out loss "
          f"{run.checkpoint.metrics.get('heldout_loss', float('nan')):.3f}, "
          f"{time.perf_counter() - started:.0f} s")
    return run.checkpoint, config, time.perf_counter() - started


def attribute(world: dict[str, Any], checkpoint: Any, questions: list[dict[str, Any]],
              ablations: int, seed: int) -> list[dict[str, Any]]:
    from retrieval.services.answers import answer_create, answer_run

    rows = []
    rng = random.Random(seed)
    for q in tqdm(questions, desc=f"answers a={ablations}", unit="answer", mininterval=2):
        created = answer_create(datastore=world["store"], checkpoint=checkpoint,
                                question=q["question"], actor=None, k=K, ablations=ablations,
                                params={"max_new_tokens": 8}, enqueue=False)
        answer = answer_run(answer_id=created.pk)
        assert answer is not None and answer.state == "succeeded", answer and answer.error
        passages = answer.passages
        docs = [p["document"] for p in passages]
        row: dict[str, Any] = {"answer": answer.pk, "passages": len(passages),
                               "gold_in_context": q["gold"] in docs,
                               "correct": q["answer"] in answer.text,
                               "lds": answer.attribution.get("lds")}
        if len(passages) >= 2 and answer.attribution:
            contribution = np.asarray([p["contribution"] for p in passages])
            drop = np.asarray([p["leave_one_out"] for p in passages])
            most = int(np.argmax(drop))
            row["top_is_largest_removal"] = int(np.argmax(contribution)) == most
            row["first_retrieved_is_largest_removal"] = most == 0
            row["random_is_largest_removal"] = rng.randrange(len(passages)) == most
            # The passage the answer copied its words from, where exactly one holds them: the
            # ground truth the surrogate's top passage should name, right answer or wrong.
            phrase = answer.text.strip().split("\n")[0].split(".")[0].strip()
            holding = [i for i, p in enumerate(passages)
                       if len(phrase.split()) >= 2 and phrase in p["text"]]
            row["copies_one_passage"] = len(holding) == 1
            if len(holding) == 1:
                row["top_is_copied"] = int(np.argmax(contribution)) == holding[0]
                row["largest_removal_is_copied"] = most == holding[0]
                row["first_retrieved_is_copied"] = holding[0] == 0
                row["random_is_copied"] = rng.randrange(len(passages)) == holding[0]
            if q["gold"] in docs:
                gold = docs.index(q["gold"])
                row["top_is_gold"] = int(np.argmax(contribution)) == gold
                row["largest_removal_is_gold"] = most == gold
        rows.append(row)
    return rows


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def flags(key: str) -> list[bool]:
        return [bool(r[key]) for r in rows if key in r]

    return {
        "answers": len(rows),
        "lds": mean_ci([r["lds"] for r in rows if r["lds"] is not None]),
        "lds_undefined": sum(r["lds"] is None for r in rows),
        "top_is_largest_removal": rate(flags("top_is_largest_removal")),
        "baseline_first_retrieved": rate(flags("first_retrieved_is_largest_removal")),
        "baseline_random": rate(flags("random_is_largest_removal")),
        "expected_random": round(1 / K, 4),
        "top_is_gold": rate(flags("top_is_gold")),
        "largest_removal_is_gold": rate(flags("largest_removal_is_gold")),
        "gold_in_context": rate(flags("gold_in_context")),
        "answer_correct": rate(flags("correct")),
        "copies_one_passage": rate(flags("copies_one_passage")),
        "top_is_copied": rate(flags("top_is_copied")),
        "largest_removal_is_copied": rate(flags("largest_removal_is_copied")),
        "baseline_first_retrieved_copied": rate(flags("first_retrieved_is_copied")),
        "baseline_random_copied": rate(flags("random_is_copied")),
    }


def removal(world: dict[str, Any], probes_n: int) -> dict[str, Any]:
    from django.db import transaction

    from provenance.models import DataSource, Document
    from provenance.services.documents import document_tombstone
    from provenance.services.embeddings import embed_texts
    from provenance.services.usage import opt_out_signal_record
    from retrieval.services.search import retrieve

    rng = random.Random(2)
    store = world["store"]
    by_source: dict[int, list[str]] = {}
    for text, pk in world["doc_of"].items():
        if pk in world["source_of"]:
            by_source.setdefault(world["source_of"][pk], []).append(text)

    def probes(source: int) -> list[tuple[str, Any]]:
        texts = [rng.choice(by_source[source]) for _ in range(probes_n)]
        queries = [" ".join(rng.sample(t.split(), 8)) for t in texts]
        vectors, _ = embed_texts(queries)
        return list(zip(queries, vectors, strict=True))

    def returned(source: int, probe: list[tuple[str, Any]]) -> tuple[int, int, float]:
        """(probes with a chunk of the source in the top 5, such chunks, when the first
        probe's answer came: a perf_counter time)."""
        first, hit, chunks = 0.0, 0, 0
        for query, vector in probe:
            mine = sum(1 for h in retrieve(store, query, vector, k=5)
                       if any(s["id"] == source for s in h.sources))
            first = first or time.perf_counter()
            hit, chunks = hit + bool(mine), chunks + mine
        return hit, chunks, first

    out: dict[str, Any] = {"probes": probes_n}
    refused, taken = world["sources"][0], world["sources"][1]
    probe = probes(refused)
    before = returned(refused, probe)
    with transaction.atomic():
        opt_out_signal_record(source=DataSource.objects.get(pk=refused), actor=None,
                              kind="robots_txt",
                              value="User-agent: *\nContent-Signal: ai-input=no\n")
    committed = time.perf_counter()
    after = returned(refused, probe)
    out["ai_input_refusal"] = {
        "probes_hitting_before": before[0], "probes_hitting_after": after[0],
        "chunks_returned_after": after[1],
        "seconds_commit_to_first_probe": round(after[2] - committed, 4)}
    probe = probes(taken)
    before = returned(taken, probe)
    with transaction.atomic():
        for document in Document.objects.filter(occurrences__source_id=taken):
            document_tombstone(document=document, actor=None, reason="rag bench: takedown")
    committed = time.perf_counter()
    after = returned(taken, probe)
    out["takedown"] = {"probes_hitting_before": before[0], "probes_hitting_after": after[0],
                       "chunks_returned_after": after[1],
                       "seconds_commit_to_first_probe": round(after[2] - committed, 4)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=400, help="per synthetic set")
    parser.add_argument("--answers", type=int, default=60, help="per seed and setting")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--ablations", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--qa-people", type=int, default=3000)
    parser.add_argument("--qa-examples", type=int, default=4000)
    parser.add_argument("--qa-per-prompt", type=int, default=4)
    parser.add_argument("--reader-layers", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    _setup()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        world = build_world(args, folder)
        sets = question_sets(world, args.questions)
        found = recall(world, sets)
        named = [q for i, q in enumerate(sets["named"]) if i % 2 == 1][:args.answers]
        seeds = []
        for seed in range(args.seeds):
            checkpoint, config, train_s = train_reader(world, args, seed, folder)
            by = {a: attribute(world, checkpoint, named, a, seed) for a in args.ablations}
            seeds.append({"seed": seed, "checkpoint": checkpoint.pk, "train_s": round(train_s),
                          "heldout_loss": checkpoint.metrics.get("heldout_loss"),
                          "rows": by})
        removed = removal(world, args.probes)
    attribution = {str(a): summarise([r for s in seeds for r in s["rows"][a]])
                   for a in args.ablations}
    per_seed = {str(a): {s["seed"]: summarise(s["rows"][a]) for s in seeds}
                for a in args.ablations}
    latency_1e5 = None
    reference = ROOT / "bench" / "results" / "retrieval_latency.json"
    if reference.exists():
        prior = json.loads(reference.read_text())
        latency_1e5 = {"chunks": prior["chunks"], "p95_ms": prior["latency"]["product"]["p95_ms"],
                       "date": prior["date"], "from": "bench/results/retrieval_latency.json"}
    refusal, takedown = removed["ai_input_refusal"], removed["takedown"]
    result = {
        "benchmark": "rag_eval",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "date": datetime.now(UTC).date().isoformat(), "args": vars(args),
        "datastore": {"documents": world["store"].document_count,
                      "chunks": world["store"].chunk_count, "embedder": world["store"].embedder,
                      "version_documents": world["version"].document_count,
                      "ingested": len(world["facts"]) + len(world["paragraphs"]),
                      "ingest_and_publish_s": round(world["ingest_s"]),
                      "build_s": round(world["build_s"])},
        "recall_at_5": found,
        "reader": {"config": config,
                   "seeds": [{k: v for k, v in s.items() if k != "rows"} for s in seeds]},
        "attribution": attribution, "attribution_per_seed": per_seed,
        "removal": removed, "latency_at_1e5": latency_1e5, "goals": GOALS,
        "goals_met": {
            "removal_refusal": refusal["chunks_returned_after"] == 0
            and refusal["seconds_commit_to_first_probe"] <= GOALS["removal_seconds"],
            "removal_takedown": takedown["chunks_returned_after"] == 0
            and takedown["seconds_commit_to_first_probe"] <= GOALS["removal_seconds"],
            "p95_at_1e5": latency_1e5 is not None
            and latency_1e5["p95_ms"] <= GOALS["p95_ms_at_1e5"]},
        "seconds": round(time.perf_counter() - started),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    report(result, args.out)
    return 0


def report(result: dict[str, Any], out: Path) -> None:
    def cell(r: dict[str, Any]) -> str:
        lo, hi = r["wilson95"]
        return f"{r['rate']:.2f} [{lo:.2f}, {hi:.2f}] n={r['n']}" if r["n"] else "—"

    store = result["datastore"]
    print(f"\nRAG eval: {store['documents']:,} documents, {store['chunks']:,} chunks")
    print("recall@5 (report half; Wilson 95%)")
    print(f"{'questions':10} {'hybrid (product)':28} {'keyword leg':28} {'vector leg':28}")
    for name in ("named", "described", "python"):
        legs = result["recall_at_5"][name]
        print(f"{name:10} {cell(legs['hybrid']['report']):28} "
              f"{cell(legs['keyword']['report']):28} {cell(legs['vector']['report']):28}")
    sweep = result["recall_at_5"]["keyword_weight"]
    print(f"\nkeyword weight in the fusion (vector leg 1; report half; chosen on the tune half: "
          f"{sweep['chosen_on_tune']}, the product's setting in this run: "
          f"{sweep['product_setting']})")
    print(f"{'weight':>6} {'tune pooled':28} {'named':28} {'described':28} {'python':28}")
    for weight, by in sweep["weights"].items():
        print(f"{weight:>6} {cell(sweep['tune_pooled'][weight]):28} "
              f"{cell(by['named']['report']):28} {cell(by['described']['report']):28} "
              f"{cell(by['python']['report']):28}")
    print(f"hybrid latency on this datastore: p95 {result['recall_at_5']['latency_ms']['p95']} "
          f"ms; at 10^5 chunks: {result['latency_at_1e5']}")
    print("\ncontext attribution (answers pooled over seeds)")
    print(f"{'ablations':>9} {'LDS mean [95%]':24} {'top = largest removal':28} "
          f"{'first retrieved':28} {'answer correct':28}")
    for a, s in result["attribution"].items():
        lds = s["lds"]
        ci = lds["bootstrap95"] or [float("nan")] * 2
        mean = float("nan") if lds["mean"] is None else lds["mean"]
        print(f"{a:>9} {mean:6.3f} [{ci[0]:.3f}, {ci[1]:.3f}]{'':6} "
              f"{cell(s['top_is_largest_removal']):28} "
              f"{cell(s['baseline_first_retrieved']):28} {cell(s['answer_correct']):28}")
    print(f"{'ablations':>9} {'answer copies 1 passage':28} {'top = copied passage':28} "
          f"{'largest removal = copied':28} {'first retrieved = copied':28}")
    for a, s in result["attribution"].items():
        print(f"{a:>9} {cell(s['copies_one_passage']):28} {cell(s['top_is_copied']):28} "
              f"{cell(s['largest_removal_is_copied']):28} "
              f"{cell(s['baseline_first_retrieved_copied']):28}")
    for kind in ("ai_input_refusal", "takedown"):
        r = result["removal"][kind]
        print(f"removal ({kind}): {r['probes_hitting_before']}/{result['removal']['probes']} "
              f"probes hit before, {r['chunks_returned_after']} chunks after; first probe "
              f"{r['seconds_commit_to_first_probe'] * 1000:.0f} ms after the commit")
    print(f"goals met: {result['goals_met']}")
    print(f"wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
