"""The audit log's Merkle tree in storage: batch integration of appended leaves, and hashes.

Appending (``audit_repo.append``) is one INSERT inside the caller's transaction and takes no
global lock. Here, an *integrator* later takes the pending leaves in batches and, in one write
transaction:

1. takes the integrator lock (SQLite: ``BEGIN IMMEDIATE`` already serialises writers;
   PostgreSQL: ``LOCK TABLE audit_checkpoints IN SHARE ROW EXCLUSIVE MODE``, which conflicts
   with itself but not with readers, and is scoped to the schema the log lives in — an advisory
   lock would be database-wide and serialise unrelated logs sharing a server);
2. reads the latest checkpoint (size ``N`` and its ``MerkleAccumulator`` frontier);
3. gives up to ``batch_size`` pending leaves (``tree_index IS NULL``, oldest id first) the
   indexes ``N, N+1, …`` with a conditional UPDATE;
4. stores the hash of every perfect subtree the batch completes (level ≥ 1; level 0 is
   ``audit_leaves.leaf_hash``), so any proof needs O(log n) lookups;
5. signs a checkpoint and inserts it. ``size`` is the primary key of ``audit_checkpoints``: even
   if two integrators ever computed the same next size, only one commits — the tree cannot fork.

Tree order is integration order: a leaf whose transaction commits after one with a higher id
simply gets a later index. A crash anywhere rolls the whole batch back; the leaves stay pending.

``StoredTree`` is a ``merkle.HashSource`` over these tables, for proofs at any checkpointed size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, text, update

from trustanchor.audit.checkpoint import Checkpoint, new_checkpoint, parse_checkpoint
from trustanchor.audit.checkpoint import sign_checkpoint as _sign
from trustanchor.audit.merkle import MerkleAccumulator, node_hash, split_point
from trustanchor.audit.note import Signer, split_note
from trustanchor.storage.database import Database
from trustanchor.storage.tables import audit_checkpoints, audit_leaves, audit_nodes

REASONS = frozenset({"missing_hash", "range_out_of_bounds", "lost_race"})


class AuditTreeError(Exception):
    """The stored tree cannot answer: a hash that must exist is missing (storage damaged), a
    range outside the tree, or a batch update that did not touch the rows it selected."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    size: int
    root_hash: bytes
    signed_note: str
    frontier: tuple[bytes, ...]
    created_at: int

    @property
    def checkpoint(self) -> Checkpoint:
        """The checkpoint the stored note carries (its signature is checked by verifiers)."""
        note_text, _signatures = split_note(self.signed_note)
        return parse_checkpoint(note_text)


@dataclass(frozen=True, slots=True)
class Integration:
    """One integrated batch: the signed checkpoint and how many leaves it added."""

    checkpoint: Checkpoint
    signed_note: str
    integrated: int


def _stored(row: Any) -> StoredCheckpoint:
    return StoredCheckpoint(
        size=int(row.size),
        root_hash=bytes.fromhex(row.root_hash),
        signed_note=row.signed_note,
        frontier=tuple(bytes.fromhex(h) for h in row.frontier),
        created_at=int(row.created_at),
    )


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    row = conn.execute(
        select(audit_checkpoints).order_by(audit_checkpoints.c.size.desc()).limit(1)
    ).first()
    return None if row is None else _stored(row)


def checkpoint_at(conn: Connection, size: int) -> StoredCheckpoint | None:
    row = conn.execute(select(audit_checkpoints).where(audit_checkpoints.c.size == size)).first()
    return None if row is None else _stored(row)


def checkpoints_from(conn: Connection, after: int, limit: int) -> list[StoredCheckpoint]:
    """Checkpoints with size > ``after``, smallest first, at most ``limit``."""
    rows = conn.execute(
        select(audit_checkpoints)
        .where(audit_checkpoints.c.size > after)
        .order_by(audit_checkpoints.c.size)
        .limit(limit)
    )
    return [_stored(row) for row in rows]


