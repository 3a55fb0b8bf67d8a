"""An entry that holds an evaluation text, verbatim or nearly, is found; one that does not is
not."""

import hashlib

from benchmarks.engine.contamination import contamination
from provenance.engine.text import minhash_signatures
from tests.helpers import words


def side(texts):
    return list(zip([hashlib.sha256(t.encode()).hexdigest() for t in texts],
                    minhash_signatures(texts), strict=True))


def test_the_same_text_and_a_near_copy_are_found_and_a_stranger_is_not():
    evaluation = [words(1, 120), words(2, 120), words(3, 120)]
    nearly = evaluation[1].replace(evaluation[1].split()[5], "changed", 1)
    entry = [words(10, 120), evaluation[0], nearly, words(11, 120)]
    found = contamination(side(evaluation), side(entry), threshold=0.8)
    assert [(f.evaluation, f.entry, f.kind) for f in found] == [(0, 1, "exact"), (1, 2, "near")]
    assert 0.8 <= found[1].jaccard < 1.0
    assert contamination(side(evaluation), side([words(20, 120), words(21, 120)])) == []
    assert contamination([], side(entry)) == [] and contamination(side(evaluation), []) == []
