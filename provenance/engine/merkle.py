"""Merkle tree hashing as in RFC 9162 (Certificate Transparency v2), section 2.1.

Leaf hash = SHA-256(0x00 || leaf), node hash = SHA-256(0x01 || left || right); the tree over n
leaves splits at the largest power of two below n. The same rule serves dataset manifests (leaves =
sorted member content hashes) and, later, the ledger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

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


def manifest_root(sha256_hex: Sequence[str]) -> str:
    """Root over the sorted, distinct member content hashes (each leaf = the 32 raw bytes)."""
    leaves = [leaf_hash(bytes.fromhex(h)) for h in sorted(set(sha256_hex))]
    return root_from_leaf_hashes(leaves).hex()


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
