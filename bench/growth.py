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

Rows go in by the driver's ``executemany`` of plain tuples, ``--batch`` tokens per transaction,
into the migrated schema with every index in place. Audit leaves are the rows ``audit_repo.append``
writes (canonical JSON, leaf hash, kind, ref), made from a template of each kind of entry with the
token's values put in (the first tokens of every fill are compared with the real entry, byte for
byte). The fill goes one simulated day at a time and runs ``trustanchor purge``'s function
(``storage.expiry.purge``, ``--retention``, default one day) after each day, as a daily cron job
would (``--no-purge``: never). Then the service's own integrator (``audit_tree.integrate_once``,
with a batch of ``--integrate-batch`` leaves instead of the configured 2,000: fewer checkpoints,
the same ``audit_nodes`` and leaf indexes) builds the Merkle tree, so proofs come from a real
stored tree.

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
- **integrator batch**: one ``audit_tree.integrate_batch`` of the configured batch size
  (``[audit] batch_size``) with that many leaves pending;
- **purge**: the last daily purge before the size (seconds, rows per rule), and the duration of
  every purge batch's transaction while filling up to it (how long each held SQLite's write lock,
  max and p99). Neither SQLite nor PostgreSQL gives freed space back to the file system without
  ``VACUUM`` (FULL): freed pages are reused by later rows ("free pages", SQLite).

The process pins itself to one CPU (``--cpu``). Progress goes to stderr, the Markdown tables and
notes to stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
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

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from trustanchor.audit.merkle import leaf_hash, verify_inclusion  # noqa: E402
from trustanchor.digests import keyed_digest, secret_digest  # noqa: E402
from trustanchor.domain.identity import Authentication  # noqa: E402
from trustanchor.services import audit_trail  # noqa: E402
from trustanchor.services.container import Services  # noqa: E402
from trustanchor.storage import audit_repo, audit_tree, expiry, grants_repo  # noqa: E402

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


# Sentinel values for the leaf templates: real-looking (same lengths and shapes as the values
# they stand for) and each present once in the canonical entry, so a template becomes a token's
# entry by replacing them.
S_AT, S_EXP = 1_111_111_111, 1_999_999_999
S_JTI = ident("jti", -1)
S_CLIENT = "client-sentinel-0000"
S_REFRESH_DIGEST = secret_digest("refresh-sentinel")


@dataclass(frozen=True)
class LeafTemplate:
    """The canonical entry of one kind of leaf with sentinels in place of the values that differ
    from token to token. ``row`` gives the row ``audit_repo.append`` would write for the real
    entry (checked against the real one for the first tokens of every fill)."""

    entry: str
    kind: str

    @classmethod
    def of(cls, entry: Any) -> LeafTemplate:
        text = entry.to_canonical().decode("utf-8")
        for sentinel in (str(S_AT), str(S_EXP), S_JTI, S_CLIENT, S_REFRESH_DIGEST):
            if text.count(sentinel) > 1:
                raise SystemExit(f"leaf template: {sentinel!r} occurs twice")
        return cls(text, entry.KIND)

    def row(
        self, *, at: int, exp: int, ref: str, client: str, sub: str | None, sub_sentinel: str
    ) -> tuple[Any, ...]:
        text = (
            self.entry.replace(str(S_AT), str(at), 1)
            .replace(str(S_EXP), str(exp), 1)
            .replace(S_JTI, ref, 1)
            .replace(S_REFRESH_DIGEST, ref, 1)
            .replace(S_CLIENT, client, 1)
        )
        if sub is not None:
            text = text.replace(sub_sentinel, sub, 1)
        raw = text.encode("utf-8")
        return (text, leaf_hash(raw).hex(), self.kind, ref, at)


