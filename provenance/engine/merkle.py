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


def _largest_power_of_two_below(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 9162 2.1.3.1 PATH(index, D[n]) over leaf hashes: the sibling hashes from the leaf up
    to the root."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf {index} is not in a tree of {len(hashes)}")
    if len(hashes) == 1:
        return []
    k = _largest_power_of_two_below(len(hashes))
    if index < k:
        return inclusion_proof(hashes[:k], index) + [root_from_leaf_hashes(hashes[k:])]
    return inclusion_proof(hashes[k:], index - k) + [root_from_leaf_hashes(hashes[:k])]


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


def verify_receipt(receipt: dict) -> bool:
    """A ledger receipt (as Trailmark hands it out) checked with the standard library alone: the
    payload's and the entry's hashes recomputed, and the entry's inclusion in the tree of that
    root. (Sorted compact JSON equals RFC 8785 for the strings and integers these hold.)"""
    import json

    def jcs(value: dict) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()

    entry, proof = receipt["entry"], receipt["inclusion_proof"]
    header = jcs(entry["header"])
    if "payload" in entry and hashlib.sha256(jcs(entry["payload"])).hexdigest() != \
            entry["header"]["payload_hash"]:
        return False
    recomputed = hashlib.sha256(bytes.fromhex(entry["prev_hash"]) + header).hexdigest()
    if recomputed != entry["entry_hash"]:
        return False
    return verify_inclusion(leaf_hash(bytes.fromhex(entry["entry_hash"])), proof["leaf_index"],
                            proof["tree_size"], [bytes.fromhex(h) for h in proof["path"]],
                            bytes.fromhex(proof["root"]))


def manifest_root(sha256_hex: Sequence[str]) -> str:
    """Root over the sorted, distinct member content hashes (each leaf = the 32 raw bytes)."""
    leaves = [leaf_hash(bytes.fromhex(h)) for h in sorted(set(sha256_hex))]
    return root_from_leaf_hashes(leaves).hex()


def main(argv: Sequence[str] | None = None) -> int:
    """python -m provenance.engine.merkle MANIFEST [EXPECTED_ROOT]: recompute a version's root
    from its exported manifest (one sha256 per line), with nothing but the standard library."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--receipt"] and len(args) == 2:
        import json

        with open(args[1], encoding="utf-8") as handle:
            ok = verify_receipt(json.load(handle))
        print("receipt verified" if ok else "receipt does NOT verify")
        return 0 if ok else 1
    if not args:
        print("usage: python -m provenance.engine.merkle MANIFEST [EXPECTED_ROOT]\n"
              "       python -m provenance.engine.merkle --receipt RECEIPT.json",
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
