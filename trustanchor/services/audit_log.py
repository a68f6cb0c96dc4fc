"""The audit log as auditors and the service see it: checkpoints, entries, proofs, self-check,
and the background integrator that turns appended leaves into signed checkpoints.

Framework-free. Every answer is bounded by the latest signed checkpoint: entries and proofs are
served only for indexes and sizes a checkpoint covers, so an auditor can always check what they
get against a signature. Refusals are :class:`AuditLogError` with a stable ``reason``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import select

from trustanchor.audit.checkpoint import Checkpoint, new_checkpoint, sign_checkpoint
from trustanchor.audit.checkpoint import verify_checkpoint as _verify_checkpoint
from trustanchor.audit.entries import Entry, parse_entry
from trustanchor.audit.merkle import (
    EMPTY_ROOT,
    MerkleAccumulator,
    consistency_proof_ranges,
    inclusion_path_ranges,
    leaf_hash,
)
from trustanchor.audit.note import NoteError, Signer, Verifier
from trustanchor.clock import Clock
from trustanchor.keystore.audit_key import index_fingerprint, list_audit_keys, load_audit_key
from trustanchor.keystore.signing_keys import KeyStoreError
from trustanchor.storage import audit_tree
from trustanchor.storage.database import Database
from trustanchor.storage.tables import audit_leaves

log = logging.getLogger("trustanchor.audit")

MAX_PAGE = 1000
"""Most entries one ``entries`` call returns (auditors page through larger ranges)."""
_SCAN_PAGE = 5000

REASONS = frozenset(
    {
        "bad_range",  # start/end/size/index negative or in the wrong order
        "page_too_large",  # more than MAX_PAGE entries asked for
        "beyond_checkpoint",  # an index or size the latest checkpoint does not cover
        "not_found",  # no entry with that reference
        "not_integrated",  # the entry exists but is not yet covered by a checkpoint
        "no_checkpoint",  # no checkpoint of that size was signed
        # verify_stored_log: the stored log was changed or damaged
        "entry_mismatch",  # entry bytes no longer hash to the leaf hash (index named)
        "missing_leaf",  # a tree index without its leaf (index named)
        "leaf_beyond_checkpoint",  # an integrated leaf no checkpoint covers
        "checkpoint_invalid",  # a stored checkpoint does not verify or disagrees with its row
        "root_mismatch",  # the recomputed root differs from a signed checkpoint's
    }
)


class AuditLogError(Exception):
    """A refused request or a failed self-check. ``index`` names the leaf when there is one."""

    def __init__(self, reason: str, detail: str = "", *, index: int | None = None) -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        self.index = index
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    note: str  # the signed note, as published
    checkpoint: Checkpoint


@dataclass(frozen=True, slots=True)
class LogEntry:
    index: int
    entry: bytes  # canonical bytes (docs/AUDIT-FORMAT.md §1.3)
    leaf_hash: bytes

    def parsed(self) -> Entry:
        return parse_entry(self.entry)


@dataclass(frozen=True, slots=True)
class LogVerification:
    """What ``verify_stored_log`` checked: ``size`` leaves up to ``root_hash``."""

    size: int
    root_hash: bytes
    checkpoints: int


class AuditSigner(Signer, Protocol):
    """The audit key (``keystore.audit_key.AuditKey``, or an ``Ed25519Signer`` in tests)."""

    def verifier(self) -> Verifier: ...


class AuditLog:
    """The audit log service over storage. ``key`` signs checkpoints (its name is the origin);
    ``verifiers`` are every audit key the log ever used (default: ``key``'s), for self-checks.

    With ``keys_dir`` the log follows an audit key rotation without a restart: before each
    integration (the integrator thread, never a request) it compares the audit key index's
    ``stat`` with the one it loaded (one ``stat`` per batch), and on a change loads
    the new current key (same name: the origin never changes) and every verifier. A rotation
    writes the new key only after a checkpoint signed by the old key covers the entries that
    introduce it (``key_changes.rotate_audit_key``), so every checkpoint the new key signs comes
    after that transition. A failed reload keeps the key in use and is logged."""

    def __init__(
        self,
        db: Database,
        key: AuditSigner,
        clock: Clock,
        *,
        batch_size: int = 2_000,
        verifiers: Sequence[Verifier] = (),
        keys_dir: str | Path | None = None,
    ) -> None:
        self._db = db
        self._key = key
        self._clock = clock
        self.batch_size = batch_size
        self._verifiers = tuple(verifiers)
        self._keys_dir = keys_dir
        self._key_index = index_fingerprint(keys_dir) if keys_dir is not None else None

    @property
    def key(self) -> AuditSigner:
        """The key that signs the next checkpoint."""
        return self._key

    def follow_key(self) -> bool:
        """Load a rotated audit key (see the class docstring); True when the key changed."""
        if self._keys_dir is None:
            return False
        fingerprint = index_fingerprint(self._keys_dir)
        if fingerprint == self._key_index:
            return False
        try:
            key = load_audit_key(self._keys_dir)
            verifiers = [info.verifier() for info in list_audit_keys(self._keys_dir)]
        except (KeyStoreError, OSError, ValueError) as exc:
            log.warning("audit key reload failed, keeping key %08x: %s", self._key_id(), exc)
            return False
        if key.name != self.origin:
            log.warning("audit key reload refused: the new key is not named %s", self.origin)
            return False
        changed = key.key_id != self._key_id()
        self._key, self._verifiers, self._key_index = key, tuple(verifiers), fingerprint
        if changed:
            log.info("audit key rotated: checkpoints are now signed by key %08x", key.key_id)
        return changed

    def _key_id(self) -> int:
        return self._key.verifier().key_id

    @property
    def origin(self) -> str:
        return self._key.name

    # --- integration ---------------------------------------------------------------------

    def integrate(self) -> audit_tree.Integration | None:
        """Integrate one batch of pending leaves and sign a checkpoint (None: nothing pending)."""
        self.follow_key()
        return audit_tree.integrate_batch(
            self._db, self._key, now=self._clock.now(), batch_size=self.batch_size
        )

    def integrate_pending(self) -> Checkpoint | None:
        """Integrate until nothing committed is pending ("integrate now", for tests and the
        CLI); returns the last checkpoint signed, if any."""
        last: Checkpoint | None = None
        while (done := self.integrate()) is not None:
            last = done.checkpoint
        return last

    # --- reading -------------------------------------------------------------------------

    def latest_checkpoint(self) -> SignedCheckpoint:
        """The latest signed checkpoint; for a log without any, a freshly signed checkpoint of
        the empty tree (size 0, root SHA-256 of nothing) — it commits the log to nothing."""
        with self._db.reader() as conn:
            latest = audit_tree.latest_checkpoint(conn)
        if latest is None:
            empty = new_checkpoint(self.origin, 0, EMPTY_ROOT, at=self._clock.now())
            return SignedCheckpoint(sign_checkpoint(empty, self._key), empty)
        return SignedCheckpoint(latest.signed_note, latest.checkpoint)

    def checkpoint(self, size: int) -> SignedCheckpoint:
        """The stored checkpoint of exactly ``size`` leaves."""
        with self._db.reader() as conn:
            stored = audit_tree.checkpoint_at(conn, size)
        if stored is None:
            raise AuditLogError("no_checkpoint", f"no checkpoint of size {size}")
        return SignedCheckpoint(stored.signed_note, stored.checkpoint)

    def _size(self) -> int:
        with self._db.reader() as conn:
            latest = audit_tree.latest_checkpoint(conn)
        return 0 if latest is None else latest.size

    def entries(self, start: int, end: int) -> list[LogEntry]:
        """Entries ``start ≤ index < end`` (at most MAX_PAGE, all under the latest checkpoint)."""
        if not 0 <= start <= end:
            raise AuditLogError("bad_range", f"[{start}, {end})")
        if end - start > MAX_PAGE:
            raise AuditLogError("page_too_large", f"at most {MAX_PAGE} entries per request")
        size = self._size()
        if end > size:
            raise AuditLogError("beyond_checkpoint", f"end {end} > checkpointed size {size}")
        return list(self._read(start, end))

    def _read(self, start: int, end: int) -> Iterator[LogEntry]:
        with self._db.reader() as conn:
            rows = conn.execute(
                select(audit_leaves.c.tree_index, audit_leaves.c.entry, audit_leaves.c.leaf_hash)
                .where(audit_leaves.c.tree_index >= start, audit_leaves.c.tree_index < end)
                .order_by(audit_leaves.c.tree_index)
            ).all()
        for row in rows:
            yield LogEntry(
                int(row.tree_index), row.entry.encode("utf-8"), bytes.fromhex(row.leaf_hash)
            )

    def entry_by_ref(self, ref: str) -> LogEntry:
        """The first integrated entry recorded under ``ref`` (a token jti or decision id; a
        later revocation of the same jti comes after its issuance)."""
        size = self._size()
        with self._db.reader() as conn:
            rows = conn.execute(
                select(audit_leaves.c.tree_index, audit_leaves.c.entry, audit_leaves.c.leaf_hash)
                .where(audit_leaves.c.ref == ref)
                .order_by(audit_leaves.c.tree_index.is_(None), audit_leaves.c.tree_index)
                .limit(1)
            ).all()
        if not rows:
            raise AuditLogError("not_found", "no entry with that reference")
        row = rows[0]
        if row.tree_index is None or row.tree_index >= size:
            raise AuditLogError("not_integrated", "not yet covered by a checkpoint")
        return LogEntry(
            int(row.tree_index), row.entry.encode("utf-8"), bytes.fromhex(row.leaf_hash)
        )

    # --- proofs --------------------------------------------------------------------------

    def _tree(self, size: int) -> audit_tree.StoredTree:
        latest = self._size()
        if size > latest:
            raise AuditLogError("beyond_checkpoint", f"size {size} > checkpointed size {latest}")
        return audit_tree.StoredTree(self._db, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 9162 PATH(index, D[size]) for a size up to the latest checkpoint's."""
        if not 0 <= index < size:
            raise AuditLogError("bad_range", f"index {index} outside a tree of {size}")
        tree = self._tree(size)
        ranges = inclusion_path_ranges(index, size)
        tree.prefetch(ranges)
        return [tree.hash_range(start, end) for start, end in ranges]

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[new_size]) for sizes up to the latest checkpoint's."""
        if not 0 <= old_size <= new_size:
            raise AuditLogError("bad_range", f"sizes {old_size} → {new_size}")
        tree = self._tree(new_size)
        ranges = consistency_proof_ranges(old_size, new_size)
        tree.prefetch(ranges)
        return [tree.hash_range(start, end) for start, end in ranges]

    # --- self-check ----------------------------------------------------------------------

    def verify_stored_log(self) -> LogVerification:
        """Recompute the tree from the stored entries and compare it with every stored signed
        checkpoint. Raises ``AuditLogError`` at the first problem: ``entry_mismatch`` names the
        first index whose entry bytes no longer hash to its leaf hash; ``root_mismatch`` a
        checkpoint whose root the entries no longer produce (entry and leaf hash both edited)."""
        verifiers = self._verifiers or (self._key.verifier(),)
        accumulator = MerkleAccumulator()
        _, checked = self.scan(
            accumulator,
            lambda stored, acc: self._check_checkpoint(stored, acc, verifiers),
        )
        return LogVerification(accumulator.size, accumulator.root(), checked)

    def scan(
        self,
        accumulator: MerkleAccumulator,
        on_checkpoint: Callable[[audit_tree.StoredCheckpoint, MerkleAccumulator], None],
    ) -> tuple[int, int]:
        """Read the stored leaves from ``accumulator.size`` on, in pages: each entry must hash
        to its leaf hash and indexes must be contiguous; each leaf hash is appended to
        ``accumulator``, and ``on_checkpoint`` is called at every stored checkpoint the leaves
        reach (it checks the checkpoint against the accumulator). Returns the size of the last
        checkpoint reached and how many were. Raises ``AuditLogError``: ``missing_leaf``,
        ``entry_mismatch``, ``leaf_beyond_checkpoint`` (the full check and the console's
        incremental one, ``services/log_check.py``, share this)."""
        after = accumulator.size
        checked = 0
        pending: list[audit_tree.StoredCheckpoint] = []
        while True:
            start = accumulator.size
            with self._db.reader() as conn:
                rows = conn.execute(
                    select(
                        audit_leaves.c.tree_index, audit_leaves.c.entry, audit_leaves.c.leaf_hash
                    )
                    .where(audit_leaves.c.tree_index >= start)
                    .order_by(audit_leaves.c.tree_index)
                    .limit(_SCAN_PAGE)
                ).all()
                if not pending:
                    pending = audit_tree.checkpoints_from(conn, after, _SCAN_PAGE)
            for row in rows:
                index = accumulator.size
                if row.tree_index != index:
                    raise AuditLogError("missing_leaf", f"no leaf at index {index}", index=index)
                stored = bytes.fromhex(row.leaf_hash)
                if leaf_hash(row.entry.encode("utf-8")) != stored:
                    raise AuditLogError(
                        "entry_mismatch", f"entry {index} does not match its leaf hash", index=index
                    )
                accumulator.append(stored)
                while pending and pending[0].size == accumulator.size:
                    on_checkpoint(pending.pop(0), accumulator)
                    after = accumulator.size
                    checked += 1
                    if not pending:
                        with self._db.reader() as conn:
                            pending = audit_tree.checkpoints_from(conn, after, _SCAN_PAGE)
            if len(rows) < _SCAN_PAGE:
                break
        if pending:
            raise AuditLogError(
                "missing_leaf",
                f"checkpoint of size {pending[0].size} covers missing leaves",
                index=accumulator.size,
            )
        if accumulator.size != after:
            raise AuditLogError(
                "leaf_beyond_checkpoint",
                f"leaves up to {accumulator.size}, last checkpoint at {after}",
                index=after,
            )
        return after, checked

    def _check_checkpoint(
        self,
        stored: audit_tree.StoredCheckpoint,
        accumulator: MerkleAccumulator,
        verifiers: Sequence[Verifier],
    ) -> None:
        try:
            signed = _verify_checkpoint(stored.signed_note, verifiers, origin=self.origin)
        except NoteError as exc:
            raise AuditLogError(
                "checkpoint_invalid", f"checkpoint {stored.size}: {exc.reason}"
            ) from exc
        if signed.size != stored.size or signed.root_hash != stored.root_hash:
            raise AuditLogError("checkpoint_invalid", f"checkpoint {stored.size}: row ≠ note")
        if accumulator.root() != signed.root_hash:
            raise AuditLogError(
                "root_mismatch", f"entries no longer produce checkpoint {stored.size}'s root"
            )