def has_pending(conn: Connection) -> bool:
    """Whether any committed leaf awaits integration (a cheap read, no lock)."""
    query = select(audit_leaves.c.id).where(audit_leaves.c.tree_index.is_(None)).limit(1)
    return conn.execute(query).first() is not None


def oldest_pending_at(conn: Connection) -> int | None:
    """When the oldest committed leaf still awaiting integration was appended (None: none
    waits); ``ix_audit_leaves_pending`` answers it without a scan."""
    query = (
        select(audit_leaves.c.created_at)
        .where(audit_leaves.c.tree_index.is_(None))
        .order_by(audit_leaves.c.tree_index, audit_leaves.c.id)
        .limit(1)
    )
    row = conn.execute(query).first()
    return None if row is None else int(row.created_at)


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE audit_checkpoints IN SHARE ROW EXCLUSIVE MODE"))
    # SQLite: the transaction began with BEGIN IMMEDIATE, which already excludes other writers.


def extend(
    size: int, frontier: Sequence[bytes], leaves: Iterable[bytes]
) -> tuple[list[bytes], list[tuple[int, int, bytes]]]:
    """Append ``leaves`` to the tree of ``size`` leaves with ``frontier``; return the new
    frontier and every perfect subtree completed, as ``(level, position, hash)`` (level ≥ 1).

    The binary carry of ``MerkleAccumulator.append``, keeping the intermediate carries: each is
    the root of the subtree of ``2^level`` leaves that the new leaf just closed.
    """
    stack = list(frontier)
    nodes: list[tuple[int, int, bytes]] = []
    for leaf in leaves:
        carry, bits, level = leaf, size, 0
        size += 1
        while bits & 1:
            carry = node_hash(stack.pop(), carry)
            bits >>= 1
            level += 1
            nodes.append((level, (size >> level) - 1, carry))
        stack.append(carry)
    return stack, nodes


_ASSIGN = (
    update(audit_leaves)
    .where(audit_leaves.c.id == bindparam("b_id"), audit_leaves.c.tree_index.is_(None))
    .values(tree_index=bindparam("b_index"))
)


