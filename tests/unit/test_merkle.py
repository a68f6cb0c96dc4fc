"""RFC 9162 Merkle trees (trustanchor.audit.merkle): published CT vectors, an independent naive
implementation of the RFC's recursive definitions, exhaustive and sampled proof properties, and
the SECURITY-CASES.md "Audit log" lines that pure code can show:

- corrupted proofs (index ±1, wrong size, extra or missing hash, flipped bit, swapped roots) →
  rejected, each with its exact ``ProofError.reason``;
- tree truncated or rolled back below a size an auditor already saw → detected;
- checkpoints from one tree size with two roots → detected (issue 3).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor.audit import merkle
from trustanchor.audit.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    MerkleAccumulator,
    ProofError,
    consistency_proof,
    consistency_proof_ranges,
    inclusion_path_ranges,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# -- an independent, naive transcription of RFC 9162 §2.1 ---------------------------------------


def ref_leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def ref_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def ref_k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: Sequence[bytes]) -> bytes:
    """MTH over leaf *hashes*: MTH({}) = SHA-256(), MTH({h}) = h, else split at k."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = ref_k(len(d))
    return ref_node(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = ref_k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[bytes], b: bool) -> list[bytes]:
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return [*ref_subproof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_subproof(m - k, d[k:], False), ref_mth(d[:k])]


def ref_proof(m: int, d: Sequence[bytes]) -> list[bytes]:
    return [] if m == 0 else ref_subproof(m, d, True)


# -- fixtures -----------------------------------------------------------------------------------

BIG = 4096
LEAVES = [ref_leaf(i.to_bytes(4, "big")) for i in range(BIG)]
TREE = MemoryTree(LEAVES)
ROOTS = [TREE.root(size) for size in range(BIG + 1)]


def flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def reason(excinfo: pytest.ExceptionInfo[ProofError]) -> str:
    return excinfo.value.reason


# -- published test vectors ---------------------------------------------------------------------
# The classic Certificate Transparency corpus, as published in transparency-dev/merkle
# (testonly/constants.go, rfc6962/rfc6962_test.go, testonly/reference_test.go,
# proof/verify_test.go): 8 leaf inputs, their roots at every size, and proofs.

CT_INPUTS = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [
    bytes.fromhex(x)
    for x in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
H = {
    "h0": "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "h1": "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "h4": "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "n01": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "n23": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "n45": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "n67": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "n0123": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "n4567": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
}
CT_INCLUSION = [  # (index, size, proof), 0-based indices
    (0, 1, []),
    (0, 2, ["h1"]),
    (1, 2, ["h0"]),
    (2, 3, ["n01"]),
    (1, 5, ["h0", "n23", "h4"]),
    (0, 8, ["h1", "n23", "n4567"]),
    (5, 8, ["h4", "n67", "n0123"]),
]
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["h1", "n23", "n4567"]),
    (6, 8, ["n45", "n67", "n0123"]),
    (2, 5, ["n23", "h4"]),
]
CT_LEAVES = [merkle.leaf_hash(x) for x in CT_INPUTS]