def leaf_templates(sub_sentinel: str) -> tuple[LeafTemplate, LeafTemplate, LeafTemplate]:
    """(client_credentials access token, a person's access token, refresh rotation)."""
    cc = audit_trail.token_issued(at=S_AT, kind="access_token", jti=S_JTI, client_id=S_CLIENT,
                                  sub=None, scope=[SCOPE], exp=S_EXP)  # fmt: skip
    person = person_access_entry(S_AT, S_EXP, S_JTI, S_CLIENT, sub_sentinel)
    refresh = audit_trail.token_issued(
        at=S_AT, kind="refresh_rotation", jti=S_REFRESH_DIGEST, client_id=S_CLIENT,
        sub=sub_sentinel, scope=PERSON_SCOPE, authentication=AUTH, anchor_set_id="eu-retail",
        exp=S_EXP,
    )  # fmt: skip
    return LeafTemplate.of(cc), LeafTemplate.of(person), LeafTemplate.of(refresh)


PERSON_SCOPE = ["openid", "payments"]


def person_access_entry(at: int, exp: int, jti: str, client: str, sub: str) -> Any:
    return audit_trail.token_issued(
        at=at, kind="access_token", jti=jti, client_id=client, sub=sub, scope=PERSON_SCOPE,
        authentication=AUTH, anchor_set_id="eu-retail", exp=exp,
    )  # fmt: skip


# The columns of each filled table, in the order of the tuples ``fill`` builds.
COLUMNS: dict[str, tuple[str, ...]] = {
    "grants": ("id", "client_id", "holder_id", "details", "created_at", "expires_at",
               "anchor_set_id"),
    "grant_anchors": ("grant_id", "anchor_id"),
    "authorization_codes": ("code_digest", "grant_id", "client_id", "binding", "created_at",
                            "expires_at", "consumed_at"),
    "refresh_tokens": ("token_digest", "grant_id", "client_id", "bound_jkt", "created_at",
                       "expires_at", "consumed_at"),
    "access_tokens": ("jti", "grant_id", "client_id", "created_at", "expires_at"),
    "used_jtis": ("namespace", "jti_digest", "expires_at"),
    "audit_leaves": ("entry", "leaf_hash", "kind", "ref", "created_at"),
}  # fmt: skip
DETAILS = json.dumps({"scope": PERSON_SCOPE, "anchor_set": "eu-retail"})
BINDING = json.dumps({"redirect_uri": "https://merchant.invalid/cb"})


