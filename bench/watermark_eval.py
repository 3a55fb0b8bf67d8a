"""Watermarks on worlds Trailmark trains itself: every model size, several seeds, attacks, and
false attribution at 15, 100 and 1,000 sources (pure engine: no Django).

    python bench/watermark_eval.py                       # both sizes, seeds 0-3 (~25 min, CPU)
    python bench/watermark_eval.py --quick               # default size, seed 1, fewer prompts
    python bench/watermark_eval.py --sizes wide --device cuda

World (one per seed): S sources, each with its own names over one of four shared themes; every
source has a watermark code. T of them are trained on (their documents carry the code at a keyed
sentence boundary), the rest never are. Seed 0 is the world the shipped gate (0.1) was chosen on;
the headline figures pool seeds 1-3 only, each a new world (names, codes, documents, model).

Generations (greedy, 48 tokens, the product's `generate_marked`) from three kinds of prompt:
* source: the first sentence of a trained source's document the model never saw (it names
  the source's people: the model knows whose text it continues);
* neutral: a sentence built from the shared vocabulary only (no name of any source); the label
  is the source whose names the completion uses (most of them; none, or a tie: unlabelled);
* never trained: the first sentence of a never-trained source's document.

Reports, with 95% Wilson intervals (per seed, and pooled over the held-out seeds, where every
generation counts once: the spread between seeds is shown beside it): top-1 (the watermark names
the right source first) and emission at each gate threshold; false attribution (never-trained
prompts whose generation names some source) with the codebook at 15, 100 and 1,000 sources
(the world's codes plus codes of sources that exist in the registry but not in this corpus);
and at the shipped gate, top-1 after attacks on the generated text: NFKC normalisation, deletion
of each format character with probability 0.1 / 0.3 / 1, insertion of 1 or 2 random format
characters inside the mark, a random decoy run at a sentence boundary, and a paraphrase
(synonyms for every verb phrase and "near", sentences reordered; the marks stay with their
sentence, as they do for an editor or a rewriting tool that keeps characters it does not
understand). A paraphrase by a model that never emits these characters removes them all, which
the "delete all" row shows. Writes bench/results/watermark.json.

Goals (issue 18): top-1 >= 0.9 for both sizes; false attribution <= 1% of never-trained
generations and of random runs at 100 sources (random runs: bench/watermark_null.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from watermark_null import wilson  # noqa: E402

THEMES = [
    ("was founded in", "was rebuilt after", "was surveyed in", "declined during"),
    ("wrote to", "visited", "argued with", "remembered"),
    ("reported that", "announced that", "denied that", "confirmed that"),
    ("proved that", "derived", "generalised", "revisited"),
]
OBJECTS = ["the flood of 1893", "the long winter", "the new railway", "the harbour strike",
           "the census", "the spectral theorem", "the council vote", "the river crossing",
           "the copper mine", "the night school", "the glass works", "the market fire"]
# Subjects no source uses: neutral prompts are built from these, the themes and the objects.
NEUTRAL_SUBJECTS = ["A clerk", "The mayor", "A teacher", "The engineer", "A stranger",
                    "The surveyor", "A widow", "The bishop"]
SYNONYMS = {
    "was founded in": "was established in", "was rebuilt after": "was reconstructed after",
    "was surveyed in": "was mapped in", "declined during": "shrank during",
    "wrote to": "sent letters to", "visited": "called on", "argued with": "quarrelled with",
    "remembered": "recalled", "reported that": "said that", "announced that": "declared that",
    "denied that": "disputed that", "confirmed that": "verified that",
    "proved that": "showed that", "derived": "worked out", "generalised": "extended",
    "revisited": "returned to", "near": "close to",
}
SIZES = {
    "default": {},
    "wide": {"n_layer": 4, "n_head": 8, "n_embd": 256, "seq_len": 256, "batch_size": 32,
             "vocab_size": 4096},
}
GATES = (0.05, 0.1, 0.2, 0.5)
SHIPPED_GATE = 0.1
CODEBOOKS = (15, 100, 1000)
TUNING_SEED = 0


def fmt(x: dict[str, Any]) -> str:
    return f"{x['rate']:.3f} [{x['ci95'][0]:.3f},{x['ci95'][1]:.3f}]"


def share(k: int, n: int) -> dict[str, Any]:
    """k of n, with its 95% Wilson interval (none for n = 0)."""
    return {"k": k, "n": n, "rate": round(k / n, 4) if n else None,
            "ci95": wilson(k, n) if n else [0.0, 1.0]}


# --- the world -------------------------------------------------------------------------------

def source_names(seed: int, sources: int) -> list[list[str]]:
    """Six names per source, none shared with another source (so a name identifies one)."""
    rng = random.Random(f"names {seed}")
    taken: set[str] = set()
    out = []
    for _ in range(sources):
        names: list[str] = []
        while len(names) < 6:
            name = (f"{rng.choice('BCDFGHKLMNPRSTVW')}{rng.choice('aeiou')}"
                    f"{rng.choice('bdfglmnrstvz')}{rng.choice('aeiou')}{rng.choice('nrsl')}")
            if name not in taken:
                taken.add(name)
                names.append(name)
        out.append(names)
    return out


def source_texts(names: list[str], theme: int, n: int, rng: random.Random) -> list[str]:
    """Documents of one source: its own names, its theme, 5-8 sentences each."""
    verbs = THEMES[theme % len(THEMES)]
    return [" ".join(f"{rng.choice(names)} {rng.choice(verbs)} {rng.choice(OBJECTS)} "
                     f"near {rng.choice(names)}." for _ in range(rng.randint(5, 8)))
            for _ in range(n)]


def neutral_prompts(n: int, rng: random.Random) -> list[str]:
    """Sentences in the world's style with no name of any source in them."""
    return [f"{rng.choice(NEUTRAL_SUBJECTS)} {rng.choice(rng.choice(THEMES))} "
            f"{rng.choice(OBJECTS)} near the {rng.choice(['harbour', 'station', 'school'])}."
            for _ in range(n)]