def test_rfc6962_hasher_vectors() -> None:
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert merkle.leaf_hash(b"").hex() == H["h0"]
    assert (
        merkle.leaf_hash(b"L123456").hex()
        == "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert (
        merkle.node_hash(b"N123", b"N456").hex()
        == "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


@pytest.mark.parametrize("size", range(9))
def test_ct_roots_at_every_size(size: int) -> None:
    leaves = CT_LEAVES[:size]
    assert merkle.root(leaves) == CT_ROOTS[size]
    assert MemoryTree(leaves).root() == CT_ROOTS[size]
    assert ref_mth(leaves) == CT_ROOTS[size]


@pytest.mark.parametrize(("index", "size", "names"), CT_INCLUSION)
def test_ct_inclusion_vectors(index: int, size: int, names: list[str]) -> None:
    expected = [bytes.fromhex(H[name]) for name in names]
    assert inclusion_proof(MemoryTree(CT_LEAVES), index, size) == expected
    assert inclusion_proof(CT_LEAVES, index, size) == expected
    verify_inclusion(CT_LEAVES[index], index, size, expected, CT_ROOTS[size])


@pytest.mark.parametrize(("old", "new", "names"), CT_CONSISTENCY)
def test_ct_consistency_vectors(old: int, new: int, names: list[str]) -> None:
    expected = [bytes.fromhex(H[name]) for name in names]
    assert consistency_proof(MemoryTree(CT_LEAVES), old, new) == expected
    assert consistency_proof(CT_LEAVES, old, new) == expected
    verify_consistency(old, new, CT_ROOTS[old], CT_ROOTS[new], expected)


# -- the implementation agrees with the RFC's definitions ---------------------------------------


def test_split_point_is_the_largest_power_of_two_below_n() -> None:
    for n in range(2, 5000):
        assert merkle.split_point(n) == ref_k(n)
    with pytest.raises(ValueError):
        merkle.split_point(1)


def test_roots_match_the_naive_definition_up_to_300() -> None:
    for size in range(301):
        assert ROOTS[size] == ref_mth(LEAVES[:size]), size


def test_proofs_match_the_naive_definition_for_every_pair_up_to_64() -> None:
    for n in range(1, 65):
        d = LEAVES[:n]
        for m in range(n):
            assert inclusion_proof(TREE, m, n) == ref_path(m, d), (m, n)
        for m in range(n + 1):
            assert consistency_proof(TREE, m, n) == ref_proof(m, d), (m, n)


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_proofs_match_the_naive_definition_sampled_up_to_4096(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, BIG), label="size")
    m = data.draw(st.integers(0, n - 1), label="index")
    d = LEAVES[:n]
    assert inclusion_proof(TREE, m, n) == ref_path(m, d)
    assert consistency_proof(TREE, m + 1, n) == ref_proof(m + 1, d)


# -- proofs verify ------------------------------------------------------------------------------


def test_inclusion_verifies_for_every_index_and_size_up_to_512() -> None:
    for n in range(1, 513):
        bound = math.ceil(math.log2(n))
        for i in range(n):
            proof = inclusion_proof(TREE, i, n)
            assert len(proof) <= bound
            verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n])


def test_consistency_verifies_for_every_pair_up_to_160() -> None:
    for n in range(1, 161):
        for m in range(n + 1):
            verify_consistency(m, n, ROOTS[m], ROOTS[n], consistency_proof(TREE, m, n))


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_proofs_verify_sampled_up_to_4096(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, BIG), label="size")
    i = data.draw(st.integers(0, n - 1), label="index")
    m = data.draw(st.integers(0, n), label="old size")
    verify_inclusion(LEAVES[i], i, n, inclusion_proof(TREE, i, n), ROOTS[n])
    verify_consistency(m, n, ROOTS[m], ROOTS[n], consistency_proof(TREE, m, n))


def test_proof_length_bounds() -> None:
    """Inclusion proofs are at most ⌈log2 n⌉ hashes; consistency proofs at most one more (the
    old tree's own subtree hash when it is not a left-aligned power of two, e.g. 3 → 4)."""
    worst_inclusion = worst_consistency = 0
    for n in range(2, 513):
        bound = math.ceil(math.log2(n))
        for m in range(1, n):
            assert len(inclusion_path_ranges(m, n)) <= bound
            extra = len(consistency_proof_ranges(m, n)) - bound
            assert extra <= 1
            worst_inclusion = max(worst_inclusion, len(inclusion_path_ranges(m, n)) - bound)
            worst_consistency = max(worst_consistency, extra)
    assert (worst_inclusion, worst_consistency) == (0, 1)
    assert len(consistency_proof_ranges(3, 4)) == 3


