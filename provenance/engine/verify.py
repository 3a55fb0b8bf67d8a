"""Offline verification of Trailmark's ledger, with no Django and no database: only this package's
engine modules, `rfc8785` (canonical JSON) and `cryptography` (Ed25519).

    python -m provenance.engine.verify receipt RECEIPT.json [--key VERIFIER_KEY]
    python -m provenance.engine.verify log EXPORT.jsonl CHECKPOINT.txt --key VERIFIER_KEY

`receipt`: the entry's hashes recomputed from its header and payload, its inclusion in the tree
of the receipt's signed checkpoint, and that checkpoint's signature by the key given. A receipt
proves something only through that signature: with `--key`, a receipt without a checkpoint, or
with one the key did not sign, fails. Without `--key` only the receipt's internal consistency
can be checked (anyone can recompute hashes and a one-leaf tree, and sign with a key of their
own): it says so and exits 1 unless `--unsigned-ok` is given.
`log`: every entry of an export (one JSON object per line, as `manage.py ledger export` writes
them) recomputed in order (payload hash, chain, entry hash), the Merkle root of the first
`size` entries compared with the signed checkpoint's, and the checkpoint's signature.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from typing import Any

import rfc8785

from provenance.engine import checkpoint as notes
from provenance.engine.merkle import leaf_hash, root_from_leaf_hashes, verify_inclusion

GENESIS = "0" * 64


def entry_problems(entry: dict[str, Any], prev_hash: str) -> list[str]:
    """What is wrong with one exported entry given the previous entry's hash ([] if intact)."""
    header, seq = entry["header"], entry["header"].get("seq")
    problems = []
    if hashlib.sha256(rfc8785.dumps(entry["payload"])).hexdigest() != header["payload_hash"]:
        problems.append(f"entry {seq}: the payload does not match its hash")
    if entry["prev_hash"] != prev_hash:
        problems.append(f"entry {seq}: does not follow the entry before it")
    recomputed = hashlib.sha256(bytes.fromhex(entry["prev_hash"])
                                + rfc8785.dumps(header)).hexdigest()
    if recomputed != entry["entry_hash"]:
        problems.append(f"entry {seq}: the entry hash does not match its header")
    return problems


UNSIGNED = ("no verifier key given: only the receipt's internal consistency was checked, not "
            "that the log's key signed it (pass --key with the log's published verifier key)")


def check_receipt(receipt: dict[str, Any], verifier: str | None = None) -> list[str]:
    """What is wrong with a receipt ([] if nothing). With `verifier` (the log's published key) the
    receipt must carry a checkpoint that key signed, for the proof's tree; without it, the
    signature is checked against the key the receipt itself names, which shows consistency only."""
    entry, proof = receipt["entry"], receipt["inclusion_proof"]
    problems = entry_problems(entry, entry["prev_hash"])
    leaf = leaf_hash(bytes.fromhex(entry["entry_hash"]))
    if not verify_inclusion(leaf, proof["leaf_index"], proof["tree_size"],
                            [bytes.fromhex(h) for h in proof["path"]],
                            bytes.fromhex(proof["root"])):
        problems.append("the inclusion proof does not lead to the root")
    if "checkpoint" not in receipt:
        if verifier is not None:
            problems.append("the receipt carries no signed checkpoint, so nothing signed by "
                            "the key vouches for it")
    else:
        try:
            signed = notes.open_note(receipt["checkpoint"],
                                     verifier or str(receipt.get("verifier_key", "")))
        except ValueError as exc:
            problems.append(f"checkpoint: {exc}")
        else:
            if (signed.size, signed.root.hex()) != (proof["tree_size"], proof["root"]):
                problems.append("the signed checkpoint is for another tree than the proof's")
    return problems


def check_log(entries: Iterable[dict[str, Any]], note: str, verifier: str) -> list[str]:
    try:
        signed = notes.open_note(note, verifier)
    except ValueError as exc:
        return [f"checkpoint: {exc}"]
    problems: list[str] = []
    prev, leaves = GENESIS, []
    for entry in entries:
        problems += entry_problems(entry, prev)
        prev = entry["entry_hash"]
        leaves.append(leaf_hash(bytes.fromhex(entry["entry_hash"])))
    if len(leaves) < signed.size:
        problems.append(f"the export has {len(leaves)} entries, the checkpoint {signed.size}")
    elif root_from_leaf_hashes(leaves[:signed.size]) != signed.root:
        problems.append(f"the first {signed.size} entries do not give the signed root")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provenance.engine.verify",
                                     description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("receipt", help="check a receipt")
    one.add_argument("receipt")
    one.add_argument("--key", help="the log's verifier key (name+hash+base64)")
    one.add_argument("--unsigned-ok", action="store_true",
                     help="without --key, exit 0 when the receipt is internally consistent")
    log = sub.add_parser("log", help="check an exported log against a signed checkpoint")
    log.add_argument("export")
    log.add_argument("checkpoint")
    log.add_argument("--key", required=True, help="the log's verifier key")
    args = parser.parse_args(argv)
    if args.what == "receipt":
        with open(args.receipt, encoding="utf-8") as handle:
            try:
                problems = check_receipt(json.load(handle), args.key)
            except (KeyError, TypeError, ValueError) as exc:  # not shaped like a receipt
                problems = [f"not a Trailmark receipt: {type(exc).__name__} {exc}"]
        ok_text = "receipt verified against the key given"
        if args.key is None:
            print(f"WARNING: {UNSIGNED}", file=sys.stderr)
            ok_text = "receipt internally consistent (NOT verified: no key given)"
            if not problems and not args.unsigned_ok:
                print(ok_text)
                return 1
    else:
        with open(args.checkpoint, encoding="utf-8") as handle:
            note = handle.read()
        with open(args.export, encoding="utf-8") as handle:
            problems = check_log((json.loads(line) for line in handle if line.strip()), note,
                                 args.key)
        ok_text = "log verified against the checkpoint"
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    print(ok_text if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    raise SystemExit(main())
