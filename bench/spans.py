"""Verbatim span tracing on the production path: real English text, per-source shards, a cold
page cache, `trace_output` as an attribution run calls it, and infini-gram on the same tokens.

    make bench-deps   # pydivsufsort is an app dependency; infini-gram and the Debian texts not
    python -m config.embedded exec --throwaway -- .venv/bin/python bench/spans.py
    ... bench/spans.py --quick      # 10^6 tokens, 30 outputs: a smoke run (~2 min)

Corpus: every English text these Debian packages install (named so that anyone can rebuild it):
python3.11-doc (the reST sources of the Python 3.11 documentation), linux-doc-6.1 (the kernel's
Documentation tree), perl-doc (Perl's pod pages) and dict-gcide (the GNU Collaborative
International Dictionary of English, entries grouped 40 to a document). Files longer than
12,000 characters are cut at paragraph breaks. The tokenizer is the one a default training run
trains (`train_tokenizer`, `TrainConfig()`: byte-level BPE, 2,048 ids), on a 20 MB sample.
2% of the documents are held out of the index: the outputs' novel text comes from them.

These packages hold ~3.5 x 10^7 tokens. To reach the `--tokens` target the index is filled up with
documents sampled from a second-order token Markov chain fitted on the real tokens (each next
token drawn from the real continuations of the previous two): the share of filler is reported.
Documents go to `--shards` sources by a hash of their name (one shard per source, as
`span_index_build` builds them).

Outputs: 500 tokens of real text, half of them novel (held-out documents only) and half with a
50-250-token passage of an indexed real document inside held-out text. Each output is traced by
`trace_output` (tokenizer, shards opened memory-mapped, spans, document lookups, the takedown
check in PostgreSQL) cold (every index file evicted from the page cache first, with
posix_fadvise) and warm. Every span's count is checked against infini-gram's `count` on an
infini-gram index of the same tokens, and its `attribute` (OLMoTrace's spans) is timed beside.

Layouts, built by `write_index` as span_index_build calls it, each in a fresh process whose
peak resident set (getrusage) is the build's: the shipped one (sources share a suffix array up
to GROUP_TOKENS: one array here), one suffix array per source (the layout before), and the
per-source build with the numpy prefix-doubling builder libdivsufsort replaced. Both layouts
trace every output and must find the same spans. Goal (issue 17): p95 <= 50 ms per 500-token
output at 10^8 tokens over 100 shards on 2 cores.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# Production's defaults, not the tests' (`config.embedded exec` sets config.settings.test).
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.local"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PACKAGES = {  # Debian package: (glob root, patterns)
    "python3.11-doc": ("/usr/share/doc/python3.11/html/_sources", ["**/*.txt"]),
    "linux-doc-6.1": ("/usr/share/doc/linux-doc-6.1/Documentation",
                      ["**/*.rst", "**/*.rst.gz", "**/*.txt", "**/*.txt.gz"]),
    "perl-doc": ("/usr/share/perl/5.36/pod", ["*.pod"]),
    "dict-gcide": ("/usr/share/dictd", ["gcide.dict.dz"]),
}
MAX_CHARS = 12_000
OUTPUT_TOKENS = 500


def _read(path: Path) -> str:
    raw = gzip.open(path).read() if path.suffix in (".gz", ".dz") else path.read_bytes()
    return raw.decode("utf-8", errors="replace")


def _cut(text: str) -> list[str]:
    """A long text cut at paragraph breaks into pieces of at most MAX_CHARS (about)."""
    pieces, current = [], ""
    for para in re.split(r"\n\s*\n", text):
        if current and len(current) + len(para) > MAX_CHARS:
            pieces.append(current)
            current = ""
        current = f"{current}\n\n{para}" if current else para
    if current.strip():
        pieces.append(current)
    return pieces


def real_documents() -> list[tuple[str, str]]:
    """(name, text) of every document the packages give, in a fixed order."""
    missing = [p for p, (root, _) in PACKAGES.items() if not Path(root).is_dir()]
    if missing:
        raise SystemExit(f"missing Debian packages: apt-get install {' '.join(missing)}")
    docs: list[tuple[str, str]] = []
    for package, (root, patterns) in PACKAGES.items():
        paths = sorted({p for pattern in patterns for p in Path(root).glob(pattern)
                        if p.is_file()})
        for path in paths:
            text = _read(path)
            if package == "dict-gcide":  # entries: groups of 40
                entries = [e for e in re.split(r"\n(?=<p><ent>)", text) if e.strip()]
                for n in range(0, len(entries), 40):
                    docs.append((f"{package}:{n // 40}", "\n".join(entries[n:n + 40])))
                continue
            for n, piece in enumerate(_cut(text)):
                docs.append((f"{package}:{path.relative_to(root)}:{n}", piece))
    return docs


def _hash(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")


def markov_fill(real: list[np.ndarray], total: int, doc_len: int,
                rng: np.random.Generator) -> list[np.ndarray]:
    """Documents of doc_len tokens from a second-order Markov chain over the real tokens: each
    next token is the token after a random real occurrence of the previous two."""
    if total <= 0:
        return []
    flat = np.concatenate([np.append(r, -1) for r in real]).astype(np.int64)
    vocab = int(flat.max()) + 2
    keys = (flat[:-2] + 1) * vocab + (flat[1:-1] + 1)  # context (t[i], t[i+1]) -> t[i+2]
    ok = (flat[:-2] >= 0) & (flat[1:-1] >= 0) & (flat[2:] >= 0)
    order = np.argsort(keys[ok], kind="stable")
    sorted_keys, nexts = keys[ok][order], flat[2:][ok][order]
    chains = total // doc_len + 1
    starts = rng.integers(0, len(sorted_keys), size=chains)
    out = np.empty((chains, doc_len), dtype=np.int64)
    key = sorted_keys[starts]
    out[:, 0], out[:, 1] = key // vocab - 1, key % vocab - 1
    for step in range(2, doc_len):
        key = (out[:, step - 2] + 1) * vocab + (out[:, step - 1] + 1)
        lo = np.searchsorted(sorted_keys, key, side="left")
        hi = np.searchsorted(sorted_keys, key, side="right")
        dead = lo >= hi  # a context seen only at a document's end: restart anywhere
        pick = lo + (rng.random(chains) * np.maximum(hi - lo, 1)).astype(np.int64)
        pick[dead] = rng.integers(0, len(sorted_keys), size=int(dead.sum()))
        out[:, step] = nexts[pick]
    rows = [row for row in out]
    rows[-1] = rows[-1][:max(1, total - doc_len * (chains - 1))]
    return rows


def corpus(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Tokenizer, sharded token documents and held-out documents, cached in `work`."""
    from tqdm import tqdm

    from provenance.engine.lm import train_tokenizer
    from provenance.engine.lm_config import TrainConfig

    meta_path = work / "corpus.json"
    if meta_path.exists() and json.loads(meta_path.read_text())["tokens"] == args.tokens:
        return json.loads(meta_path.read_text())
    t0 = time.perf_counter()
    docs = real_documents()
    rng = np.random.default_rng(args.seed)
    tok_dir = work / "tokenizer"
    sample = [t for _, t in docs if _hash(_) % 5 == 0]
    tokenizer = train_tokenizer(sample, TrainConfig(), tok_dir)
    held = [(n, t) for n, t in docs if _hash(n) % 50 == 0]
    indexed = [(n, t) for n, t in docs if _hash(n) % 50 != 0]
    # Real documents in a random order until the target is reached (all of them at 10^8).
    indexed = [indexed[i] for i in rng.permutation(len(indexed))]
    ids: list[np.ndarray] = []
    real_tokens = 0
    with tqdm(total=args.tokens, desc="tokenize", unit="token", unit_scale=True) as bar:
        for n in range(0, len(indexed), 500):
            batch = tokenizer([t for _, t in indexed[n:n + 500]],
                              add_special_tokens=False)["input_ids"]
            for b in batch:
                if real_tokens + len(b) > args.tokens:
                    break
                ids.append(np.asarray(b, dtype=np.int32))
                real_tokens += len(b)
            else:
                bar.update(sum(len(b) for b in batch))
                continue
            break
    indexed = indexed[:len(ids)]
    fill = markov_fill(ids, args.tokens - real_tokens, 400, rng)
    names = [n for n, _ in indexed] + [f"markov:{k}" for k in range(len(fill))]
    all_ids = ids + [f.astype(np.int32) for f in fill]
    shard_of = np.array([_hash(n) % args.shards for n in names])
    shards_dir = work / "docs"
    shutil.rmtree(shards_dir, ignore_errors=True)
    shards_dir.mkdir(parents=True)
    for s in tqdm(range(args.shards), desc="write shards", unit="shard"):
        members = np.nonzero(shard_of == s)[0]
        lengths = np.array([len(all_ids[m]) for m in members], dtype=np.int64)
        np.save(shards_dir / f"{s}.ids.npy", members.astype(np.int64))  # document ids
        np.save(shards_dir / f"{s}.lengths.npy", lengths)
        np.save(shards_dir / f"{s}.tokens.npy",
                np.concatenate([all_ids[m] for m in members]) if len(members)
                else np.zeros(0, np.int32))
    held_ids = tokenizer([t for _, t in held], add_special_tokens=False)["input_ids"]
    np.save(work / "held.npy", np.concatenate([np.append(h, -1) for h in held_ids]))
    meta = {"tokens": args.tokens, "real_tokens": real_tokens,
            "filler_tokens": int(sum(len(f) for f in fill)),
            "documents": len(names), "real_documents": len(ids),
            "held_out_documents": len(held), "shards": args.shards,
            "packages": {p: _package_version(p) for p in PACKAGES},
            "prepare_s": time.perf_counter() - t0}
    meta_path.write_text(json.dumps(meta, indent=2))
    return meta


