"""The Recipe Bench end to end on the product's services: curation recipes compared DataComp-style
(the same model, the same tokens, several seeds), on a version none of them holds, against the
"everything ingested" reference, with the cost of compliance.

    make bench-deps   # the Debian texts (python3.11-doc, linux-doc-6.1, perl-doc, dict-gcide)
    python -m config.embedded exec --throwaway -- .venv/bin/python bench/recipe_bench.py
    ... --quick       # 2,000 documents, 3 recipes, 100k tokens a seed: a smoke run (~2 min)

World: the English text four Debian packages install (named so that anyone can rebuild it;
files cut at paragraph breaks into pieces of at most --chars characters, a fixed sample per
package), the demo corpus's seven sources under their five licence situations (an opted-out
source among them, `--demo-per-source` documents each) and a gazetteer of made-up facts (each
stated in three documents, in three phrasings). Each source is registered with its real licence
(Python's docs PSF-2.0, the kernel's GPL-2.0-only, Perl's Artistic-1.0-Perl OR
GPL-1.0-or-later, GCIDE GPL-3.0-or-later, the gazetteer CC-BY-4.0). `--eval-per-domain`
documents of each package and of the demo corpus are held out into "(evaluation)" sources,
curated into the evaluation version; training candidates that are the same text or a MinHash
near-duplicate (Jaccard >= 0.8) of an evaluation text are dropped before ingest
(decontamination, counted), and the benchmark's own check must then find none.

Recipes, each a curation job run by `curation_run` (the CurationJob path the API queues), over
the training sources:
  everything      academic use, unknown licences allowed, no deduplication: the reference
  commercial      commercial use without share-alike licences (licences and opt-outs as the
                  product reads them), no deduplication
  minhash         everything, MinHash near-duplicates removed (threshold 0.8, the default)
  semdedup        minhash + SemDeDup (its defaults: 100 clusters, cosine 0.95)
  quality         minhash + Gopher/C4 quality rules (their defaults)
  kcenter         minhash + k-center greedy selection at --select-share of minhash's tokens
  random          minhash + random selection at the same token budget (the cheap baseline)
No knob is tuned: every stage runs with the product's defaults, and the selection budget and
the training size were fixed before the first run.

The benchmark (`benchmark_create`, tiny preset: 1 layer, 64 wide, 1,024-id BPE; `--tokens`
training tokens per seed, the same for every entry) runs through the services the CLI and the
API use: the contamination check, a trial per entry x seed (a TrainingRun each, then held-out
bits per byte per domain and the closed-book probe), the leaderboard with t intervals over seeds,
the cost of compliance (each entry's bits per byte over the reference's, seed by seed) and
decision accuracy (how often one seed orders a pair as the other seeds' mean does). Probe
chance is 1/4; its questions ask each fact in other words than its documents state it.

Goal (issue 21): the whole bench <= 15 minutes on the 2-core CPU machine, >= 5 recipes x 3 seeds,
>= 10^4 documents. Writes bench/results/recipe_bench.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"  # production's defaults
RESULTS = ROOT / "bench" / "results" / "recipe_bench.json"
GOAL_SECONDS = 15 * 60

LICENCES = {"python3.11-doc": "PSF-2.0", "linux-doc-6.1": "GPL-2.0-only",
            "perl-doc": "Artistic-1.0-Perl OR GPL-1.0-or-later",
            "dict-gcide": "GPL-3.0-or-later"}
SHARES = {"python3.11-doc": 0.32, "linux-doc-6.1": 0.36, "perl-doc": 0.14, "dict-gcide": 0.18}
RECIPES = ["everything", "commercial", "minhash", "semdedup", "quality", "kcenter", "random"]
FACT_TEMPLATES = [
    "{name}, a {job} from {town}, founded the {org} {kind} in {year}; it was known for its "
    "{product}.",
    "The {org} {kind} at {town} opened in {year}. Its founder was {name}, a {job}, and it "
    "sold {product}.",
    "In {year} {name} started the {org} {kind} in {town}, where the {job} made {product}.",
]
PROBE = "Who set up the {org} {kind}? It was"


def cut(text: str, limit: int) -> list[str]:
    pieces, current = [], ""
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if current and len(current) + len(para) > limit:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para[:limit]
    if current:
        pieces.append(current)
    return [p for p in pieces if len(p) >= 200]


def real_texts(per_package: dict[str, int], limit: int, rng: random.Random
               ) -> dict[str, list[str]]:
    """A fixed sample of each package's pieces (sorted paths, seeded draw)."""
    from spans import PACKAGES, _read

    out = {}
    for package, (root, patterns) in PACKAGES.items():
        if not Path(root).is_dir():
            raise SystemExit(f"missing Debian package {package}: make bench-deps")
        paths = sorted({p for pattern in patterns for p in Path(root).glob(pattern)
                        if p.is_file()})
        pieces: list[str] = []
        for path in paths:
            # GCIDE's dictd file: one entry a paragraph, cut like the rest
            pieces += cut(_read(path), limit)
        pieces = list(dict.fromkeys(p[:limit] for p in pieces))
        rng.shuffle(pieces)
        out[package] = pieces[:per_package[package]]
    return out


