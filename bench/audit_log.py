"""Audit log in storage: append throughput, time to checkpoint, proofs from storage, and what
auditing costs the token endpoint.

Run by hand from the repository root, never in CI (about 8 minutes with the defaults;
``--cap 15`` for about 6)::

    .venv/bin/python bench/audit_log.py
    .venv/bin/python bench/audit_log.py --backends sqlite --single 10000 --batched 10000,100000

Each backend (SQLite in a temporary file, WAL + ``synchronous=FULL`` exactly as
``trustanchor.storage.database.Database`` configures it; PostgreSQL at ``--postgres`` when it
answers, in a temporary schema dropped afterwards) gets a fresh service set-up made by
``trustanchor.bootstrap.initialise`` (demo config, signing and audit keys, schema, one
client_credentials client), and then, in this order:

1. **append**: ``audit_trail.record`` of realistic ``TokenIssued`` entries (the product path:
   canonical JSON, leaf hash, one INSERT), one transaction per append (as the token endpoint
   commits) for each ``--single`` N, then 1000 appends per transaction for each ``--batched`` N.
   Every measurement has a time cap (``--cap``); when it is hit, the rate is over what was done
   and the rest of N is filled by a bulk insert so the next backlog keeps its size.
2. **integrate**: after each append run, its backlog is integrated by ``audit_tree.integrate_once``
   with the configured ``batch_size`` (per-batch median / max and total).
3. **append → checkpoint latency**: ``AuditIntegrator`` at the configured interval (500 ms)
   runs while appends are made at ``--latency-rate`` per second for ``--latency-seconds``; for
   every ``--latency-every``-th append, the time from its commit to the commit of the first
   checkpoint that covers it (taken from a wrapper around ``AuditLog.integrate`` in this process).
4. **proofs** at the size of the first checkpoint ≥ 10^6 (the backlog of 10^6 ends there) and
   at the latest: ``AuditLog.inclusion_proof`` / ``consistency_proof`` from storage (each call a
   fresh ``StoredTree``: no cache), verified with ``merkle.verify_inclusion`` /
   ``verify_consistency``.
5. **token endpoint**: ``services.token.token`` for client_credentials called directly (no WSGI,
   so the ratio is not diluted by per-request framework work), in alternating rounds with the
   audit append as it is and with ``audit_trail.record`` replaced by a no-op in this process;
   the background integrator runs in both.

The process pins itself to one CPU (``--cpu``); PostgreSQL's server processes are not ours and
run where the kernel puts them. Progress goes to stderr, the Markdown tables and notes to stdout.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _environment import cpu_model, git_state, pin_cpu

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from trustanchor.audit.entries import Entry, TokenIssued  # noqa: E402
from trustanchor.audit.merkle import leaf_hash, verify_consistency, verify_inclusion  # noqa: E402
from trustanchor.bootstrap import initialise  # noqa: E402
from trustanchor.config.loader import load_settings  # noqa: E402
from trustanchor.digests import keyed_digest  # noqa: E402
from trustanchor.domain.identity import Authentication  # noqa: E402
from trustanchor.services import audit_trail  # noqa: E402
from trustanchor.services import token as token_service  # noqa: E402
from trustanchor.services.audit_log import AuditIntegrator, AuditLog  # noqa: E402
from trustanchor.services.container import Services, build_services  # noqa: E402
from trustanchor.storage import audit_repo, audit_tree  # noqa: E402
from trustanchor.storage.database import Database  # noqa: E402
from trustanchor.storage.tables import audit_checkpoints, audit_leaves  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLIENT_ID = "bench-client"
SCOPE = "api:read"
BATCH = 1000


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- set-up -------------------------------------------------------------------------------------


@contextmanager
def postgres_schema(base: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped afterwards."""
    schema = "ta_bench_" + secrets.token_hex(6)
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def postgres_reachable(base: str) -> str | None:
    try:
        engine = create_engine(base, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:  # any failure means "not reachable here"
        return exc.__class__.__name__
    return None


def make_services(workdir: Path, database_url: str, secret: str) -> Services:
    """A demo-mode configuration made by trustanchor's own bootstrap, then the services."""
    workdir.mkdir(parents=True)
    config = workdir / "bench.toml"
    config.write_text(
        "\n".join(
            [
                "[service]",
                'mode = "demo"',
                'issuer = "http://127.0.0.1:8080"',
                f"database_url = {json.dumps(database_url)}",
                f"keys_dir = {json.dumps(str(workdir / 'keys'))}",
                "",
                "[tokens]",
                'signing_alg = "ES256"',
                "",
                "[[clients]]",
                f"client_id = {json.dumps(CLIENT_ID)}",
                'client_type = "confidential"',
                'token_endpoint_auth_method = "client_secret_basic"',
                f"client_secret = {json.dumps(secret)}",
                'grant_types = ["client_credentials"]',
                f"scope = {json.dumps(SCOPE)}",
                'audiences = ["https://rs.bench.invalid"]',
                "",
            ]
        ),
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    db = Database(settings.service.database_url)
    try:
        initialise(settings, db, now=int(time.time()), generate_keys=True)
    finally:
        db.dispose()
    return build_services(settings)


class EntryMaker:
    """Realistic TokenIssued entries: two in three for a user grant (pairwise sub, anchor, acr,
    authorization_details digest), one in three client_credentials (no subject)."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._key = secrets.token_bytes(32)
        self._auth = Authentication(
            holder_id="h",
            identity_id="i",
            anchor_id="wallet-pid-eu",
            acr="urn:eudi:loa:high",
            amr=("hwk", "pin"),
            auth_time=0,
            trust_framework="eidas",
        )
        self._details = [{"type": "payment_initiation", "instructedAmount": {"amount": "12.00"}}]

    def __call__(self, at: int) -> TokenIssued:
        jti = secrets.token_urlsafe(16)
        if self._rng.random() < 1 / 3:
            return audit_trail.token_issued(
                at=at, kind="access_token", jti=jti, client_id=CLIENT_ID, sub=None,
                scope=[SCOPE], exp=at + 300,
            )  # fmt: skip
        sub = keyed_digest(self._key, "sub", str(self._rng.randrange(100_000)))
        return audit_trail.token_issued(
            at=at, kind="access_token", jti=jti, client_id=f"merchant-{self._rng.randrange(50)}",
            sub=sub, scope=["openid", "payments"], authorization_details=self._details,
            authentication=self._auth, exp=at + 300,
        )  # fmt: skip


# -- measurements -------------------------------------------------------------------------------


@dataclass
class AppendResult:
    mode: str  # "1 per tx" or "1000 per tx"
    target: int
    done: int
    seconds: float
    filled: int = 0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


@dataclass
class IntegrateResult:
    backlog: int
    batch_size: int
    batch_seconds: list[float]
    tree_size: int

    @property
    def total(self) -> float:
        return sum(self.batch_seconds)


@dataclass
class ProofResult:
    size: int
    inclusion_hashes: int
    consistency_hashes: int
    gen_inclusion_ms: float
    gen_inclusion_p99_ms: float
    gen_consistency_ms: float
    verify_inclusion_us: float
    verify_consistency_us: float


@dataclass
class BackendResult:
    name: str
    appends: list[AppendResult] = field(default_factory=list)
    integrations: list[IntegrateResult] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    latency_appends: int = 0
    latency_seconds: float = 0.0
    latency_checkpoints: int = 0
    interval_ms: int = 0
    proofs: list[ProofResult] = field(default_factory=list)
    token_audited: list[float] = field(default_factory=list)
    token_noop: list[float] = field(default_factory=list)
    leaves: int = 0


def append_run(
    db: Database, make: EntryMaker, target: int, per_tx: int, cap: float
) -> AppendResult:
    """``target`` appends through ``audit_trail.record``, ``per_tx`` per transaction, until done
    or ``cap`` seconds; the rest is filled by a bulk insert (not timed)."""
    done = 0
    start = time.perf_counter()
    deadline = start + cap
    while done < target and time.perf_counter() < deadline:
        n = min(per_tx, target - done)
        at = int(time.time())
        with db.transaction() as conn:
            for _ in range(n):
                audit_trail.record(conn, make(at))
        done += n
    seconds = time.perf_counter() - start
    filled = target - done
    if filled:
        bulk_fill(db, make, filled)
    return AppendResult(f"{per_tx} per tx", target, done, seconds, filled)


def bulk_fill(db: Database, make: EntryMaker, count: int) -> None:
    """The same rows ``audit_repo.append`` writes, inserted with executemany (not measured)."""
    progress(f"    filling {count:,} leaves in bulk")
    at = int(time.time())
    while count:
        n = min(10_000, count)
        rows = []
        for _ in range(n):
            entry = make(at)
            canonical = entry.to_canonical()
            rows.append(
                {
                    "entry": canonical.decode("utf-8"),
                    "leaf_hash": leaf_hash(canonical).hex(),
                    "kind": entry.KIND,
                    "ref": audit_repo.reference(entry),
                    "created_at": at,
                }
            )
        with db.transaction() as conn:
            conn.execute(insert(audit_leaves), rows)
        count -= n


def integrate_backlog(services: Services, backlog: int) -> IntegrateResult:
    batch_size = services.settings.audit.batch_size
    times: list[float] = []
    size = 0
    while True:
        start = time.perf_counter()
        done = audit_tree.integrate_once(
            services.db, services.audit_key, now=int(time.time()), batch_size=batch_size
        )
        elapsed = time.perf_counter() - start
        if done is None:
            break
        times.append(elapsed)
        size = done.size
    return IntegrateResult(backlog, batch_size, times, size)


class TimedAuditLog(AuditLog):
    """``AuditLog`` that notes when each integration committed and the size it reached."""

    def __init__(self, base: AuditLog, services: Services) -> None:
        super().__init__(
            services.db, services.audit_key, services.clock, batch_size=base.batch_size
        )
        self.commits: list[tuple[float, int]] = []

    def integrate(self) -> audit_tree.Integration | None:
        done = super().integrate()
        if done is not None:
            self.commits.append((time.perf_counter(), done.checkpoint.size))
        return done


def checkpoint_latency(
    services: Services, make: EntryMaker, rate: float, seconds: float, every: int
) -> tuple[list[float], int, float, int]:
    """Appends (one per transaction) at ``rate``/s with the background integrator running;
    the commit → covered-by-checkpoint time of every ``every``-th append, in ms."""
    timed = TimedAuditLog(services.audit, services)
    integrator = AuditIntegrator(timed, interval_ms=services.settings.audit.checkpoint_interval_ms)
    integrator.start()
    sampled: list[tuple[str, float]] = []
    n = 0
    start = time.perf_counter()
    try:
        while (now := time.perf_counter()) - start < seconds:
            due = start + n / rate
            if due > now:
                time.sleep(due - now)
            entry = make(int(time.time()))
            with services.db.transaction() as conn:
                audit_trail.record(conn, entry)
            n += 1
            if n % every == 0:
                sampled.append((entry.jti, time.perf_counter()))
        elapsed = time.perf_counter() - start
        wait_until = time.perf_counter() + 10
        last_ref = sampled[-1][0] if sampled else None
        while last_ref is not None and time.perf_counter() < wait_until:
            if covered_index(services, last_ref) is not None:
                break
            time.sleep(0.05)
    finally:
        integrator.stop()
    latencies: list[float] = []
    commits = list(timed.commits)
    for ref, committed in sampled:
        index = covered_index(services, ref)
        if index is None:
            continue
        covered = next((t for t, size in commits if size > index), None)
        if covered is not None:
            latencies.append((covered - committed) * 1000)
    return latencies, n, elapsed, len(commits)


def covered_index(services: Services, ref: str) -> int | None:
    with services.db.reader() as conn:
        row = conn.execute(
            select(audit_leaves.c.tree_index).where(audit_leaves.c.ref == ref)
        ).first()
    return None if row is None or row.tree_index is None else int(row.tree_index)


def proofs_at(services: Services, size: int, samples: int, rng: random.Random) -> ProofResult:
    audit = services.audit
    root = audit.checkpoint(size).checkpoint.root_hash
    gen_i: list[float] = []
    gen_c: list[float] = []
    ver_i: list[float] = []
    ver_c: list[float] = []
    inc_max = con_max = 0
    for _ in range(samples):
        index = rng.randrange(size)
        [entry] = audit.entries(index, index + 1)
        t0 = time.perf_counter()
        proof = audit.inclusion_proof(index, size)
        gen_i.append(time.perf_counter() - t0)
        t0 = time.perf_counter_ns()
        for _ in range(20):
            verify_inclusion(entry.leaf_hash, index, size, proof, root)
        ver_i.append((time.perf_counter_ns() - t0) / 20 / 1000)
        inc_max = max(inc_max, len(proof))
    with services.db.reader() as conn:
        old_sizes = [
            int(s)
            for s in conn.execute(
                select(audit_checkpoints.c.size).where(audit_checkpoints.c.size < size)
            ).scalars()
        ]
    for _ in range(min(samples, len(old_sizes))):
        old = rng.choice(old_sizes)
        old_root = audit.checkpoint(old).checkpoint.root_hash
        t0 = time.perf_counter()
        cproof = audit.consistency_proof(old, size)
        gen_c.append(time.perf_counter() - t0)
        t0 = time.perf_counter_ns()
        for _ in range(20):
            verify_consistency(old, size, old_root, root, cproof)
        ver_c.append((time.perf_counter_ns() - t0) / 20 / 1000)
        con_max = max(con_max, len(cproof))
    return ProofResult(
        size=size,
        inclusion_hashes=inc_max,
        consistency_hashes=con_max,
        gen_inclusion_ms=statistics.median(gen_i) * 1000,
        gen_inclusion_p99_ms=percentile(gen_i, 99) * 1000,
        gen_consistency_ms=statistics.median(gen_c) * 1000 if gen_c else math.nan,
        verify_inclusion_us=statistics.median(ver_i),
        verify_consistency_us=statistics.median(ver_c) if ver_c else math.nan,
    )


@contextmanager
def audit_record_replaced(replacement: Callable[[Any, Entry], None] | None) -> Iterator[None]:
    """Replace ``audit_trail.record`` in this process only (None: leave it as it is)."""
    original = audit_trail.record
    if replacement is not None:
        audit_trail.record = replacement  # type: ignore[assignment]
    try:
        yield
    finally:
        audit_trail.record = original


def _no_op(_conn: Any, _entry: Entry) -> None:
    return None


def token_rounds(
    services: Services, secret: str, rounds: int, seconds: float
) -> tuple[list[float], list[float]]:
    """Token requests per second, direct calls, alternating audited / no-op rounds."""
    basic = "Basic " + base64.b64encode(f"{CLIENT_ID}:{secret}".encode()).decode("ascii")
    form = {"grant_type": ["client_credentials"], "scope": [SCOPE]}

    def run(duration: float) -> float:
        n = 0
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < duration:
            response = token_service.token(services, form, authorization=basic, dpop_headers=[])
            assert "access_token" in response.body
            n += 1
        return n / elapsed

    integrator = AuditIntegrator(
        services.audit, interval_ms=services.settings.audit.checkpoint_interval_ms
    )
    integrator.start()
    audited: list[float] = []
    noop: list[float] = []
    try:
        run(1.0)  # warm-up: caches, pool, code paths
        for i in range(rounds):
            order: list[tuple[list[float], Callable[[Any, Entry], None] | None]] = [
                (audited, None),
                (noop, _no_op),
            ]
            if i % 2:
                order.reverse()
            for sink, replacement in order:
                with audit_record_replaced(replacement):
                    sink.append(run(seconds))
    finally:
        integrator.stop()
    return audited, noop


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    k = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


# -- one backend ------------------------------------------------------------------------------


def run_backend(name: str, url: str, workdir: Path, args: argparse.Namespace) -> BackendResult:
    result = BackendResult(name)
    secret = secrets.token_urlsafe(24)
    services = make_services(workdir, url, secret)
    rng = random.Random(args.seed)
    make = EntryMaker(rng)
    try:
        runs = [(n, 1) for n in args.single] + [(n, BATCH) for n in args.batched]
        for target, per_tx in runs:
            progress(f"[{name}] append {target:,}, {per_tx} per transaction")
            appended = append_run(services.db, make, target, per_tx, args.cap)
            result.appends.append(appended)
            progress(f"    {appended.done:,} in {appended.seconds:.1f} s = {appended.rate:,.0f}/s")
            progress(f"[{name}] integrate backlog of {target:,}")
            integrated = integrate_backlog(services, target)
            result.integrations.append(integrated)
            progress(f"    {len(integrated.batch_seconds)} batches, {integrated.total:.2f} s")

        progress(f"[{name}] append → checkpoint latency, {args.latency_seconds} s")
        lat, n, elapsed, commits = checkpoint_latency(
            services, make, args.latency_rate, args.latency_seconds, args.latency_every
        )
        result.latency_ms, result.latency_appends = lat, n
        result.latency_seconds, result.latency_checkpoints = elapsed, commits
        result.interval_ms = services.settings.audit.checkpoint_interval_ms
        services.audit.integrate_pending()

        with services.db.reader() as conn:
            sizes = sorted(int(s) for s in conn.execute(select(audit_checkpoints.c.size)).scalars())
            result.leaves = int(
                conn.execute(select(func.count()).select_from(audit_leaves)).scalar_one()
            )
        million = next((s for s in sizes if s >= 10**6), None)
        for size in sorted({s for s in (million, sizes[-1]) if s is not None}):
            progress(f"[{name}] proofs at {size:,}")
            result.proofs.append(proofs_at(services, size, args.proof_samples, rng))

        progress(f"[{name}] token endpoint, {args.token_rounds} × {args.token_seconds} s each")
        result.token_audited, result.token_noop = token_rounds(
            services, secret, args.token_rounds, args.token_seconds
        )
    finally:
        services.db.dispose()
    return result


# -- report -------------------------------------------------------------------------------------


def report(results: Sequence[BackendResult], args: argparse.Namespace, notes: list[str]) -> None:
    print("### Append throughput (`audit_trail.record`, TokenIssued entries)\n")
    print("| backend | appends per transaction | N | appended in cap | seconds | appends/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        for a in r.appends:
            cut = f" (cap hit; {a.filled:,} filled)" if a.filled else ""
            print(
                f"| {r.name} | {a.mode.split()[0]} | {a.target:,} | {a.done:,}{cut} "
                f"| {a.seconds:.1f} | {a.rate:,.0f} |"
            )
    print("\n### Integrating a backlog (`audit_tree.integrate_once`)\n")
    print(
        "| backend | backlog | batch_size | batches | per batch s (median / max) "
        "| total s | leaves/s | tree size after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for i in r.integrations:
            b = i.batch_seconds
            print(
                f"| {r.name} | {i.backlog:,} | {i.batch_size:,} | {len(b)} "
                f"| {statistics.median(b):.3f} / {max(b):.3f} | {i.total:.2f} "
                f"| {i.backlog / i.total:,.0f} | {i.tree_size:,} |"
            )
    print("\n### Append → covered by a signed checkpoint (background integrator)\n")
    print(
        "| backend | interval ms | appends (rate/s) | checkpoints | samples "
        "| median ms | p99 ms | max ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        lat = r.latency_ms
        print(
            f"| {r.name} | {r.interval_ms} | {r.latency_appends:,} "
            f"({r.latency_appends / r.latency_seconds:,.0f}) | {r.latency_checkpoints} "
            f"| {len(lat)} | {statistics.median(lat):.0f} | {percentile(lat, 99):.0f} "
            f"| {max(lat):.0f} |"
        )
    print("\n### Proofs from storage (`AuditLog.inclusion_proof` / `consistency_proof`)\n")
    print(
        "| backend | tree size | inclusion hashes (max / ⌈log2 n⌉) | consistency hashes (max) "
        "| generate inclusion ms (median / p99) | generate consistency ms (median) "
        "| verify inclusion µs | verify consistency µs |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        for p in r.proofs:
            print(
                f"| {r.name} | {p.size:,} | {p.inclusion_hashes} / {math.ceil(math.log2(p.size))} "
                f"| {p.consistency_hashes} | {p.gen_inclusion_ms:.2f} / "
                f"{p.gen_inclusion_p99_ms:.2f} | {p.gen_consistency_ms:.2f} "
                f"| {p.verify_inclusion_us:.1f} | {p.verify_consistency_us:.1f} |"
            )
    print("\n### Token endpoint, client_credentials, direct call of `services.token.token`\n")
    print("| backend | audited req/s (median; runs) | no-op record req/s (median; runs) | ratio |")
    print("|---|---:|---:|---:|")
    for r in results:
        on, off = statistics.median(r.token_audited), statistics.median(r.token_noop)
        print(
            f"| {r.name} | {on:,.0f} ({', '.join(f'{x:,.0f}' for x in r.token_audited)}) "
            f"| {off:,.0f} ({', '.join(f'{x:,.0f}' for x in r.token_noop)}) "
            f"| {on / off:.2f} |"
        )
    print()
    for note in notes:
        print(f"- {note}")
    for r in results:
        print(f"- {r.name}: {r.leaves:,} leaves stored at the end, all integrated")


def sizes(value: str) -> list[int]:
    return [int(s) for s in value.split(",") if s]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=POSTGRES_URL, help="base URL (a schema is made)")
    parser.add_argument("--single", type=sizes, default=[10**4, 10**5], help="N, 1 per tx")
    parser.add_argument(
        "--batched", type=sizes, default=[10**4, 10**5, 10**6], help="N, 1000 per tx"
    )
    parser.add_argument("--cap", type=float, default=30.0, help="seconds per append run at most")
    parser.add_argument("--latency-rate", type=float, default=1000.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--latency-every", type=int, default=25)
    parser.add_argument("--proof-samples", type=int, default=200)
    parser.add_argument("--token-rounds", type=int, default=3)
    parser.add_argument("--token-seconds", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    args = parser.parse_args()

    pinned = pin_cpu(args.cpu)

    began = time.perf_counter()
    results: list[BackendResult] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ta-bench-audit-") as tmp:
        for backend in args.backends.split(","):
            if backend == "sqlite":
                url = f"sqlite:///{Path(tmp) / 'sqlite' / 'trustanchor.db'}"
                results.append(run_backend("SQLite", url, Path(tmp) / "sqlite", args))
            elif backend == "postgresql":
                reason = postgres_reachable(args.postgres)
                if reason:
                    notes.append(f"PostgreSQL skipped: not reachable ({reason})")
                    continue
                with postgres_schema(args.postgres) as url:
                    results.append(run_backend("PostgreSQL", url, Path(tmp) / "pg", args))
            else:
                parser.error(f"unknown backend {backend}")
    took = time.perf_counter() - began
    notes[:0] = [
        f"trustanchor source: {git_state()}",
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, host CPU: {cpu_model()}, "
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}; process {pinned}; "
        "PostgreSQL server processes not pinned",
        f"Python {platform.python_version()}; whole run {took:.0f} s; append cap {args.cap:.0f} s "
        f"per run; SQLite WAL synchronous=FULL (Database's settings)",
        f"latency: appends one per transaction at up to {args.latency_rate:.0f}/s for "
        f"{args.latency_seconds:.0f} s, every {args.latency_every}th sampled; integrator in this "
        "process (same core)",
        f"proofs: {args.proof_samples} random leaves / older checkpoint sizes; each generation "
        "is a fresh StoredTree (database round trips, no cache); verification mean of 20 calls",
        f"token endpoint: {args.token_rounds} rounds × {args.token_seconds:.0f} s per variant, "
        "alternating order; background integrator running in both",
    ]
    report(results, args, notes)


if __name__ == "__main__":
    main()
