"""Gradient influence: featurizing speed against training speed, bytes per stored example, and
query latency against large stores. Pure engine: no Django, no database.

    python bench/attribution_perf.py                       # default + wide model, 10^5 and 10^6
    python bench/attribution_perf.py --sizes default --store-rows 100000

1. Featurize / train: the same model, the same batches (rows of `seq_len` tokens from the demo
   corpus), on the same device, timed in alternating rounds so that machine noise hits both:
   a training step (forward, backward with weight gradients, clipping, AdamW) against a
   featurizing step (forward, backward through the activations only, projections), and an
   index-build step (the same plus one sampled-label backward for the Fisher, as on a large
   corpus). Goal (issue 4): ratio of tokens/s >= 0.5.
2. Bytes per stored example: a real shard written by `shard_save`, divided by its rows: the
   scored row (goal <= 2 x dim, fp16), and apart from it the sampled-Fisher row kept so that a
   takedown can take the example out of the Fisher exactly (read only then).
3. Query latency: synthetic fp16 stores of 10^5 and 10^6 rows at the default model's dim,
   written to disk and memory-mapped like a real store; time of `rank` (precondition the query,
   score every row by blocked matrix products, top 100) for one query, first (cold) and then
   p50 of 5 (page cache warm), against a plain-numpy scorer with large blocks in the same run.
   Goal: <= 10 s on CPU for 10^6.

4. Sentence embeddings (all-MiniLM-L6-v2) of demo texts, texts/s at one thread and at all.

`--parts` runs some of these; the JSON keeps the other parts' last figures, each part with the
time and machine it ran on. Writes bench/results/attribution_perf.json (or --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PARTS = ["throughput", "storage", "latency", "embeddings"]
SIZES: dict[str, dict[str, Any]] = {
    "default": {},  # TrainConfig defaults (the demo model)
    "wide": {"n_layer": 4, "n_head": 8, "n_embd": 256, "seq_len": 256, "batch_size": 32,
             "vocab_size": 4096},
}


def throughput(size: str, device: str, rounds: int, steps: int) -> dict[str, Any]:
    import torch

    from attribution.engine.features import FeatureSpec
    from attribution.engine.influence import Featurizer
    from demo import corpus as demo
    from provenance.engine import lm
    from provenance.engine.lm_config import TrainConfig

    config = TrainConfig(**SIZES[size])
    texts = [t for s in demo.build_corpus() for t in s.texts]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = lm.train_tokenizer(texts, config, Path(tmp) / "tok")
    blocks = lm.token_blocks(tokenizer, texts, config.seq_len, True)
    torch.manual_seed(0)
    dev = torch.device(device)
    model = lm.build_model(config, tokenizer).to(dev)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    featurizer = Featurizer(model, FeatureSpec())
    batch = blocks[:config.batch_size].to(dev)  # seq_len + 1 wide: training shifts by one
    inputs = batch[:, :-1]
    ones = torch.ones_like(inputs)
    weights = torch.ones(inputs.shape, dtype=torch.float32)

    def train_step() -> None:
        loss = lm.next_token_loss(model, batch, dev)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    def featurize_step() -> None:
        featurizer.features(inputs, ones, weights)

    seeds = list(range(len(inputs)))

    def build_step() -> None:  # what an index build does on a large corpus: one Fisher draw
        featurizer.features_with_fisher(inputs, ones, weights, seeds, 1)

    def timed(step: object) -> float:
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()  # type: ignore[operator]
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    model.train()
    timed(train_step), timed(featurize_step), timed(build_step)  # warm up
    train_s, feat_s, build_s = [], [], []
    for _ in range(rounds):  # alternate, so a noisy neighbour slows all three
        train_s.append(timed(train_step))
        feat_s.append(timed(featurize_step))
        build_s.append(timed(build_step))
    tokens = steps * inputs.numel()
    train_rate, feat_rate = tokens / median(train_s), tokens / median(feat_s)
    build_rate = tokens / median(build_s)
    return {"size": size, "device": device,
            "parameters": sum(p.numel() for p in model.parameters()),
            "layers": len(featurizer.layers), "dim": featurizer.dim,
            "batch_tokens": int(inputs.numel()),
            "train_tokens_per_s": train_rate, "featurize_tokens_per_s": feat_rate,
            "ratio": feat_rate / train_rate, "build_tokens_per_s": build_rate,
            "build_ratio": build_rate / train_rate}


def bytes_per_example(dim: int, rows: int) -> dict[str, Any]:
    """A shard as an index build writes it on a large corpus (one Fisher draw per example)."""
    from attribution.engine.influence import shard_save

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shard_save(folder, "s0", np.arange(rows),
                   rng.standard_normal((rows, dim), dtype=np.float32),
                   rng.standard_normal((rows, 1, dim), dtype=np.float32))
        size = {p.name.split(".")[1]: p.stat().st_size for p in folder.iterdir()}
    return {"dim": dim, "rows": rows, "scored_bytes_per_row": size["vectors"] / rows,
            "fisher_rows_bytes_per_row": size["fisher_rows"] / rows,
            "ids_bytes_per_row": size["ids"] / rows, "goal_bytes_per_row": 2 * dim,
            "fisher_bytes_per_shard": size["fisher"]}


def query_latency(rows: int, dim: int, folder: Path, repeats: int) -> dict[str, Any]:
    from attribution.engine.influence import GradientStore, rank

    rng = np.random.default_rng(1)
    shard_rows = 250_000
    names = []
    folder.mkdir(parents=True, exist_ok=True)
    write_start = time.perf_counter()
    for number, start in enumerate(range(0, rows, shard_rows)):
        n = min(shard_rows, rows - start)
        name = f"shard-{number:05d}"
        vectors = np.lib.format.open_memmap(folder / f"{name}.vectors.npy", mode="w+",
                                            dtype=np.float16, shape=(n, dim))
        for at in range(0, n, 50_000):  # written in pieces: never the whole store in memory
            m = min(50_000, n - at)
            vectors[at:at + m] = rng.standard_normal((m, dim), dtype=np.float32)
        vectors.flush()
        del vectors
        np.save(folder / f"{name}.ids.npy", np.arange(start, start + n, dtype=np.int64))
        # A synthetic Fisher (identity-like): the solve costs the same as a real one's.
        np.save(folder / f"{name}.fisher.npy", np.eye(dim) * n)
        names.append(name)
    write_s = time.perf_counter() - write_start
    store = GradientStore.finalize(folder, names, {"dim": dim}, damping=1.0)
    query = rng.standard_normal(dim).astype(np.float32)
    latencies: list[float] = []
    baseline: list[float] = []
    for _ in range(repeats + 1):  # alternating, so that noise hits both
        t0 = time.perf_counter()
        top = rank([store], [query], k=100)
        latencies.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        reference = numpy_rank(store, query, k=100)
        baseline.append(time.perf_counter() - t0)
    assert np.array_equal(np.sort(top.ids[:50]), np.sort(reference[:50])), "rankings differ"
    return {"rows": rows, "dim": dim, "store_bytes": rows * dim * 2,
            "write_s": write_s, "first_query_s": latencies[0],
            "p50_query_s": median(latencies[1:]), "max_query_s": max(latencies[1:]),
            "numpy_p50_query_s": median(baseline[1:]),
            "speedup": median(baseline[1:]) / median(latencies[1:])}


def numpy_rank(store: Any, query: np.ndarray, k: int) -> np.ndarray:
    """The baseline: the same scores in plain numpy, 65,536-row fp32 blocks (what the store
    did first)."""
    solved = store.preconditioner.solve(query[None, :]).astype(np.float32).T
    ids, scores = [], []
    for shard in store.shards:
        for start in range(0, len(shard.ids), 65536):
            block = np.asarray(shard.vectors[start:start + 65536], dtype=np.float32)
            scores.append((block @ solved)[:, 0])
            ids.append(shard.ids[start:start + 65536])
    flat, all_ids = np.concatenate(scores), np.concatenate(ids)
    return all_ids[np.argsort(-flat, kind="stable")[:k]]


def embedding_rate(threads: list[int]) -> list[dict[str, Any]]:
    """Sentence embeddings (all-MiniLM-L6-v2) of the demo corpus, texts/s at 1 and all threads
    (the issue's reference: about 40 texts/s per core on CPU)."""
    import torch

    from demo import corpus as demo
    from provenance.engine.embeddings import embed

    texts = [t for s in demo.build_corpus() for t in s.texts][:256]
    embed(texts[:8])  # load the model once
    rows = []
    before = torch.get_num_threads()
    for n in threads:
        torch.set_num_threads(n)
        start = time.perf_counter()
        embed(texts)
        wall = time.perf_counter() - start
        rows.append({"threads": n, "texts": len(texts), "texts_per_s": len(texts) / wall,
                     "mean_chars": sum(map(len, texts)) / len(texts)})
    torch.set_num_threads(before)
    return rows


def print_throughput(speed: list[dict[str, Any]]) -> None:
    print(f"\n{'size':<8} {'device':<6} {'params':>9} {'layers':>6} {'dim':>5} "
          f"{'train tok/s':>12} {'featurize tok/s':>16} {'ratio':>6} "
          f"{'+1 Fisher draw tok/s':>21} {'ratio':>6}   (goal >= 0.5)")
    for r in speed:
        print(f"{r['size']:<8} {r['device']:<6} {r['parameters']:>9,} {r['layers']:>6} "
              f"{r['dim']:>5} {r['train_tokens_per_s']:>12,.0f} "
              f"{r['featurize_tokens_per_s']:>16,.0f} {r['ratio']:>6.2f} "
              f"{r['build_tokens_per_s']:>21,.0f} {r['build_ratio']:>6.2f}")


def print_storage(storage: list[dict[str, Any]]) -> None:
    print(f"\n{'dim':>5} {'scored bytes/row':>17} {'Fisher rows':>12} {'ids':>5} "
          f"{'goal (2 x dim)':>15}")
    for s in storage:
        print(f"{s['dim']:>5} {s['scored_bytes_per_row']:>17,.1f} "
              f"{s['fisher_rows_bytes_per_row']:>12,.1f} {s['ids_bytes_per_row']:>5,.1f} "
              f"{s['goal_bytes_per_row']:>15,}")


def print_latency(latency: list[dict[str, Any]]) -> None:
    print(f"\n{'rows':>10} {'dim':>5} {'store GB':>9} {'first s':>8} {'p50 s':>7} {'max s':>7}"
          f" {'numpy p50 s':>12} {'speedup':>8}   (goal <= 10 s on CPU for 10^6)")
    for q in latency:
        print(f"{q['rows']:>10,} {q['dim']:>5} {q['store_bytes'] / 1e9:>9.2f} "
              f"{q['first_query_s']:>8.2f} {q['p50_query_s']:>7.2f} {q['max_query_s']:>7.2f}"
              f" {q['numpy_p50_query_s']:>12.2f} {q['speedup']:>8.1f}")


def main() -> int:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["default", "wide"], choices=sorted(SIZES))
    parser.add_argument("--devices", nargs="+", default=None)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--store-rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS)
    parser.add_argument("--store-dir", type=Path, default=None,
                        help="where the synthetic stores are written (default: a temp dir)")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "attribution_perf.json")
    args = parser.parse_args()
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])

    results: dict[str, Any] = {}
    if "throughput" in args.parts or "storage" in args.parts or "latency" in args.parts:
        speed = [throughput(size, device, args.rounds, args.steps)
                 for size in args.sizes for device in devices] \
            if "throughput" in args.parts else []
        dims = sorted({int(r["dim"]) for r in speed}) or [2304]  # the default model's
        if speed:
            results["throughput"] = speed
            print_throughput(speed)
        if "storage" in args.parts:
            results["storage"] = [bytes_per_example(dim, 2_000) for dim in dims]
            print_storage(results["storage"])
        if "latency" in args.parts:
            with tempfile.TemporaryDirectory(dir=args.store_dir) as tmp:
                results["query_latency"] = [
                    query_latency(rows, dims[0], Path(tmp) / f"store-{rows}", args.repeats)
                    for rows in args.store_rows]
            print_latency(results["query_latency"])
    if "embeddings" in args.parts:
        results["embeddings"] = embedding_rate(sorted({1, torch.get_num_threads()}))
        print(f"\n{'threads':>7} {'texts':>6} {'texts/s':>8}   (reference: ~40 texts/s a core)")
        for e in results["embeddings"]:
            print(f"{e['threads']:>7} {e['texts']:>6} {e['texts_per_s']:>8.1f}")

    machine = {"cpus": os.cpu_count(), "torch": torch.__version__,
               "threads": torch.get_num_threads(),
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               "python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # A run of some parts keeps the other parts' last figures (each part says when it ran).
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    merged = {**previous.get("parts", {}),
              **{part: {"ran_at": stamp, "machine": machine, "results": value}
                 for part, value in results.items()}}
    args.out.write_text(json.dumps({"benchmark": "attribution_perf", "parts": merged},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
