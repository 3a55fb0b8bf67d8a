"""Attribution on real English text: does influence find the document a model learned an
output from, when the output quotes it and when it only paraphrases it?

    python bench/attribution_realtext.py             # CPU, 2 cores: 30-60 minutes
    python bench/attribution_realtext.py --seeds 1 --epochs-memorised 40   # a quicker look

Corpus: paragraphs of the Python Language Reference as CPython ships it (`pydoc_data.topics`,
PSF licence, in the standard library: offline), 40-120 words of prose each, the first 120.
Models: Trailmark's default architecture (TrainConfig defaults, 3 seeds, snapshots kept) in two
regimes: "learned" (the default 20 epochs, packed as the training service packs documents this
long) and "memorised" (100 epochs, each document from its start: the completions' loss falls
to about 0.01, as in an outside check that found influence never ranking the quoted document
in its top 3).
Queries: "quoted": 40 documents' first 10 words as the prompt and the next 15 as the
completion; "paraphrased": 20 documents restated by hand in other words (below), so that word
overlap is not enough. Only the completion's tokens count.
Methods: influence over 1, 3 (the shipped default: "snapshots": 2) and 6 checkpoints, the raw
gradient dot product, TracIn-CP, Kronfluence EK-FAC (when installed), BM25 and MiniLM cosine.
Metrics: recall@1 with its Wilson 95% interval over queries x seeds, recall@3, MRR, and how
many distinct documents the method puts first (a method that returns the same few documents
for every query has few). No LDS here: no subset models (bench/attribution_eval.py has them).
Writes bench/results/attribution_realtext.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

# (the paragraph's opening, prompt, completion): the paragraph restated in other words.
PARAPHRASES = [
    ("The name is rebound if it was already bound.",
     "When a name that already refers to something is bound again, the old object's count",
     " may drop to zero, so the object is freed and its destructor runs."),
    ("Note: If the object is a class instance and the attribute reference",
     "In a.x = a.x + 1 on an instance, the right side may read a class attribute, but the left",
     " side always sets an attribute on the instance itself."),
    ("* If the target is a subscription: The primary",
     "For an assignment to a subscripted target, Python first evaluates the primary, which has",
     " to give a mutable sequence such as a list, or a mapping such as a dictionary."),
    ("If the primary is a mutable sequence object (such as a list), the subscript",
     "When you assign into a list by index, the index has to be an integer, and a negative one",
     " gets the length of the sequence added to it before use."),
    ("If the primary is a mapping object (such as a dictionary), the subscript",
     "Assigning through a dictionary subscript asks the mapping to",
     " store a new key and value pair, or replace the value already kept under that key."),
    ("An augmented assignment expression like",
     "Writing x += 1 is almost the same as x = x + 1, except that",
     " x is evaluated only once and the operation may modify the object in place."),
    ("With the exception of assigning to tuples and multiple targets",
     "Apart from tuple targets and several targets in one statement, augmented assignment",
     " is handled just like an ordinary assignment statement."),
    ("However, if the looked-up value is an object defining one of the descriptor",
     "When the attribute found during lookup defines descriptor methods, Python",
     " can skip its usual behaviour and call the descriptor method instead."),
    ('The "*" (multiplication) operator yields the product',
     "The star operator multiplies: either both operands are numbers, or",
     " one is an integer and the other a sequence, which is then repeated."),
    ("The class’s suite is then executed in a new execution frame",
     "The body of a class statement runs in a fresh frame with",
     " a new local namespace, while the globals stay those of the module."),
    ('The default behavior for equality comparison ("==" and "!=")',
     "Unless a class says otherwise, == and != between instances compare",
     " whether they are the very same object, by identity."),
    ("Compound statements contain (groups of) other statements",
     "Statements such as if and while hold other statements and",
     " control how and whether those inner statements are executed."),
    ("It selects exactly one of the suites by evaluating the expressions",
     "An if statement tests its conditions in order and",
     " runs only the block belonging to the first one that is true."),
    ('The "starred_list" expression is evaluated once',
     "A for loop evaluates the expression after in just once, expecting",
     " an iterable, and makes an iterator from it to feed the loop target."),
    ("If the suite was exited due to an exception, and the return value",
     "When an exception leaves a with block and __exit__ returns a false value,",
     " the exception is raised again; a true value swallows it."),
    ("A case block is considered irrefutable if it has no guard",
     "In match statements a case without a guard whose pattern always matches",
     " is called irrefutable, as its syntax alone proves it succeeds."),
    ("A function definition may be wrapped by one or more *decorator*",
     "Decorators on a def are evaluated when the function is defined, and each one",
     " is called with the function object, its result taking the function's name."),
    ("**Programmer’s note:** Variables defined in the class definition",
     "Names assigned in the body of a class are",
     " shared by every instance, whereas self.name = value in a method sets one per instance."),
    ("Deletion of a name removes the binding of that name",
     "Using del on a name takes away its binding in the local or global namespace, and if it has",
     " no binding a NameError is raised."),
    ("Exception messages are not part of the Python API.",
     "Code should not depend on the wording of error messages, because",
     " they can change between Python versions without any notice."),
]
REGIMES = {"learned": {"pack": True}, "memorised": {"pack": False}}


def corpus(n: int) -> list[str]:
    import pydoc_data.topics

    out = []
    for text in pydoc_data.topics.topics.values():
        for paragraph in re.split(r"\n\s*\n", text):
            paragraph = " ".join(paragraph.split())
            letters = sum(c.isalpha() or c == " " for c in paragraph) / max(1, len(paragraph))
            if 40 <= len(paragraph.split()) <= 120 and letters > 0.93:
                out.append(paragraph)
    return out[:n]


def query_sets(docs: list[str], quoted: int) -> dict[str, list[dict[str, Any]]]:
    rng = random.Random(0)
    quotes = []
    for i in sorted(rng.sample(range(len(docs)), quoted)):
        words = docs[i].split()
        quotes.append({"prompt": " ".join(words[:10]),
                       "completion": " " + " ".join(words[10:25]), "docs": [i]})
    paraphrases = []
    for opening, prompt, completion in PARAPHRASES:
        found = [i for i, d in enumerate(docs) if d.startswith(opening)]
        if len(found) == 1:
            paraphrases.append({"prompt": prompt, "completion": completion, "docs": found})
        else:
            print(f"paraphrase skipped: {opening!r} is not one paragraph of this Python's text")
    return {"quoted": quotes, "paraphrased": paraphrases}


def wilson(hits: int, n: int, z: float = 1.96) -> list[float]:
    if not n:
        return [0.0, 1.0]
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def ranks(matrix: Any, queries: list[dict]) -> list[int]:
    import numpy as np

    m = np.asarray(matrix, dtype=np.float64)
    return [int((m[k] > m[k, q["docs"][0]]).sum()) + 1 for k, q in enumerate(queries)]


def main() -> None:
    import attribution_eval as ae

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=120)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs-memorised", type=int, default=100)
    parser.add_argument("--quoted", type=int, default=40)
    parser.add_argument("--no-kronfluence", dest="kronfluence", action="store_false")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench/results/attribution_realtext.json")
    args = parser.parse_args()
    if args.kronfluence:
        try:
            import kronfluence  # noqa: F401
        except ImportError:
            print("kronfluence is not installed (make bench-deps): skipped")
            args.kronfluence = False

    import numpy as np
    from tqdm import tqdm

    from attribution.engine.features import FeatureSpec
    from provenance.engine import lm
    from provenance.engine.lm_config import TrainConfig

    docs = corpus(args.documents)
    sets = query_sets(docs, args.quoted)
    everything = [q for qs in sets.values() for q in qs]
    damping = FeatureSpec.damping
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="realtext-"))
    found: dict[str, dict[str, dict[str, list[int]]]] = {}
    losses: dict[str, list[float]] = {}
    try:
        for regime, options in REGIMES.items():
            epochs = args.epochs_memorised if regime == "memorised" else TrainConfig.epochs
            config = {"heldout_fraction": 0.0, "checkpoint_every": 10_000, "epochs": epochs,
                      "snapshots": 5, **options}
            for seed in tqdm(range(args.seeds), desc=regime):
                work = tmp / f"{regime}{seed}"
                lm.train_tokenizer(docs, TrainConfig.from_dict(config), work / "tokenizer")
                full = ae.train(docs, config, work / "full", work / "tokenizer", seed=seed)
                losses.setdefault(regime, []).append(float(np.mean(
                    ae.query_losses(full, sets["quoted"]))))
                spec = FeatureSpec().resolved(len(docs))
                trajectory = [*lm.snapshots(full), None]
                per_ckpt = [ae.influence_scores(full, s, docs, everything, spec, [damping], 1.0,
                                                work / "stores") for s in trajectory]
                matrices = {
                    "influence, 1 checkpoint": per_ckpt[-1][damping],
                    "influence, 3 checkpoints (shipped default)": sum(
                        c[damping] for c in per_ckpt[1::2]),
                    "influence, 6 checkpoints": sum(c[damping] for c in per_ckpt),
                    "dot product, 1 checkpoint": per_ckpt[-1]["dot"],
                    "TracIn-CP, 6 checkpoints": ae.tracin(full, docs, config, trajectory,
                                                          per_ckpt),
                    "BM25": ae.bm25(docs, everything),
                    "MiniLM cosine": ae.minilm(docs, everything),
                }
                if args.kronfluence:
                    matrices["Kronfluence EK-FAC, 1 checkpoint"] = ae.kronfluence_scores(
                        full, docs, everything, work / "kronfluence")
                for name, matrix in matrices.items():
                    start = 0
                    for kind, queries in sets.items():
                        block = np.asarray(matrix)[start:start + len(queries)]
                        start += len(queries)
                        found.setdefault(regime, {}).setdefault(kind, {}).setdefault(
                            name, []).extend(ranks(block, queries))
                        tops = np.argmax(block, axis=1).tolist()
                        found[regime][kind].setdefault(f"{name}|tops", []).append(
                            len(set(tops)))
                shutil.rmtree(work, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    results: dict[str, Any] = {}
    for regime, kinds in found.items():
        for kind, by_method in kinds.items():
            for name, rs in by_method.items():
                if name.endswith("|tops"):
                    continue
                hits = sum(r == 1 for r in rs)
                results.setdefault(regime, {}).setdefault(kind, {})[name] = {
                    "recall_at_1": round(hits / len(rs), 4),
                    "recall_at_1_ci": wilson(hits, len(rs)),
                    "recall_at_3": round(float(np.mean([r <= 3 for r in rs])), 4),
                    "mrr": round(float(np.mean([1 / r for r in rs])), 4),
                    "distinct_top_documents": by_method[f"{name}|tops"],
                    "n": len(rs)}
    elapsed = time.perf_counter() - started
    for regime, kinds in results.items():
        print(f"\n{regime} (completion loss of the quoted queries: "
              f"{', '.join(f'{x:.3f}' for x in losses[regime])} by seed)")
        for kind, by_method in kinds.items():
            print(f"  {kind}: recall@1 [Wilson 95%], recall@3, MRR, distinct tops per seed")
            for name, r in by_method.items():
                print(f"    {name:<44}{r['recall_at_1']:>6.2f} [{r['recall_at_1_ci'][0]:.2f}, "
                      f"{r['recall_at_1_ci'][1]:.2f}]{r['recall_at_3']:>6.2f}{r['mrr']:>6.2f}  "
                      f"{r['distinct_top_documents']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "attribution_realtext", "machine": platform.machine(),
        "corpus": "Python Language Reference paragraphs (pydoc_data.topics, CPython "
                  f"{platform.python_version()})", "documents": len(docs),
        "queries": {k: len(v) for k, v in sets.items()}, "seeds": args.seeds,
        "epochs": {"learned": TrainConfig.epochs, "memorised": args.epochs_memorised},
        "damping": damping, "completion_loss": losses, "seconds": round(elapsed, 1),
        "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
