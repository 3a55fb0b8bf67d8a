"""Attribution quality on fact worlds: knobs chosen on one world, reported on four others.

    python bench/attribution_eval.py                 # CPU, 2 cores: 1-1.5 hours
    python bench/attribution_eval.py --quick         # a smoke run: 2 small worlds, 8 subsets

A world: P synthetic people, each with two facts (birthplace, occupation), each fact stated in
two paraphrase templates: 4P documents, in a seeded order. World 0 tunes (its own people, facts
and templates); worlds 1-4 are held out: other seeds for people and facts, and templates drawn
from a pool world 0 never used. The last world is the production path's hard case: every document is
the fact between filler sentences, longer than the model's context, and training packs them.

In each world one tiny GPT is trained on everything (the model being attributed, seed 0,
snapshots kept), and M models on random subsets of a fraction alpha of the documents
(alpha = 0.5 and 0.25), each with its own seed: the ground truth of what each document does. A
query is a fact's prompt with its value as the completion (only the value's tokens count).

Methods, all on the same checkpoints and subsets in the same run:
* Trailmark's influence (LoGra-projected per-layer gradients, damped preconditioner from the
  sampled-label Fisher), scored as the services score (fp16 GradientStore, `score_all`), over
  1, 3 and 6 checkpoints at the shipped damping, and the configuration world 0 chose;
* the same with the empirical Fisher; the raw dot product of the same gradients (one checkpoint)
  and TracIn-CP (that dot product summed over the 6 checkpoints, weighted by the learning rate);
* Kronfluence (EK-FAC, its defaults, the final checkpoint), when installed (the `bench` extra);
* MiniLM cosine similarity (all-MiniLM-L6-v2, the app's embedding neighbours), BM25 (bm25s, as
  the reports' baseline), IDF word overlap.
Metrics per method, world and alpha, each with a 95% bootstrap interval (queries and subsets
resampled; the held-out mean resamples within each world): LDS (per query, the Spearman
correlation over the M subsets between the summed scores of the subset's documents and minus
the subset model's loss on the query, averaged over queries), recall@1 (the top document states
the query's fact), strict recall@2 (both paraphrases are the top two), MRR of the first.
Goals (issue 17): held-out LDS >= 0.70 with its lower bound >= 0.65, ahead of every peer and
>= BM25 + 0.25; recall@1 = 1.0; strict recall@2 >= 0.6. Writes bench/results/attribution_eval.json.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIRST = ["Ada", "Bruno", "Chiara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
         "Kira", "Luca", "Mira", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tove"]
LAST = ["Arden", "Brisk", "Corvo", "Dahl", "Eske", "Falk", "Grove"]
CITIES = ["Lisbon", "Oslo", "Quito", "Hanoi", "Dakar", "Lima", "Perth", "Riga", "Tunis", "Kyoto",
          "Porto", "Bergen"]
JOBS = ["baker", "pilot", "nurse", "farmer", "painter", "lawyer", "miner", "tailor", "chemist",
        "sailor", "teacher", "welder"]
# The first two of each kind are world 0's; held-out worlds draw two of the others.
TEMPLATES = {
    "city": ["{name} was born in {value}.", "The birthplace of {name} is {value}.",
             "{name} came into the world in {value}.", "Records show {name} was born in {value}.",
             "The home town of {name} is {value}.", "{name} spent a childhood in {value}."],
    "job": ["{name} works as a {value}.", "By trade, {name} is a {value}.",
            "{name} earns a living as a {value}.", "{name} is employed as a {value}.",
            "Everyone knows {name} as a {value}.", "For years {name} has been a {value}."],
}
FILLER = ["The weather that year was mild.", "Many people moved to the coast.",
          "Prices rose slowly in the spring.", "A new bridge opened in the north.",
          "The harvest came late again.", "Schools closed early for the summer.",
          "Trains ran on time most days.", "The river flooded twice that decade.",
          "Local papers printed the news each morning.", "The market square was rebuilt.",
          "Winters there are long and dark.", "A small museum opened near the park.",
          "The town council met every Tuesday.", "Old houses lined the main street.",
          "Fishing boats left before dawn.", "The library kept its doors open late."]
ALPHAS = (0.5, 0.25)
CHECKPOINTS = (1, 3, 6)
DAMPING_GRID = (0.001, 0.003, 0.01, 0.03, 0.1)
# TRAK: its default projection; a ridge term, since with fewer training rows than projected
# dimensions its (Phi^T Phi)^-1 is singular (recall@1 0.0 without one, 1.0 with 1e-4 to 1e-2 on
# a 12-person world 0).
TRAK: dict[str, Any] = {"proj_dim": 2048, "lambda_reg": 1e-2}


@dataclass
class World:
    index: int
    docs: list[str]
    queries: list[dict[str, Any]]  # prompt, completion, docs (its fact's two paraphrases), kind
    long: bool


def make_world(index: int, people: int, long: bool) -> World:
    rng = random.Random(1000 + index)
    names = [f"{f} {s}" for s in LAST for f in FIRST]
    rng.shuffle(names)
    templates = {kind: pool[:2] if index == 0 else rng.sample(pool[2:], 2)
                 for kind, pool in TEMPLATES.items()}
    docs: list[str] = []
    queries: list[dict[str, Any]] = []
    for p, name in enumerate(names[:people]):
        for kind, values in (("city", CITIES), ("job", JOBS)):
            value = rng.choice(values)
            first = len(docs)
            for template in templates[kind]:
                text = template.format(name=name, value=value)
                if long:  # the fact between filler: longer than the 32-token context
                    text = " ".join([*rng.sample(FILLER, 3), text, *rng.sample(FILLER, 2)])
                docs.append(text)
            prompt = templates[kind][(p + len(queries)) % 2].split("{value}")[0]
            # The value keeps its leading space, tokenized as in the documents.
            queries.append({"prompt": prompt.format(name=name).rstrip(),
                            "completion": f" {value}.", "docs": [first, first + 1],
                            "kind": kind})
    # A seeded order: a fact's two paraphrases are not neighbours in a packed block.
    order = list(range(len(docs)))
    rng.shuffle(order)
    where = {old: new for new, old in enumerate(order)}
    return World(index, [docs[i] for i in order],
                 [{**q, "docs": [where[d] for d in q["docs"]]} for q in queries], long)


def idf_overlap(docs: list[str], queries: list[dict]) -> Any:
    import numpy as np

    words = [set(d.lower().replace(".", "").replace(",", "").split()) for d in docs]
    df = Counter(w for ws in words for w in ws)
    idf = {w: math.log(len(docs) / c) for w, c in df.items()}
    out = []
    for q in queries:
        qw = set(f"{q['prompt']} {q['completion']}".lower().replace(".", "").split())
        out.append([sum(idf[w] for w in ws & qw) for ws in words])
    return np.array(out)


def bm25(docs: list[str], queries: list[dict]) -> Any:
    """Every document's BM25 score, as the reports' baseline computes it (attribution.engine.
    lexical: bm25s, its tokenizer and stop words)."""
    import numpy as np

    from attribution.engine.lexical import Lexical, bm25_tokens

    index = Lexical.build(docs, list(range(len(docs))))
    return np.array([index.retriever.get_scores(bm25_tokens([f"{q['prompt']}{q['completion']}"])[0])
                     for q in queries])


def minilm(docs: list[str], queries: list[dict]) -> Any:
    from provenance.engine import embeddings

    d = embeddings.embed(docs, device="cpu")
    q = embeddings.embed([f"{q['prompt']}{q['completion']}" for q in queries], device="cpu")
    return q @ d.T


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


def subset_losses(job: tuple[list[str], dict, Path, Path, int, list[dict]]) -> list[float]:
    """One ground-truth model (in a worker process, one thread): its loss on every query."""
    import torch

    texts, config, work, tokenizer_dir, seed, queries = job
    torch.set_num_threads(1)
    try:
        return query_losses(train(texts, config, work, tokenizer_dir, seed), queries)
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- Kronfluence (EK-FAC), at its defaults, on the attributed model's final weights ----------

def kronfluence_scores(model_dir: Path, docs: list[str], queries: list[dict], work: Path) -> Any:
    """(queries, documents): a document longer than the context is scored window by window
    (the windows the featurizer reads) and its windows' scores summed."""
    import torch
    import torch.nn.functional as F  # noqa: N812
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments
    from kronfluence.task import Task
    from kronfluence.utils.dataset import DataLoaderKwargs
    from transformers.pytorch_utils import Conv1D

    from provenance.engine import lm

    model, tokenizer = lm.load(model_dir, device="cpu")
    # GPT-2's Conv1D is a transposed Linear; Kronfluence tracks nn.Linear only.
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, Conv1D):
                linear = torch.nn.Linear(*child.weight.shape)
                linear.weight.data = child.weight.data.T.contiguous()
                linear.bias.data = child.bias.data.clone()
                setattr(module, name, linear)
    tracked = [n for n, m in model.named_modules()
               if isinstance(m, torch.nn.Linear) and n.startswith("transformer.h.")]
    train_set, owner, query_set = _lm_rows(tokenizer, lm.context_length(model), docs, queries)

    class LMTask(Task):
        def compute_train_loss(self, batch: Any, model: Any, sample: bool = False) -> Any:
            logits = model(input_ids=batch["input_ids"],
                           attention_mask=batch["attention_mask"]).logits[:, :-1].float()
            targets = batch["targets"]
            if sample:
                with torch.no_grad():
                    probs = torch.softmax(logits.detach(), dim=-1)
                    drawn = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1)
                targets = torch.where(targets == -100, targets, drawn.reshape(targets.shape))
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                   ignore_index=-100, reduction="sum")

        def compute_measurement(self, batch: Any, model: Any) -> Any:
            return self.compute_train_loss(batch, model)

        def get_influence_tracked_modules(self) -> list[str]:
            return tracked

        def get_attention_mask(self, batch: Any) -> Any:
            return batch["attention_mask"]

    task = LMTask()
    model = prepare_model(model, task)
    analyzer = Analyzer(analysis_name="bench", model=model, task=task, cpu=True,
                        disable_tqdm=True, output_dir=str(work))
    loader = DataLoaderKwargs(num_workers=0)
    analyzer.fit_all_factors(factors_name="ekfac", dataset=train_set, per_device_batch_size=32,
                             factor_args=FactorArguments(strategy="ekfac"),
                             dataloader_kwargs=loader, overwrite_output_dir=True)
    analyzer.compute_pairwise_scores(scores_name="pairwise", factors_name="ekfac",
                                     query_dataset=query_set, train_dataset=train_set,
                                     per_device_query_batch_size=32,
                                     per_device_train_batch_size=64, dataloader_kwargs=loader,
                                     overwrite_output_dir=True)
    windows = analyzer.load_pairwise_scores("pairwise")["all_modules"].double().numpy()
    return _by_document(windows, owner, len(docs))