def node_ranges(size: int) -> set[tuple[int, int]]:
    """Every node of the RFC tree of ``size`` leaves, as a leaf range."""
    out: set[tuple[int, int]] = set()
    stack = [(0, size)]
    while stack:
        start, end = stack.pop()
        out.add((start, end))
        if end - start > 1:
            k = ref_k(end - start)
            stack += [(start, start + k), (start + k, end)]
    return out


def test_generators_ask_a_hash_source_only_for_nodes_of_the_tree() -> None:
    """The storage contract: a store of perfect subtrees can answer every request."""
    for n in range(1, 130):
        nodes = node_ranges(n)
        for i in range(n):
            assert set(inclusion_path_ranges(i, n)) <= nodes
        for m in range(n + 1):
            assert set(consistency_proof_ranges(m, n)) <= nodes


class CountingSource:
    """A HashSource that records what it was asked for."""

    def __init__(self, tree: MemoryTree) -> None:
        self.tree = tree
        self.asked: list[tuple[int, int]] = []

    def hash_range(self, start: int, end: int) -> bytes:
        self.asked.append((start, end))
        return self.tree.hash_range(start, end)


def test_generators_work_against_any_hash_source() -> None:
    source = CountingSource(TREE)
    assert isinstance(source, merkle.HashSource)
    proof = inclusion_proof(source, 1000, 3000)
    assert source.asked == inclusion_path_ranges(1000, 3000)
    verify_inclusion(LEAVES[1000], 1000, 3000, proof, ROOTS[3000])
    source.asked.clear()
    proof = consistency_proof(source, 1234, 4000)
    assert source.asked == consistency_proof_ranges(1234, 4000)
    verify_consistency(1234, 4000, ROOTS[1234], ROOTS[4000], proof)


# -- corrupted inclusion proofs (SECURITY-CASES "Audit log") ------------------------------------

SMALL = [(i, n) for n in range(1, 41) for i in range(n)]


def expected_for(index: int, size: int, proof_length: int) -> str:
    """The reason the RFC algorithm gives when the proof's length does not fit (index, size)."""
    if index >= size:
        return "index_out_of_range"
    needed = len(inclusion_path_ranges(index, size))
    if proof_length > needed:
        return "proof_too_long"
    if proof_length < needed:
        return "proof_too_short"
    return "root_mismatch"


def test_inclusion_index_plus_or_minus_one_is_rejected() -> None:
    for i, n in SMALL:
        proof = inclusion_proof(TREE, i, n)
        for wrong in (i - 1, i + 1):
            if wrong < 0:
                continue
            for leaf in {LEAVES[i], LEAVES[min(wrong, BIG - 1)]}:
                with pytest.raises(ProofError) as excinfo:
                    verify_inclusion(leaf, wrong, n, proof, ROOTS[n])
                assert reason(excinfo) == expected_for(wrong, n, len(proof)), (i, n, wrong)


