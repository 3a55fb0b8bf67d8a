"""Verbatim span tracing, in the way OLMoTrace uses infini-gram: a suffix array over the token ids
of a corpus (one shard per source), and for a model output the maximal spans that occur verbatim
in it, each with the documents it occurs in. Pure numpy: no torch, no Django.

* Build: documents' token ids are concatenated, each followed by its own negative separator (so
  no match crosses a document boundary), and the suffix array is built by libdivsufsort
  (pydivsufsort) over the ids written as 4-byte big-endian words (bench/spans.py measures it
  against the numpy prefix-doubling builder it replaced).
* Store: each source's shard is built alone, then the shards are packed into one set of .npy
  files (`PackedSpans`: tokens, suffix arrays, first-token buckets, document starts and ids),
  opened memory-mapped.
* Query: for each output position and shard the longest match is found by narrowing the
  suffix-array interval one token at a time (two binary searches per token), every shard and
  position in one vectorised step, and by direct comparison once one occurrence is left; the
  span at a position is its longest match over all shards, counted in all. A span is kept
  when it is not inside a longer one that starts earlier, is long enough, and is rare enough
  (common phrases are not evidence); at most `max_docs` documents are listed per span and at most
  `max_density` x output length spans per output, longest first.
* Takedowns: a removed document still counts, but is listed as blocked (no text is shown), with no
  rebuild.
"""

from __future__ import annotations

from attribution.engine.spans.packed import (
    GROUP_TOKENS,
    PackedSpans,
    write_index,
)
from attribution.engine.spans.query import (
    SpanParams,
    coverage,
    find_spans,
)
from attribution.engine.spans.shard import (
    FORMAT,
    NOTHING,
    PACKED_FORMAT,
    Span,
    SpanDocument,
    SpanShard,
    widen,
)
from attribution.engine.spans.suffix import (
    suffix_array,
    suffix_array_doubling,
)

__all__ = [
    "FORMAT",
    "GROUP_TOKENS",
    "NOTHING",
    "PACKED_FORMAT",
    "PackedSpans",
    "Span",
    "SpanDocument",
    "SpanParams",
    "SpanShard",
    "coverage",
    "find_spans",
    "suffix_array",
    "suffix_array_doubling",
    "widen",
    "write_index",
]
