"""Storage and latency as the audit log and the token tables grow (issue 13, "Scale").

Run by hand from the repository root, never in CI::

    .venv/bin/python bench/growth.py                                   # 10^4, 10^5, 10^6 on SQLite
    .venv/bin/python bench/growth.py --sizes 10000,100000 --iterations 300
    .venv/bin/python bench/growth.py --database postgresql://127.0.0.1:5432/test
    .venv/bin/python bench/growth.py --ten-million                     # adds 10^7: hours

A fresh database of its own: SQLite in a temporary directory (WAL, ``synchronous=FULL``, as
``trustanchor.storage.database.Database`` configures it), or with ``--database
postgresql://host:port/...`` a dedicated database ``trustanchor_growth_<pid>`` on that server
(created through the ``postgres`` database, dropped at the end; the user defaults to
``postgres``). The schema, keys and one client come from ``trustanchor.bootstrap.initialise``,
as ``trustanchor init`` makes them.

**Filling** (not through HTTP, not timed as issuance). Issued access tokens are numbered k = 0,
1, … and spread over simulated time at ``--per-day`` tokens a day (created_at = start + k days /
per-day), so older rows really are expired when ``purge`` runs. One in three is a
client_credentials token; the others come from a person's grants, ``--tokens-per-grant`` access
tokens per grant (a code exchange, then refreshes). Per token, the rows the service writes:

- ``access_tokens`` (``grants_repo.record_access_token``'s row; lifetime from the settings) and
  its ``TokenIssued`` audit leaf (``audit_trail.token_issued``);
- one ``used_jtis`` row (namespace ``dpop``, expiring 300 s later: a DPoP proof or assertion);
- a person's token also: ``refresh_tokens`` row (the previous one consumed: rotation) and its
  ``refresh_rotation`` audit leaf; per grant one ``grants`` row, one ``grant_anchors`` row and a
  consumed ``authorization_codes`` row.

Rows go in by ``executemany`` in batches of ``--batch``; audit leaves are exactly the rows
``audit_repo.append`` writes (canonical JSON, leaf hash, kind, ref). Then the service's own
integrator (``audit_tree.integrate_once``, with a batch of ``--integrate-batch`` leaves instead
of the configured 2,000: fewer checkpoints, the same ``audit_nodes`` and leaf indexes) builds the
Merkle tree, so proofs come from a real stored tree.

**Measured at each size**, on the simulated clock of the last token:

- **size**: SQLite: database + WAL file after ``wal_checkpoint(TRUNCATE)``, and the share of
  free pages; PostgreSQL: ``pg_database_size``. Per table: ``dbstat`` (SQLite, when compiled in)
  or ``pg_total_relation_size``;
- **issue**: the token endpoint's storage work for one client_credentials issuance, one
  transaction each as the endpoint commits: ``grants_repo.record_access_token`` +
  ``audit_trail.record`` of its ``TokenIssued`` entry (what ``services/grants/issuing.py`` runs);
  ``--iterations`` times, median and p99;
- **introspect**: ``grants_repo.access_token_active`` in a ``db.reader()`` for random tokens still
  in the table, median and p99;
- **proof**: ``AuditLog.inclusion_proof`` of a random leaf at the latest checkpoint (each call a
  fresh ``StoredTree``, no cache), checked with ``merkle.verify_inclusion`` (not timed);
- **purge**: ``trustanchor.storage.expiry.purge`` (what ``trustanchor purge`` runs, default
  retention one day) at the simulated now: seconds, rows deleted per table, size afterwards.
  Purging happens at every size (``--no-purge``: never), so the token tables stay bounded by the
  retention while the audit log and ``grants`` (never purged) keep growing. Neither SQLite nor
  PostgreSQL gives freed space back to the file system without ``VACUUM`` (FULL): freed pages are
  reused by later rows, which the "free" column shows for SQLite.

The process pins itself to one CPU (``--cpu``). Progress goes to stderr, the Markdown tables and
notes to stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import platform
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _environment import cpu_model, git_state, pin_cpu
from audit_log import CLIENT_ID, SCOPE, make_services, percentile, progress

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from sqlalchemy import create_engine, insert, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from trustanchor.audit.merkle import leaf_hash, verify_inclusion  # noqa: E402
from trustanchor.digests import keyed_digest, secret_digest  # noqa: E402
from trustanchor.domain.identity import Authentication  # noqa: E402
from trustanchor.services import audit_trail  # noqa: E402
from trustanchor.services.container import Services  # noqa: E402
from trustanchor.storage import audit_repo, audit_tree, expiry, grants_repo  # noqa: E402
from trustanchor.storage.tables import (  # noqa: E402
    access_tokens,
    audit_leaves,
    authorization_codes,
    grant_anchors,
    grants,
    refresh_tokens,
    used_jtis,
)

TABLES = (
    "access_tokens",
    "refresh_tokens",
    "grants",
    "grant_anchors",
    "authorization_codes",
    "used_jtis",
    "audit_leaves",
    "audit_nodes",
    "audit_checkpoints",
)
JTI_WINDOW = 300  # a used_jtis row expires this long after the proof (DPoP iat window)
PERSON_CLIENTS = 50


def ident(kind: str, k: int) -> str:
    """A random-looking but reproducible identifier (base64url of 16 bytes), so any token filled
    earlier can be named again for a lookup without keeping it in memory."""
    raw = hashlib.sha256(f"{kind}:{k}".encode()).digest()[:16]
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


# -- the simulated issuance ---------------------------------------------------------------------


@dataclass
class Plan:
    start: int
    per_day: int
    tokens_per_grant: int
    access_lifetime: int
    refresh_lifetime: int
    code_lifetime: int
    sub_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def created(self, k: int) -> int:
        return self.start + k * 86400 // self.per_day

    def person(self, k: int) -> int | None:
        """Index of token k among the person tokens, or None for a client_credentials token."""
        return None if k % 3 == 0 else k - k // 3 - 1


AUTH = Authentication(
    holder_id="h",
    identity_id="i",
    anchor_id="wallet-pid-eu",
    acr="urn:eudi:loa:high",
    amr=("hwk", "pin"),
    auth_time=0,
    trust_framework="eidas",
)


def leaf_row(entry: Any) -> dict[str, Any]:
    """The row ``audit_repo.append`` writes for ``entry``."""
    canonical = entry.to_canonical()
    return {
        "entry": canonical.decode("utf-8"),
        "leaf_hash": leaf_hash(canonical).hex(),
        "kind": entry.KIND,
        "ref": audit_repo.reference(entry),
        "created_at": entry.at,
    }


def fill(services: Services, plan: Plan, first: int, last: int, batch: int) -> float:
    """Rows of tokens ``first`` … ``last - 1``; seconds taken."""
    started = time.perf_counter()
    k = first
    while k < last:
        end = min(last, k + batch)
        rows: dict[str, list[dict[str, Any]]] = {
            "grants": [],
            "grant_anchors": [],
            "codes": [],
            "refresh": [],
            "access": [],
            "jtis": [],
            "leaves": [],
        }
        for i in range(k, end):
            at = plan.created(i)
            jti = ident("jti", i)
            p = plan.person(i)
            rows["jtis"].append(
                {
                    "namespace": "dpop",
                    "jti_digest": secret_digest(ident("dpop", i)),
                    "expires_at": at + JTI_WINDOW,
                }
            )
            if p is None:
                rows["access"].append(
                    {
                        "jti": jti,
                        "grant_id": None,
                        "client_id": CLIENT_ID,
                        "created_at": at,
                        "expires_at": at + plan.access_lifetime,
                    }
                )
                rows["leaves"].append(
                    leaf_row(
                        audit_trail.token_issued(
                            at=at,
                            kind="access_token",
                            jti=jti,
                            client_id=CLIENT_ID,
                            sub=None,
                            scope=[SCOPE],
                            exp=at + plan.access_lifetime,
                        )
                    )
                )
                continue
            g, nth = divmod(p, plan.tokens_per_grant)
            grant_id = ident("grant", g)
            client = f"merchant-{g % PERSON_CLIENTS}"
            sub = keyed_digest(plan.sub_key, "sub", str(g % 100_000))
            if nth == 0:
                rows["grants"].append(
                    {
                        "id": grant_id,
                        "client_id": client,
                        "holder_id": ident("holder", g % 100_000),
                        "details": {"scope": ["openid", "payments"], "anchor_set": "eu-retail"},
                        "created_at": at,
                        "expires_at": at + plan.refresh_lifetime,
                        "anchor_set_id": "eu-retail",
                    }
                )
                rows["grant_anchors"].append({"grant_id": grant_id, "anchor_id": "wallet-pid-eu"})
                rows["codes"].append(
                    {
                        "code_digest": secret_digest(ident("code", g)),
                        "grant_id": grant_id,
                        "client_id": client,
                        "binding": {"redirect_uri": "https://merchant.invalid/cb"},
                        "created_at": at - 5,
                        "expires_at": at - 5 + plan.code_lifetime,
                        "consumed_at": at,
                    }
                )
            last_of_grant = nth == plan.tokens_per_grant - 1
            refresh = ident("refresh", p)
            rows["refresh"].append(
                {
                    "token_digest": secret_digest(refresh),
                    "grant_id": grant_id,
                    "client_id": client,
                    "bound_jkt": None,
                    "created_at": at,
                    "expires_at": at + plan.refresh_lifetime,
                    # rotated at the grant's next token; the grant's last one stays unused
                    "consumed_at": None if last_of_grant else plan.created(i + 2),
                }
            )
            rows["access"].append(
                {
                    "jti": jti,
                    "grant_id": grant_id,
                    "client_id": client,
                    "created_at": at,
                    "expires_at": at + plan.access_lifetime,
                }
            )
            scope = ["openid", "payments"]
            rows["leaves"].append(
                leaf_row(
                    audit_trail.token_issued(
                        at=at,
                        kind="access_token",
                        jti=jti,
                        client_id=client,
                        sub=sub,
                        scope=scope,
                        authentication=AUTH,
                        anchor_set_id="eu-retail",
                        exp=at + plan.access_lifetime,
                    )
                )
            )
            rows["leaves"].append(
                leaf_row(
                    audit_trail.refresh_token_issued(
                        at=at,
                        refresh_token=refresh,
                        client_id=client,
                        sub=sub,
                        scope=scope,
                        authorization_details=[],
                        authentication=AUTH,
                        anchor_set_id="eu-retail",
                        exp=at + plan.refresh_lifetime,
                    )
                )
            )
        with services.db.transaction() as conn:
            for table, key in (
                (grants, "grants"),
                (grant_anchors, "grant_anchors"),
                (authorization_codes, "codes"),
                (refresh_tokens, "refresh"),
                (access_tokens, "access"),
                (used_jtis, "jtis"),
                (audit_leaves, "leaves"),
            ):
                if rows[key]:
                    conn.execute(insert(table), rows[key])
        k = end
    return time.perf_counter() - started


def integrate_all(services: Services, now: int, batch: int) -> tuple[int, float]:
    """The service's integrator until nothing is pending: (tree size, seconds)."""
    started = time.perf_counter()
    size = 0
    while (done := audit_tree.integrate_once(
        services.db, services.audit_key, now=now, batch_size=batch
    )) is not None:  # fmt: skip
        size = done.size
    return size, time.perf_counter() - started