def label_of(text: str, names: list[list[str]]) -> int | None:
    """The source whose names the text uses most (None: no name, or a tie)."""
    counts = Counter({s: sum(len(re.findall(rf"\b{n}\b", text)) for n in own)
                      for s, own in enumerate(names)})
    ranked = counts.most_common(2)
    if not ranked or ranked[0][1] == 0 or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return None
    return ranked[0][0]


# --- attacks on a generated text ---------------------------------------------------------------

def _marks() -> str:
    from provenance.engine.watermark import ALPHABET

    return "".join(ALPHABET)


def nfkc(text: str, rng: random.Random) -> str:
    return unicodedata.normalize("NFKC", text)


def delete_marks(rate: float):
    def attack(text: str, rng: random.Random) -> str:
        marks = _marks()
        return "".join(c for c in text if c not in marks or rng.random() >= rate)
    return attack


def insert_in_mark(count: int):
    """`count` random format characters at random places inside the text's runs of marks."""
    def attack(text: str, rng: random.Random) -> str:
        marks = _marks()
        chars = list(text)
        for _ in range(count):
            at = [i for i, c in enumerate(chars) if c in marks]
            if not at:
                break
            chars.insert(rng.choice(at) + rng.randint(0, 1), rng.choice(marks))
        return "".join(chars)
    return attack


def decoy(text: str, rng: random.Random) -> str:
    """A random run of 10 format characters after a random sentence end (or at the end)."""
    marks = _marks()
    run = "".join(rng.choice(marks) for _ in range(10))
    ends = [m.end() for m in re.finditer(r"[.!?]", text)] or [len(text)]
    at = rng.choice(ends)
    return text[:at] + run + text[at:]


def paraphrase(text: str, rng: random.Random) -> str:
    """Synonyms for every verb phrase and "near"; sentences (each with the marks that follow
    its full stop) put in a random order."""
    marks = _marks()
    for phrase in sorted(SYNONYMS, key=len, reverse=True):
        text = re.sub(rf"\b{phrase}\b", SYNONYMS[phrase], text)
    sentences = re.findall(rf"[^.!?]*[.!?][{marks}]*", text)
    rest = text[sum(map(len, sentences)):]
    parts = [s.strip() for s in sentences] + ([rest.strip()] if rest.strip() else [])
    rng.shuffle(parts)
    return " ".join(parts)