def insert_rows(conn: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    """One ``executemany`` of plain tuples through the driver (JSON columns already encoded):
    the same rows the service's inserts write, without SQLAlchemy's per-row processing."""
    columns = COLUMNS[table]
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"
    conn.exec_driver_sql(sql, rows)


def fill(services: Services, plan: Plan, first: int, last: int, batch: int) -> float:
    """Rows of tokens ``first`` … ``last - 1``; seconds taken. Leaves come from templates of the
    real entries (the first tokens of each call are checked against ``leaf_row`` of the real
    entry, byte for byte)."""
    started = time.perf_counter()
    sub_sentinel = keyed_digest(plan.sub_key, "sub", "sentinel")
    cc_leaf, person_leaf, refresh_leaf = leaf_templates(sub_sentinel)
    check_until = first + 30
    k = first
    while k < last:
        end = min(last, k + batch)
        rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in COLUMNS}
        for i in range(k, end):
            at = plan.created(i)
            jti = ident("jti", i)
            exp = at + plan.access_lifetime
            p = plan.person(i)
            rows["used_jtis"].append(("dpop", secret_digest(ident("dpop", i)), at + JTI_WINDOW))
            if p is None:
                rows["access_tokens"].append((jti, None, CLIENT_ID, at, exp))
                leaf = cc_leaf.row(at=at, exp=exp, ref=jti, client=CLIENT_ID, sub=None,
                                   sub_sentinel=sub_sentinel)  # fmt: skip
                if i < check_until:
                    check_leaf(leaf, audit_trail.token_issued(
                        at=at, kind="access_token", jti=jti, client_id=CLIENT_ID, sub=None,
                        scope=[SCOPE], exp=exp))  # fmt: skip
                rows["audit_leaves"].append(leaf)
                continue
            g, nth = divmod(p, plan.tokens_per_grant)
            grant_id = ident("grant", g)
            client = f"merchant-{g % PERSON_CLIENTS}"
            sub = keyed_digest(plan.sub_key, "sub", str(g % 100_000))
            if nth == 0:
                rows["grants"].append((grant_id, client, ident("holder", g % 100_000), DETAILS, at,
                                       at + plan.refresh_lifetime, "eu-retail"))  # fmt: skip
                rows["grant_anchors"].append((grant_id, "wallet-pid-eu"))
                rows["authorization_codes"].append((secret_digest(ident("code", g)), grant_id,
                    client, BINDING, at - 5, at - 5 + plan.code_lifetime, at))  # fmt: skip
            last_of_grant = nth == plan.tokens_per_grant - 1
            refresh = ident("refresh", p)
            refresh_digest = secret_digest(refresh)
            refresh_exp = at + plan.refresh_lifetime
            # rotated at the grant's next token; the grant's last one stays unused
            rows["refresh_tokens"].append((refresh_digest, grant_id, client, None, at,
                refresh_exp, None if last_of_grant else plan.created(i + 2)))  # fmt: skip
            rows["access_tokens"].append((jti, grant_id, client, at, exp))
            access_leaf = person_leaf.row(at=at, exp=exp, ref=jti, client=client, sub=sub,
                                          sub_sentinel=sub_sentinel)  # fmt: skip
            rotation_leaf = refresh_leaf.row(
                at=at, exp=refresh_exp, ref=refresh_digest, client=client, sub=sub,
                sub_sentinel=sub_sentinel,
            )  # fmt: skip
            if i < check_until:
                check_leaf(access_leaf, person_access_entry(at, exp, jti, client, sub))
                check_leaf(rotation_leaf, audit_trail.refresh_token_issued(
                    at=at, refresh_token=refresh, client_id=client, sub=sub, scope=PERSON_SCOPE,
                    authorization_details=[], authentication=AUTH, anchor_set_id="eu-retail",
                    exp=refresh_exp))  # fmt: skip
            rows["audit_leaves"].append(access_leaf)
            rows["audit_leaves"].append(rotation_leaf)
        with services.db.transaction() as conn:
            for table, table_rows in rows.items():
                if table_rows:
                    insert_rows(conn, table, table_rows)
        k = end
    return time.perf_counter() - started


def check_leaf(row: tuple[Any, ...], entry: Any) -> None:
    real = leaf_row(entry)
    if row != (real["entry"], real["leaf_hash"], real["kind"], real["ref"], real["created_at"]):
        raise SystemExit(f"leaf template differs from the real entry:\n{row}\n{real}")


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
class Purges:
    """The daily purges run while filling up to one size."""

    count: int = 0
    seconds: float = 0.0
    batches: list[float] = field(default_factory=list)  # each batch's transaction, s
    by_rule: dict[str, list[float]] = field(default_factory=dict)  # the same, per rule
    last_s: float = 0.0  # the last day's purge
    last: dict[str, int] = field(default_factory=dict)  # rows it deleted per rule
    vacuum_s: float = 0.0  # --vacuum (PostgreSQL): the daily VACUUMs

    def batch(self, rule: str, seconds: float) -> None:
        self.batches.append(seconds)
        self.by_rule.setdefault(rule, []).append(seconds)

    def run(self, services: Services, now: int, retention: int) -> None:
        t0 = time.perf_counter()
        self.last = expiry.purge(
            services.db, now=now, retention=retention,
            timing=self.batch,
        )  # fmt: skip
        self.last_s = time.perf_counter() - t0
        self.seconds += self.last_s
        self.count += 1


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
    integrate_batch: tuple[int, float]  # (leaves, seconds) of one integrator batch
    purges: Purges