def test_inclusion_wrong_size_is_rejected() -> None:
    """Claiming the proof is for another size, against that size's checkpointed root."""
    for i, n in SMALL:
        proof = inclusion_proof(TREE, i, n)
        for wrong in (n - 1, n + 1, 2 * n, n // 2):
            if wrong == n or wrong < 1:
                continue
            with pytest.raises(ProofError) as excinfo:
                verify_inclusion(LEAVES[i], i, wrong, proof, ROOTS[wrong])
            assert reason(excinfo) == expected_for(i, wrong, len(proof)), (i, n, wrong)


def test_size_is_bound_to_the_root_by_the_checkpoint_not_by_the_proof() -> None:
    """Why callers must take (size, root) from one signed checkpoint: the RFC path for leaf 0 of
    4 has the same shape as for leaf 0 of 3, so only the root tells the two sizes apart."""
    proof = inclusion_proof(TREE, 0, 4)
    verify_inclusion(LEAVES[0], 0, 3, proof, ROOTS[4])  # shape fits, root is size 4's
    with pytest.raises(ProofError, match="root_mismatch"):
        verify_inclusion(LEAVES[0], 0, 3, proof, ROOTS[3])


def test_inclusion_extra_hash_is_rejected() -> None:
    for i, n in SMALL:
        proof = inclusion_proof(TREE, i, n)
        for extra in ([*proof, ROOTS[n]], [ROOTS[n], *proof], [*proof, LEAVES[i]]):
            with pytest.raises(ProofError) as excinfo:
                verify_inclusion(LEAVES[i], i, n, extra, ROOTS[n])
            assert reason(excinfo) == "proof_too_long"


def test_inclusion_missing_hash_is_rejected() -> None:
    for i, n in SMALL:
        proof = inclusion_proof(TREE, i, n)
        for position in range(len(proof)):
            shorter = proof[:position] + proof[position + 1 :]
            with pytest.raises(ProofError) as excinfo:
                verify_inclusion(LEAVES[i], i, n, shorter, ROOTS[n])
            assert reason(excinfo) == "proof_too_short"


def test_inclusion_any_flipped_bit_is_rejected() -> None:
    """Every bit of every proof hash, of the leaf hash and of the root, for sizes up to 12."""
    for n in range(1, 13):
        for i in range(n):
            proof = inclusion_proof(TREE, i, n)
            for bit in range(256):
                for position in range(len(proof)):
                    bad = list(proof)
                    bad[position] = flip(bad[position], bit)
                    with pytest.raises(ProofError, match="root_mismatch"):
                        verify_inclusion(LEAVES[i], i, n, bad, ROOTS[n])
                with pytest.raises(ProofError, match="root_mismatch"):
                    verify_inclusion(flip(LEAVES[i], bit), i, n, proof, ROOTS[n])
                with pytest.raises(ProofError, match="root_mismatch"):
                    verify_inclusion(LEAVES[i], i, n, proof, flip(ROOTS[n], bit))


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_inclusion_flipped_bit_sampled_up_to_4096(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, BIG), label="size")
    i = data.draw(st.integers(0, n - 1), label="index")
    proof = inclusion_proof(TREE, i, n)
    position = data.draw(st.integers(0, len(proof) - 1), label="element")
    bit = data.draw(st.integers(0, 255), label="bit")
    proof[position] = flip(proof[position], bit)
    with pytest.raises(ProofError, match="root_mismatch"):
        verify_inclusion(LEAVES[i], i, n, proof, ROOTS[n])


def test_inclusion_swapped_neighbouring_hashes_are_rejected() -> None:
    for i, n in SMALL:
        proof = inclusion_proof(TREE, i, n)
        for position in range(len(proof) - 1):
            bad = list(proof)
            bad[position], bad[position + 1] = bad[position + 1], bad[position]
            with pytest.raises(ProofError, match="root_mismatch"):
                verify_inclusion(LEAVES[i], i, n, bad, ROOTS[n])


def test_inclusion_index_at_or_beyond_size_is_rejected() -> None:
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (5, 5)]:
        with pytest.raises(ProofError) as excinfo:
            verify_inclusion(LEAVES[0], index, size, [], ROOTS[1])
        assert reason(excinfo) == "index_out_of_range"
    with pytest.raises(ProofError, match="invalid_size"):
        verify_inclusion(LEAVES[0], -1, 4, inclusion_proof(TREE, 0, 4), ROOTS[4])


def test_inclusion_single_entry_tree() -> None:
    """The leaf hash is the root of a one-leaf tree; the proof is empty."""
    verify_inclusion(LEAVES[0], 0, 1, [], LEAVES[0])
    with pytest.raises(ProofError, match="root_mismatch"):
        verify_inclusion(LEAVES[0], 0, 1, [], EMPTY_ROOT)
    with pytest.raises(ProofError, match="proof_too_long"):
        verify_inclusion(LEAVES[0], 0, 1, [LEAVES[1]], LEAVES[0])


