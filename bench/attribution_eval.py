"""Attribution quality on a fact world (pure engine: no Django).

    python bench/attribution_eval.py                   # CPU, about 5 minutes
    python bench/attribution_eval.py --subsets 48 --epochs 20 --damping 0.03

World: P synthetic people, each with two facts (birthplace, occupation), each fact stated in two
paraphrase templates: 4P short documents. One tiny GPT is trained on all of them (the model being
attributed; with --ensemble E, E of them with different seeds), and M models on random 50%
subsets (the ground truth of what each document does). A query is a fact's prompt with its value
as the completion; its loss counts the value's tokens only.

Methods: Trailmark's influence (LoGra-projected per-layer gradients, damped projected
preconditioner from the sampled-label Fisher), the same with the empirical Fisher, the raw dot
product of the same projected gradients, and IDF word overlap.
Metrics per method:
* LDS: per query, the Spearman correlation over the M subsets between the summed scores of the
  subset's documents and minus the subset model's loss on the query; averaged over queries;
* recall@1 (the top document states the query's fact), strict recall@2 (both paraphrases of the
  fact are the top two), MRR of the first paraphrase.
Goals (issue 4): LDS >= 0.75, recall@1 = 1.0, strict recall@2 >= 0.6, influence beats the dot
product by >= 0.15 LDS. Writes bench/results/attribution_eval.json.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = ["Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Kira", "Luca", "Mira", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tove"]
LAST = ["Arden", "Brisk", "Corvo", "Dahl", "Eske", "Falk", "Grove"]
CITIES = ["Lisbon", "Oslo", "Quito", "Hanoi", "Dakar", "Lima", "Perth", "Riga", "Tunis", "Kyoto",
          "Porto", "Bergen"]
JOBS = ["baker", "pilot", "nurse", "farmer", "painter", "lawyer", "miner", "tailor", "chemist",
        "sailor", "teacher", "welder"]
TEMPLATES = {
    "city": ("{name} was born in {value}.", "The birthplace of {name} is {value}."),
    "job": ("{name} works as a {value}.", "By trade, {name} is a {value}."),
}


def fact_world(people: int, seed: int) -> tuple[list[str], list[dict]]:
    """(documents, queries); query["docs"] are the indices of its fact's two paraphrases."""
    rng = random.Random(seed)
    names = [f"{f} {s}" for s in LAST for f in FIRST]
    rng.shuffle(names)
    docs: list[str] = []
    queries: list[dict] = []
    for p, name in enumerate(names[:people]):
        for kind, values in (("city", CITIES), ("job", JOBS)):
            value = rng.choice(values)
            first = len(docs)
            for template in TEMPLATES[kind]:
                docs.append(template.format(name=name, value=value))
            template = TEMPLATES[kind][(p + len(queries)) % 2]
            prompt, _ = template.split("{value}")
            # The value keeps its leading space, tokenized as in the documents.
            queries.append({"prompt": prompt.format(name=name).rstrip(),
                            "completion": f" {value}.",
                            "docs": [first, first + 1], "kind": kind})
    return docs, queries


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    value = spearmanr(a, b).statistic
    return 0.0 if math.isnan(value) else float(value)


def idf_overlap(docs: list[str], queries: list[dict]) -> list[list[float]]:
    words = [set(d.lower().replace(".", "").split()) for d in docs]
    df = Counter(w for ws in words for w in ws)
    idf = {w: math.log(len(docs) / c) for w, c in df.items()}
    out = []
    for q in queries:
        qw = set(f"{q['prompt']} {q['completion']}".lower().replace(".", "").split())
        out.append([sum(idf[w] for w in ws & qw) for ws in words])
    return out


