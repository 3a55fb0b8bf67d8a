"""Gradient influence in the TRAK / LoGra family. Pure torch + numpy: no Django, no settings.

* Featurize: per-example gradients of every Linear (and GPT-2 Conv1D) layer, projected the LoGra
  way. A layer's weight gradient for one example is sum_t delta_t x_t^T (output gradient times
  input); with seeded Gaussian projections P_in (d_in x k_in) and P_out (d_out x k_out), its
  projection P_out^T G P_in equals sum_t (P_out^T delta_t)(P_in^T x_t)^T, so only the two small
  projections are formed, from a forward hook and a gradient hook. The weights never get a
  gradient: backward runs through the activations alone, which is what keeps featurizing near
  the speed of training (bench/attribution_perf.py). k_in and k_out shrink with the number of
  layers so that one example is at most `max_dim` numbers.
* Precondition: the projected Fisher F = (1/N) sum_i mean_s f_is f_is^T, where f_is is the
  gradient of example i's loss with its next tokens drawn from the model (the true Fisher, whose
  expectation is the Gauss-Newton Hessian), or f_i = g_i (the empirical Fisher, from the
  training tokens); damped (F + lambda I, lambda = damping x mean eigenvalue), factorised
  (Cholesky). The draws are seeded per example, so a rebuild draws the same tokens.
* Score: g_q^T (F + lambda I)^-1 g_i for every stored example, as blocked matrix products over an
  fp16 memory-mapped store; an ensemble over checkpoints sums the per-checkpoint scores.
* Takedowns: removed rows are masked at query time and their Fisher rows (kept in the store
  for this) taken out of the Fisher sum (a downdate), so no rebuild is needed.
"""

from attribution.engine.features import FeatureSpec
from attribution.engine.influence.featurize import (
    Example,
    Featurizer,
    document_example,
    featurize,
    featurize_with_fisher,
    fisher_seed,
    label_draws,
    pieces,
    query_example,
    read_window,
)
from attribution.engine.influence.score import Ranked, rank, score_all
from attribution.engine.influence.store import (
    FORMAT,
    GradientStore,
    Preconditioner,
    Shard,
    fisher_contribution,
    shard_save,
)

__all__ = ["FORMAT", "Example", "FeatureSpec", "Featurizer", "GradientStore", "Preconditioner",
           "Ranked", "Shard", "document_example", "featurize", "featurize_with_fisher",
           "fisher_contribution", "fisher_seed", "label_draws", "pieces", "query_example",
           "rank", "read_window", "score_all", "shard_save"]