@pytest.mark.parametrize(
    "bad", [b"", b"x" * 31, b"x" * 33, "0" * 32], ids=["empty", "31", "33", "str"]
)
def test_malformed_hashes_are_rejected(bad: bytes) -> None:
    proof = inclusion_proof(TREE, 3, 8)
    with pytest.raises(ProofError, match="malformed_hash"):
        verify_inclusion(bad, 3, 8, proof, ROOTS[8])
    with pytest.raises(ProofError, match="malformed_hash"):
        verify_inclusion(LEAVES[3], 3, 8, proof, bad)
    with pytest.raises(ProofError, match="malformed_hash"):
        verify_inclusion(LEAVES[3], 3, 8, [proof[0], bad, proof[2]], ROOTS[8])
    cproof = consistency_proof(TREE, 3, 8)
    with pytest.raises(ProofError, match="malformed_hash"):
        verify_consistency(3, 8, bad, ROOTS[8], cproof)
    with pytest.raises(ProofError, match="malformed_hash"):
        verify_consistency(3, 8, ROOTS[3], ROOTS[8], [*cproof[:-1], bad])


# -- corrupted consistency proofs ---------------------------------------------------------------

PAIRS = [(m, n) for n in range(2, 41) for m in range(1, n)]
ROOT_MISMATCH = {"old_root_mismatch", "new_root_mismatch"}


def test_consistency_swapped_roots_are_rejected() -> None:
    for m, n in PAIRS:
        proof = consistency_proof(TREE, m, n)
        with pytest.raises(ProofError) as excinfo:
            verify_consistency(m, n, ROOTS[n], ROOTS[m], proof)
        assert reason(excinfo) in ROOT_MISMATCH, (m, n)


def test_consistency_swapped_sizes_are_rejected() -> None:
    for m, n in PAIRS:
        proof = consistency_proof(TREE, m, n)
        with pytest.raises(ProofError, match="old_size_exceeds_new_size"):
            verify_consistency(n, m, ROOTS[n], ROOTS[m], proof)


def test_consistency_extra_hash_is_rejected() -> None:
    for m, n in PAIRS:
        proof = consistency_proof(TREE, m, n)
        for extra in ([*proof, ROOTS[n]], [ROOTS[m], *proof]):
            with pytest.raises(ProofError, match="proof_too_long"):
                verify_consistency(m, n, ROOTS[m], ROOTS[n], extra)


def test_consistency_missing_hash_is_rejected() -> None:
    for m, n in PAIRS:
        proof = consistency_proof(TREE, m, n)
        for position in range(len(proof)):
            shorter = proof[:position] + proof[position + 1 :]
            with pytest.raises(ProofError, match="proof_too_short"):
                verify_consistency(m, n, ROOTS[m], ROOTS[n], shorter)


def test_consistency_any_flipped_bit_is_rejected() -> None:
    for n in range(2, 13):
        for m in range(1, n):
            proof = consistency_proof(TREE, m, n)
            for bit in range(256):
                for position in range(len(proof)):
                    bad = list(proof)
                    bad[position] = flip(bad[position], bit)
                    with pytest.raises(ProofError) as excinfo:
                        verify_consistency(m, n, ROOTS[m], ROOTS[n], bad)
                    assert reason(excinfo) in ROOT_MISMATCH
                with pytest.raises(ProofError) as excinfo:
                    verify_consistency(m, n, flip(ROOTS[m], bit), ROOTS[n], proof)
                assert reason(excinfo) in ROOT_MISMATCH
                with pytest.raises(ProofError, match="new_root_mismatch"):
                    verify_consistency(m, n, ROOTS[m], flip(ROOTS[n], bit), proof)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_consistency_flipped_bit_sampled_up_to_4096(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, BIG), label="new size")
    m = data.draw(st.integers(1, n - 1), label="old size")
    proof = consistency_proof(TREE, m, n)
    position = data.draw(st.integers(0, len(proof) - 1), label="element")
    proof[position] = flip(proof[position], data.draw(st.integers(0, 255), label="bit"))
    with pytest.raises(ProofError) as excinfo:
        verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
    assert reason(excinfo) in ROOT_MISMATCH


