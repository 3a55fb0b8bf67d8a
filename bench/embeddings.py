"""Sentence embeddings on CPU: the product's int8 build against fp32 (today's path) and the
alternatives, speed and fidelity in the same run.

    .venv/bin/python bench/embeddings.py                 # perl-doc needed (make bench-deps)
    python -m config.embedded exec --throwaway -- .venv/bin/python bench/embeddings.py --db 4096

Texts (none of them the build's calibration or check texts, which are standard-library
docstrings):
- tuning: the demo corpus (seed 7); the smoothing strength alpha is chosen here, from a grid,
  as the alpha whose build has the highest minimum cosine to fp32;
- report: Perl's documentation (Debian's perl-doc, cut into ~1 KB pieces at paragraph breaks),
  three disjoint random draws of --texts each (seeds 0, 1, 2), and ~1 KB word-salad documents
  (bench/ingest.py's, out of any domain).

Configurations: fp32 torch (`embed`, what production ran before: the baseline of every ratio),
bf16 torch weights, torch dynamic int8 (per channel), ONNX Runtime fp32 (plain and with its
transformer optimiser's fused operators), ONNX Runtime's default dynamic int8, per-channel int8
with attention products in fp32 (no smoothing; plain and fused), and the product's build
(`int8_build`: smoothed, alpha = embed_int8.ALPHA) with every alpha of the grid beside it.
Speed: texts/s on the first report draw at 1 and all threads, median of --repeats. Fidelity
against fp32 on every report set: cosine min, 1st percentile, mean with a bootstrap 95% interval,
the share of texts at >= 0.99 (Wilson interval), and whether each text's nearest neighbour and
its 10 nearest are the same. --db N also times the product's background task
(`documents_embed`) over N ingested documents with each backend. Writes
bench/results/embeddings.json.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gzip
import json
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PERL_POD = Path("/usr/share/perl/5.36/pod")
ALPHAS = (0.5, 0.6, 0.7, 0.8, 0.9)
Embedder = Callable[[Sequence[str]], np.ndarray]


def perl_pieces(chars: int = 1000) -> list[str]:
    """Perl's documentation cut at paragraph breaks into pieces of ~`chars` characters (code
    blocks, indented in POD, left out), in a fixed order."""
    if not PERL_POD.is_dir():
        raise SystemExit("Perl's documentation is missing: apt-get install perl-doc "
                         "(make bench-deps)")
    pieces = []
    for path in sorted(PERL_POD.glob("*.pod")):
        raw = path.read_bytes()
        text = (gzip.decompress(raw) if path.suffix == ".gz" else raw).decode("utf-8", "replace")
        current = ""
        for para in re.split(r"\n\s*\n", text):
            if para.startswith((" ", "\t", "=")) or len(para) < 40:
                continue
            current = f"{current}\n\n{para}" if current else para
            if len(current) >= chars * 3 // 4:
                pieces.append(current[:chars])
                current = ""
    return pieces


def report_sets(n: int) -> dict[str, list[str]]:
    from ingest import synthetic_texts

    pieces = perl_pieces()
    order = list(range(len(pieces)))
    random.Random(20).shuffle(order)
    if len(order) < 3 * n:
        raise SystemExit(f"only {len(order)} pieces of Perl's documentation for 3 x {n}")
    sets = {f"perl-doc seed {s}": [pieces[i] for i in order[s * n:(s + 1) * n]]
            for s in range(3)}
    sets["word salad"] = synthetic_texts(n, seed=5)
    return sets


def fidelity(reference: np.ndarray, got: np.ndarray) -> dict[str, Any]:
    from scipy.stats import binomtest, bootstrap

    cosine = (reference * got).sum(1)
    ci = bootstrap((cosine,), np.mean, n_resamples=2000, random_state=0,
                   confidence_level=0.95).confidence_interval
    at = int((cosine >= 0.99).sum())
    share = binomtest(at, len(cosine)).proportion_ci(method="wilson")
    ref_sims, got_sims = reference @ reference.T, got @ got.T
    np.fill_diagonal(ref_sims, -2)
    np.fill_diagonal(got_sims, -2)
    top1 = int((ref_sims.argmax(1) == got_sims.argmax(1)).sum())
    ref10 = np.argsort(-ref_sims, 1)[:, :10]
    got10 = np.argsort(-got_sims, 1)[:, :10]
    recall10 = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref10, got10,
                                                                        strict=True)]))
    return {"texts": len(cosine), "cosine_min": float(cosine.min()),
            "cosine_p1": float(np.quantile(cosine, 0.01)), "cosine_mean": float(cosine.mean()),
            "cosine_mean_ci95": [float(ci.low), float(ci.high)],
            "share_at_0_99": at / len(cosine),
            "share_at_0_99_wilson95": [float(share.low), float(share.high)],
            "top1_agreement": top1 / len(cosine), "recall_at_10": recall10}


def speed(fn: Embedder, texts: Sequence[str], threads: int, repeats: int) -> dict[str, Any]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fn(texts[:16])  # warm: sessions opened, weights paged in
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(texts)
            rates.append(len(texts) / (time.perf_counter() - start))
    finally:
        torch.set_num_threads(before)
    return {"threads": threads, "texts_per_s": statistics.median(rates),
            "runs": [round(r, 2) for r in rates]}


def ort_embedder(path: Path) -> Embedder:
    from provenance.engine import embed_int8
    from provenance.engine.embeddings import MAX_TOKENS

    tokenizer = _tokenizer()

    def run(texts: Sequence[str]) -> np.ndarray:
        return embed_int8.run(embed_int8.session(str(path)), tokenizer, texts,
                              max_tokens=MAX_TOKENS)

    return run


def _tokenizer() -> Any:
    from transformers import AutoTokenizer

    from provenance.engine.embeddings import model_dir

    return AutoTokenizer.from_pretrained(model_dir(), local_files_only=True)


def torch_embedder(model: Any) -> Embedder:
    import torch

    from provenance.engine import embed_int8
    from provenance.engine.embeddings import MAX_TOKENS

    tokenizer = _tokenizer()

    def encode(batch: Any) -> np.ndarray:
        hidden = model(**batch).last_hidden_state.float()
        mask = batch["attention_mask"].unsqueeze(-1).float()
        pooled = (hidden * mask).sum(1) / mask.sum(1)
        return torch.nn.functional.normalize(pooled, dim=-1).numpy()

    @torch.inference_mode()
    def run(texts: Sequence[str]) -> np.ndarray:
        return embed_int8.in_length_order(texts, tokenizer, encode, dim=384,
                                          max_tokens=MAX_TOKENS, batch_size=32, tensors="pt")

    return run


def configurations(work: Path, tuning: list[str]) -> tuple[dict[str, Embedder], dict[str, Any]]:
    """Every configuration's embedder, and the builds (alpha grid) with what they measured."""
    import torch
    from transformers import AutoModel

    from provenance.engine import embed_int8
    from provenance.engine.embeddings import embed, int8_build, model_dir

    eager = AutoModel.from_pretrained(model_dir(), local_files_only=True,
                                      attn_implementation="eager").eval()
    tokenizer = _tokenizer()
    fp32 = lambda texts: embed(texts, device="cpu")  # noqa: E731
    configs: dict[str, Embedder] = {"fp32 torch (baseline)": fp32}
    bf16 = copy.deepcopy(eager).to(torch.bfloat16)
    configs["bf16 torch"] = torch_embedder(bf16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        per_channel = torch.ao.quantization.per_channel_dynamic_qconfig
        dynamic = torch.ao.quantization.quantize_dynamic(copy.deepcopy(eager),
                                                         {torch.nn.Linear: per_channel})
    configs["int8 torch dynamic (per channel)"] = torch_embedder(dynamic)
    for name, options in [("fp32 onnxruntime", {"int8": False}),
                          ("fp32 onnxruntime fused", {"int8": False, "fuse": True}),
                          ("int8 onnxruntime defaults", {"per_channel": False,
                                                         "products_fp32": False}),
                          ("int8 onnxruntime per channel, no smoothing", {}),
                          ("int8 onnxruntime per channel fused, no smoothing", {"fuse": True})]:
        path = work / f"{len(configs)}.onnx"
        embed_int8.export(eager, tokenizer, path, **options)
        configs[name] = ort_embedder(path)
    builds: dict[str, Any] = {}
    reference = fp32(tuning)
    for alpha in ALPHAS:
        folder = work / f"alpha-{alpha}"
        build = int8_build(folder, alpha=alpha)
        got = ort_embedder(folder / "model.onnx")(tuning)
        builds[str(alpha)] = {"build_check": dataclasses.asdict(build),
                              "tuning": fidelity(reference, got), "folder": folder}
    return configs, builds


def db_part(n: int) -> list[dict[str, Any]]:
    """The product's background task over n ingested ~1 KB documents, per backend."""
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"  # not the tests' (exec's)
    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from ingest import synthetic_texts

    from config.settings import base
    from provenance.models import Document, EmbeddingBatch, RightsHolder
    from provenance.services.embeddings import documents_embed
    from provenance.services.sources import source_create

    call_command("migrate", verbosity=0)
    owner, _ = RightsHolder.objects.get_or_create(name="bench/embeddings.py")
    source = source_create(actor=None, owner=owner, name=f"embeddings-{time.time_ns()}",
                           license_expression="CC-BY-4.0")
    rows: list[dict[str, Any]] = []
    for backend in ("fp32", "int8"):
        _ingest(source, synthetic_texts(n, seed=40 + len(rows)))
        # Production's batch, whatever settings module the launcher chose (the tests' is 64).
        settings.TRAILMARK = {**settings.TRAILMARK, "EMBED_BACKEND": backend,
                              "EMBED_BATCH": base.TRAILMARK["EMBED_BATCH"]}
        documents_embed(limit=32)  # warm: the model loaded (and int8 built) outside the timing
        pending = Document.objects.filter(embedding__isnull=True).count()
        start = time.perf_counter()
        done = 0
        while (k := documents_embed()) > 0:
            done += k
        wall = time.perf_counter() - start
        rows.append({"backend": backend, "documents": done, "pending_before": pending,
                     "seconds": wall, "docs_per_s": done / wall,
                     "recorded": list(EmbeddingBatch.objects.filter(backend=backend)
                                      .values_list("documents", flat=True)[:3])})
    return rows


def _ingest(source: Any, texts: list[str]) -> None:
    from provenance.services.ingest import ingest_path

    path = Path(tempfile.mkdtemp()) / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    ingest_path(source=source, path=path, actor=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=256, help="texts in each report set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", type=int, default=0, help="documents for the task's timing")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "bench" / "results" / "embeddings.json")
    args = parser.parse_args()
    import torch

    from demo import corpus as demo
    from provenance.engine import embed_int8

    all_threads = sorted({1, torch.get_num_threads()})
    tuning = [t for s in demo.build_corpus(seed=7) for t in s.texts]
    sets = report_sets(args.texts)
    with tempfile.TemporaryDirectory() as tmp:
        configs, builds = configurations(Path(tmp), tuning)
        chosen = max(builds, key=lambda a: (builds[a]["tuning"]["cosine_min"],
                                            builds[a]["tuning"]["cosine_mean"]))
        product = f"int8 onnxruntime smoothed alpha {embed_int8.ALPHA} (product)"
        for alpha, build in builds.items():
            name = product if float(alpha) == embed_int8.ALPHA else \
                f"int8 onnxruntime smoothed alpha {alpha}"
            configs[name] = ort_embedder(build.pop("folder") / "model.onnx")
        references = {name: configs["fp32 torch (baseline)"](texts)
                      for name, texts in sets.items()}
        rows = []
        for name, fn in configs.items():
            row: dict[str, Any] = {"configuration": name, "fidelity": {
                set_name: fidelity(references[set_name], fn(texts))
                for set_name, texts in sets.items()}}
            if "alpha" not in name or name == product:
                row["speed"] = [speed(fn, sets["perl-doc seed 0"], n, args.repeats)
                                for n in all_threads]
            rows.append(row)
            print_row(row, rows[0])
    report = {"benchmark": "embeddings", "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(), "torch": torch.__version__},
        "date": time.strftime("%Y-%m-%d"), "texts_per_set": args.texts,
        "alpha_grid": builds, "alpha_chosen_on_tuning": float(chosen),
        "alpha_shipped": embed_int8.ALPHA, "results": rows}
    if args.db:
        report["task"] = db_part(args.db)
        for r in report["task"]:
            print(f"documents_embed {r['backend']}: {r['documents']} documents in "
                  f"{r['seconds']:.1f} s = {r['docs_per_s']:.1f} docs/s")
    print(f"alpha chosen on the tuning split: {chosen} (shipped: {embed_int8.ALPHA})")
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(f"wrote {args.out}")


def print_row(row: dict[str, Any], baseline: dict[str, Any]) -> None:
    name = row["configuration"]
    if not row.get("speed"):
        print(name)
    for s in row.get("speed", []):
        base = next(b for b in baseline["speed"] if b["threads"] == s["threads"])
        ten5 = 1e5 / s["texts_per_s"] / 60
        print(f"{name:<52} {s['threads']} thr {s['texts_per_s']:7.1f} texts/s "
              f"x{s['texts_per_s'] / base['texts_per_s']:.2f}  (10^5 docs: {ten5:.0f} min)")
    for set_name, f in row["fidelity"].items():
        print(f"{'':<52} {set_name:<16} cos min {f['cosine_min']:.4f} p1 {f['cosine_p1']:.4f} "
              f"mean {f['cosine_mean']:.4f}  >=0.99 {f['share_at_0_99']:.3f}  "
              f"top1 {f['top1_agreement']:.3f}  R@10 {f['recall_at_10']:.3f}", flush=True)


if __name__ == "__main__":
    main()
