"""Merkle tree hashing and proofs exactly as RFC 9162 (Certificate Transparency 2.0) §2.1 defines.

Why this shape: the audit log must be checkable by auditors with ordinary transparency tooling,
so the tree is the CT one, bit for bit. A leaf is ``SHA-256(0x00 || entry)``, an interior node
``SHA-256(0x01 || left || right)``; the distinct prefixes mean no leaf can pose as a node. The
tree over ``n`` leaves splits at ``k``, the largest power of two smaller than ``n``, so the left
subtree is always perfect and a tree only ever grows on its right edge. Two consequences shape
the API:

- Every hash a proof needs is the root of a *node* of the tree: either a perfect, aligned
  subtree ``[i·2^j, (i+1)·2^j)`` (which never changes once complete) or a right-edge subtree.
  Proof generation is therefore pure index arithmetic (``inclusion_path_ranges``,
  ``consistency_proof_ranges``) plus a ``HashSource`` that answers ``hash_range(start, end)``.
  A store that keeps perfect subtree hashes answers any node with O(log n) lookups.
- The root at any size is determined by the perfect subtrees that its binary size decomposes
  into, so ``MerkleAccumulator`` computes roots incrementally in O(log n) memory.

Verification (``verify_inclusion`` §2.1.3.2, ``verify_consistency`` §2.1.4.2) follows the RFC
step by step and never returns a boolean: a proof that does not check raises ``ProofError``
with a stable ``reason`` code, so a caller cannot forget to look at the result. Roots and proof
hashes are public values, so plain ``==`` comparison is fine (no secret to leak by timing).

Generation functions are given trusted, server-side inputs; bad arguments there (an index
outside the tree, a size larger than the source) are programming or request-validation errors
and raise ``ValueError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final, Protocol, runtime_checkable

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()
"""MTH({}) of RFC 9162 §2.1.1: the hash of the empty string."""

_sha256 = hashlib.sha256
_LEAF_PREFIX: Final = b"\x00"
_NODE_PREFIX: Final = b"\x01"

REASONS: Final = frozenset(
    {
        "malformed_hash",  # a leaf hash, root or proof element that is not 32 bytes
        "invalid_size",  # a negative tree size or index
        "index_out_of_range",  # leaf index ≥ tree size
        "old_size_exceeds_new_size",  # consistency asked from a larger tree to a smaller one
        "proof_too_long",  # hashes left over after the path reached the root (RFC step 4a/6a)
        "proof_too_short",  # the path ended before reaching the root (RFC step 5/7: sn ≠ 0)
        "root_mismatch",  # inclusion path does not lead to the root; empty tree root is wrong
        "old_root_mismatch",  # consistency path does not reproduce the old root
        "new_root_mismatch",  # consistency path does not reproduce the new root
        "same_size_different_roots",  # two roots for one tree size: a split view or a rewrite
    }
)


class ProofError(Exception):
    """A Merkle proof did not verify. ``reason`` is a stable code from ``REASONS``; ``detail``
    names the numbers involved, for the auditor's report."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# -- hashing (§2.1.1) -----------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """MTH({d}) = SHA-256(0x00 || d): the hash of one log entry."""
    return _sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): an interior node over two subtree hashes."""
    return _sha256(_NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """k of §2.1.1: the largest power of two strictly smaller than ``n`` (``n`` ≥ 2)."""
    if n < 2:
        raise ValueError(f"a tree of {n} leaves has no split point")
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes (not entries); the empty tree's root is ``EMPTY_ROOT``."""
    accumulator = MerkleAccumulator()
    accumulator.extend(leaf_hashes)
    return accumulator.root()


def _require_hash(value: bytes, what: str) -> None:
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes")


# -- where hashes come from ------------------------------------------------------------------------