class AuditIntegrator:
    """A daemon thread per process that calls ``AuditLog.integrate`` every ``interval_ms``.

    Several processes may run one each: the integrator lock and the checkpoint primary key keep
    a single tree. A full batch is followed at once by the next one, so a burst drains at
    batch speed. Failures (database down, a racing integrator) are logged and retried with a
    capped backoff; they never propagate into the application. ``ensure_running`` restarts the
    thread in a forked worker (threads do not survive ``fork``).
    """

    def __init__(self, audit: AuditLog, *, interval_ms: int, max_backoff: float = 30.0) -> None:
        self._audit = audit
        self._interval = interval_ms / 1000
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    def start(self) -> None:
        with self._lock:
            if self.running or self._stop.is_set():
                return
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="trustanchor-audit-integrator", daemon=True
            )
            self._thread.start()

    def ensure_running(self) -> None:
        """Cheap: start the thread unless it runs in this process (or was stopped)."""
        if not self.running and not self._stop.is_set():
            self.start()

    def request_stop(self) -> None:
        """Ask the thread to stop after its current batch, without waiting."""
        self._stop.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        delay, failures = self._interval, 0
        while not self._stop.wait(delay):
            try:
                while not self._stop.is_set():
                    done = self._audit.integrate()
                    if done is None or done.integrated < self._audit.batch_size:
                        break
            except Exception:  # never let the thread die: log, back off, retry
                failures += 1
                delay = min(self._interval * 2 ** min(failures, 16), self._max_backoff)
                log.exception("audit integration failed (attempt %d); retrying", failures)
            else:
                delay, failures = self._interval, 0