# -- measurements -------------------------------------------------------------------------------


def timed(samples: int, call: Callable[[int], None]) -> list[float]:
    out: list[float] = []
    for i in range(samples):
        t0 = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - t0)
    return out


def issue_once(services: Services, now: int, lifetime: int) -> None:
    """The storage work of one client_credentials issuance (services/grants/issuing.py)."""
    jti = services.randomness.token(16)
    with services.db.transaction() as conn:
        grants_repo.record_access_token(
            conn, jti, None, CLIENT_ID, now=now, expires_at=now + lifetime
        )
        audit_trail.record(
            conn,
            audit_trail.token_issued(
                at=now,
                kind="access_token",
                jti=jti,
                client_id=CLIENT_ID,
                sub=None,
                scope=[SCOPE],
                exp=now + lifetime,
            ),
        )


def sqlite_path(services: Services) -> Path:
    return Path(make_url(services.db.url).database or "")


def storage_size(services: Services) -> tuple[int, float | None, dict[str, int]]:
    """(bytes on disk, free share or None, bytes per table where the backend says)."""
    per_table: dict[str, int] = {}
    if services.db.dialect == "sqlite":
        with services.db.reader() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            try:
                for name, size in conn.exec_driver_sql(
                    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"
                ):
                    per_table[str(name)] = int(size)
            except Exception:  # dbstat not compiled in: no per-table figures
                per_table = {}
        path = sqlite_path(services)
        total = sum(
            p.stat().st_size for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()
        )
        return total, free / pages if pages else None, per_table
    with services.db.reader() as conn:
        total = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
        for name in TABLES:
            per_table[name] = conn.execute(
                text("SELECT pg_total_relation_size(CAST(:t AS regclass))"), {"t": name}
            ).scalar_one()
    return int(total), None, per_table