@runtime_checkable
class HashSource(Protocol):
    """Supplies MTH(D[start:end]) for ``0 ≤ start < end ≤`` the source's tree size.

    Proof generators only ask for nodes of the tree being proven: perfect aligned subtrees and
    right-edge subtrees. A store holding the hash of every complete perfect subtree can answer
    a right-edge node by splitting it at ``split_point`` (see ``MemoryTree.hash_range``).
    Out-of-range requests raise ``ValueError``.
    """

    def hash_range(self, start: int, end: int) -> bytes: ...


class MemoryTree:
    """Every leaf hash and every complete perfect subtree hash, in memory.

    ``levels[j]`` holds the hashes of the perfect subtrees of 2^j leaves, concatenated in one
    ``bytearray`` (32 bytes per hash, about 64 bytes per leaf in all). Appending is amortised
    O(1) hashes; ``hash_range`` of any tree node is O(log n); roots at any past size too. This
    is the reference ``HashSource`` and the shape a storage-backed one mirrors.
    """

    __slots__ = ("_levels",)

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self._levels: list[bytearray] = [bytearray()]
        for leaf in leaf_hashes:
            self.append(leaf)

    @property
    def size(self) -> int:
        return len(self._levels[0]) // HASH_SIZE

    def append(self, leaf: bytes) -> int:
        """Add one leaf hash; returns its index. Completes every perfect subtree it closes."""
        _require_hash(leaf, "leaf hash")
        levels = self._levels
        levels[0] += leaf
        index = self.size - 1
        level, count = 0, index + 1
        while count % 2 == 0:
            row = levels[level]
            parent = node_hash(bytes(row[-2 * HASH_SIZE : -HASH_SIZE]), bytes(row[-HASH_SIZE:]))
            level += 1
            if level == len(levels):
                levels.append(bytearray())
            levels[level] += parent
            count = len(levels[level]) // HASH_SIZE
        return index

    def leaf(self, index: int) -> bytes:
        if not 0 <= index < self.size:
            raise ValueError(f"leaf {index} outside a tree of {self.size}")
        offset = index * HASH_SIZE
        return bytes(self._levels[0][offset : offset + HASH_SIZE])

    def hash_range(self, start: int, end: int) -> bytes:
        if not 0 <= start < end <= self.size:
            raise ValueError(f"range [{start}, {end}) outside a tree of {self.size}")
        return self._range(start, end)

    def _range(self, start: int, end: int) -> bytes:
        width = end - start
        if width & (width - 1) == 0 and start % width == 0:
            level = width.bit_length() - 1
            offset = (start >> level) * HASH_SIZE
            return bytes(self._levels[level][offset : offset + HASH_SIZE])
        k = split_point(width)
        return node_hash(self._range(start, start + k), self._range(start + k, end))

    def root(self, size: int | None = None) -> bytes:
        """The root at ``size`` (default: the current size), any size up to the current one."""
        size = self.size if size is None else size
        if size == 0:
            return EMPTY_ROOT
        return self.hash_range(0, size)


class _LeafList:
    """A plain list of leaf hashes as a ``HashSource``: O(end - start) per hash, no cache."""

    __slots__ = ("_leaves",)

    def __init__(self, leaves: Sequence[bytes]) -> None:
        self._leaves = leaves

    def hash_range(self, start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(self._leaves):
            raise ValueError(f"range [{start}, {end}) outside a tree of {len(self._leaves)}")
        return root(self._leaves[start:end])


def _source(tree: HashSource | Sequence[bytes], size: int) -> HashSource:
    if isinstance(tree, HashSource):
        return tree
    if size > len(tree):
        raise ValueError(f"tree size {size} exceeds the {len(tree)} leaf hashes given")
    return _LeafList(tree)


# -- inclusion proofs (§2.1.3) ---------------------------------------------------------------------


def inclusion_path_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make up PATH(index, D[size]), leaf level first.

    PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n]) for m < k, else PATH(m - k, D[k:n]) :
    MTH(D[0:k]). Walking from the root down collects the siblings top-first, so the list is
    reversed at the end. At most ⌈log2 size⌉ ranges.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} outside a tree of {size}")
    ranges: list[tuple[int, int]] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + split_point(end - start)
        if index < mid:
            ranges.append((mid, end))
            end = mid
        else:
            ranges.append((start, mid))
            start = mid
    ranges.reverse()
    return ranges