def facts(n: int, rng: random.Random) -> tuple[list[str], list[dict[str, Any]]]:
    """n made-up facts, three documents each, and a 4-choice probe per fact (the other choices
    are founders of other facts: every name was seen in training)."""
    from rag_eval import make_facts

    made = make_facts(n, rng, set())
    docs = [t.format(name=f.name, job=f.job, town=f.town, org=f.org, kind=f.kind,
                     year=f.year, product=f.product) for f in made for t in FACT_TEMPLATES]
    probes = []
    for i, f in enumerate(made):
        others = rng.sample([g.name for j, g in enumerate(made) if j != i], 3)
        choices = [f.name, *others]
        rng.shuffle(choices)
        probes.append({"prompt": PROBE.format(org=f.org, kind=f.kind), "choices": choices,
                       "answer": choices.index(f.name)})
    return docs, probes


def decontaminate(train: dict[str, list[str]], evaluation: list[str]) -> int:
    """Drop training texts that are an evaluation text or a near-duplicate of one."""
    from benchmarks.engine.contamination import contamination
    from provenance.engine.text import content_hash, minhash_signatures, normalise

    def keyed(texts: list[str]) -> list[tuple[str, bytes]]:
        normalised = [normalise(t) for t in texts]
        return list(zip([content_hash(t) for t in normalised], minhash_signatures(normalised),
                        strict=True))

    held = keyed(evaluation)
    dropped = 0
    for name, texts in train.items():
        found = {f.entry for f in contamination(held, keyed(texts), 0.8)}
        train[name] = [t for i, t in enumerate(texts) if i not in found]
        dropped += len(found)
    return dropped