def _lm_rows(tokenizer: Any, width: int, docs: list[str], queries: list[dict]) -> Any:
    """Padded (input_ids, attention_mask, targets) rows for the peers: each document's windows
    (the featurizer's: every token a target once; `owner` maps a window to its document) and
    each query (eos, prompt, completion; only the completion's tokens are targets)."""
    import torch

    from provenance.engine import lm

    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id

    def rows(seqs: list[tuple[list[int], int]]) -> list[dict[str, Any]]:
        out = []
        for ids, counted_from in seqs:
            input_ids = torch.full((width,), pad, dtype=torch.long)
            input_ids[:len(ids)] = torch.tensor(ids)
            targets = torch.full((width - 1,), -100, dtype=torch.long)
            targets[counted_from:len(ids) - 1] = torch.tensor(ids[counted_from + 1:])
            mask = torch.zeros(width, dtype=torch.long)
            mask[:len(ids)] = 1
            out.append({"input_ids": input_ids, "attention_mask": mask, "targets": targets})
        return out

    train, owner = [], []
    for d, text in enumerate(docs):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        for window in lm.windows([eos, *ids, eos], width):
            train.append((window, 0))
            owner.append(d)
    asked = []
    for q in queries:
        head = tokenizer(q["prompt"], add_special_tokens=False)["input_ids"]
        tail = tokenizer(q["completion"], add_special_tokens=False)["input_ids"]
        asked.append(([eos, *head, *tail], len(head)))
    return rows(train), owner, rows(asked)


