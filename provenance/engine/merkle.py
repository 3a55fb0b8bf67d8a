"""Merkle tree hashing as in RFC 9162 (Certificate Transparency v2), section 2.1.

Leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right); the tree over n
leaves splits at the largest power of two below n. The same rule serves dataset manifests (leaves =
sorted member content hashes) and the ledger, whose complete subtrees are kept so that a proof
reads O(log n) of them (`range_nodes`, `inclusion_path`, `consistency_path`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence

EMPTY_ROOT = hashlib.sha256(b"").hexdigest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Iterative bottom-up form of RFC 9162's MTH: pairing left to right and carrying an odd last
    node up unchanged gives the same tree as splitting at the largest power of two."""
    if not hashes:
        return hashlib.sha256(b"").digest()
    level = list(hashes)
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


# A complete subtree of an append-only tree: (level, index) covers leaves [index * 2**level,
# (index + 1) * 2**level). Once its last leaf is appended its hash never changes, so a log can keep
# them and answer any proof from O(log n) of them instead of reading every leaf.
Node = tuple[int, int]
# The hash of the subtree over leaves [a, b) (RFC 9162's MTH(D[a:b])).
RangeHash = Callable[[int, int], bytes]


def complete_node(a: int, b: int) -> Node | None:
    """The complete subtree that is exactly [a, b), if there is one."""
    n = b - a
    return (n.bit_length() - 1, a // n) if n > 0 and not n & (n - 1) and not a % n else None


def range_nodes(a: int, b: int) -> list[Node]:
    """The complete subtrees MTH(D[a:b]) is made of, splitting as RFC 9162 does (every range a
    proof or a root asks for starts where its split aligns it): at most 2 log2(n) of them."""
    if b <= a:
        return []
    node = complete_node(a, b)
    if node is not None:
        return [node]
    k = _largest_power_of_two_below(b - a)
    return range_nodes(a, a + k) + range_nodes(a + k, b)


def range_hash(a: int, b: int, node: Callable[[Node], bytes]) -> bytes:
    """MTH(D[a:b]) from the hashes of complete subtrees (`node`)."""
    if b <= a:
        return hashlib.sha256(b"").digest()
    whole = complete_node(a, b)
    if whole is not None:
        return node(whole)
    k = _largest_power_of_two_below(b - a)
    return node_hash(range_hash(a, a + k, node), range_hash(a + k, b, node))


def nodes_needed(compute: Callable[[RangeHash], object]) -> set[Node]:
    """The complete subtrees a computation over range hashes reads: run it once with a recorder
    (then read just those, and run it again on them)."""
    needed: set[Node] = set()

    def record(a: int, b: int) -> bytes:
        needed.update(range_nodes(a, b))
        return b""

    compute(record)
    return needed


def inclusion_path(index: int, size: int, mth: RangeHash) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[size]), the subtree hashes given by `mth`: the sibling
    hashes from the leaf up to the root."""
    if not 0 <= index < size:
        raise IndexError(f"leaf {index} is not in a tree of {size}")

    def path(m: int, a: int, b: int) -> list[bytes]:
        if b - a == 1:
            return []
        k = _largest_power_of_two_below(b - a)
        if m < a + k:
            return path(m, a, a + k) + [mth(a + k, b)]
        return path(m, a + k, b) + [mth(a, a + k)]

    return path(index, 0, size)


def consistency_path(first: int, size: int, mth: RangeHash) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(first, D[size]), the subtree hashes given by `mth`."""
    if not 0 <= first <= size:
        raise IndexError(f"no tree of {first} leaves inside one of {size}")
    if first in (0, size):
        return []

    def subproof(m: int, a: int, b: int, whole: bool) -> list[bytes]:
        if m == b - a:
            return [] if whole else [mth(a, b)]
        k = _largest_power_of_two_below(b - a)
        if m <= k:
            return subproof(m, a, a + k, whole) + [mth(a + k, b)]
        return subproof(m - k, a + k, b, False) + [mth(a, a + k)]

    return subproof(first, 0, size, True)