def inclusion_proof(tree: HashSource | Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[size]) of §2.1.3.1, from a ``HashSource`` or a list of leaf hashes."""
    source = _source(tree, size)
    return [source.hash_range(start, end) for start, end in inclusion_path_ranges(index, size)]


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """§2.1.3.2: check that ``leaf_hash`` is leaf ``index`` of the tree of ``size`` with
    ``root``. Raises ``ProofError``; returns nothing on success.

    ``size`` and ``root`` must be taken together from one verified checkpoint: the path binds
    the size only through its shape, so where two sizes give the same shape (leaf 0 of 3 and of
    4) the RFC algorithm cannot tell them apart by itself.
    """
    _check_hashes(leaf_hash, root)
    if index < 0 or size < 0:
        raise ProofError("invalid_size", f"index {index}, size {size}")
    # 1. leaf_index ≥ tree_size fails.
    if index >= size:
        raise ProofError("index_out_of_range", f"leaf index {index} ≥ tree size {size}")
    # 2.-3.
    fn, sn = index, size - 1
    r = leaf_hash
    sha256, prefix = _sha256, _NODE_PREFIX  # locals: this loop is the auditor's hot path
    # 4.
    for p in proof:
        if type(p) is not bytes or len(p) != HASH_SIZE:
            raise ProofError("malformed_hash", "a proof element is not 32 bytes")
        # 4a.
        if sn == 0:
            raise ProofError("proof_too_long", f"{len(proof)} hashes for index {index} of {size}")
        # 4b.
        if fn & 1 or fn == sn:
            r = sha256(prefix + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = sha256(prefix + r + p).digest()
        # 4c.
        fn >>= 1
        sn >>= 1
    # 5.
    if sn != 0:
        raise ProofError("proof_too_short", f"{len(proof)} hashes for index {index} of {size}")
    if r != root:
        raise ProofError("root_mismatch", f"leaf {index} of {size}")


# -- consistency proofs (§2.1.4) -------------------------------------------------------------------


def consistency_proof_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """The leaf ranges whose hashes make up PROOF(old_size, D[new_size]), in proof order.

    SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}; for m < n:
    SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) if m ≤ k, else SUBPROOF(m - k, D[k:n], false) :
    MTH(D[0:k]). Empty when the old tree is empty or the sizes are equal (nothing to prove).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[tuple[int, int]] = []
    m, start, end, whole_old_tree = old_size, 0, new_size, True
    while m != end - start:
        k = split_point(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, end))
    ranges.reverse()
    return ranges