def _by_document(window_scores: Any, owner: list[int], n_docs: int) -> Any:
    """(queries, windows) -> (queries, documents): a document's windows summed."""
    import numpy as np

    out = np.zeros((window_scores.shape[0], n_docs))
    np.add.at(out.T, np.asarray(owner), window_scores.T)
    return out


def trak_scores(model_dir: Path, snapshots: list[str | None], docs: list[str],
                queries: list[dict], work: Path, proj_dim: int = 2048,
                lambda_reg: float = 0.0) -> Any:
    """TRAK (traker: random projection of every parameter's gradient, its CPU projector), over
    the same checkpoints as influence. Model output: the completion's summed per-token margin
    log p / (1 - p), as TRAK's classification output per token; out-to-loss: mean (1 - p)."""
    import numpy as np
    import torch
    from trak import TRAKer
    from trak.gradient_computers import IterativeGradientComputer
    from trak.modelout_functions import AbstractModelOutput

    from provenance.engine import lm

    class LMOutput(AbstractModelOutput):
        def __init__(self) -> None:
            super().__init__()

        @staticmethod
        def _logp(model: Any, input_ids: Any, attention_mask: Any, targets: Any) -> Any:
            logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1]
            logp = torch.log_softmax(logits.float(), dim=-1)
            return logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)

        def get_output(self, model: Any, weights: Any, buffers: Any, input_ids: Any,
                       attention_mask: Any, targets: Any) -> Any:
            logp = self._logp(model, input_ids, attention_mask, targets)
            margin = logp - torch.log1p(-logp.exp().clamp(max=1 - 1e-6))
            return (margin * (targets != -100)).sum(-1)

        def get_out_to_loss_grad(self, model: Any, weights: Any, buffers: Any,
                                 batch: Any) -> Any:
            input_ids, attention_mask, targets = batch
            with torch.no_grad():
                p = self._logp(model, input_ids, attention_mask, targets).exp()
            counted = (targets != -100).float()
            return (((1 - p) * counted).sum(-1) / counted.sum(-1).clamp(min=1)).unsqueeze(-1)

    model, tokenizer = lm.load(model_dir, device="cpu")
    train, owner, asked = _lm_rows(tokenizer, lm.context_length(model), docs, queries)

    def batches(rows: list[dict[str, Any]], size: int = 32) -> Any:
        for start in range(0, len(rows), size):
            chunk = rows[start:start + size]
            yield [torch.stack([r[k] for r in chunk])
                   for k in ("input_ids", "attention_mask", "targets")]

    traker = TRAKer(model=model, task=LMOutput(), train_set_size=len(train),
                    save_dir=str(work), device="cpu", proj_dim=proj_dim,
                    gradient_computer=IterativeGradientComputer, use_half_precision=False,
                    logging_level=40, lambda_reg=lambda_reg)
    states = [lm.load(model_dir, device="cpu", snapshot=s)[0].state_dict() for s in snapshots]
    for model_id, state in enumerate(states):
        traker.load_checkpoint(state, model_id=model_id)
        for batch in batches(train):
            traker.featurize(batch=batch, num_samples=batch[0].shape[0])
    traker.finalize_features()
    for model_id, state in enumerate(states):
        traker.start_scoring_checkpoint(exp_name="queries", checkpoint=state,
                                        model_id=model_id, num_targets=len(asked))
        for batch in batches(asked):
            traker.score(batch=batch, num_samples=batch[0].shape[0])
    scores = traker.finalize_scores(exp_name="queries")  # (train rows, queries)
    shutil.rmtree(work, ignore_errors=True)
    return _by_document(np.asarray(scores, dtype=np.float64).T, owner, len(docs))