def _over(hashes: Sequence[bytes]) -> RangeHash:
    return lambda a, b: root_from_leaf_hashes(hashes[a:b])


def complete_levels(hashes: Sequence[bytes]) -> Iterator[list[bytes]]:
    """The complete subtrees of the tree over these leaf hashes (what a log keeps), one level at
    a time from the leaves up: level k's item i is node (k, i)."""
    row = list(hashes)
    while row:
        yield row
        row = [node_hash(row[i], row[i + 1]) for i in range(0, len(row) - 1, 2)]


def complete_nodes(hashes: Sequence[bytes]) -> dict[Node, bytes]:
    """Every complete subtree of the tree over these leaf hashes, by (level, index)."""
    return {(level, i): h for level, row in enumerate(complete_levels(hashes))
            for i, h in enumerate(row)}


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[n]) over leaf hashes: the sibling hashes from the leaf up
    to the root."""
    return inclusion_path(index, len(hashes), _over(hashes))


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes],
                     root: bytes) -> bool:
    """RFC 9162 2.1.3.2: does `proof` put the leaf hash at `index` of a tree of `size` leaves
    whose root is `root`?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def consistency_proof(hashes: Sequence[bytes], first: int) -> list[bytes]:
    """RFC 9162 2.1.4.1 PROOF(first, D[n]) over leaf hashes: what shows that the tree of the
    first `first` leaves is a prefix of the tree of all of them."""
    return consistency_path(first, len(hashes), _over(hashes))


def verify_consistency(first: int, second: int, proof: Sequence[bytes], first_root: bytes,
                       second_root: bytes) -> bool:
    """RFC 9162 2.1.4.2: is the tree of `first` leaves with `first_root` a prefix of the tree of
    `second` leaves with `second_root`?"""
    if not 0 <= first <= second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:  # a power of two: the old root is a node of the new tree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def root_from_leaf_stream(hashes: Iterable[bytes]) -> bytes:
    """MTH of leaf hashes that arrive one at a time, holding O(log n) of them: the complete
    subtrees so far (at most one per level), joined right to left at the end, which is where
    RFC 9162's split at the largest power of two puts them."""
    stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly falling
    for h in hashes:
        level = 0
        while stack and stack[-1][0] == level:
            h = node_hash(stack.pop()[1], h)
            level += 1
        stack.append((level, h))
    if not stack:
        return hashlib.sha256(b"").digest()
    root = stack[-1][1]
    for _, left in reversed(stack[:-1]):
        root = node_hash(left, root)
    return root


def manifest_root_stream(sorted_sha256_hex: Iterable[str]) -> str:
    """`manifest_root` of hashes already sorted and distinct (as a database streams them), in
    O(log n) memory; a hash out of order raises rather than giving a wrong root."""
    def leaves() -> Iterator[bytes]:
        last = ""
        for h in sorted_sha256_hex:
            if h <= last:
                raise ValueError(f"manifest hashes out of order or repeated at {h}")
            last = h
            yield leaf_hash(bytes.fromhex(h))

    return root_from_leaf_stream(leaves()).hex()


def manifest_root(sha256_hex: Sequence[str]) -> str:
    """Root over the sorted, distinct member content hashes (each leaf = the 32 raw bytes)."""
    return manifest_root_stream(sorted(set(sha256_hex)))


def main(argv: Sequence[str] | None = None) -> int:
    """python -m provenance.engine.merkle MANIFEST [EXPECTED_ROOT]: recompute a version's root
    from its exported manifest (one sha256 per line), with nothing but the standard library."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print("usage: python -m provenance.engine.merkle MANIFEST [EXPECTED_ROOT]",
              file=sys.stderr)
        return 2
    with open(args[0], encoding="ascii") as handle:
        hashes = [line.strip() for line in handle if line.strip()]
    root = manifest_root(hashes)
    print(root)
    if len(args) > 1 and args[1] != root:
        print(f"MISMATCH: expected {args[1]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