def test_consistency_wrong_sizes_are_rejected() -> None:
    """The proof presented for other sizes, against those sizes' own roots."""
    for m, n in PAIRS:
        proof = consistency_proof(TREE, m, n)
        for m2, n2 in ((m - 1, n), (m + 1, n), (m, n - 1), (m, n + 1)):
            if not 0 < m2 < n2 or (m2, n2) == (m, n):
                continue
            with pytest.raises(ProofError) as excinfo:
                verify_consistency(m2, n2, ROOTS[m2], ROOTS[n2], proof)
            assert reason(excinfo) in ROOT_MISMATCH | {"proof_too_long", "proof_too_short"}


def test_consistency_from_the_empty_tree() -> None:
    for n in range(0, 20):
        verify_consistency(0, n, EMPTY_ROOT, ROOTS[n], [])
    with pytest.raises(ProofError, match="proof_too_long"):
        verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [ROOTS[5]])
    with pytest.raises(ProofError, match="root_mismatch"):
        verify_consistency(0, 5, ROOTS[1], ROOTS[5], [])


def test_consistency_equal_sizes() -> None:
    verify_consistency(7, 7, ROOTS[7], ROOTS[7], [])
    with pytest.raises(ProofError, match="proof_too_long"):
        verify_consistency(7, 7, ROOTS[7], ROOTS[7], [ROOTS[7]])


def test_consistency_empty_proof_for_different_sizes_is_rejected() -> None:
    """RFC 9162 §2.1.4.2 step 1, even when the old size is a power of two."""
    for m, n in [(1, 2), (4, 8), (3, 5)]:
        with pytest.raises(ProofError, match="proof_too_short"):
            verify_consistency(m, n, ROOTS[m], ROOTS[n], [])


def test_negative_sizes_are_rejected() -> None:
    with pytest.raises(ProofError, match="invalid_size"):
        verify_consistency(-1, 4, ROOTS[1], ROOTS[4], [])


# -- split views and rollbacks ------------------------------------------------------------------


def test_two_roots_for_one_size_are_detected() -> None:
    """Two checkpoints claiming the same size with different roots: reported as a split view."""
    forked = MemoryTree([*LEAVES[:9], ref_leaf(b"rewritten"), *LEAVES[10:20]])
    assert forked.root(20) != ROOTS[20]
    with pytest.raises(ProofError, match="same_size_different_roots"):
        verify_consistency(20, 20, ROOTS[20], forked.root(20), [])


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_a_rewritten_prefix_is_never_consistent_with_the_real_log(data: st.DataObject) -> None:
    """An operator who rewrote leaf j of a tree an auditor saw at size m cannot show that view
    consistent with the log at any later size n: neither the honest proof nor the forked tree's
    own proof links the forked old root to the honest new root, or the honest old root to the
    forked new root."""
    n = data.draw(st.integers(2, 600), label="new size")
    m = data.draw(st.integers(1, n - 1), label="old size")
    j = data.draw(st.integers(0, m - 1), label="rewritten leaf")
    forked = MemoryTree([*LEAVES[:j], ref_leaf(b"rewritten"), *LEAVES[j + 1 : n]])
    forked_old, forked_new = forked.root(m), forked.root(n)
    assert forked_old != ROOTS[m]
    honest_proof = consistency_proof(TREE, m, n)
    forked_proof = consistency_proof(forked, m, n)
    for old_root, new_root, proof in (
        (forked_old, ROOTS[n], honest_proof),
        (forked_old, ROOTS[n], forked_proof),
        (ROOTS[m], forked_new, honest_proof),
        (ROOTS[m], forked_new, forked_proof),
    ):
        with pytest.raises(ProofError) as excinfo:
            verify_consistency(m, n, old_root, new_root, proof)
        assert reason(excinfo) in ROOT_MISMATCH
    verify_consistency(m, n, forked_old, forked_new, forked_proof)  # the fork is self-consistent