def table_bytes(per_table: dict[str, int], prefixes: Sequence[str]) -> int | None:
    """SQLite's dbstat names indexes separately: count a table with its indexes."""
    if not per_table:
        return None
    total = 0
    for name, size in per_table.items():
        for prefix in prefixes:
            if name == prefix or (
                name.startswith(("ix_" + prefix, "sqlite_autoindex_" + prefix, "uq_" + prefix))
            ):
                total += size
                break
    return total


def row_counts(services: Services) -> dict[str, int]:
    with services.db.reader() as conn:
        return {
            name: int(conn.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar_one())
            for name in TABLES
        }


@dataclass
class Step:
    size: int
    fill_s: float
    integrate_s: float
    tree_size: int
    rows: dict[str, int]
    bytes_total: int
    free_share: float | None
    per_table: dict[str, int]
    issue: list[float]
    introspect: list[float]
    proof: list[float]
    proof_hashes: int
    purge_s: float | None = None
    purged: dict[str, int] = field(default_factory=dict)
    rows_after: dict[str, int] = field(default_factory=dict)
    bytes_after: int | None = None
    free_after: float | None = None


def measure(
    services: Services, plan: Plan, n: int, kept_from: int, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float], int]:
    now = plan.created(n - 1)
    rng = random.Random(args.seed + n)
    lifetime = plan.access_lifetime
    issue = timed(args.iterations, lambda _i: issue_once(services, now, lifetime))
    # Tokens still in the table (a purge at an earlier size removed those before kept_from).
    lookups = [ident("jti", rng.randrange(kept_from, n)) for _ in range(args.iterations)]

    def introspect(i: int) -> None:
        with services.db.reader() as conn:
            grants_repo.access_token_active(conn, lookups[i], now=now)

    intro = timed(args.iterations, introspect)
    size, _ = integrate_all(services, now, args.integrate_batch)
    audit = services.audit
    root = audit.checkpoint(size).checkpoint.root_hash
    indexes = [rng.randrange(size) for _ in range(args.iterations)]
    hashes = 0

    def prove(i: int) -> None:
        nonlocal hashes
        proof = audit.inclusion_proof(indexes[i], size)
        hashes = max(hashes, len(proof))
        proofs.append(proof)

    proofs: list[list[bytes]] = []
    proof_times = timed(args.iterations, prove)
    for index, proof in zip(indexes[:50], proofs[:50], strict=True):
        [entry] = audit.entries(index, index + 1)
        verify_inclusion(entry.leaf_hash, index, size, proof, root)  # raises ProofError
    return issue, intro, proof_times, hashes


