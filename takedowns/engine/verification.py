"""Measure one model on a takedown's verification sets. torch + transformers: no Django.

* membership: each text's mean next-token loss and Min-K% prob, read from a fresh start (EOS),
  every token of it (in context windows); a watermark-trained model in its text space (the
  watermark characters out of its distributions and never generated);
* verbatim regurgitation: the greedy continuation of each forget document's first
  `prefix_tokens` tokens against its next `continuation_tokens` (ROUGE-L F1 with Google's
  rouge-score, and exact token match), and the same on held-out text as a no-memory baseline;
* utility: perplexity on a retain sample and on held-out text (token-weighted);
* the removed source's canary: its exposure p-value against fresh null sequences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from provenance.engine import lm
from provenance.engine.canary import membership_test
from takedowns.engine.metrics import Measurement, min_k_prob
from takedowns.engine.unlearn_config import Thresholds

MIN_TOKENS = 8  # shorter texts give no meaningful prefix test


@torch.no_grad()
def continuations(model: Any, tokenizer: Any, texts: Sequence[str], prefix: int, length: int,
                  batch_size: int = 32, exclude: Sequence[int] = ()
                  ) -> list[tuple[list[int], list[int]]]:
    """(generated, true) continuation token ids of each long-enough text, greedy, batched with
    left padding; `exclude`: token ids never generated (a watermark-trained checkpoint's
    watermark characters, outside its text space)."""
    if not texts:
        return []
    device = next(model.parameters()).device
    eos = tokenizer.eos_token_id
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    pairs: list[tuple[list[int], list[int]]] = []
    jobs = []
    limit = lm.context_length(model)
    for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]:
        if len(ids) < MIN_TOKENS:
            continue
        # EOS + prefix + continuation must fit the model's context.
        cut = min(prefix, len(ids) // 2, (limit - 1) // 2)
        jobs.append(([eos, *ids[:cut]], ids[cut:cut + min(length, limit - 1 - cut)]))
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        width = max(len(p) for p, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for row, (p, _) in enumerate(chunk):
            ids[row, width - len(p):], mask[row, width - len(p):] = torch.tensor(p), 1
        generated = model.generate(ids.to(device), attention_mask=mask.to(device),
                                   max_new_tokens=max(len(t) for _, t in chunk),
                                   do_sample=False, pad_token_id=pad,
                                   bad_words_ids=[[i] for i in exclude] or None
                                   )[:, width:].cpu()
        for row, (_, truth) in enumerate(chunk):
            pairs.append((generated[row, :len(truth)].tolist(), truth))
    return pairs


@lru_cache(maxsize=1)
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


def verbatim(tokenizer: Any, pairs: Sequence[tuple[list[int], list[int]]],
             redactor: Callable[[str], str] | None = None) -> tuple[list[float], list[bool]]:
    """ROUGE-L F1 and exact match of each generated continuation against the true one, after
    `redactor` (an output filter) has had its say on the generated text."""
    scorer = _scorer()
    scores, exact = [], []
    for generated, truth in pairs:
        text = tokenizer.decode(generated, skip_special_tokens=True)
        shown = redactor(text) if redactor else text
        scores.append(scorer.score(tokenizer.decode(truth, skip_special_tokens=True),
                                   shown)["rougeL"].fmeasure)
        exact.append(generated == truth and shown == text)
    return scores, exact


def perplexity(logprobs: Sequence[np.ndarray]) -> float:
    tokens = sum(len(x) for x in logprobs)
    return float(np.exp(-sum(float(x.sum()) for x in logprobs) / max(1, tokens)))


def measure(model_dir: str, forget: Sequence[str], holdout: Sequence[str],
            retain: Sequence[str], th: Thresholds, canary: Sequence[str] | None = None,
            device: str | None = None, redactor: Callable[[str], str] | None = None,
            utility: Sequence[str] | None = None) -> Measurement:
    """`canary`: the removed source's canary sequence followed by its null sequences;
    `redactor`: an output filter applied to every generated continuation; `utility`: held-out
    text for the held-out perplexity (default: `holdout`)."""
    model, tokenizer = lm.load(model_dir, device=device)
    exclude = lm.text_space(model_dir, tokenizer)  # a watermark-trained model: its text space

    def logprobs(texts: Sequence[str]) -> list[Any]:
        return lm.token_logprobs(model, tokenizer, texts, exclude=exclude)

    f_lp, h_lp = logprobs(forget), logprobs(holdout)
    forget_pairs = continuations(model, tokenizer, forget, th.prefix_tokens,
                                 th.continuation_tokens, exclude=exclude)
    holdout_pairs = continuations(model, tokenizer, holdout, th.prefix_tokens,
                                  th.continuation_tokens, exclude=exclude)
    canary_p = None
    if canary:
        losses = lm.sequence_loss(model, tokenizer, list(canary), exclude=exclude)
        canary_p = membership_test(losses[0], losses[1:]).p_value
    rouge, exact = verbatim(tokenizer, forget_pairs, redactor)
    return Measurement(
        forget_loss=[-float(x.mean()) for x in f_lp],
        forget_mink=[min_k_prob(x, th.min_k) for x in f_lp],
        holdout_loss=[-float(x.mean()) for x in h_lp],
        holdout_mink=[min_k_prob(x, th.min_k) for x in h_lp],
        retain_perplexity=perplexity(logprobs(retain)),
        holdout_perplexity=perplexity(logprobs(utility) if utility else h_lp),
        verbatim_rouge=rouge, verbatim_exact=exact,
        holdout_rouge=verbatim(tokenizer, holdout_pairs)[0], canary_p=canary_p)