def integrate_batch(
    db: Database, signer: Signer, *, now: int, batch_size: int
) -> Integration | None:
    """Integrate up to ``batch_size`` pending leaves and sign a checkpoint; None when nothing
    is pending. The checkpoint origin is the signer's name (the audit key name)."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    with db.reader() as conn:
        if not has_pending(conn):
            return None  # no write lock taken just to find nothing to do
    with db.transaction() as conn:
        _lock(conn)
        latest = latest_checkpoint(conn)
        size = 0 if latest is None else latest.size
        frontier: Sequence[bytes] = () if latest is None else latest.frontier
        pending = conn.execute(
            select(audit_leaves.c.id, audit_leaves.c.leaf_hash)
            .where(audit_leaves.c.tree_index.is_(None))
            .order_by(audit_leaves.c.id)
            .limit(batch_size)
        ).all()
        if not pending:
            return None
        assigned = conn.execute(
            _ASSIGN, [{"b_id": row.id, "b_index": size + i} for i, row in enumerate(pending)]
        ).rowcount
        if assigned != len(pending):
            raise AuditTreeError("lost_race", f"{assigned} of {len(pending)} leaves assigned")
        new_frontier, nodes = extend(size, frontier, (bytes.fromhex(r.leaf_hash) for r in pending))
        new_size = size + len(pending)
        root = MerkleAccumulator.from_frontier(new_size, new_frontier).root()
        if nodes:
            conn.execute(
                insert(audit_nodes),
                [{"level": lv, "position": pos, "hash": h.hex()} for lv, pos, h in nodes],
            )
        # The time line never decreases as the tree grows, even if clocks of processes differ.
        at = now if latest is None else max(now, latest.checkpoint.time or 0)
        checkpoint = new_checkpoint(signer.name, new_size, root, at=at)
        signed = _sign(checkpoint, signer)
        conn.execute(
            insert(audit_checkpoints),
            {
                "size": new_size,
                "root_hash": root.hex(),
                "signed_note": signed,
                "frontier": [h.hex() for h in new_frontier],
                "created_at": at,
            },
        )
    return Integration(checkpoint, signed, len(pending))


def integrate_once(db: Database, signer: Signer, *, now: int, batch_size: int) -> Checkpoint | None:
    """One batch (see :func:`integrate_batch`); the new checkpoint, or None if none pending."""
    done = integrate_batch(db, signer, now=now, batch_size=batch_size)
    return None if done is None else done.checkpoint


# --- hashes for proofs -----------------------------------------------------------------------


def _perfect_nodes(start: int, end: int, out: set[tuple[int, int]]) -> None:
    """The perfect aligned subtrees MTH(D[start:end]) is built from (RFC 9162 split)."""
    width = end - start
    if width & (width - 1) == 0 and start % width == 0:
        level = width.bit_length() - 1
        out.add((level, start >> level))
        return
    k = split_point(width)
    _perfect_nodes(start, start + k, out)
    _perfect_nodes(start + k, end, out)


class StoredTree:
    """``merkle.HashSource`` over ``audit_leaves`` and ``audit_nodes`` for a tree of ``size``
    leaves (at most the latest checkpoint's size: every hash it needs is then stored).

    Perfect subtrees never change once complete, so fetched hashes are cached and reads need no
    transaction. ``prefetch`` loads every hash a list of ranges needs in two queries (one for
    leaves, one for nodes); ``hash_range`` fetches what is still missing on demand.
    """

    def __init__(self, db: Database, size: int) -> None:
        self._db = db
        self.size = size
        self._cache: dict[tuple[int, int], bytes] = {}

    def prefetch(self, ranges: Iterable[tuple[int, int]]) -> None:
        wanted: set[tuple[int, int]] = set()
        for start, end in ranges:
            self._check(start, end)
            _perfect_nodes(start, end, wanted)
        self._fetch(wanted - self._cache.keys())

    def hash_range(self, start: int, end: int) -> bytes:
        self.prefetch([(start, end)])
        return self._combine(start, end)

    def _check(self, start: int, end: int) -> None:
        if not 0 <= start < end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside a tree of {self.size}")

    def _combine(self, start: int, end: int) -> bytes:
        width = end - start
        if width & (width - 1) == 0 and start % width == 0:
            level = width.bit_length() - 1
            return self._cache[(level, start >> level)]
        k = split_point(width)
        return node_hash(self._combine(start, start + k), self._combine(start + k, end))

    def _fetch(self, keys: set[tuple[int, int]]) -> None:
        if not keys:
            return
        leaves = sorted(pos for level, pos in keys if level == 0)
        nodes = sorted(key for key in keys if key[0] > 0)
        with self._db.reader() as conn:
            if leaves:
                rows = conn.execute(
                    select(audit_leaves.c.tree_index, audit_leaves.c.leaf_hash).where(
                        audit_leaves.c.tree_index.in_(leaves)
                    )
                )
                for row in rows:
                    self._cache[(0, int(row.tree_index))] = bytes.fromhex(row.leaf_hash)
            by_level: dict[int, list[int]] = {}
            for level, position in nodes:
                by_level.setdefault(level, []).append(position)
            # One indexed query per level (at most ~log2 n): SQLite does not use the primary
            # key for a row-value IN list, and scanned the whole table (bench/results).
            for level, positions in sorted(by_level.items()):
                rows = conn.execute(
                    select(audit_nodes.c.position, audit_nodes.c.hash).where(
                        audit_nodes.c.level == level, audit_nodes.c.position.in_(positions)
                    )
                )
                for row in rows:
                    self._cache[(level, int(row.position))] = bytes.fromhex(row.hash)
        missing = keys - self._cache.keys()
        if missing:
            level, position = min(missing)
            raise AuditTreeError(
                "missing_hash", f"subtree of 2^{level} leaves at position {position} not stored"
            )