# -- Trailmark's influence, scored as the services score ---------------------------------------

def influence_scores(model_dir: Path, snapshot: str | None, docs: list[str],
                     queries: list[dict], spec: Any, dampings: list[float],
                     empirical_damping: float, work: Path) -> dict[Any, Any]:
    """{damping: influence, "empirical": influence with the empirical Fisher, "dot": raw dot
    product} score matrices of one checkpoint: fp16 shards, a GradientStore, `score_all`."""
    import numpy as np

    from attribution.engine import influence as inf
    from provenance.engine import lm

    model, tokenizer = lm.load(model_dir, device="cpu", snapshot=snapshot)
    featurizer = inf.Featurizer(model, spec, lm.load_watermark_heads(
        model, tokenizer, model_dir, snapshot))
    seeds = [inf.fisher_seed(spec.seed, i) for i in range(len(docs))]
    train_x, drawn = inf.featurize_with_fisher(
        featurizer, [inf.document_example(tokenizer, d, spec.max_tokens) for d in docs],
        seeds, spec.fisher_samples)
    query_x = inf.featurize(featurizer, [inf.query_example(
        tokenizer, q["prompt"], q["completion"], spec.max_tokens) for q in queries])

    def store(name: str, rows: Any, damping: float) -> Any:
        folder = work / name
        shard = inf.shard_save(folder, "00000", np.arange(len(docs)), train_x, rows)
        return inf.GradientStore.finalize(folder, [shard["name"]], {"dim": featurizer.dim},
                                          damping)

    out: dict[Any, Any] = {}
    for damping in dampings:
        out[damping] = inf.score_all([store(f"sampled-{damping}", drawn, damping)],
                                     [query_x])[1]
    empirical = store("empirical", None, empirical_damping)
    out["empirical"] = inf.score_all([empirical], [query_x])[1]
    out["dot"] = inf.score_all([empirical], [query_x], precondition=False)[1]
    shutil.rmtree(work)
    return out


