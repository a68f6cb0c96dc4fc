"""The auditor console's stored-log check, incremental: from the last verified checkpoint to now.

The first check reads the whole log. Each check that passes remembers the checkpoint it reached
(size, root and the Merkle frontier at that size: ``storage.audit_verified_repo``), and the next
one starts there:

1. the remembered checkpoint must still be in the log: the stored checkpoint of that size
   verifies under the audit keys and has the remembered root, and the remembered frontier
   produces that root (so a rewritten checkpoint row, a rollback below it, or a damaged
   ``audit_verified`` row is reported, never used as a starting point);
2. only the leaves added since are read: each entry must hash to its leaf hash, indexes must be
   contiguous, and each checkpoint signed since must verify and have the root those leaves
   produce, continuing from the remembered frontier;
3. the stored subtree hashes that serve proofs to auditors must prove the new checkpoint
   consistent with the remembered one (RFC 9162 §2.1.4), the proof auditors get.

Leaves before the remembered size are not read again, so a change made to them afterwards is
not seen here: the whole-log check is ``trustanchor audit replay`` (docs/AUDIT-FORMAT.md §3.2),
which recomputes every leaf from the entries an auditor downloads, and
``AuditLog.verify_stored_log`` on the service side.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from trustanchor.audit.checkpoint import verify_checkpoint
from trustanchor.audit.merkle import MerkleAccumulator, ProofError, verify_consistency
from trustanchor.audit.note import NoteError, Verifier
from trustanchor.keystore.audit_key import list_audit_keys
from trustanchor.services.audit_log import AuditLogError
from trustanchor.services.container import Services
from trustanchor.storage import audit_tree, audit_verified_repo
from trustanchor.storage.audit_tree import AuditTreeError, StoredCheckpoint

REASONS = frozenset(
    {
        "entry_mismatch",  # an entry no longer hashes to its leaf hash (index named)
        "missing_leaf",  # a tree index without its leaf (index named)
        "leaf_beyond_checkpoint",  # an integrated leaf no checkpoint covers
        "checkpoint_invalid",  # a stored checkpoint does not verify or disagrees with its row
        "root_mismatch",  # the leaves no longer produce a signed checkpoint's root
        "verified_checkpoint_gone",  # the remembered checkpoint is no longer in the log
        "inconsistent_proof",  # the stored hashes do not prove the log append-only
    }
)


class LogCheckFailed(Exception):
    """The stored log failed the check: ``reason`` from :data:`REASONS`, ``index`` the leaf
    concerned when there is one."""

    def __init__(self, reason: str, detail: str = "", *, index: int | None = None) -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        self.index = index
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class LogCheck:
    size: int  # the log verified up to this many leaves
    root_hash: bytes
    since: int  # the size the check started from (the last verified one; 0 the first time)
    leaves_read: int  # leaves read by this check (size - since)
    checkpoints: int  # signed checkpoints verified by this check


def verifiers(services: Services) -> list[Verifier]:
    """Every audit key the log ever used (old checkpoints were signed by retired keys)."""
    keys_dir = services.settings.service.keys_dir
    found: list[Verifier] = [info.verifier() for info in list_audit_keys(keys_dir)]
    return found or [services.audit_key.verifier()]


def check(services: Services) -> LogCheck:
    """Verify the leaves and checkpoints added since the last verified checkpoint (module
    docstring), remember where it got to, and say what it read. Raises :class:`LogCheckFailed`."""
    keys = verifiers(services)
    origin = services.audit.origin
    db = services.db
    with db.reader() as conn:
        remembered = audit_verified_repo.latest(conn)
        base = audit_tree.checkpoint_at(conn, remembered.size) if remembered else None
    if remembered is None:
        accumulator = MerkleAccumulator()
    else:
        accumulator = _resume(remembered, base, keys, origin)
    since = accumulator.size
    since_root = accumulator.root()
    try:
        after, checked = services.audit.scan(
            accumulator,
            lambda stored, acc: _check_checkpoint(stored, acc.root(), keys, origin),
        )
    except AuditLogError as exc:  # missing_leaf, entry_mismatch, leaf_beyond_checkpoint
        raise LogCheckFailed(exc.reason, exc.detail, index=exc.index) from exc
    root = accumulator.root()
    _check_consistency(services, since, after, since_root, root)
    if after > since:
        with db.transaction() as conn:
            audit_verified_repo.remember(
                conn,
                size=after,
                root_hash=root,
                frontier=accumulator.frontier,
                now=services.clock.now(),
            )
    return LogCheck(
        size=after, root_hash=root, since=since, leaves_read=after - since, checkpoints=checked
    )


def _resume(
    remembered: audit_verified_repo.Verified,
    base: StoredCheckpoint | None,
    keys: Sequence[Verifier],
    origin: str,
) -> MerkleAccumulator:
    """The accumulator at the remembered size, once the log still shows that checkpoint."""
    size = remembered.size
    if base is None:
        raise LogCheckFailed(
            "verified_checkpoint_gone", f"no stored checkpoint of the verified size {size}"
        )
    try:
        accumulator = MerkleAccumulator.from_frontier(size, remembered.frontier)
    except ValueError as exc:
        raise LogCheckFailed(
            "verified_checkpoint_gone", f"the remembered state of size {size} is damaged"
        ) from exc
    if accumulator.root() != remembered.root_hash:
        raise LogCheckFailed(
            "verified_checkpoint_gone", f"the remembered state of size {size} is damaged"
        )
    if base.root_hash != remembered.root_hash:
        raise LogCheckFailed(
            "verified_checkpoint_gone",
            f"the checkpoint of size {size} has another root than the one verified",
        )
    _check_checkpoint(base, remembered.root_hash, keys, origin)
    return accumulator


def _check_checkpoint(
    stored: StoredCheckpoint, root: bytes, keys: Sequence[Verifier], origin: str
) -> None:
    try:
        signed = verify_checkpoint(stored.signed_note, keys, origin=origin)
    except NoteError as exc:
        raise LogCheckFailed(
            "checkpoint_invalid", f"checkpoint {stored.size}: {exc.reason}"
        ) from exc
    if signed.size != stored.size or signed.root_hash != stored.root_hash:
        raise LogCheckFailed("checkpoint_invalid", f"checkpoint {stored.size}: row ≠ note")
    if signed.root_hash != root:
        raise LogCheckFailed(
            "root_mismatch", f"entries no longer produce checkpoint {stored.size}'s root"
        )


def _check_consistency(
    services: Services, old: int, new: int, old_root: bytes, new_root: bytes
) -> None:
    """The consistency proof auditors would be served for ``old → new`` verifies."""
    try:
        proof = services.audit.consistency_proof(old, new)
        verify_consistency(old, new, old_root, new_root, proof)
    except (AuditLogError, AuditTreeError, ProofError) as exc:
        raise LogCheckFailed("inconsistent_proof", f"sizes {old} → {new}: {exc}") from exc