def measure(
    services: Services, plan: Plan, n: int, kept_from: int, args: argparse.Namespace
) -> tuple[list[float], list[float], list[float], int, tuple[int, float]]:
    now = plan.created(n - 1)
    rng = random.Random(args.seed + n)
    lifetime = plan.access_lifetime
    issue = timed(args.iterations, lambda _i: issue_once(services, now, lifetime))
    # Tokens still in the table (purges removed those before kept_from).
    lookups = [ident("jti", rng.randrange(kept_from, n)) for _ in range(args.iterations)]

    def introspect(i: int) -> None:
        with services.db.reader() as conn:
            grants_repo.access_token_active(conn, lookups[i], now=now)

    intro = timed(args.iterations, introspect)
    # One batch of the background integrator at its configured size: top the pending leaves
    # (the issuances above) up to it with more issuances, untimed.
    batch_size = services.settings.audit.batch_size
    for _ in range(max(0, batch_size - args.iterations)):
        issue_once(services, now, lifetime)
    t0 = time.perf_counter()
    done = audit_tree.integrate_batch(services.db, services.audit_key, now=now,
                                      batch_size=batch_size)  # fmt: skip
    integrate_batch = (done.integrated if done is not None else 0, time.perf_counter() - t0)
    size, _ = integrate_all(services, now, args.integrate_batch)
    if not size and done is not None:  # that batch integrated everything pending
        size = done.checkpoint.size
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
    return issue, intro, proof_times, hashes, integrate_batch


VACUUMED = ("access_tokens", "refresh_tokens", "authorization_codes", "used_jtis", "grants",
            "grant_anchors", "audit_leaves")  # fmt: skip


def vacuum(services: Services) -> float:
    """Plain ``VACUUM`` of the tables purge and the integrator change (PostgreSQL): what
    autovacuum does in production, off on the test server. Seconds taken."""
    t0 = time.perf_counter()
    with services.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in VACUUMED:
            conn.exec_driver_sql(f"VACUUM {name}")
    return time.perf_counter() - t0


def dead_share(services: Services) -> float | None:
    """PostgreSQL: the share of dead row versions in audit_leaves (statistics, approximate)."""
    if services.db.dialect == "sqlite":
        return None
    with services.db.reader() as conn:
        row = conn.exec_driver_sql(
            "SELECT n_live_tup, n_dead_tup FROM pg_stat_user_tables WHERE relname = 'audit_leaves'"
        ).first()
    if row is None or not (row[0] + row[1]):
        return None
    return float(row[1]) / float(row[0] + row[1])


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


def batch_ms(values: Sequence[float]) -> str:
    if not values:
        return "—"
    return f"{max(values) * 1000:.0f} / {percentile(values, 99) * 1000:.0f}"