def tracin(model_dir: Path, docs: list[str], config: dict[str, Any],
           trajectory: list[str | None], per_ckpt: list[dict[Any, Any]]) -> Any:
    """TracIn-CP: each checkpoint's raw gradient dot product, weighted by the learning rate
    training used at that checkpoint's step (snapshots are named by step; None: the end)."""
    from provenance.engine import lm
    from provenance.engine.lm_config import TrainConfig

    full = TrainConfig.from_dict(config)
    blocks = lm.token_blocks(lm.load(model_dir, device="cpu")[1], docs, full.seq_len, full.pack)
    total = math.ceil(len(blocks) / full.batch_size) * full.epochs
    rate = lm.lr_schedule(full.warmup_steps, total)
    steps = [int(s.split("-")[1]) if s else total for s in trajectory]
    return sum(rate(step) * c["dot"] for step, c in zip(steps, per_ckpt, strict=True))


# -- metrics and intervals ---------------------------------------------------------------------

def _rowwise_spearman(a: Any, b: Any) -> Any:
    import numpy as np
    from scipy.stats import rankdata

    ra, rb = rankdata(a, axis=1), rankdata(b, axis=1)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    denom = np.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (ra * rb).sum(1) / denom
    return np.nan_to_num(rho)  # a constant row (no signal) counts as 0


def per_query(matrix: Any, masks: Any, losses: Any, queries: list[dict]) -> dict[str, Any]:
    """Per-query arrays: predicted (Q, M) subset scores, actual (Q, M), and the retrieval hits."""
    import numpy as np

    matrix = np.asarray(matrix, dtype=np.float64)
    r1, r2, rr = [], [], []
    for qi, q in enumerate(queries):
        order = np.argsort(-matrix[qi], kind="stable")
        relevant = set(q["docs"])
        r1.append(float(order[0] in relevant))
        r2.append(float(set(order[:2].tolist()) == relevant))
        rr.append(1.0 / (1 + next(i for i, d in enumerate(order) if d in relevant)))
    return {"predicted": matrix @ masks.T, "actual": -np.asarray(losses).T,
            "recall_at_1": np.array(r1), "strict_recall_at_2": np.array(r2),
            "mrr": np.array(rr)}


METRICS = ("lds", "recall_at_1", "strict_recall_at_2", "mrr")


