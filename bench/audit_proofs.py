"""Audit-log Merkle proofs (trustanchor.audit.merkle): build time, proof size, verification time.

What is measured, for each tree size n (default 10^4, 10^5, 10^6 and 2^20, the size at which
PERFORMANCE.md states the RFC 9162 inclusion-verification bound of ≈ 6 µs):

* build: appending n leaf hashes to a ``MerkleAccumulator`` (O(log n) memory; what the batch
  integrator and ``audit replay`` do) and to a ``MemoryTree`` (keeps every perfect subtree; the
  reference ``HashSource``), as total seconds and appends per second. Leaf hashes are computed
  beforehand and not counted;
* proof size in hashes over a sample of leaves / old sizes (largest seen, and ⌈log2 n⌉);
* median time to generate an inclusion proof from the ``MemoryTree``;
* median time to verify an inclusion proof and a consistency proof (each sampled proof is
  verified ``--repeat`` times and the mean taken; the table gives the median over the sample).

Also printed: the cost of one bare ``node_hash`` on this interpreter, which times the number of
hashes in a proof is the floor for pure-Python verification.

Run by hand from the repository root (about 15 s with the defaults)::

    .venv/bin/python bench/audit_proofs.py
    .venv/bin/python bench/audit_proofs.py --sizes 10000,100000 --samples 500

Progress goes to stderr; the Markdown table and notes go to stdout. The process pins itself to
one CPU (``--cpu``, default the last one) when the platform allows it.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _environment import cpu_model, git_state, pin_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from trustanchor.audit.merkle import (  # noqa: E402
    MemoryTree,
    MerkleAccumulator,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    verify_consistency,
    verify_inclusion,
)

DEFAULT_SIZES = (10**4, 10**5, 10**6, 2**20)


@dataclass(frozen=True)
class Row:
    size: int
    accumulator_s: float
    memory_tree_s: float
    inclusion_hashes: int
    consistency_hashes: int
    generate_us: float
    verify_inclusion_us: float
    verify_inclusion_p90_us: float
    verify_consistency_us: float
    verify_consistency_p90_us: float


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def per_call_us(repeat: int, call: Callable[..., object], *args: object) -> float:
    start = time.perf_counter_ns()
    for _ in range(repeat):
        call(*args)
    return (time.perf_counter_ns() - start) / repeat / 1000


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


def measure(size: int, samples: int, repeat: int, rng: random.Random) -> Row:
    progress(f"n = {size:,}: hashing leaves")
    leaves = [leaf_hash(b"entry %d" % i) for i in range(size)]

    progress(f"n = {size:,}: building")
    start = time.perf_counter()
    accumulator = MerkleAccumulator()
    for leaf in leaves:
        accumulator.append(leaf)
    accumulator_s = time.perf_counter() - start
    start = time.perf_counter()
    tree = MemoryTree()
    for leaf in leaves:
        tree.append(leaf)
    memory_tree_s = time.perf_counter() - start
    root = tree.root()
    assert root == accumulator.root()

    progress(f"n = {size:,}: proofs over {samples} samples")
    indices = [rng.randrange(size) for _ in range(samples)]
    old_sizes = [rng.randrange(1, size) for _ in range(samples)]
    inclusion_hashes = consistency_hashes = 0
    generate, verify_i, verify_c = [], [], []
    for index, old_size in zip(indices, old_sizes, strict=True):
        generate.append(per_call_us(repeat, inclusion_proof, tree, index, size))
        proof = inclusion_proof(tree, index, size)
        leaf = leaves[index]
        verify_inclusion(leaf, index, size, proof, root)
        verify_i.append(per_call_us(repeat, verify_inclusion, leaf, index, size, proof, root))
        cproof = consistency_proof(tree, old_size, size)
        old_root = tree.root(old_size)
        verify_consistency(old_size, size, old_root, root, cproof)
        verify_c.append(
            per_call_us(repeat, verify_consistency, old_size, size, old_root, root, cproof)
        )
        inclusion_hashes = max(inclusion_hashes, len(proof))
        consistency_hashes = max(consistency_hashes, len(cproof))
    return Row(
        size=size,
        accumulator_s=accumulator_s,
        memory_tree_s=memory_tree_s,
        inclusion_hashes=inclusion_hashes,
        consistency_hashes=consistency_hashes,
        generate_us=statistics.median(generate),
        verify_inclusion_us=statistics.median(verify_i),
        verify_inclusion_p90_us=p90(verify_i),
        verify_consistency_us=statistics.median(verify_c),
        verify_consistency_p90_us=p90(verify_c),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="comma-separated tree sizes (default: %(default)s)",
    )
    parser.add_argument("--samples", type=int, default=500, help="proofs per size")
    parser.add_argument("--repeat", type=int, default=100, help="verifications per proof")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    pinned = pin_cpu(args.cpu)

    left, right = leaf_hash(b"left"), leaf_hash(b"right")
    node_us = min(per_call_us(200_000, node_hash, left, right) for _ in range(3))

    began = time.perf_counter()
    rng = random.Random(args.seed)
    rows = [measure(size, args.samples, args.repeat, rng) for size in sizes]
    took = time.perf_counter() - began

    print(
        "| n | build: accumulator s (appends/s) | build: MemoryTree s (appends/s) "
        "| inclusion proof hashes (max / ⌈log2 n⌉) | consistency proof hashes (max) "
        "| generate inclusion µs | verify inclusion µs (median / p90) "
        "| verify consistency µs (median / p90) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row.size:,} "
            f"| {row.accumulator_s:.2f} ({row.size / row.accumulator_s:,.0f}) "
            f"| {row.memory_tree_s:.2f} ({row.size / row.memory_tree_s:,.0f}) "
            f"| {row.inclusion_hashes} / {math.ceil(math.log2(row.size))} "
            f"| {row.consistency_hashes} "
            f"| {row.generate_us:.1f} "
            f"| {row.verify_inclusion_us:.1f} / {row.verify_inclusion_p90_us:.1f} "
            f"| {row.verify_consistency_us:.1f} / {row.verify_consistency_p90_us:.1f} |"
        )
    print()
    print(f"- trustanchor source: {git_state()}")
    print(
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, host CPU: {cpu_model()}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}; process {pinned}"
    )
    print(
        f"- Python {platform.python_version()}, {sys.implementation.name}; "
        f"OpenSSL via hashlib; whole run {took:.0f} s"
    )
    print(
        f"- {args.samples} random leaves and old sizes per n (seed {args.seed}); each proof "
        f"verified {args.repeat} times, mean per call; medians and p90 over the samples"
    )
    print(
        f"- one bare node_hash (SHA-256 over 65 bytes, Python call included): {node_us:.2f} µs, "
        f"so a 20-hash proof costs at least {20 * node_us:.1f} µs of hashing alone"
    )


if __name__ == "__main__":
    main()
