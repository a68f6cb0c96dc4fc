"""The tamper-evident audit log (issue 3): an append-only Merkle tree in the style of RFC 9162.

Auditors must be able to check that every issuance and decision is recorded and that nobody,
the operator included, later rewrote or hid one. The package is split by concept:

- ``merkle.py``: pure RFC 9162 §2.1 arithmetic. Leaf and node hashes, tree roots, inclusion and
  consistency proofs (generation against a ``HashSource`` and verification raising
  ``ProofError``), an in-memory tree, and ``MerkleAccumulator``, the O(log n) incremental root
  used by the batch integrator and ``trustanchor audit replay``. No storage, no I/O, no clock.
- Sibling modules (added separately): the canonical, versioned entry format; signed checkpoints
  in the C2SP signed-note / tlog-checkpoint text format; and the storage-backed log that appends
  leaves in the issuing transaction and integrates them into the tree in batches.
"""