def _setup() -> None:
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def build_world(args: Any, folder: Path) -> dict[str, Any]:
    """Sources, their texts ingested, the evaluation version; returns what the recipes need."""
    from django.utils import timezone

    import demo.corpus as demo
    from provenance.services import usage
    from provenance.services.ingest import ingest_path
    from provenance.services.sources import rights_holder_create, source_create

    rng = random.Random(0)
    total_real = args.docs - args.demo_per_source * 7 - 3 * args.facts
    per_package = {p: round(total_real * s) + args.eval_per_domain for p, s in SHARES.items()}
    real = real_texts(per_package, args.chars, rng)
    held = {p: texts[:args.eval_per_domain] for p, texts in real.items()}
    train = {p: texts[args.eval_per_domain:] for p, texts in real.items()}
    corpus = demo.build_corpus(seed=11, per_source=args.demo_per_source + args.eval_per_domain)
    demo_held = [t for s in corpus for t in s.texts[:args.eval_per_domain // 7 + 1]]
    for s in corpus:
        s.texts = s.texts[args.eval_per_domain // 7 + 1:]
    fact_docs, probes = facts(args.facts, rng)
    train["gazetteer"] = fact_docs
    demo_train = {s.key: s.texts for s in corpus}
    dropped = decontaminate(train, [t for ts in held.values() for t in ts] + demo_held)
    dropped += decontaminate(demo_train, [t for ts in held.values() for t in ts] + demo_held)
    stamp = time.time_ns()
    holder = rights_holder_create(actor=None, name=f"recipe bench {stamp}",
                                  contact_email="bench@recipes.example", verified=True)
    made: dict[str, Any] = {}
    eval_sources: list[Any] = []

    def source(name: str, licence: str, texts: list[str], **kw: Any) -> Any:
        src = source_create(actor=None, owner=holder, name=name,
                            license_expression=licence, **kw)
        path = folder / f"{len(made) + len(eval_sources)}.jsonl"
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        job = ingest_path(source=src, path=path, actor=None)
        assert job.state == "succeeded", job.error
        return src

    started = time.perf_counter()
    for package, texts in train.items():
        made[package] = source(package, LICENCES.get(package, "CC-BY-4.0"), texts)
    for s in corpus:
        made[s.key] = source(s.name, s.license_expression, demo_train[s.key], uri=s.uri)
        if s.opt_out:
            usage.opt_out_signal_record(source=made[s.key], actor=None,
                                        observed_at=timezone.now(), **s.opt_out)
    for package, texts in held.items():
        eval_sources.append(source(f"{package} (evaluation)", "CC0-1.0", texts))
    eval_sources.append(source("demo corpus (evaluation)", "CC0-1.0", demo_held))
    ingest_s = time.perf_counter() - started
    return {"sources": made, "eval_sources": eval_sources, "probes": probes,
            "decontaminated": dropped, "ingest_s": ingest_s,
            "documents": {k: len(v) for k, v in {**train, **demo_train}.items()},
            "eval_documents": sum(len(v) for v in held.values()) + len(demo_held)}


def curate(slug: str, recipe: dict[str, Any]) -> Any:
    """One recipe through the CurationJob path (validated, decided, written, published)."""
    from provenance.services import curation, datasets

    dataset = datasets.dataset_create(actor=None, slug=slug, title=slug)
    job = datasets.curation_job_create(dataset=dataset, actor=None, enqueue=False,
                                       recipe={**recipe, "publish": True})
    done = curation.curation_run(job_id=job.pk)
    assert done is not None and done.state == "succeeded", done and done.error
    return done.version


def recipes(world: dict[str, Any], args: Any, stamp: str) -> tuple[dict[str, Any], dict]:
    train = [s.pk for s in world["sources"].values()]
    base = {"sources": train, "intended_use": "academic", "allow_unknown_license": True}
    plan: dict[str, dict[str, Any]] = {
        "everything": {**base, "near_duplicate_threshold": None},
        "commercial": {"sources": train, "intended_use": "commercial",
                       "exclude_share_alike": True, "near_duplicate_threshold": None},
        "minhash": base,
        "semdedup": {**base, "stages": [{"stage": "semdedup"}]},
        "quality": {**base, "stages": [{"stage": "quality"}]},
    }
    versions, seconds = {}, {}
    for name in [r for r in args.recipes if r in plan]:
        started = time.perf_counter()
        versions[name] = curate(f"rb-{name}-{stamp}", plan[name])
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"  {name:11} {versions[name].document_count:6,} documents "
              f"{versions[name].token_estimate:10,} tokens  {seconds[name]:6.1f} s  "
              f"excluded {versions[name].exclusions_by_reason}")
    budget = None
    for name in [r for r in args.recipes if r in ("kcenter", "random")]:
        if budget is None:
            reference = versions.get("minhash") or curate(f"rb-minhash-{stamp}", base)
            budget = int(reference.token_estimate * args.select_share)
        started = time.perf_counter()
        versions[name] = curate(f"rb-{name}-{stamp}", {**base, "stages": [
            {"stage": "select", "method": name, "token_budget": budget}]})
        seconds[name] = round(time.perf_counter() - started, 1)
        print(f"  {name:11} {versions[name].document_count:6,} documents "
              f"{versions[name].token_estimate:10,} tokens  {seconds[name]:6.1f} s  "
              f"(budget {budget:,})")
    return versions, {"seconds": seconds, "select_token_budget": budget}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=10_800, help="training documents, about")
    parser.add_argument("--chars", type=int, default=1_200, help="characters a document, most")
    parser.add_argument("--demo-per-source", type=int, default=180)
    parser.add_argument("--facts", type=int, default=80)
    parser.add_argument("--eval-per-domain", type=int, default=60)
    parser.add_argument("--tokens", type=int, default=1_200_000,
                        help="training tokens a seed")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--select-share", type=float, default=0.5)
    parser.add_argument("--recipes", nargs="+", default=RECIPES, choices=RECIPES)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.docs, args.demo_per_source, args.facts, args.eval_per_domain = 2_000, 40, 30, 20
        args.tokens, args.recipes = 100_000, ["everything", "commercial", "kcenter"]
    if "everything" not in args.recipes:
        raise SystemExit("the everything recipe is the reference: keep it")
    _setup()
    from benchmarks.engine.leaderboard import table
    from benchmarks.services.runs import (
        benchmark_run_create,
        run_finalize,
        run_plan,
        trial_run,
    )
    from benchmarks.services.setup import benchmark_create, entry_add
    from provenance.services.embeddings import documents_embed

    started = time.perf_counter()
    phases: dict[str, float] = {}
    stamp = str(time.time_ns())
    with tempfile.TemporaryDirectory() as tmp:
        world = build_world(args, Path(tmp))
    phases["corpus_and_ingest"] = round(time.perf_counter() - started, 1)
    ingested = sum(world["documents"].values())
    print(f"ingested {ingested:,} training and {world['eval_documents']:,} evaluation "
          f"documents ({world['decontaminated']} training texts dropped as evaluation "
          f"near-duplicates) in {phases['corpus_and_ingest']:.0f} s")
    mark = time.perf_counter()
    embedded = 0
    while (n := documents_embed()) > 0:  # what the default queue's worker does after ingest
        embedded += n
    phases["embed"] = round(time.perf_counter() - mark, 1)
    print(f"embedded {embedded:,} documents in {phases['embed']:.0f} s")
    mark = time.perf_counter()
    evaluation = curate(f"rb-evaluation-{stamp}", {
        "sources": [s.pk for s in world["eval_sources"]], "intended_use": "academic",
        "allow_unknown_license": True, "near_duplicate_threshold": None})
    versions, curation_info = recipes(world, args, stamp)
    phases["curation"] = round(time.perf_counter() - mark, 1)
    mark = time.perf_counter()
    benchmark = benchmark_create(
        actor=None, name=f"recipe bench {stamp}", evaluation=evaluation,
        token_budget=args.tokens, training={"preset": "tiny"},
        seeds=list(range(args.seeds)), probes=world["probes"],
        description="bench/recipe_bench.py")
    for name, version in versions.items():
        entry_add(actor=None, benchmark=benchmark, version=version, label=name,
                  reference=name == "everything")
    run = benchmark_run_create(benchmark=benchmark, actor=None, enqueue=False)
    trials = run_plan(run_id=run.pk) or []
    run.refresh_from_db()
    if run.state == "failed":
        raise SystemExit(f"benchmark run failed before training: {run.error}")
    trial_seconds = []
    from tqdm import tqdm

    for trial_id in tqdm(trials, desc="trials", unit="trial"):
        t0 = time.perf_counter()
        trial = trial_run(trial_id=trial_id, enqueue_finalize=False)
        assert trial is not None and trial.state == "succeeded", trial and trial.error
        trial_seconds.append(round(time.perf_counter() - t0, 1))
    finished = run_finalize(run_id=run.pk)
    assert finished is not None and finished.state == "succeeded", finished and finished.error
    run = finished
    phases["benchmark"] = round(time.perf_counter() - mark, 1)
    total = round(time.perf_counter() - started, 1)
    print(f"benchmark run {run.pk}: {len(trials)} trials in {phases['benchmark']:.0f} s "
          f"(median trial {sorted(trial_seconds)[len(trial_seconds) // 2]:.1f} s)")
    for line in table(run.results):
        print(line)
    print(f"whole bench: {total:.0f} s (goal {GOAL_SECONDS} s: "
          f"{'met' if total <= GOAL_SECONDS else 'NOT met'})")
    result = {
        "bench": "recipe_bench", "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "device": "cpu"},
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "world": {"training_documents": world["documents"],
                  "evaluation_documents": world["eval_documents"],
                  "decontaminated": world["decontaminated"],
                  "probe_questions": len(world["probes"]), "probe_chance": 0.25},
        "versions": {name: {"documents": v.document_count, "tokens": v.token_estimate,
                            "excluded": v.exclusions_by_reason,
                            "licence_mix": v.counts_by_license_class}
                     for name, v in versions.items()},
        "curation": curation_info, "contamination": run.contamination,
        "phases_s": phases, "trial_seconds": trial_seconds, "total_s": total,
        "goal_s": GOAL_SECONDS, "goal_met": total <= GOAL_SECONDS,
        "results": run.results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