def _package_version(package: str) -> str:
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def shard_documents(work: Path, s: int) -> list[tuple[int, np.ndarray]]:
    ids = np.load(work / "docs" / f"{s}.ids.npy")
    lengths = np.load(work / "docs" / f"{s}.lengths.npy")
    tokens = np.load(work / "docs" / f"{s}.tokens.npy")
    ends = np.cumsum(lengths)
    return [(int(d), tokens[e - n:e]) for d, n, e in zip(ids, lengths, ends, strict=True)]


def _build_all(work: str, shards: int, builder: str, out: str | None,
               group_tokens: int | None) -> dict[str, Any]:
    """Build the index as span_index_build does (`write_index`), in this fresh process: its
    peak resident set is the build's."""
    from attribution.engine import spans as engine

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    build = {"shipped": engine.suffix_array, "numpy": engine.suffix_array_doubling}[builder]
    folder = Path(out) if out is not None else Path(work) / "scratch"
    shutil.rmtree(folder, ignore_errors=True)
    t = time.perf_counter()
    stats = engine.write_index(
        folder, ((str(s), shard_documents(Path(work), s)) for s in range(shards)),
        group_tokens=group_tokens or engine.GROUP_TOKENS, suffix_array=build)
    seconds = time.perf_counter() - t
    groups = len(json.loads((folder / "packed.json").read_text())["sources"])
    if out is None:
        shutil.rmtree(folder)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tokens = sum(s["tokens"] for s in stats.values())
    return {"builder": builder, "layout": "grouped" if group_tokens is None else "per source",
            "suffix_arrays": groups, "seconds": seconds, "tokens": tokens,
            "tokens_per_s": tokens / seconds, "peak_rss_mb": peak / 1024,
            "peak_over_start_mb": (peak - base) / 1024}


