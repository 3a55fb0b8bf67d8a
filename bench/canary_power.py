"""Canary power curves: how often a source's canary is detected against how many documents carry
it (k) and how big the corpus is, with the false-positive rate beside it (pure engine: no
Django). The product's defaults throughout: the default model and training run, 12 pseudo-word
canaries, 1,000 null sequences, alpha 0.01, one source tested (no Bonferroni).

    python bench/canary_power.py            # the grid below, seeds 0-2 (~35 min on 2 cores)
    python bench/canary_power.py --quick    # 400 documents, 20 epochs, seed 0

Grid (documents x epochs): 400, 1,600 and 6,400 documents at the default training run's 20
epochs, and 6,400 and 25,600 documents seen once (a pretraining-like single pass).

Each model is trained on a corpus of the watermark world's documents (bench/watermark_eval.py:
15 sources, names and themes) into which `--per-k` canaries are inserted for each k in
{1, 2, 4, 8, 16} (each a different secret, carried by k documents chosen by the product's keyed
rule, appended as the export appends them), and as many secrets are never inserted. Training
holds out 5% of documents, as it always does: a canary whose carriers were all held out was
never trained on, and still counts (its source inserted it). Power = share of inserted canaries
with p < alpha; false-positive rate = share of never-inserted ones; 95% Wilson intervals pooled
over seeds. Writes bench/results/canary_power.json.

Wei et al. (2024), "Proving membership in LLM pretraining data via data watermarks", report the
same test's strength rising with the number of duplicates and the sequence length, falling as
the training set grows for a fixed model size (and holding when the model grows with it), and
SHA hashes in BLOOM-176B's training data detected reliably once they occur at least 90 times.
Goal (issue 18): power >= 0.95 at k = 8 with the false-positive rate held at alpha.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from watermark_eval import fmt, share, source_names, source_texts  # noqa: E402

KS = (1, 2, 4, 8, 16)
ALPHA = 0.01
NULLS = 1000


def corpus(seed: int, documents: int, sources: int = 15) -> list[str]:
    rng = random.Random(f"canary corpus {seed}")
    names = source_names(seed, sources)
    per = -(-documents // sources)
    docs = [d for s in range(sources) for d in source_texts(names[s], s, per, rng)]
    rng.shuffle(docs)
    return docs[:documents]


def run_model(seed: int, documents: int, epochs: int, args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from provenance.engine import canary, lm
    from provenance.engine.lm_config import TrainConfig

    docs = corpus(seed, documents)
    shas = [hashlib.sha256(d.encode()).hexdigest() for d in docs]
    planted: list[dict[str, Any]] = []
    carried: dict[str, list[str]] = {}
    for k in KS:
        for i in range(args.per_k):
            secret = f"power {seed} {documents} k{k} #{i}"
            spec = canary.CanarySpec(copies=k)
            carriers = canary.carrier_documents(secret, shas, k)
            sequence = canary.canary_sequence(spec, secret)
            for sha in carriers:
                carried.setdefault(sha, []).append(sequence)
            planted.append({"k": k, "secret": secret, "carriers": carriers})
    texts = []
    for text, sha in zip(docs, shas, strict=True):
        for sequence in carried.get(sha, []):
            text = canary.insert(text, sequence)
        texts.append(text)
    never = [{"k": 0, "secret": f"never {seed} {documents} #{i}"}
             for i in range(args.per_k * len(KS))]

    config = TrainConfig(seed=seed, epochs=epochs)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = lm.train(texts, config, Path(tmp) / "run", device=args.device)
        train_s = time.perf_counter() - start
        model, tokenizer = lm.load(result.model_dir, device=args.device)
    held = {shas[i] for i in result.heldout_texts}

    # One null set per model, shared by its tests: each test is exactly the product's (the
    # nulls are independent draws from the canary's distribution), 80 times cheaper; the
    # tests of one model are then not independent of each other, as they would not be anyway.
    start = time.perf_counter()
    spec = canary.CanarySpec()
    items = planted + never
    null = lm.sequence_loss(model, tokenizer, canary.null_sequences(
        spec, f"power null {seed} {documents}", NULLS))
    observed = lm.sequence_loss(model, tokenizer, [canary.canary_sequence(spec, i["secret"])
                                                   for i in items])
    rows = []
    for item, loss in zip(items, observed, strict=True):
        test = canary.membership_test(loss, null)
        rows.append({"k": item["k"], "p_value": test.p_value, "z": round(test.z, 2),
                     "carriers_trained": sum(c not in held for c in item.get("carriers", []))})
    test_s = time.perf_counter() - start
    tokens = sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in docs[:200])
    return {"seed": seed, "documents": documents, "epochs": epochs,
            "tokens_per_epoch": round(tokens / min(200, len(docs)) * len(docs)),
            "train_tokens": result.tokens, "train_s": round(train_s, 1),
            "test_s": round(test_s, 1), "parameters": result.parameters,
            "median_z": {str(k): float(np.median([r["z"] for r in rows if r["k"] == k]))
                         for k in (0, *KS)},
            "tests": rows}


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", default="400x20,1600x20,6400x20,6400x1,25600x1",
                        help="documents x epochs of each corpus (20: the default training run)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--per-k", type=int, default=8, help="canaries per k in each model")
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "canary_power.json")
    args = parser.parse_args()
    if args.quick:
        args.grid, args.seeds, args.per_k = "400x20", "0", 4
    grid = [tuple(int(x) for x in cell.split("x")) for cell in args.grid.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]

    models = []
    for documents, epochs in grid:
        for seed in seeds:
            m = run_model(seed, documents, epochs, args)
            models.append(m)
            print(f"{documents:>6} documents x {epochs} epochs, seed {seed}: "
                  f"{m['tokens_per_epoch']:,} tokens an "
                  f"epoch, train {m['train_s']:.0f} s, tests {m['test_s']:.0f} s; median z "
                  + ", ".join(f"k={k} {z:.1f}" for k, z in m["median_z"].items()), flush=True)

    curves: dict[str, dict[str, Any]] = {}
    for documents, epochs in grid:
        these = [m for m in models if (m["documents"], m["epochs"]) == (documents, epochs)]
        tests = [t for m in these for t in m["tests"]]
        curves[f"{documents}x{epochs}"] = {
            "documents": documents, "epochs": epochs,
            **{f"k={k}": share(sum(t["p_value"] < ALPHA for t in tests if t["k"] == k),
                               sum(t["k"] == k for t in tests)) for k in KS},
            "false_positive": share(sum(t["p_value"] < ALPHA for t in tests if t["k"] == 0),
                                    sum(t["k"] == 0 for t in tests)),
            "tokens_per_epoch": round(sum(m["tokens_per_epoch"] for m in these) / len(these)),
        }
    print(f"\npower at alpha {ALPHA} (95% Wilson, {len(seeds)} seeds x {args.per_k} canaries "
          f"per k pooled)")
    print(f"{'documents':>10} {'epochs':>6} {'tokens':>9} "
          + " ".join(f"{f'k={k}':>20}" for k in KS) + f" {'false positive':>20}")
    for c in curves.values():
        print(f"{c['documents']:>10} {c['epochs']:>6} {c['tokens_per_epoch']:>9,} "
              + " ".join(f"{fmt(c[f'k={k}']):>20}" for k in KS)
              + f" {fmt(c['false_positive']):>20}")
    report = {
        "benchmark": "canary_power", "alpha": ALPHA, "nulls": NULLS, "ks": list(KS),
        "per_k": args.per_k, "seeds": seeds, "grid": [list(g) for g in grid], "quick": args.quick,
        "curves": curves, "models": models,
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "goal": {"k": 8, "power": 0.95, "false_positive_rate": ALPHA},
        "reference": "Wei, Wang, Jia (2024), arXiv:2402.10892",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