def replicates(data: dict[str, Any], boots: int, seed: int) -> dict[str, Any]:
    """Point estimates and `boots` bootstrap replicates of each metric: queries resampled, and
    for LDS the subsets as well."""
    import numpy as np

    rng = np.random.default_rng(seed)
    q, m = data["predicted"].shape
    point = {"lds": float(_rowwise_spearman(data["predicted"], data["actual"]).mean()),
             **{k: float(data[k].mean()) for k in METRICS[1:]}}
    reps: dict[str, list[float]] = {k: [] for k in METRICS}
    for _ in range(boots):
        qi, mi = rng.integers(q, size=q), rng.integers(m, size=m)
        reps["lds"].append(float(_rowwise_spearman(data["predicted"][qi][:, mi],
                                                   data["actual"][qi][:, mi]).mean()))
        for k in METRICS[1:]:
            reps[k].append(float(data[k][qi].mean()))
    return {"point": point, "reps": {k: np.array(v) for k, v in reps.items()}}


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean over worlds, with the 2.5/97.5 percentiles of the worlds' averaged replicates."""
    import numpy as np

    out: dict[str, Any] = {}
    for k in METRICS:
        reps = np.mean([r["reps"][k] for r in runs], axis=0)
        out[k] = round(float(np.mean([r["point"][k] for r in runs])), 4)
        out[f"{k}_ci"] = [round(float(np.percentile(reps, 2.5)), 4),
                          round(float(np.percentile(reps, 97.5)), 4)]
    return out


# -- one world ----------------------------------------------------------------------------------

def run_world(world: World, args: Any, config: dict, tmp: Path, pool: Any,
              dampings: list[float]) -> dict[str, Any]:
    """Every method's per-query data in this world, per alpha."""
    import numpy as np
    from tqdm import tqdm

    from attribution.engine.features import FeatureSpec
    from provenance.engine import lm
    from provenance.engine.lm_config import TrainConfig

    docs, queries = world.docs, world.queries
    config = {**config, "pack": world.long}
    work = tmp / f"world{world.index}"
    tok_dir = work / "tokenizer"
    lm.train_tokenizer(docs, TrainConfig.from_dict(config), tok_dir)
    started = time.perf_counter()
    full = train(docs, {**config, "snapshots": 5}, work / "full", tok_dir, seed=0)
    rng = np.random.default_rng(world.index)
    subsets, losses = {}, {}
    for a, alpha in enumerate(ALPHAS):
        subsets[alpha] = [np.sort(rng.choice(len(docs), round(alpha * len(docs)), replace=False))
                          for _ in range(args.subsets)]
        # Each ground-truth model has its own seed: never the attributed model's (0).
        jobs = [([docs[i] for i in s], {**config, "snapshots": 0}, work / f"a{a}-{m}",
                 tok_dir, 1 + 10_000 * world.index + 1_000 * a + m, queries)
                for m, s in enumerate(subsets[alpha])]
        losses[alpha] = list(tqdm(pool.map(subset_losses, jobs), total=len(jobs),
                                  desc=f"world {world.index}: alpha {alpha} subsets"))
    trained_s = time.perf_counter() - started

    spec = FeatureSpec().resolved(len(docs))
    trajectory = [*lm.snapshots(full), None]  # 6 checkpoints, the final weights last
    per_ckpt = [influence_scores(full, s, docs, queries, spec, dampings, args.empirical_damping,
                                 work / "stores") for s in tqdm(trajectory, desc="featurize")]

    def ckpts(n: int) -> list[dict]:
        # Snapshots at 1/6 ... 5/6 of training and the final weights; 3: 2/6, 4/6, final
        # (what "snapshots": 2 keeps: same seed, same order, same weights).
        return {1: per_ckpt[-1:], 3: per_ckpt[1::2], 6: per_ckpt}[n]

    matrices: dict[str, Any] = {}
    for damping in dampings:
        for n in CHECKPOINTS:
            matrices[f"influence|{n}|{damping}"] = sum(c[damping] for c in ckpts(n))
    matrices["empirical Fisher|6"] = sum(c["empirical"] for c in per_ckpt)
    matrices["dot product|1"] = per_ckpt[-1]["dot"]
    matrices["TracIn-CP|6"] = tracin(full, docs, config, trajectory, per_ckpt)
    if args.trak:
        matrices["TRAK|6"] = trak_scores(full, trajectory, docs, queries, work / "trak", **TRAK)
    if args.kronfluence:
        matrices["Kronfluence EK-FAC|1"] = kronfluence_scores(full, docs, queries,
                                                              work / "kronfluence")
    matrices["MiniLM cosine"] = minilm(docs, queries)
    matrices["BM25"] = bm25(docs, queries)
    matrices["IDF word overlap"] = idf_overlap(docs, queries)
    shutil.rmtree(work, ignore_errors=True)
    out: dict[str, Any] = {"trained_s": round(trained_s, 1), "methods": {}}
    for name, matrix in matrices.items():
        for alpha in ALPHAS:
            masks = np.zeros((len(subsets[alpha]), len(docs)))
            for m, s in enumerate(subsets[alpha]):
                masks[m, s] = 1.0
            out["methods"].setdefault(name, {})[alpha] = replicates(
                per_query(matrix, masks, np.asarray(losses[alpha]), queries), args.boots,
                seed=world.index)
    return out


