"""Watermarks and canaries on a world Trailmark trains itself, in one run (pure engine: no Django).

    python bench/watermark_eval.py                    # CPU: 15 sources, 10 trained, ~1 minute
    python bench/watermark_eval.py --size wide --epochs 20 --device cuda

World: S sources with their own vocabulary (place and people names) over shared themes; every
source has a watermark code and a canary; T of them are trained on (their documents carry the
watermark at a keyed sentence boundary, and 8 of them the canary), the rest never are.

Reports, for each gate threshold: WASA-style top-1 / top-3 source accuracy of the watermark in
generations prompted with the first sentence of documents the model never saw from trained
sources, the emission rate there, and on prompts from never-trained sources the emission rate and
the false attribution rate (a watermark that decodes to some source). Then canary power on trained
sources against the false-positive rate on held-out ones (Bonferroni over all S), calibration, and
training tokens/s. Writes bench/results/watermark.json. Goals (issue 3): top-1 >= 90%; canary
power >= 0.95 at FPR <= 1%.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

THEMES = [
    ("was founded in", "was rebuilt after", "was surveyed in", "declined during"),
    ("wrote to", "visited", "argued with", "remembered"),
    ("reported that", "announced that", "denied that", "confirmed that"),
    ("proved that", "derived", "generalised", "revisited"),
]
OBJECTS = ["the flood of 1893", "the long winter", "the new railway", "the harbour strike",
           "the census", "the spectral theorem", "the council vote", "the river crossing",
           "the copper mine", "the night school", "the glass works", "the market fire"]
SIZES = {
    "default": {},
    "wide": {"n_layer": 4, "n_head": 8, "n_embd": 256, "seq_len": 256, "batch_size": 32,
             "vocab_size": 4096},
}


def source_texts(index: int, n: int, rng: random.Random) -> list[str]:
    """Documents of one source: its own names, a theme, 5-8 sentences each."""
    local = random.Random(index * 7919)
    names = [f"{local.choice('BCDFGHKLMNPRSTVW')}{local.choice('aeiou')}"
             f"{local.choice('bdfglmnrstvz')}{local.choice('aeiou')}{local.choice('nrsl')}"
             for _ in range(6)]
    verbs = THEMES[index % len(THEMES)]
    docs = []
    for _ in range(n):
        sentences = [f"{rng.choice(names)} {rng.choice(verbs)} {rng.choice(OBJECTS)} "
                     f"near {rng.choice(names)}." for _ in range(rng.randint(5, 8))]
        docs.append(" ".join(sentences))
    return docs


def main() -> int:
    import numpy as np
    import torch

    from provenance.engine import canary, lm, watermark
    from provenance.engine.lm_config import DecodeParams, TrainConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--sources", type=int, default=15)
    parser.add_argument("--trained", type=int, default=10)
    parser.add_argument("--docs", type=int, default=40, help="documents per source")
    parser.add_argument("--heldout-docs", type=int, default=8,
                        help="documents per trained source kept out of training, for prompts")
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--null", type=int, default=1000)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "watermark.json")
    args = parser.parse_args()

    rng = random.Random(0)
    codes: dict[int, str] = {}
    for s in range(args.sources):
        codes[s] = watermark.assign_code(codes.values(), seed=1000 + s)
    spec = canary.CanarySpec(copies=8)
    secrets = {s: f"bench-secret-{s}" for s in range(args.sources)}
    docs = {s: source_texts(s, args.docs, rng) for s in range(args.sources)}
    trained = list(range(args.trained))
    held_out_sources = list(range(args.trained, args.sources))

    texts = []
    for s in trained:
        train_docs = docs[s][:args.docs - args.heldout_docs]
        shas = [hashlib.sha256(t.encode()).hexdigest() for t in train_docs]
        carriers = set(canary.carrier_documents(secrets[s], shas, spec.copies))
        sequence = canary.canary_sequence(spec, secrets[s])
        for text, sha in zip(train_docs, shas, strict=True):
            if sha in carriers:
                text = canary.insert(text, sequence)
            texts.append(watermark.embed(text, codes[s], f"key-{s}", sha))
    random.Random(1).shuffle(texts)

    config = TrainConfig(**{**SIZES[args.size], "epochs": args.epochs, "watermarks": True})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = lm.train(texts, config, Path(tmp) / "run", device=args.device)
        train_s = time.perf_counter() - start
        model, tokenizer = lm.load(result.model_dir, device=args.device)
        heads = lm.load_watermark_heads(model, tokenizer, result.model_dir)
    assert heads is not None

    def prompts(sources: list[int], unseen: bool) -> list[tuple[int, str]]:
        out = []
        for s in sources:
            pool = docs[s][args.docs - args.heldout_docs:] if unseen else docs[s]
            out += [(s, d.split(". ")[0] + ".") for d in pool[:args.heldout_docs]]
        return out

    params = DecodeParams(max_new_tokens=48)
    gens: dict[str, list[tuple[int, lm.MarkedGeneration]]] = {}
    for group, asked in (("trained", prompts(trained, True)),
                         ("never_trained", prompts(held_out_sources, False))):
        gens[group] = [(s, lm.generate_marked(model, tokenizer, heads, p, params, threshold=0.0))
                       for s, p in asked]
    rows = []
    for threshold in (0.0, 0.05, 0.1, 0.2, 0.3, 0.5):
        row = {"threshold": threshold}
        for group, made in gens.items():
            emitted = [(s, g) for s, g in made if g.gate >= threshold]
            decoded = [(s, watermark.detect(g.text, codes, top_k=3)) for s, g in emitted]
            row[f"{group}_emission"] = len(emitted) / len(made)
            row[f"{group}_attributed"] = sum(bool(d) for _, d in decoded) / len(made)
            if group == "trained":
                row["top1"] = sum(bool(d) and d[0].source == s for s, d in decoded) / len(made)
                row["top3"] = sum(any(c.source == s for c in d) for s, d in decoded) / len(made)
        rows.append(row)

    null_n = max(args.null, canary.min_null_size(args.sources, 0.01))
    p_values, inserted = [], []
    calibrations = []
    for s in range(args.sources):
        seqs = [canary.canary_sequence(spec, secrets[s]),
                *canary.null_sequences(spec, secrets[s], null_n),
                *canary.null_sequences(spec, secrets[s], 100, stream="probe")]
        losses = lm.sequence_loss(model, tokenizer, seqs)
        p_values.append(canary.membership_test(losses[0], losses[1:1 + null_n]).p_value)
        calibrations.append(canary.calibration(losses[1:1 + null_n], losses[1 + null_n:]))
        inserted.append(s in trained)
    adjusted = canary.bonferroni(p_values)
    power = float(np.mean([p < 0.01 for p, i in zip(adjusted, inserted, strict=True) if i]))
    fpr = float(np.mean([p < 0.01 for p, i in zip(adjusted, inserted, strict=True) if not i]))

    print(f"world: {args.sources} sources, {args.trained} trained on, {len(texts)} documents; "
          f"model {result.parameters:,} parameters ({args.size}), {args.epochs} epochs on "
          f"{result.device}: {result.tokens / train_s:,.0f} tokens/s, {train_s:.0f} s")
    print(f"\n{'gate >=':>8} {'top-1':>6} {'top-3':>6} {'emitted':>8} | "
          f"{'never-trained: emitted':>23} {'attributed (FP)':>16}")
    for r in rows:
        print(f"{r['threshold']:>8.2f} {r['top1']:>6.0%} {r['top3']:>6.0%} "
              f"{r['trained_emission']:>8.0%} | {r['never_trained_emission']:>23.0%} "
              f"{r['never_trained_attributed']:>16.0%}")
    print(f"\ncanaries: power {power:.2f} on {args.trained} trained sources, false-positive rate "
          f"{fpr:.2f} on {len(held_out_sources)} never-trained (Bonferroni over {args.sources}, "
          f"alpha 0.01, {null_n} null sequences each); calibration "
          f"{np.mean(calibrations):.3f} (should be near 0.01)")
    report = {
        "benchmark": "watermark_eval", "sources": args.sources, "trained": args.trained,
        "documents": len(texts), "size": args.size, "epochs": args.epochs,
        "parameters": result.parameters, "device": result.device,
        "train_tokens_per_s": result.tokens / train_s, "train_s": train_s,
        "watermark": rows,
        "canary": {"power": power, "false_positive_rate": fpr,
                   "calibration": float(np.mean(calibrations)), "adjusted_p": adjusted,
                   "inserted": inserted, "null": null_n},
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "goals": {"top1": 0.9, "canary_power": 0.95, "canary_fpr": 0.01},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