def report(backend: str, steps: list[Step], args: argparse.Namespace) -> None:
    print(f"## Growth: {backend}\n")
    print(
        "| issued tokens | access_tokens rows | audit leaves | DB MB | bytes / token | "
        "issue ms (p50 / p99) | introspect ms (p50 / p99) | integrator batch ms (leaves) | "
        "inclusion proof ms (p50 / p99) | proof hashes | last day's purge s (rows) | "
        "purge batch ms (max / p99) |"
    )
    print("|" + "---|" * 12)
    for s in steps:
        leaves, seconds = s.integrate_batch
        pg = s.purges
        day = f"{pg.last_s:.2f} ({sum(pg.last.values()):,})" if pg.count else "—"
        print(
            f"| {s.size:,} | {s.rows['access_tokens']:,} | {s.rows['audit_leaves']:,} | "
            f"{mb(s.bytes_total)} | {s.bytes_total / s.size:,.0f} | {ms(s.issue)} | "
            f"{ms(s.introspect)} | {seconds * 1000:.1f} ({leaves:,}) | {ms(s.proof)} | "
            f"{s.proof_hashes} | {day} | {batch_ms(pg.batches)} |"
        )
    print("\n### Rows and bytes per table\n")
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
    print("\n### The last day's purge before each size, rows per rule\n")
    names = [r.name for r in expiry.RULES]
    rules = [r for r in names if any(s.purges.last.get(r) for s in steps)]
    if rules:
        print("| issued tokens | simulated days | " + " | ".join(rules) + " |")
        print("|---|---|" + "---|" * len(rules))
        for s in steps:
            days = s.size / args.per_day
            cells = [f"{s.purges.last.get(r, 0):,}" for r in rules]
            print(f"| {s.size:,} | {days:,.1f} | " + " | ".join(cells) + " |")
    else:
        print("Nothing was purged.")
    print("\n### Purge batches while filling up to each size, per rule: ms max / p99 / median\n")
    timed_rules = [r for r in names if any(s.purges.by_rule.get(r) for s in steps)]
    print("| issued tokens | " + " | ".join(timed_rules) + " |")
    print("|---|" + "---|" * len(timed_rules))
    for s in steps:
        cells = []
        for r in timed_rules:
            v = s.purges.by_rule.get(r, [])
            cells.append(
                f"{max(v) * 1000:.0f} / {percentile(v, 99) * 1000:.0f} / "
                f"{statistics.median(v) * 1000:.1f}"
                if v
                else "—"
            )
        print(f"| {s.size:,} | " + " | ".join(cells) + " |")
    print("\n### Filling (not issuance: bulk inserts), the daily purges, building the tree\n")
    print(
        "| issued tokens | fill s | daily purges (count, s in all) | purge batches | "
        "integrate s | tree size | free pages (SQLite) or audit_leaves dead versions (PostgreSQL) "
        "| VACUUM s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for s in steps:
        free = "—" if s.free_share is None else f"{s.free_share:.0%}"
        pg = s.purges
        print(
            f"| {s.size:,} | {s.fill_s:.1f} | {pg.count}, {pg.seconds:.1f} | {len(pg.batches):,} "
            f"| {s.integrate_s:.1f} | {s.tree_size:,} | {free} | "
            + (f"{pg.vacuum_s:.1f} |" if args.vacuum else "— |")
        )
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
    parser.add_argument(
        "--integrate-daily",
        action="store_true",
        help="run the integrator after each simulated day too (not only at each size)",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="PostgreSQL: plain VACUUM of the token tables and audit_leaves after each day "
        "(standing in for autovacuum)",
    )
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
    if args.vacuum and not args.database:
        parser.error("--vacuum is for PostgreSQL (SQLite's VACUUM rewrites the whole file)")

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
        f"{args.retention} s"
        + (" (purge disabled)" if args.no_purge else ", daily")
        + (", integrator daily" if args.integrate_daily else "")
        + (", VACUUM daily" if args.vacuum else "")
    )
    print(
        f"- latencies: {args.iterations} samples each; load average at the end "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}\n"
    )
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
        progress(f"filling to {n:,} issued tokens" + ("" if args.no_purge else ", purging daily"))
        purges = Purges()
        fill_s = daily_integrate_s = 0.0
        while filled < n:
            # One simulated day (or what is left of it), then that day's purge, as a daily cron.
            day_end = min(n, (filled // args.per_day + 1) * args.per_day)
            fill_s += fill(services, plan, filled, day_end, args.batch)
            filled = day_end
            if not args.no_purge:
                purges.run(services, plan.created(day_end - 1), args.retention)
            if args.integrate_daily:
                daily_integrate_s += integrate_all(
                    services, plan.created(day_end - 1), args.integrate_batch
                )[1]
            if args.vacuum:
                purges.vacuum_s += vacuum(services)
            if purges.count and purges.count % 50 == 0:
                progress(f"  {filled:,} tokens, {purges.count} purges, {purges.seconds:.0f} s")
        progress(f"  fill {fill_s:.1f} s, purges {purges.seconds:.1f} s; integrating")
        tree, integrate_s = integrate_all(services, now, args.integrate_batch)
        integrate_s += daily_integrate_s
        if not tree:  # the daily integration left nothing pending
            with services.db.reader() as conn:
                latest = audit_tree.latest_checkpoint(conn)
            tree = 0 if latest is None else latest.size
        progress(f"  {integrate_s:.1f} s, tree size {tree:,}; measuring")
        total, free, per_table = storage_size(services)
        if free is None:
            free = dead_share(services)
        rows = row_counts(services)
        if not args.no_purge:
            kept_from = live_from(plan, n, now, args.retention)
        issue, intro, proof, hashes, batch = measure(services, plan, n, kept_from, args)
        steps.append(Step(n, fill_s, integrate_s, tree, rows, total, free, per_table, issue,
                          intro, proof, hashes, batch, purges))  # fmt: skip
        progress(f"  done {n:,}")
    return steps


if __name__ == "__main__":
    main()