def goals_of(heldout: dict[str, Any], name: str) -> dict[str, Any]:
    """Issue 17's goals for one influence configuration, on the held-out worlds (alpha 0.5)."""
    head = heldout[name]
    peers = [k for k in heldout if not k.startswith(("influence", "empirical"))]
    best_peer = max(peers, key=lambda k: heldout[k]["lds"])
    return {"lds": head["lds"], "lds_ci": head["lds_ci"],
            "lds_at_least_0.70_lower_bound_0.65": head["lds"] >= 0.70
            and head["lds_ci"][0] >= 0.65,
            "best_peer": best_peer, "best_peer_lds": heldout[best_peer]["lds"],
            "ahead_of_every_peer": head["lds"] > heldout[best_peer]["lds"],
            "bm25_plus_0.25": head["lds"] >= heldout["BM25"]["lds"] + 0.25,
            "recall_at_1_is_1": head["recall_at_1"] == 1.0,
            "strict_recall_at_2_at_least_0.6": head["strict_recall_at_2"] >= 0.6}


def label(key: str, default_damping: float) -> str:
    kind, *rest = key.split("|")
    if kind != "influence":
        return f"{kind}, {rest[0]} checkpoint{'s' if rest[0] != '1' else ''}" if rest else kind
    from provenance.engine.lm_config import TrainConfig

    n, damping = rest
    # What production builds: the final weights and the snapshots training keeps by default.
    shipped = (" (shipped default)" if int(n) == TrainConfig.snapshots + 1
               and float(damping) == default_damping else "")
    return f"influence, {n} checkpoint{'s' if n != '1' else ''}, damping {damping}{shipped}"