def test_rollback_below_a_seen_size_is_detected() -> None:
    """An auditor kept size 100; the log now claims 60 (truncated) or 100 with another root."""
    with pytest.raises(ProofError, match="old_size_exceeds_new_size"):
        verify_consistency(100, 60, ROOTS[100], ROOTS[60], consistency_proof(TREE, 60, 100))
    truncated_and_regrown = MemoryTree([*LEAVES[:60], *(ref_leaf(b"%d" % i) for i in range(60))])
    with pytest.raises(ProofError) as excinfo:
        verify_consistency(
            100,
            120,
            ROOTS[100],
            truncated_and_regrown.root(120),
            consistency_proof(truncated_and_regrown, 100, 120),
        )
    assert reason(excinfo) in ROOT_MISMATCH


# -- the accumulator ----------------------------------------------------------------------------


def test_accumulator_root_equals_root_at_every_size_up_to_4096() -> None:
    accumulator = MerkleAccumulator()
    assert accumulator.root() == EMPTY_ROOT
    for size, leaf in enumerate(LEAVES, start=1):
        accumulator.append(leaf)
        assert accumulator.size == size
        assert len(accumulator.frontier) == size.bit_count()
        assert accumulator.root() == ROOTS[size], size


def test_accumulator_resumes_from_a_stored_frontier() -> None:
    accumulator = MerkleAccumulator()
    accumulator.extend(LEAVES[:1234])
    resumed = MerkleAccumulator.from_frontier(1234, accumulator.frontier)
    snapshot = accumulator.copy()
    resumed.extend(LEAVES[1234:3000])
    assert resumed.root() == ROOTS[3000]
    assert snapshot.root() == ROOTS[1234]
    with pytest.raises(ValueError):
        MerkleAccumulator.from_frontier(1234, accumulator.frontier[1:])
    with pytest.raises(ValueError):
        MerkleAccumulator.from_frontier(3, [b"x" * 31, b"y" * 32])


def test_frontier_is_the_perfect_subtrees_largest_first() -> None:
    accumulator = MerkleAccumulator()
    accumulator.extend(LEAVES[:13])  # 13 = 8 + 4 + 1
    assert accumulator.frontier == (
        TREE.hash_range(0, 8),
        TREE.hash_range(8, 12),
        TREE.hash_range(12, 13),
    )


# -- generation arguments and the in-memory tree -------------------------------------------------


def test_generation_rejects_impossible_requests() -> None:
    with pytest.raises(ValueError):
        inclusion_proof(TREE, 5, 5)
    with pytest.raises(ValueError):
        inclusion_proof(TREE, -1, 5)
    with pytest.raises(ValueError):
        inclusion_proof(LEAVES[:10], 3, 11)
    with pytest.raises(ValueError):
        consistency_proof(TREE, 6, 5)
    with pytest.raises(ValueError):
        inclusion_proof(TREE, 0, BIG + 1)
    with pytest.raises(ValueError):
        TREE.hash_range(3, 3)
    with pytest.raises(ValueError):
        TREE.leaf(BIG)


def test_memory_tree_rejects_malformed_leaf_hashes() -> None:
    with pytest.raises(ValueError):
        MemoryTree([b"short"])
    with pytest.raises(ValueError):
        MerkleAccumulator().append(b"x" * 33)


def test_memory_tree_answers_any_range_and_keeps_leaves() -> None:
    tree = MemoryTree(LEAVES[:100])
    assert tree.size == 100
    assert tree.leaf(42) == LEAVES[42]
    for start, end in [(0, 100), (3, 17), (64, 100), (99, 100), (5, 6)]:
        assert tree.hash_range(start, end) == ref_mth(LEAVES[start:end])