def build(work: Path, shards: int, builder: str, out: Path | None,
          group_tokens: int | None = None) -> dict[str, Any]:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        return pool.submit(_build_all, str(work), shards, builder,
                           None if out is None else str(out), group_tokens).result()


def infini_gram_index(work: Path, shards: int, folder: Path) -> float:
    """An infini-gram index (u16) of the same documents, one infini-gram shard per non-empty
    source (it cannot index an empty one)."""
    if (folder / "built.json").exists():
        return float(json.loads((folder / "built.json").read_text())["seconds"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    filled = [s for s in range(shards) if np.load(work / "docs" / f"{s}.ids.npy").size]
    for k, s in enumerate(filled):
        with (folder / f"tokenized.{k}").open("wb") as data:
            offsets, at = [], 0
            for _, tokens in shard_documents(work, s):
                content = b"\xff\xff" + tokens.astype(np.uint16).tobytes()
                offsets.append(at)
                data.write(content)
                at += len(content)
        np.asarray(offsets, dtype=np.uint64).tofile(folder / f"offset.{k}")
    empty = folder / "raw"
    empty.mkdir()
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "infini_gram.indexing", "--data_dir", str(empty),
                    "--save_dir", str(folder), "--shards", str(len(filled)), "--token_dtype", "u16",
                    "--cpus", "1", "--mem", "8", "--ulimit", "4096"],  # 2 fail on tiny shards
                   check=True, capture_output=True)
    seconds = time.perf_counter() - t
    (folder / "built.json").write_text(json.dumps({"seconds": seconds}))
    return seconds


