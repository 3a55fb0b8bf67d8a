"""A benchmark's evaluations of one trained checkpoint: held-out bits per byte per domain, and a
closed-book multiple-choice probe. torch through provenance's LM engine; no Django.

Bits per byte, not perplexity per token: every entry trains its own tokenizer on its own version
(the training service does), so a token means something different in each; the negative
log-likelihood of the same text over its UTF-8 bytes does not (as Paloma and DCLM report).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from provenance.engine.lm.infer import continuation_logprob, token_logprobs


@dataclass(frozen=True)
class DomainScore:
    nll: float        # nats, summed over every token of the domain's texts
    tokens: int
    bytes: int

    @property
    def bits_per_byte(self) -> float:
        return self.nll / (self.bytes * math.log(2)) if self.bytes else float("nan")

    @property
    def perplexity(self) -> float:
        """Per token of this checkpoint's own tokenizer: for reading one entry, not comparing."""
        return math.exp(self.nll / self.tokens) if self.tokens else float("nan")


def domain_scores(model: Any, tokenizer: Any, texts: Mapping[str, Sequence[str]],
                  exclude: Sequence[int] = ()) -> dict[str, DomainScore]:
    """Each domain's texts read whole (in windows past the context), every token scored once."""
    out = {}
    for domain, group in texts.items():
        logps = token_logprobs(model, tokenizer, list(group), exclude=exclude)
        out[domain] = DomainScore(nll=float(-sum(float(lp.sum()) for lp in logps)),
                                  tokens=int(sum(lp.size for lp in logps)),
                                  bytes=sum(len(t.encode()) for t in group))
    return out


@dataclass(frozen=True)
class Probe:
    prompt: str                 # the question, in other words than the corpus states the fact
    choices: tuple[str, ...]    # candidate answers, each a continuation of the prompt
    answer: int                 # the index of the right one


def probe_answers(model: Any, tokenizer: Any, probes: Sequence[Probe],
                  exclude: Sequence[int] = ()) -> list[int]:
    """The choice each probe's prompt makes most likely (summed log-probability of the
    continuation, as lm-evaluation-harness's `acc`): the model answers without generating,
    so a small model that learned the fact shows it even when it could not phrase it. The
    prompt is read as a document's start, after EOS, as training reads every text."""
    picks = []
    for probe in probes:
        start = (tokenizer.eos_token or "") + probe.prompt
        scores = [continuation_logprob(model, tokenizer, [start], " " + choice.strip(),
                                       exclude=exclude)[0] for choice in probe.choices]
        picks.append(max(range(len(scores)), key=lambda i: (scores[i], -i)))
    return picks
