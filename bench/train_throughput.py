"""Training throughput of the LM engine on the demo corpus, CPU against CUDA (when present), in
the same run. Pure engine: no Django, no database.

    python bench/train_throughput.py                 # default model, every device present
    python bench/train_throughput.py --sizes default wide --epochs 3

Prints tokens/s, wall time, held-out loss, and how many of 8 random 32-word passages (each
repeated 10 times in the corpus) the model reproduces exactly from their first 16 words, per
(size, device); writes
bench/results/train_throughput.json. Issue 3's target: the default size trains on the demo
version on 2 CPU cores in at most 5 minutes.
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
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The training presets as production applies them, and a wider model.
SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"preset": "tiny"},
    "small": {"preset": "small"},
    "default": {},  # TrainConfig defaults (~0.6M parameters)
    "wide": {"n_layer": 4, "n_head": 8, "n_embd": 256, "seq_len": 256, "batch_size": 32,
             "vocab_size": 4096},
}


def main() -> int:
    import torch

    from demo import corpus as demo
    from provenance.engine import lm
    from provenance.engine.lm_config import PRESETS, DecodeParams, TrainConfig

    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", nargs="+", default=["default"], choices=sorted(SIZES))
    parser.add_argument("--epochs", type=int, default=0,
                        help="0: the preset's own (20 for default and wide)")
    parser.add_argument("--devices", nargs="+", default=None)
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "train_throughput.json")
    args = parser.parse_args()
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    texts = [t for s in demo.build_corpus() for t in s.texts]
    # Memorisation probe: 8 passages of 32 random words, each repeated 10 times in the corpus.
    rng = random.Random(11)
    vocabulary = sorted({w.strip(".,") for t in texts for w in t.split()})
    passages = [" ".join(rng.choice(vocabulary) for _ in range(32)) for _ in range(8)]
    texts = texts + [p for p in passages for _ in range(10)]
    rows = []
    for size in args.sizes:
        for device in devices:
            options = dict(SIZES[size])
            preset = PRESETS[options.pop("preset", "default")]
            epochs = args.epochs if args.epochs else preset.get("epochs", 20)
            config = TrainConfig(**{**preset, **options, "epochs": epochs})
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                result = lm.train(texts, config, Path(tmp) / "run", device=device)
                wall = time.perf_counter() - start
                model, tokenizer = lm.load(result.model_dir, device=device)
                memorised = 0
                for passage in passages:
                    words = passage.split()
                    out = lm.generate(model, tokenizer, " ".join(words[:16]),
                                      DecodeParams(max_new_tokens=48)).split()
                    memorised += out[:16] == words[16:]
            rows.append({"size": size, "device": device, "parameters": result.parameters,
                         "steps": result.steps, "tokens": result.tokens, "wall_s": wall,
                         "tokens_per_s": result.tokens / wall,
                         "heldout_loss": result.heldout_loss,
                         "memorised": f"{memorised}/{len(passages)}"})
    print(f"{'size':<8} {'device':<6} {'params':>10} {'tokens':>9} {'wall s':>7} "
          f"{'tokens/s':>10} {'held-out':>9} {'memorised':>10}")
    for r in rows:
        print(f"{r['size']:<8} {r['device']:<6} {r['parameters']:>10,} {r['tokens']:>9,} "
              f"{r['wall_s']:>7.1f} {r['tokens_per_s']:>10,.0f} {r['heldout_loss']:>9.3f} "
              f"{r['memorised']:>10}")
    machine = {"cpus": os.cpu_count(), "torch": torch.__version__,
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               "python": platform.python_version()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"benchmark": "train_throughput", "machine": machine,
                                    "corpus_documents": len(texts), "results": rows},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