def evict(folder: Path) -> None:
    """Drop the folder's files from the page cache (clean pages only: they were written and
    flushed), so that the next read comes from disk."""
    for path in folder.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def outputs(work: Path, tokenizer: Any, n: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Half novel (held-out text only), half quoting a 50-250-token passage of an indexed real
    document; 500 tokens each, decoded to text as a model's completion."""
    held = np.load(work / "held.npy")
    held = held[held >= 0]
    meta = json.loads((work / "corpus.json").read_text())
    docs: dict[int, np.ndarray] = {}
    for s in range(meta["shards"]):
        for d, tokens in shard_documents(work, s):
            if d < meta["real_documents"] and len(tokens) >= 60:
                docs[d] = tokens
    quotable = sorted(docs)
    rows = []
    for k in range(n):
        at = int(rng.integers(0, len(held) - OUTPUT_TOKENS))
        novel = held[at:at + OUTPUT_TOKENS]
        if k % 2:
            doc = docs[quotable[int(rng.integers(len(quotable)))]]
            length = min(int(rng.integers(50, 251)), len(doc))
            start = int(rng.integers(0, len(doc) - length + 1))
            place = int(rng.integers(0, OUTPUT_TOKENS - length))
            ids = np.concatenate([novel[:place], doc[start:start + length],
                                  novel[place:OUTPUT_TOKENS - length]])
            rows.append({"kind": "quoting", "text": tokenizer.decode(ids.tolist()),
                         "quoted": length})
        else:
            rows.append({"kind": "novel", "text": tokenizer.decode(novel.tolist()), "quoted": 0})
    return rows


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def trace(args: argparse.Namespace, work: Path, layouts: dict[str, Path],
          meta: dict[str, Any]) -> dict[str, Any]:
    """Every output traced by trace_output on each index layout, cold then warm; the layouts
    must give the same spans."""
    import django

    django.setup()
    import io

    from django.core.management import call_command
    from transformers import AutoTokenizer

    from attribution.engine.spans import SpanParams
    from attribution.models import ModelOutput, SpanIndex
    from attribution.services.spans import opened_index, trace_output
    from provenance.models import Dataset, DatasetVersion, ModelCheckpoint

    call_command("migrate", verbosity=0, stdout=io.StringIO())
    tokenizer = AutoTokenizer.from_pretrained(work / "tokenizer", local_files_only=True)
    dataset = Dataset.objects.create(slug=f"spans-bench-{os.getpid()}", title="spans bench")
    version = DatasetVersion.objects.create(dataset=dataset, number=1,
                                            manifest_root="0" * 64)
    indexes = {}
    for n, (layout, folder) in enumerate(layouts.items()):
        checkpoint = ModelCheckpoint.objects.create(
            name=f"spans bench {n}", kind="imported", version=version,
            path=str(work / "tokenizer"), sha256="0" * 64)
        indexes[layout] = SpanIndex.objects.create(
            version=version, checkpoint=checkpoint, state="succeeded", path=str(folder),
            unit="sources", shards={str(s): {} for s in range(meta["shards"])})
    rng = np.random.default_rng(args.seed + 1)
    rows = outputs(work, tokenizer, args.queries, rng)
    params = SpanParams()
    results: list[dict[str, Any]] = []
    from tqdm import tqdm

    for row in tqdm(rows, desc="trace", unit="output"):
        output = ModelOutput.objects.create(checkpoint=checkpoint, prompt="bench",
                                            state="succeeded", completion=row["text"])
        result: dict[str, Any] = {"kind": row["kind"], "quoted": row["quoted"]}
        first = None
        for layout, index in indexes.items():
            opened_index.cache_clear()  # a fresh worker: index and tokenizer not open yet
            evict(Path(index.path))
            t = time.perf_counter()
            spans = trace_output(output=output, index=index, params=params)
            cold = time.perf_counter() - t
            t = time.perf_counter()
            again = trace_output(output=output, index=index, params=params)
            warm = time.perf_counter() - t
            assert again == spans
            first = spans if first is None else first
            if spans != first:
                raise AssertionError(f"{layout} finds other spans than {next(iter(indexes))}")
            result[layout] = {"cold_ms": cold * 1000, "warm_ms": warm * 1000}
        spans = first or []
        result.update({"spans": len(spans),
                       "longest": max((s["length"] for s in spans), default=0)})
        result["ids"] = tokenizer(row["text"], add_special_tokens=False)["input_ids"]
        result["found"] = [[s["start"], s["length"], s["count"]] for s in spans]
        results.append(result)
    SpanIndex.objects.filter(pk__in=[i.pk for i in indexes.values()]).delete()
    return {"outputs": results}


def infini_gram_check(ig_dir: Path, results: list[dict[str, Any]]) -> None:
    """Each span's count by infini-gram's `count` on its own index of the same tokens, in a
    process of its own without torch (with torch loaded the engine's threads fail to start
    here: "Resource temporarily unavailable"). Its `attribute` (OLMoTrace's spans) is not run:
    it starts a thread per shard and output position, and over 100 shards one 500-token output
    kept both cores busy for minutes in thread creation on this machine."""
    from infini_gram.engine import InfiniGramEngine

    engine = InfiniGramEngine(index_dir=str(ig_dir), eos_token_id=0, vocab_size=65535,
                              token_dtype="u16")

    def occurrences(ids: list[int]) -> int:
        answer: dict[str, Any] = dict(engine.count(input_ids=ids))
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return int(answer["count"])

    for result in results:
        ids = result["ids"]
        result["counts_agree"] = sum(occurrences(ids[start:start + length]) == count
                                     for start, length, count in result["found"])
        # Maximal: with one token more on either side it occurs nowhere.
        result["maximal"] = sum(
            (start == 0 or occurrences(ids[start - 1:start + length]) == 0)
            and (start + length == len(ids) or occurrences(ids[start:start + length + 1]) == 0)
            for start, length, count in result["found"])


def summary(results: list[dict[str, Any]], layouts: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in ("all", "novel", "quoting"):
        rows = [r for r in results if kind == "all" or r["kind"] == kind]
        entry: dict[str, Any] = {"n": len(rows), "with_spans": sum(r["spans"] > 0 for r in rows),
                                 "spans": sum(r["spans"] for r in rows)}
        for layout in layouts:
            for when in ("cold", "warm"):
                values = [r[layout][f"{when}_ms"] for r in rows]
                entry[layout + f" {when}_p50_ms"] = pct(values, 50)
                entry[layout + f" {when}_p95_ms"] = pct(values, 95)
        if rows and "counts_agree" in rows[0]:
            entry.update({"counts_agree": sum(r["counts_agree"] for r in rows),
                          "maximal": sum(r["maximal"] for r in rows)})
        out[kind] = entry
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=100_000_000)
    parser.add_argument("--shards", type=int, default=100)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-builder", action=argparse.BooleanOptionalAction,
                        default=True, help="also build with the numpy prefix-doubling builder")
    parser.add_argument("--infini-gram", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--workdir", type=Path, default=ROOT / "var" / "bench-spans")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "spans.json")
    parser.add_argument("--check-infini-gram", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.check_infini_gram:  # the child process of the infini-gram check
        rows = json.loads(args.check_infini_gram.read_text())
        infini_gram_check(args.workdir, rows)
        args.check_infini_gram.write_text(json.dumps(rows))
        return 0
    if args.quick:
        args.tokens, args.queries = 1_000_000, 30
        args.workdir = args.workdir.with_name(args.workdir.name + "-quick")
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    meta = corpus(args, work)
    print(f"corpus: {meta['tokens']:,} tokens ({meta['real_tokens']:,} real, "
          f"{meta['filler_tokens']:,} Markov filler), {meta['documents']:,} documents, "
          f"{meta['shards']} shards")
    # The shipped layout (sources share a suffix array up to GROUP_TOKENS), one suffix array
    # per source (the layout before), and the per-source build with the numpy builder.
    layouts = {"grouped": work / "index", "per source": work / "index-per-source"}
    builds = [build(work, args.shards, "shipped", layouts["grouped"]),
              build(work, args.shards, "shipped", layouts["per source"], group_tokens=1)]
    if args.baseline_builder:
        builds.append(build(work, args.shards, "numpy", None, group_tokens=1))
    for b in builds:
        print(f"build ({b['builder']}, {b['layout']}: {b['suffix_arrays']} suffix arrays): "
              f"{b['seconds']:.1f} s, {b['tokens_per_s']:,.0f} tokens/s, "
              f"peak RSS {b['peak_rss_mb']:,.0f} MB")
    ig_dir, ig_seconds = None, None
    if args.infini_gram:
        ig_dir = work / "infini-gram"
        ig_seconds = infini_gram_index(work, args.shards, ig_dir)
        print(f"infini-gram index: {ig_seconds:.1f} s")
    traced = trace(args, work, layouts, meta)
    if ig_dir is not None:
        exchange = work / "traced.json"
        exchange.write_text(json.dumps(traced["outputs"]))
        subprocess.run([sys.executable, __file__, "--check-infini-gram", str(exchange),
                        "--workdir", str(ig_dir)], check=True)
        traced["outputs"] = json.loads(exchange.read_text())
    for row in traced["outputs"]:
        del row["ids"]
    stats = summary(traced["outputs"], list(layouts))
    print(f"\n{'layout':<12}{'outputs':<9}{'n':>5}{'cold p50':>10}{'cold p95':>10}"
          f"{'warm p50':>10}{'warm p95':>10}{'w/ spans':>9}{'counts ok':>11}{'maximal':>9}")
    for layout in layouts:
        for kind, s in stats.items():
            agree = f"{s.get('counts_agree', '-')}/{s['spans']}"
            print(f"{layout:<12}{kind:<9}{s['n']:>5}{s[layout + ' cold_p50_ms']:>10.1f}"
                  f"{s[layout + ' cold_p95_ms']:>10.1f}{s[layout + ' warm_p50_ms']:>10.1f}"
                  f"{s[layout + ' warm_p95_ms']:>10.1f}{s['with_spans']:>9}{agree:>11}"
                  f"{s.get('maximal', '-'):>9}")
    goal = {when: stats["all"][f"grouped {when}_p95_ms"] <= 50 for when in ("cold", "warm")}
    print(f"goal p95 <= 50 ms ({meta['tokens']:,} tokens, {meta['shards']} sources), shipped "
          f"layout: cold {'met' if goal['cold'] else 'missed'}, "
          f"warm {'met' if goal['warm'] else 'missed'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "spans", "format": 2, "command": " ".join(sys.argv[1:]) or "(defaults)",
        "corpus": meta, "builds": builds, "infini_gram_build_s": ig_seconds,
        "summary": stats, "outputs": traced["outputs"], "goal_p95_ms": 50,
        "goal_met": goal,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()}}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