def consistency_proof(
    tree: HashSource | Sequence[bytes], old_size: int, new_size: int
) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of §2.1.4.1, from a ``HashSource`` or leaf hashes."""
    source = _source(tree, new_size)
    return [
        source.hash_range(start, end) for start, end in consistency_proof_ranges(old_size, new_size)
    ]


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """§2.1.4.2: check that the tree of ``new_size`` with ``new_root`` extends the tree of
    ``old_size`` with ``old_root`` (append-only: nothing rewritten, nothing removed).

    The RFC covers 0 < old_size < new_size. The edges are closed too: equal sizes need an empty
    proof and equal roots (else ``same_size_different_roots``, the split-view signal); an empty
    old tree needs an empty proof and the empty root. Raises ``ProofError``.
    """
    _check_hashes(old_root, new_root)
    if old_size < 0 or new_size < 0:
        raise ProofError("invalid_size", f"sizes {old_size} → {new_size}")
    if old_size > new_size:
        raise ProofError("old_size_exceeds_new_size", f"sizes {old_size} → {new_size}")
    if old_size == new_size:
        if proof:
            raise ProofError("proof_too_long", f"{len(proof)} hashes for equal sizes")
        if old_root != new_root:
            raise ProofError("same_size_different_roots", f"size {old_size}")
        return
    if old_size == 0:
        if proof:
            raise ProofError("proof_too_long", f"{len(proof)} hashes from the empty tree")
        if old_root != EMPTY_ROOT:
            raise ProofError("root_mismatch", "the empty tree's root is SHA-256 of nothing")
        return
    # 1.
    if not proof:
        raise ProofError("proof_too_short", f"no hashes for sizes {old_size} → {new_size}")
    for c in proof:
        if type(c) is not bytes or len(c) != HASH_SIZE:
            raise ProofError("malformed_hash", "a proof element is not 32 bytes")
    # 2.
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    # 3.-4.
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5.
    fr = sr = path[0]
    sha256, prefix = _sha256, _NODE_PREFIX
    # 6.
    for c in path[1:]:
        # 6a.
        if sn == 0:
            raise ProofError("proof_too_long", f"{len(proof)} hashes for {old_size} → {new_size}")
        # 6b.
        if fn & 1 or fn == sn:
            fr = sha256(prefix + c + fr).digest()
            sr = sha256(prefix + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = sha256(prefix + sr + c).digest()
        # 6c.
        fn >>= 1
        sn >>= 1
    # 7.
    if sn != 0:
        raise ProofError("proof_too_short", f"{len(proof)} hashes for {old_size} → {new_size}")
    if fr != old_root:
        raise ProofError("old_root_mismatch", f"sizes {old_size} → {new_size}")
    if sr != new_root:
        raise ProofError("new_root_mismatch", f"sizes {old_size} → {new_size}")


def _check_hashes(*values: bytes) -> None:
    for value in values:
        if type(value) is not bytes or len(value) != HASH_SIZE:
            raise ProofError("malformed_hash", "leaf hash or root is not 32 bytes")


# -- incremental roots -----------------------------------------------------------------------------


class MerkleAccumulator:
    """The root of a growing tree in O(log n) memory: a compact range from leaf 0.

    It keeps one hash per set bit of the size (the perfect subtrees the tree decomposes into,
    largest first: the "frontier"). Appending merges equal-sized subtrees like a binary
    carry; the root folds the frontier from the right, which is exactly MTH because the RFC
    split always puts the largest perfect subtree on the left. The batch integrator persists
    ``(size, frontier)`` with each checkpoint and resumes with ``from_frontier``; ``audit
    replay`` streams every entry through one accumulator and compares roots.
    """

    __slots__ = ("_frontier", "_size")

    def __init__(self) -> None:
        self._size = 0
        self._frontier: list[bytes] = []

    @classmethod
    def from_frontier(cls, size: int, frontier: Sequence[bytes]) -> MerkleAccumulator:
        if size < 0 or len(frontier) != size.bit_count():
            raise ValueError(f"a tree of {size} leaves has {max(size, 0).bit_count()} subtrees")
        for value in frontier:
            _require_hash(value, "frontier hash")
        accumulator = cls()
        accumulator._size = size
        accumulator._frontier = list(frontier)
        return accumulator

    @property
    def size(self) -> int:
        return self._size

    @property
    def frontier(self) -> tuple[bytes, ...]:
        """The perfect subtree hashes, largest (leftmost) first."""
        return tuple(self._frontier)

    def append(self, leaf: bytes) -> None:
        _require_hash(leaf, "leaf hash")
        frontier, carry, size = self._frontier, leaf, self._size
        while size & 1:
            carry = node_hash(frontier.pop(), carry)
            size >>= 1
        frontier.append(carry)
        self._size += 1

    def extend(self, leaves: Iterable[bytes]) -> None:
        for leaf in leaves:
            self.append(leaf)

    def root(self) -> bytes:
        frontier = self._frontier
        if not frontier:
            return EMPTY_ROOT
        result = frontier[-1]
        for subtree in reversed(frontier[:-1]):
            result = node_hash(subtree, result)
        return result

    def copy(self) -> MerkleAccumulator:
        return MerkleAccumulator.from_frontier(self._size, self._frontier)
