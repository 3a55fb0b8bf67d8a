"""The watermark detector's two sides at 15, 100 and 1,000 sources, calibrated and not (pure
engine: no model, no Django; about a minute on 2 cores).

    python bench/watermark_null.py [--runs 2000] [--seeds 3]

* false attribution: fresh uniformly random runs of watermark characters (10 long, and 7 and
  14: lost or extra characters) embedded in text; the share that names some source;
* recovery: every kind of damage a code meets (0 to 4 edits: substitutions, deletions and
  insertions mixed), the share decoded to the right source first.

Each at the shipped calibration (`detect`, alpha 0.01: a source is named only when random marks
come as close with probability <= alpha, estimated on the codebook itself) and at the fixed
radius of 4 edits used before (alpha = 1). Codebooks are drawn with `--seeds` seeds; shares
carry 95% Wilson intervals over all seeds' trials. Writes bench/results/watermark_null.json.
Goal (issue 18): false attribution <= 1% of random runs at 100 sources.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def wilson(k: int, n: int) -> list[float]:
    from scipy.stats import binomtest

    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [round(float(ci.low), 4), round(float(ci.high), 4)]


def damaged(code: str, edits: int, rng: random.Random) -> str:
    from provenance.engine.watermark import ALPHABET

    chars = list(code)
    for _ in range(edits):
        kind = rng.choice(("substitute", "delete", "insert"))
        if kind == "delete" and len(chars) > 1:
            del chars[rng.randrange(len(chars))]
        elif kind == "insert":
            chars.insert(rng.randrange(len(chars) + 1), rng.choice(ALPHABET))
        else:
            i = rng.randrange(len(chars))
            chars[i] = rng.choice([c for c in ALPHABET if c != chars[i]])
    return "".join(chars)


def main() -> int:
    from provenance.engine import watermark

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2000, help="random runs per size and seed")
    parser.add_argument("--codes", type=int, default=300, help="damaged codes per edit count")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/watermark_null.json")
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    for sources in (15, 100, 1000):
        counts: dict[str, list[int]] = {}

        def count(key: str, hit: bool, counts: dict[str, list[int]] = counts) -> None:
            counts.setdefault(key, [0, 0])
            counts[key][0] += int(hit)
            counts[key][1] += 1

        for seed in range(args.seeds):
            codes: dict[int, str] = {}
            for source in range(sources):
                codes[source] = watermark.assign_code(codes.values(), seed=seed * 10_000 + source)
            rng = random.Random(f"runs {sources} {seed}")
            for length in (watermark.LENGTH, 7, 14):
                for _ in range(args.runs // 3):
                    run = "".join(rng.choice(watermark.ALPHABET) for _ in range(length))
                    text = f"Some text.{run} More text."
                    count("false_calibrated", bool(watermark.detect(text, codes)))
                    count("false_fixed", bool(watermark.detect(text, codes, alpha=1.0)))
            for edits in range(5):
                for _ in range(args.codes // args.seeds + 1):
                    source = rng.randrange(sources)
                    text = f"Some text.{damaged(codes[source], edits, rng)} More text."
                    for mode, alpha in (("calibrated", watermark.ALPHA), ("fixed", 1.0)):
                        found = watermark.detect(text, codes, alpha=alpha)
                        count(f"top1_{edits}_{mode}", bool(found) and found[0].source == source)
        row: dict[str, Any] = {"sources": sources}
        for key, (k, n) in counts.items():
            row[key] = {"share": round(k / n, 4), "wilson95": wilson(k, n), "n": n}
        rows.append(row)
        false = row["false_calibrated"]
        print(f"{sources:>5} sources: random runs naming a source {false['share']:.2%} "
              f"{false['wilson95']} calibrated, "
              f"{row['false_fixed']['share']:.2%} at a fixed radius of 4", flush=True)
    print(f"\n{'sources':>7} {'edits':>5} {'top-1 calibrated':>24} {'top-1 fixed radius':>24}")
    for row in rows:
        for edits in range(5):
            c, f = row[f"top1_{edits}_calibrated"], row[f"top1_{edits}_fixed"]
            print(f"{row['sources']:>7} {edits:>5} {c['share']:>8.1%} {str(c['wilson95']):>15} "
                  f"{f['share']:>8.1%} {str(f['wilson95']):>15}")
    report = {"benchmark": "watermark_null", "alpha": watermark.ALPHA,
              "null_trials": watermark.NULL_TRIALS, "seeds": args.seeds,
              "machine": platform.machine(), "seconds": round(time.perf_counter() - started, 1),
              "rows": rows, "goal": {"false_attribution_at_100": 0.01}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