def live_from(plan: Plan, n: int, now: int, retention: int) -> int:
    """First token index whose access-token row a purge at ``now`` keeps (rows are in created
    order, so the kept ones are a suffix)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if plan.created(mid) + plan.access_lifetime < now - retention:
            lo = mid + 1
        else:
            hi = mid
    return min(lo, n - 1)


# -- databases ----------------------------------------------------------------------------------


@contextmanager
def dedicated_postgres(url: str) -> Iterator[str]:
    """A database ``trustanchor_growth_<pid>`` on the server of ``url``, dropped afterwards."""
    parsed = make_url(url).set(drivername="postgresql+psycopg")
    if not parsed.username:
        parsed = parsed.set(username="postgres")
    name = f"trustanchor_growth_{os.getpid()}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- report -------------------------------------------------------------------------------------


def mb(n: int | None) -> str:
    return "—" if n is None else f"{n / 1e6:,.1f}"


def ms(values: Sequence[float]) -> str:
    return f"{statistics.median(values) * 1000:.2f} / {percentile(values, 99) * 1000:.2f}"


def report(backend: str, steps: list[Step], args: argparse.Namespace) -> None:
    print(f"## Growth: {backend}\n")
    print(
        "| issued tokens | access_tokens rows | audit leaves | DB MB | bytes / token | "
        "issue ms (p50 / p99) | introspect ms (p50 / p99) | inclusion proof ms (p50 / p99) | "
        "proof hashes | purge s | purged rows | access_tokens rows after | DB MB after |"
    )
    print("|" + "---|" * 13)
    for s in steps:
        purged = sum(s.purged.values()) if s.purge_s is not None else None
        print(
            f"| {s.size:,} | {s.rows['access_tokens']:,} | {s.rows['audit_leaves']:,} | "
            f"{mb(s.bytes_total)} | {s.bytes_total / s.size:,.0f} | {ms(s.issue)} | "
            f"{ms(s.introspect)} | {ms(s.proof)} | {s.proof_hashes} | "
            + ("—" if s.purge_s is None else f"{s.purge_s:.2f}")
            + f" | {'—' if purged is None else f'{purged:,}'} | "
            + (f"{s.rows_after['access_tokens']:,}" if s.rows_after else "—")
            + f" | {mb(s.bytes_after)} |"
        )
    print("\n### Rows and bytes per table (before purge)\n")
    groups = {
        "access_tokens": ["access_tokens"],
        "refresh_tokens": ["refresh_tokens"],
        "grants (+ grant_anchors)": ["grants", "grant_anchors"],
        "authorization_codes": ["authorization_codes"],
        "used_jtis": ["used_jtis"],
        "audit_leaves": ["audit_leaves"],
        "audit_nodes (+ checkpoints)": ["audit_nodes", "audit_checkpoints"],
    }
    print("| issued tokens | " + " | ".join(groups) + " |")
    print("|---|" + "---|" * len(groups))
    for s in steps:
        cells = []
        for prefixes in groups.values():
            rows = sum(s.rows[p] for p in prefixes)
            size = table_bytes(s.per_table, prefixes)
            cells.append(f"{rows:,} rows, {mb(size)} MB" if size is not None else f"{rows:,}")
        print(f"| {s.size:,} | " + " | ".join(cells) + " |")
    print("\n### What purge deleted, per table\n")
    rules = [r.name for r in expiry.RULES if any(s.purged.get(r.name) for s in steps)]
    if rules:
        print("| issued tokens | simulated days | " + " | ".join(rules) + " |")
        print("|---|---|" + "---|" * len(rules))
        for s in steps:
            days = s.size / args.per_day
            cells = [f"{s.purged.get(r, 0):,}" for r in rules]
            print(f"| {s.size:,} | {days:,.1f} | " + " | ".join(cells) + " |")
    else:
        print("Nothing was purged.")
    print("\n### Filling (not issuance: bulk inserts) and building the tree\n")
    print("| issued tokens | fill s | integrate s | tree size | free pages before / after purge |")
    print("|---|---|---|---|---|")
    for s in steps:
        free = (
            "—"
            if s.free_share is None
            else f"{s.free_share:.0%} / " + ("—" if s.free_after is None else f"{s.free_after:.0%}")
        )
        print(f"| {s.size:,} | {s.fill_s:.1f} | {s.integrate_s:.1f} | {s.tree_size:,} | {free} |")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="issued tokens at each step, ascending (default 10000,100000,1000000)",
    )
    parser.add_argument("--ten-million", action="store_true", help="add a step of 10^7 (hours)")
    parser.add_argument(
        "--database",
        default=None,
        help="postgresql://host:port/... : a dedicated database on that server "
        "(default: SQLite in a temporary directory)",
    )
    parser.add_argument("--iterations", type=int, default=500, help="samples per latency")
    parser.add_argument(
        "--per-day", type=int, default=20_000, help="simulated access tokens issued per day"
    )
    parser.add_argument("--tokens-per-grant", type=int, default=4)
    parser.add_argument("--batch", type=int, default=10_000, help="tokens per fill transaction")
    parser.add_argument("--integrate-batch", type=int, default=50_000)
    parser.add_argument(
        "--retention", type=int, default=expiry.DEFAULT_RETENTION, help="purge retention (s)"
    )
    parser.add_argument("--no-purge", action="store_true", help="never purge")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--cpu", type=int, default=(os.cpu_count() or 1) - 1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    if args.ten_million:
        sizes = sorted({*sizes, 10_000_000})
    if not sizes or sizes[0] < 1:
        parser.error("--sizes needs positive sizes")
    if args.database and make_url(args.database).get_backend_name() != "postgresql":
        parser.error("--database takes a postgresql:// URL (SQLite is the default)")

    pinned = pin_cpu(args.cpu)
    workdir = Path(tempfile.mkdtemp(prefix="ta-growth-"))
    started = datetime.now(UTC)
    steps: list[Step] = []
    try:
        database = dedicated_postgres(args.database) if args.database else nullcontext(None)
        with database as pg_url:
            url = pg_url or f"sqlite:///{workdir / 'growth.db'}"
            backend = "PostgreSQL" if pg_url else "SQLite (WAL, synchronous=FULL)"
            services = make_services(workdir / "setup", url, secrets.token_urlsafe(24))
            try:
                steps = run(services, sizes, args)
            finally:
                services.db.dispose()
    finally:
        if args.keep:
            progress(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    print(f"# Growth of storage and latency, {started:%Y-%m-%d %H:%M} UTC\n")
    print(
        f"- machine: {cpu_model()}, {os.cpu_count()} CPUs; Python {platform.python_version()}; "
        f"{platform.platform()}; this process {pinned}"
    )
    print(f"- source: {git_state()}")
    print(
        f"- simulated issuance: {args.per_day:,} access tokens a day, one in three "
        f"client_credentials, {args.tokens_per_grant} per person's grant; purge retention "
        f"{args.retention} s" + (" (purge disabled)" if args.no_purge else "")
    )
    print(f"- latencies: {args.iterations} samples each\n")
    report(backend, steps, args)


def run(services: Services, sizes: list[int], args: argparse.Namespace) -> list[Step]:
    tokens = services.settings.tokens
    span = sizes[-1] * 86400 // args.per_day
    plan = Plan(
        start=int(time.time()) - span,
        per_day=args.per_day,
        tokens_per_grant=args.tokens_per_grant,
        access_lifetime=tokens.access_token_lifetime,
        refresh_lifetime=tokens.refresh_token_lifetime,
        code_lifetime=tokens.authorization_code_lifetime,
    )
    steps: list[Step] = []
    filled = kept_from = 0
    for n in sizes:
        now = plan.created(n - 1)
        progress(f"filling to {n:,} issued tokens")
        fill_s = fill(services, plan, filled, n, args.batch)
        filled = n
        progress(f"  {fill_s:.1f} s; integrating")
        tree, integrate_s = integrate_all(services, now, args.integrate_batch)
        progress(f"  {integrate_s:.1f} s, tree size {tree:,}; measuring")
        total, free, per_table = storage_size(services)
        rows = row_counts(services)
        issue, intro, proof, hashes = measure(services, plan, n, kept_from, args)
        step = Step(n, fill_s, integrate_s, tree, rows, total, free, per_table, issue, intro,
                    proof, hashes)  # fmt: skip
        if not args.no_purge:
            progress("  purge")
            t0 = time.perf_counter()
            step.purged = expiry.purge(services.db, now=now, retention=args.retention)
            step.purge_s = time.perf_counter() - t0
            step.rows_after = row_counts(services)
            step.bytes_after, step.free_after, _ = storage_size(services)
            progress(f"  purged {sum(step.purged.values()):,} rows in {step.purge_s:.2f} s")
            kept_from = live_from(plan, n, now, args.retention)
        steps.append(step)
    return steps


if __name__ == "__main__":
    main()