def query_losses(model_dir: Path, queries: list[dict]) -> list[float]:
    import torch

    from provenance.engine import lm

    model, tokenizer = lm.load(model_dir, device="cpu")
    losses = []
    with torch.no_grad():
        for q in queries:
            head = tokenizer(q["prompt"], add_special_tokens=False)["input_ids"]
            tail = tokenizer(q["completion"], add_special_tokens=False)["input_ids"]
            ids = torch.tensor([[tokenizer.eos_token_id, *head, *tail]])
            logits = model(input_ids=ids).logits[0, :-1]
            nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none")
            losses.append(float(nll[-len(tail):].mean()))
    return losses


def train(texts: list[str], config: dict, work: Path, tokenizer_dir: Path, seed: int) -> Path:
    from provenance.engine import lm
    from provenance.engine.lm_config import TrainConfig

    shutil.copytree(tokenizer_dir, work / "tokenizer")
    result = lm.train(texts, TrainConfig.from_dict({**config, "seed": seed}), work,
                      device="cpu")
    return result.model_dir


def main() -> None:
    from attribution.engine.features import FeatureSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--subsets", type=int, default=24)
    parser.add_argument("--ensemble", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--damping", type=float, default=FeatureSpec.damping)
    parser.add_argument("--fisher-samples", type=int, default=FeatureSpec.fisher_samples,
                        help="label draws per document (0: automatic)")
    parser.add_argument("--empirical-damping", type=float, default=1.0,
                        help="damping of the empirical-Fisher comparison (its best)")
    parser.add_argument("--k-max", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/attribution_eval.json")
    args = parser.parse_args()

    import numpy as np
    import torch
    from tqdm import tqdm

    from attribution.engine import influence as inf
    from provenance.engine import lm
    from provenance.engine.lm_config import TrainConfig

    torch.set_num_threads(max(1, torch.get_num_threads()))
    docs, queries = fact_world(args.people, args.seed)
    config = {"vocab_size": 512, "n_layer": 2, "n_head": 4, "n_embd": 64, "seq_len": 32,
              "epochs": args.epochs, "batch_size": 8, "learning_rate": 3e-3,
              "heldout_fraction": 0.0, "checkpoint_every": 10_000, "warmup_steps": 10,
              "pack": False, "snapshots": 5}
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="factworld-"))
    try:
        tok_dir = tmp / "tokenizer"
        lm.train_tokenizer(docs, TrainConfig.from_dict(config), tok_dir)
        rng = np.random.default_rng(args.seed)
        subsets = [np.sort(rng.choice(len(docs), len(docs) // 2, replace=False))
                   for _ in range(args.subsets)]
        full_dirs, losses = [], []
        for e in tqdm(range(args.ensemble), desc="full models"):
            full_dirs.append(train(docs, config, tmp / f"full{e}", tok_dir, seed=e))
        for m, subset in enumerate(tqdm(subsets, desc="subset models")):
            # Same initialisation as the first full model: the subsets differ only in their data.
            model_dir = train([docs[i] for i in subset], {**config, "snapshots": 0},
                              tmp / f"sub{m}", tok_dir, seed=0)
            losses.append(query_losses(model_dir, queries))
            shutil.rmtree(tmp / f"sub{m}")
        trained_s = time.perf_counter() - started

        spec = inf.FeatureSpec(k_max=args.k_max, damping=args.damping,
                               fisher_samples=args.fisher_samples).resolved(len(docs))

        def scores_of(model_dir: Path, snapshot: str | None) -> tuple[Any, Any, Any]:
            """(influence, influence with the empirical Fisher, dot product) matrices, scored
            as the services score: fp16 shards in a GradientStore, `score_all`."""
            model, tokenizer = lm.load(model_dir, device="cpu", snapshot=snapshot)
            featurizer = inf.Featurizer(model, spec, lm.load_watermark_heads(
                model, tokenizer, model_dir, snapshot))
            seeds = [inf.fisher_seed(spec.seed, i) for i in range(len(docs))]
            train_x, drawn = inf.featurize_with_fisher(
                featurizer, [inf.document_example(tokenizer, d, spec.max_tokens) for d in docs],
                seeds, spec.fisher_samples)
            query_x = inf.featurize(featurizer, [inf.query_example(
                tokenizer, q["prompt"], q["completion"], spec.max_tokens) for q in queries])
            folder = tmp / "stores" / f"{model_dir.name}-{snapshot or 'final'}"

            def store(name: str, rows: Any, damping: float) -> Any:
                shard = inf.shard_save(folder / name, "00000", np.arange(len(docs)), train_x,
                                       rows)
                return inf.GradientStore.finalize(folder / name, [shard["name"]],
                                                  {"dim": featurizer.dim}, damping)

            sampled = store("sampled", drawn, spec.damping)
            empirical = store("empirical", None, args.empirical_damping)
            out = (inf.score_all([sampled], [query_x])[1],
                   inf.score_all([empirical], [query_x])[1],
                   inf.score_all([sampled], [query_x], precondition=False)[1])
            shutil.rmtree(folder)
            return out

        finals = [scores_of(d, None) for d in full_dirs]
        trajectory = [*[scores_of(full_dirs[0], s) for s in lm.snapshots(full_dirs[0])],
                      finals[0]]
        # Snapshots at 1/6 ... 5/6 of training: every other one and the final weights are what
        # "snapshots": 2 keeps (same seed, same data order, same weights).
        kept2 = trajectory[1::2]
        variants = {
            "influence x1": finals[0][0],
            f"influence, {len(kept2)} checkpoints": sum(m[0] for m in kept2),
            f"influence, {len(trajectory)} checkpoints": sum(m[0] for m in trajectory),
            f"influence, {len(finals)} seeds": sum(m[0] for m in finals),
            f"empirical Fisher, {len(trajectory)} ckpts": sum(m[1] for m in trajectory),
            "dot product x1": finals[0][2],
            "idf word overlap": np.array(idf_overlap(docs, queries)),
        }
        results = {name: evaluate(matrix, subsets, losses, queries)
                   for name, matrix in variants.items()}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started
    print(f"\nfact world: {len(docs)} documents, {len(queries)} queries, {args.subsets} subset "
          f"models, ensemble {args.ensemble}; {elapsed:.0f} s ({trained_s:.0f} s training)")
    print(f"{'method':<28}{'LDS':>8}{'recall@1':>10}{'strict@2':>10}{'MRR':>8}")
    for name, r in results.items():
        print(f"{name:<28}{r['lds']:>8.3f}{r['recall_at_1']:>10.3f}"
              f"{r['strict_recall_at_2']:>10.3f}{r['mrr']:>8.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "attribution_eval", "machine": platform.machine(),
        "documents": len(docs), "queries": len(queries), "subsets": args.subsets,
        "ensemble": args.ensemble, "epochs": args.epochs, "spec": spec.to_dict(),
        "empirical_damping": args.empirical_damping, "model": config, "seconds": round(elapsed, 1),
        "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


def evaluate(matrix, subsets, losses, queries) -> dict[str, float]:  # type: ignore[no-untyped-def]
    import numpy as np

    lds, r1, r2, rr = [], [], [], []
    for qi, q in enumerate(queries):
        row = np.asarray(matrix[qi], dtype=np.float64)
        predicted = [float(row[s].sum()) for s in subsets]
        lds.append(spearman(predicted, [-losses[m][qi] for m in range(len(subsets))]))
        order = np.argsort(-row, kind="stable")
        relevant = set(q["docs"])
        r1.append(float(order[0] in relevant))
        r2.append(float(set(order[:2].tolist()) == relevant))
        first = next(i for i, d in enumerate(order) if d in relevant)
        rr.append(1.0 / (first + 1))
    return {"lds": round(float(np.mean(lds)), 4), "recall_at_1": round(float(np.mean(r1)), 4),
            "strict_recall_at_2": round(float(np.mean(r2)), 4),
            "mrr": round(float(np.mean(rr)), 4)}


if __name__ == "__main__":
    main()
