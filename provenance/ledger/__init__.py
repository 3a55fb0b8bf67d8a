"""The governance ledger: `append` (the entry format, hashing, person commitments, appending)
and `proofs` (Merkle leaves, signed checkpoints, inclusion and consistency proofs, receipts,
audits), which imports `append` and never the other way."""