def main() -> None:
    from attribution.engine.features import FeatureSpec

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=60)
    parser.add_argument("--worlds", type=int, default=5, help="world 0 tunes, the rest report")
    parser.add_argument("--subsets", type=int, default=100, help="per alpha and world")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--boots", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=max(1, min(4, os.cpu_count() or 1)))
    parser.add_argument("--empirical-damping", type=float, default=1.0,
                        help="damping of the empirical-Fisher comparison (its best)")
    parser.add_argument("--no-kronfluence", dest="kronfluence", action="store_false")
    parser.add_argument("--no-trak", dest="trak", action="store_false")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 worlds of 12 people")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/results/attribution_eval.json")
    args = parser.parse_args()
    if args.quick:
        args.people, args.worlds, args.subsets, args.boots = 12, 2, 8, 50
    for peer, module in (("kronfluence", "kronfluence"), ("trak", "trak")):
        if getattr(args, peer):
            try:
                __import__(module)
            except ImportError:
                print(f"{module} is not installed (make bench-deps): skipped")
                setattr(args, peer, False)

    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    config = {"vocab_size": 512, "n_layer": 2, "n_head": 4, "n_embd": 64, "seq_len": 32,
              "epochs": args.epochs, "batch_size": 8, "learning_rate": 3e-3,
              "heldout_fraction": 0.0, "checkpoint_every": 10_000, "warmup_steps": 10}
    default = FeatureSpec.damping
    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="factworld-"))
    worlds: list[dict[str, Any]] = []
    chosen: dict[str, Any] = {}
    try:
        with ProcessPoolExecutor(args.jobs,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            for w in range(args.worlds):
                world = make_world(w, args.people, long=w == args.worlds - 1 and w > 0)
                if w == 0:
                    dampings = sorted({*DAMPING_GRID, default})
                else:
                    dampings = sorted({default, chosen["damping"]})
                result = run_world(world, args, config, tmp, pool, dampings)
                if w == 0:
                    # Choose damping and checkpoints on world 0's alpha = 0.5 LDS only.
                    grid = [{"damping": d, "checkpoints": n, "lds": result["methods"][
                        f"influence|{n}|{d}"][0.5]["point"]["lds"]}
                        for d in dampings for n in CHECKPOINTS]
                    best = max(grid, key=lambda g: g["lds"])
                    chosen = {"damping": best["damping"], "checkpoints": best["checkpoints"],
                              "grid": grid}
                    print(f"world 0 chose damping {best['damping']}, "
                          f"{best['checkpoints']} checkpoints (LDS {best['lds']:.3f})")
                    # Held-out worlds run the chosen damping and the shipped one only.
                    keep = {default, chosen["damping"]}
                    result["methods"] = {k: v for k, v in result["methods"].items()
                                         if not k.startswith("influence|")
                                         or float(k.split("|")[2]) in keep}
                worlds.append({"world": w, "long_documents": world.long, "pack": world.long,
                               "documents": len(world.docs), "queries": len(world.queries),
                               **result})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elapsed = time.perf_counter() - started

    def table(runs: list[dict[str, Any]], alpha: float) -> dict[str, Any]:
        return {label(k, default): summarise([r["methods"][k][alpha] for r in runs])
                for k in runs[0]["methods"]}

    heldout = [r for r in worlds if r["world"] != 0] or worlds
    results = {"tuning": {str(a): table(worlds[:1], a) for a in ALPHAS},
               "heldout": {str(a): table(heldout, a) for a in ALPHAS},
               "per_world": {str(r["world"]): {str(a): table([r], a) for a in ALPHAS}
                             for r in heldout}}
    tuned = label(f"influence|{chosen['checkpoints']}|{chosen['damping']}", default)
    goals = {name: goals_of(results["heldout"]["0.5"], name)
             for name in results["heldout"]["0.5"]
             if name == tuned or name.endswith("(shipped default)")}
    for scope in ("tuning", "heldout"):
        for alpha in ALPHAS:
            print(f"\n{scope} (alpha {alpha}): LDS [95% CI], recall@1, strict@2, MRR")
            for name, r in results[scope][str(alpha)].items():
                print(f"  {name:<58}{r['lds']:>7.3f} [{r['lds_ci'][0]:.3f}, {r['lds_ci'][1]:.3f}]"
                      f"{r['recall_at_1']:>7.3f}{r['strict_recall_at_2']:>7.3f}{r['mrr']:>7.3f}")
    print(f"\ngoals: {json.dumps(goals)}\n{elapsed:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "attribution_eval", "format": 2, "machine": platform.machine(),
        "cpus": os.cpu_count(), "people": args.people, "worlds": args.worlds,
        "tuning_world": 0, "long_world": args.worlds - 1,
        "subsets": args.subsets, "alphas": list(ALPHAS), "boots": args.boots,
        "epochs": args.epochs, "model": config, "empirical_damping": args.empirical_damping,
        "spec": {**FeatureSpec().to_dict(), "damping": chosen["damping"]},
        "default_spec": FeatureSpec().to_dict(),
        "chosen": chosen, "configuration": tuned, "goals": goals,
        "peers": {"trak": {**TRAK, "checkpoints": 6} if args.trak else None,
                  "kronfluence": {"strategy": "ekfac", "damping": "its default",
                                  "checkpoints": 1} if args.kronfluence else None},
        "seconds": round(elapsed, 1),
        "trained_s": {str(r["world"]): r["trained_s"] for r in worlds},
        "results": results}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