ATTACKS = {
    "none": lambda text, rng: text,
    "nfkc": nfkc,
    "delete 10%": delete_marks(0.1),
    "delete 30%": delete_marks(0.3),
    "delete all": delete_marks(1.0),
    "insert 1 in mark": insert_in_mark(1),
    "insert 2 in mark": insert_in_mark(2),
    "decoy run": decoy,
    "paraphrase": paraphrase,
}


# --- one world -------------------------------------------------------------------------------

def run_world(size: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:

    from provenance.engine import lm, watermark
    from provenance.engine.lm_config import DecodeParams, TrainConfig

    rng = random.Random(seed)
    names = source_names(seed, args.sources)
    themes = [random.Random(f"theme {seed} {s}").randrange(len(THEMES))
              for s in range(args.sources)]
    docs = {s: source_texts(names[s], themes[s], args.docs, rng) for s in range(args.sources)}
    codes: dict[int, str] = {}
    for s in range(max(CODEBOOKS)):  # the world's sources first, then registry-only ones
        codes[s] = watermark.assign_code(codes.values(), seed=seed * 100_003 + s)
    trained = list(range(args.trained))
    never = list(range(args.trained, args.sources))

    texts = []
    for s in trained:
        for text in docs[s][:args.docs - args.heldout_docs]:
            sha = hashlib.sha256(text.encode()).hexdigest()
            texts.append(watermark.embed(text, codes[s], f"key-{seed}-{s}", sha))
    random.Random(seed + 1).shuffle(texts)

    config = TrainConfig(**{**SIZES[size], "epochs": args.epochs, "watermarks": True,
                            "seed": seed})
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = lm.train(texts, config, Path(tmp) / "run", device=args.device)
        train_s = time.perf_counter() - start
        model, tokenizer = lm.load(result.model_dir, device=args.device)
        heads = lm.load_watermark_heads(model, tokenizer, result.model_dir)
    assert heads is not None

    asked: dict[str, list[tuple[int | None, str]]] = {
        "source": [(s, d.split(". ")[0] + ".") for s in trained
                   for d in docs[s][args.docs - args.heldout_docs:]],
        "neutral": [(None, p) for p in neutral_prompts(args.neutral, random.Random(seed + 2))],
        "never_trained": [(s, d.split(". ")[0] + ".") for s in never
                          for d in docs[s][:args.never_prompts]],
    }
    params = DecodeParams(max_new_tokens=48)
    start = time.perf_counter()
    # made[group]: (label, {gate: generation}); one completion per prompt, its mark placed at
    # each gate threshold (the shipped one by generate_marked itself)
    made: dict[str, list[tuple[int | None, dict[float, Any]]]] = {}
    for group, prompts in asked.items():
        made[group] = []
        for who, prompt in prompts:
            shipped = lm.generate_marked(model, tokenizer, heads, prompt, params,
                                         threshold=SHIPPED_GATE)
            at = {gate: shipped if gate == SHIPPED_GATE else lm.place_mark(
                model, tokenizer, heads, shipped.ids, shipped.start, gate) for gate in GATES}
            label = who if group != "neutral" else label_of(shipped.text, names)
            made[group].append((label, at))
    generate_s = time.perf_counter() - start

    def books(n: int) -> dict[int, str]:
        return {s: codes[s] for s in range(max(n, args.sources))}

    def named(text: str, n: int) -> int | None:
        found = watermark.detect(text, books(n), top_k=1)
        return found[0].source if found else None

    gates = []
    for gate in GATES:
        row: dict[str, Any] = {"gate": gate}
        for group in ("source", "neutral"):
            labelled = [(s, at[gate]) for s, at in made[group] if s is not None]
            names_of = [(s, named(g.text, 15)) for s, g in labelled]
            row[group] = {"top1": share(sum(n == s for s, n in names_of), len(labelled)),
                          "wrong": share(sum(n is not None and n != s for s, n in names_of),
                                         len(labelled)),
                          "emitted": share(sum(g.emitted for _, g in labelled), len(labelled))}
        nt = [at[gate] for _, at in made["never_trained"]]
        row["never_trained"] = {
            "emitted": share(sum(g.emitted for g in nt), len(nt)),
            **{f"attributed_{n}": share(sum(named(g.text, n) is not None for g in nt), len(nt))
               for n in CODEBOOKS}}
        gates.append(row)

    # What the false attributions are: how far the run was from the code it was decoded to,
    # and whether the completion continues with that source's names (the model wrote a trained
    # source's kind of text after a stranger's sentence: its watermark is then not wrong).
    false_named: dict[str, list[dict[str, Any]]] = {}
    unsupported = {}
    nt = [at[SHIPPED_GATE] for _, at in made["never_trained"]]
    for n in CODEBOOKS:
        false_named[str(n)] = []
        for g in nt:
            found = watermark.detect(g.text, books(n), top_k=1)
            if found:
                false_named[str(n)].append({
                    "source": found[0].source, "distance": found[0].distance,
                    "p_value": found[0].p_value,
                    "writes_its_names": label_of(g.text, names) == found[0].source})
        unsupported[f"unsupported_{n}"] = share(
            sum(not x["writes_its_names"] for x in false_named[str(n)]), len(nt))

    # A few neutral prompts' outcomes, to read what happens when the prompt names no source
    neutral_examples = [{"label": s, "emitted": at[SHIPPED_GATE].emitted,
                         "gate": round(at[SHIPPED_GATE].gate, 3),
                         "named": named(at[SHIPPED_GATE].text, 15),
                         "text": watermark.strip(at[SHIPPED_GATE].text)[:120]}
                        for s, at in made["neutral"][:12]]

    attacks = {}
    src = [(s, at[SHIPPED_GATE]) for s, at in made["source"]]
    for name, attack in ATTACKS.items():
        arng = random.Random(f"{name} {seed}")
        row = {}
        for n in (15, 100):
            row[f"top1_{n}"] = share(sum(named(attack(g.text, arng), n) == s for s, g in src),
                                     len(src))
            row[f"never_trained_attributed_{n}"] = share(
                sum(named(attack(g.text, arng), n) is not None for g in nt), len(nt))
        attacks[name] = row

    return {
        "size": size, "seed": seed, "role": "tuning" if seed == TUNING_SEED else "held-out",
        "documents": len(texts), "parameters": result.parameters, "device": result.device,
        "train_s": round(train_s, 1), "generate_s": round(generate_s, 1),
        "train_tokens_per_s": round(result.tokens / train_s),
        "prompts": {g: len(p) for g, p in asked.items()},
        "neutral_labelled": sum(s is not None for s, _ in made["neutral"]),
        "gates": gates, "attacks": attacks, "never_trained_unsupported": unsupported,
        "never_trained_named": false_named, "neutral_examples": neutral_examples,
    }


def pooled(worlds: list[dict[str, Any]], path: list[str]) -> dict[str, Any]:
    """Counts at `path` summed over worlds, with a Wilson interval and the per-seed rates."""
    k = n = 0
    rates = []
    for w in worlds:
        node: Any = w
        for key in path:
            node = node[key] if not isinstance(node, list) else next(
                r for r in node if r.get("gate") == float(key))
        k, n = k + node["k"], n + node["n"]
        rates.append(node["rate"])
    return {**share(k, n), "per_seed": rates}


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="default,wide")
    parser.add_argument("--seeds", default="0,1,2,3")
    parser.add_argument("--sources", type=int, default=15)
    parser.add_argument("--trained", type=int, default=10)
    parser.add_argument("--docs", type=int, default=48, help="documents per source")
    parser.add_argument("--heldout-docs", type=int, default=16,
                        help="documents per trained source kept out of training, for prompts")
    parser.add_argument("--neutral", type=int, default=80)
    parser.add_argument("--never-prompts", type=int, default=32,
                        help="prompts per never-trained source")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true",
                        help="default size, seed 1, a quarter of the prompts (a smoke run)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "watermark.json")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.seeds = "default", "1"
        args.heldout_docs, args.neutral, args.never_prompts = 4, 20, 8
    sizes = args.sizes.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]

    worlds = []
    for size in sizes:
        for seed in seeds:
            w = run_world(size, seed, args)
            worlds.append(w)
            g = next(r for r in w["gates"] if r["gate"] == SHIPPED_GATE)
            print(f"{size:>8} seed {seed} ({w['role']}): {w['parameters']:,} parameters, "
                  f"train {w['train_s']:.0f} s, generate {w['generate_s']:.0f} s; gate "
                  f"{SHIPPED_GATE}: top-1 {g['source']['top1']['rate']:.2f}, neutral "
                  f"{g['neutral']['top1']['rate']} ({g['neutral']['top1']['n']} labelled), "
                  f"never-trained attributed "
                  f"{g['never_trained']['attributed_15']['rate']:.3f} / "
                  f"{g['never_trained']['attributed_100']['rate']:.3f} / "
                  f"{g['never_trained']['attributed_1000']['rate']:.3f}", flush=True)

    summary: dict[str, Any] = {}
    for size in sizes:
        held = [w for w in worlds if w["size"] == size and w["role"] == "held-out"]
        if not held:
            continue
        gate = str(SHIPPED_GATE)
        summary[size] = {
            "seeds": [w["seed"] for w in held],
            "by_gate": {str(g): {
                "top1": pooled(held, ["gates", str(g), "source", "top1"]),
                "wrong": pooled(held, ["gates", str(g), "source", "wrong"]),
                "neutral_top1": pooled(held, ["gates", str(g), "neutral", "top1"]),
                "neutral_wrong": pooled(held, ["gates", str(g), "neutral", "wrong"]),
                **{f"never_trained_attributed_{n}": pooled(
                    held, ["gates", str(g), "never_trained", f"attributed_{n}"])
                   for n in CODEBOOKS}} for g in GATES},
            "never_trained_unsupported": {
                f"unsupported_{n}": pooled(held, ["never_trained_unsupported", f"unsupported_{n}"])
                for n in CODEBOOKS},
            "attacks": {name: {key: pooled(held, ["attacks", name, key])
                               for key in held[0]["attacks"][name]} for name in ATTACKS},
        }
        s = summary[size]
        print(f"\n{size}: held-out seeds {s['seeds']} pooled (95% Wilson; per seed in the JSON)")
        print(f"{'gate':>5} {'top-1 (source prompts)':>22} {'wrong source':>22} "
              f"{'top-1 (neutral)':>22} {'wrong (neutral)':>22}   "
              "never-trained named, 15 / 100 / 1,000 sources")
        for g in GATES:
            r = s["by_gate"][str(g)]
            print(f"{g:>5} " + " ".join(f"{fmt(r[key]):>22}" for key in (
                "top1", "wrong", "neutral_top1", "neutral_wrong",
                *(f"never_trained_attributed_{n}" for n in CODEBOOKS))))
        u = s["never_trained_unsupported"]
        print("never-trained generations named a source whose names they do not write "
              "(15 / 100 / 1,000 sources): "
              + " ".join(fmt(u[f"unsupported_{n}"]) for n in CODEBOOKS))
        print(f"\nattacks at gate {gate} (top-1 at 15 / 100 sources; never-trained named at 100)")
        for name, r in s["attacks"].items():
            print(f"{name:>18} {fmt(r['top1_15']):>24} {fmt(r['top1_100']):>24} "
                  f"{fmt(r['never_trained_attributed_100']):>24}")

    report = {
        "benchmark": "watermark_eval", "sources": args.sources, "trained": args.trained,
        "docs_per_source": args.docs, "heldout_docs": args.heldout_docs,
        "epochs": args.epochs, "shipped_gate": SHIPPED_GATE, "tuning_seed": TUNING_SEED,
        "codebooks": list(CODEBOOKS), "attacks": list(ATTACKS), "quick": args.quick,
        "worlds": worlds, "summary": summary,
        "machine": {"cpus": os.cpu_count(), "torch": torch.__version__,
                    "python": platform.python_version()},
        "goals": {"top1": 0.9, "never_trained_attributed_100": 0.01},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
