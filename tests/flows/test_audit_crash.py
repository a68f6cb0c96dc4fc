"""Issue 3, the crash test: the real service (``trustanchor serve``: granian, several worker
processes, each running the audit integrator) under load, while workers are SIGKILLed again and
again. Afterwards every token a client received is in the log, the log verifies end to end, and
it never forked. On PostgreSQL (the main case, with the two targeted kills below) and on SQLite
(random kills only: the targeted kills need PostgreSQL's lock and activity views).

While client threads request ``client_credentials`` tokens (``private_key_jwt``) as fast as the
service answers, and an auditor polls the signed checkpoint:

- random kills: a started worker is SIGKILLed every few hundred milliseconds, wherever it is —
  between requests, in the middle of an issuance, during an integration;
- a kill *mid-append*: the test takes ``LOCK TABLE audit_leaves IN SHARE MODE``, so every
  issuance stops at its leaf INSERT with its token row written but not committed; the worker of
  one blocked issuance is killed, then the lock is released;
- a kill *mid-integration*, with a large batch: the test holds the integrator lock (the
  ``audit_checkpoints`` table lock) until a backlog of leaves piled up, row-locks the newest
  pending leaf, releases the integrator lock, waits until an integrator has assigned tree indexes
  to the older leaves of its batch and is blocked on that row — then kills the worker that runs
  it. Another worker's integrator must take over the whole batch.

The worker owning a PostgreSQL backend is found from ``pg_stat_activity.client_port`` and the
worker processes' TCP sockets (/proc). Granian respawns killed workers
(``serve --respawn-failed-workers``) but stops the server if a worker it has just respawned dies
again within 5.5 s (its crash-loop guard), so the same worker index is never killed twice in a
row within that time.

Then, with the load stopped and the service's own integrators left to finish: every received
token's jti has exactly one ``token_issued`` leaf, integrated, with an inclusion proof to the
final signed checkpoint; every committed access token has its leaf and every logged access token
its row (nothing lost, nothing logged without being committed); the stored log verifies
(``AuditLog.verify_stored_log``); no leaf lacks a tree index; every checkpoint the auditor saw
during the run is signed, at least as large as the one seen before it, is the stored checkpoint
of its size, and is consistent with the final one (served consistency proof, and the root of the
final tree's prefix); the auditor CLI (``trustanchor audit fetch``, then offline ``verify``,
``replay`` and ``check``) agrees for a sample of tokens; no answer was other than 200 (no 500,
no 503) and the service logged no error. Requests that failed because their worker died are
counted and reported; only tokens actually received count.

The PostgreSQL case runs in a schema of its own; it is skipped without PostgreSQL and fails under
TRUSTANCHOR_REQUIRE_POSTGRES=1, like the other PostgreSQL tests. Linux only (/proc). Run with
``-s`` for the figures.
"""

from __future__ import annotations

import json
import os
import random
import re
import secrets
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar

import jwt
import pytest
import requests
from click.testing import CliRunner, Result
from sqlalchemy import Connection, create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url
from support.ecosystem import Party
from support.service_process import (
    ServiceProcess,
    Worker,
    pg_ports_by_pid,
    running_service,
)

from trustanchor.audit.checkpoint import Checkpoint, verify_checkpoint
from trustanchor.audit.entries import TokenIssued, parse_entry
from trustanchor.audit.merkle import (
    MemoryTree,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)
from trustanchor.audit.note import Verifier
from trustanchor.cli.main import cli
from trustanchor.clock import SystemClock
from trustanchor.keystore.audit_key import list_audit_keys, load_audit_key
from trustanchor.services.audit_log import AuditLog
from trustanchor.storage import audit_tree
from trustanchor.storage.database import Database
from trustanchor.storage.tables import (
    access_tokens,
    audit_checkpoints,
    audit_leaves,
    audit_nodes,
)

T = TypeVar("T")

WORKERS = 3
CLIENT_THREADS = 6
# The load runs at least this long (PostgreSQL, with the two targeted kills; SQLite, random kills
# only), and until MIN_KILLS kills were made, but never beyond MAX_LOAD_SECONDS.
LOAD_SECONDS = {"postgresql": 20.0, "sqlite": 12.0}
MAX_LOAD_SECONDS = 40.0
MIN_KILLS = 10
KILL_PAUSE = (0.2, 0.5)  # seconds between random kills
CRASH_LOOP_GUARD = 6.5  # granian exits if a worker it respawned ≤ 5.5 s ago dies again
BACKLOG_SECONDS = 1.5  # how long integration is held back before the mid-integration kill
CLI_SAMPLE = 20
INTERVAL_MS = 50  # the integrators' checkpoint interval

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
LEDGER = Party("ledger")
AUDITOR = Party("auditor")


def _declaration(party: Party, **extra: Any) -> dict[str, Any]:
    return {
        "client_id": party.client_id,
        "client_name": party.client_id,
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": party.jwks,
        "grant_types": ["client_credentials"],
        **extra,
    }


CLIENTS = [_declaration(LEDGER), _declaration(AUDITOR, scope="audit")]


def token_request(party: Party, audience: str, **fields: str) -> dict[str, str]:
    """client_credentials with a private_key_jwt assertion (RFC 7523), a fresh jti each time,
    signed with PyJWT (not the service's own JOSE code)."""
    now = int(time.time())
    claims = {
        "iss": party.client_id,
        "sub": party.client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    assertion = jwt.encode(
        claims, party.key, algorithm="ES256", headers={"kid": f"{party.client_id}-key"}
    )
    return {
        "grant_type": "client_credentials",
        "client_id": party.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
        **fields,
    }


def jti_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["jti"])


def wait_for(what: str, probe: Callable[[], T | None], *, seconds: float) -> T:
    """Poll ``probe`` until it returns something; fail naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.01)


# --- load and observation -----------------------------------------------------------------------


@dataclass
class Load:
    """Client threads asking for tokens back to back, each on its own keep-alive connection (a
    new one after an error). A token counts only when a 200 with a JSON body holding it arrived."""

    service: ServiceProcess
    stop: threading.Event
    received: list[str] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)  # monotonic
    cut: int = 0  # sent, but the connection died before the whole answer arrived
    not_listening: int = 0  # connection refused: no worker was listening at that instant
    refused: list[tuple[int, str]] = field(default_factory=list)  # answers other than 200
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def longest_gap(self) -> float:
        """The longest time no client received a token (seconds)."""
        times = sorted(self.received_at)
        return max((b - a for a, b in pairwise(times)), default=0.0)

    def run(self) -> None:
        session = requests.Session()
        url = self.service.url("/token")
        while not self.stop.is_set():
            data = token_request(LEDGER, self.service.issuer)
            try:
                response = session.post(url, data=data, timeout=30)
            except requests.RequestException as exc:  # the worker died under it
                self._failed(exc)
                session.close()
                session = requests.Session()
                continue
            token = _json(response).get("access_token")
            with self._lock:
                if response.status_code == 200 and isinstance(token, str):
                    self.received.append(token)
                    self.received_at.append(time.monotonic())
                else:  # a 500, a 503, a 200 without a token: all findings
                    self.refused.append((response.status_code, response.text[:300]))
        session.close()

    def _failed(self, exc: requests.RequestException) -> None:
        not_listening = "Connection refused" in str(exc)
        with self._lock:
            if not_listening:
                self.not_listening += 1
            else:
                self.cut += 1
        if not_listening:
            time.sleep(0.02)  # no worker listening at that instant: let one start


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class CheckpointWatcher:
    """The auditor: polls GET /audit/checkpoint and keeps every signed note, in order."""

    service: ServiceProcess
    token: str
    stop: threading.Event
    notes: list[str] = field(default_factory=list)
    failures: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)

    def run(self) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "text/plain"}
        while not self.stop.wait(0.1):
            try:
                response = session.get(
                    self.service.url("/audit/checkpoint"), headers=headers, timeout=30
                )
            except requests.RequestException:
                self.failures += 1
                session.close()
                session = requests.Session()
                continue
            if response.status_code == 200:
                self.notes.append(response.text)
            else:
                self.refused.append((response.status_code, response.text[:300]))
        session.close()


# --- killing workers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    idx: int
    pid: int
    where: str  # "random", "mid-append", "mid-integration"
    # PostgreSQL: the last statement of each of the worker's backends that was inside a
    # transaction the instant before the kill (approximate: the kill follows a few ms later)
    in_transaction: tuple[str, ...] = ()


class Killer:
    """SIGKILLs workers one at a time and waits until granian has spawned the replacement, so
    granian's crash-loop guard (only the last respawned worker index is remembered) is never
    hit: the index just respawned is not killed again within CRASH_LOOP_GUARD seconds."""

    def __init__(
        self,
        service: ServiceProcess,
        rng: random.Random,
        pg: Pg | None = None,
        watch: Connection | None = None,
    ) -> None:
        self.service = service
        self.rng = rng
        self.pg = pg
        self.watch = watch  # an autocommit connection, for pg_stat_activity
        self.kills: list[Kill] = []
        self._last: tuple[int, float] | None = None  # (index, when it was respawned)

    def restricted(self, idx: int) -> bool:
        last = self._last
        return last is not None and last[0] == idx and time.monotonic() - last[1] < CRASH_LOOP_GUARD

    def wait_until_all_serve(self) -> None:
        """Before a targeted kill: every worker started, so the service keeps serving."""
        wait_for(
            "every worker to be serving",
            lambda: all(w.started for w in self.service.workers().values()) or None,
            seconds=30,
        )

    def wait_until_allowed(self, worker: Worker) -> None:
        while self.restricted(worker.idx):
            time.sleep(0.05)

    def kill(self, worker: Worker, where: str) -> None:
        assert not self.restricted(worker.idx)
        assert self.service.running, self.service.tail()
        busy: tuple[str, ...] = ()
        if self.pg is not None and self.watch is not None:
            busy = tuple(self.pg.transactions_of(self.watch, worker))
        os.kill(worker.pid, signal.SIGKILL)
        self.kills.append(Kill(worker.idx, worker.pid, where, busy))

        def replaced() -> Worker | None:
            assert self.service.running, f"the service died:\n{self.service.tail()}"
            now = self.service.workers().get(worker.idx)
            return now if now is not None and now.pid != worker.pid else None

        wait_for(f"granian to respawn worker-{worker.idx}", replaced, seconds=15)
        self._last = (worker.idx, time.monotonic())

    def kill_random(self) -> None:
        """Kill a started worker, if another one is serving: the service is never taken down
        entirely, so kills keep landing on workers in the middle of their work."""
        started = [w for w in self.service.workers().values() if w.started]
        candidates = [w for w in started if not self.restricted(w.idx)]
        if len(started) >= 2 and candidates:
            self.kill(self.rng.choice(candidates), "random")

    def random_kills(self, until: float) -> None:
        while time.monotonic() < until:
            time.sleep(self.rng.uniform(*KILL_PAUSE))
            self.kill_random()


# --- PostgreSQL: who is blocked by whom, and which worker that is --------------------------------


@dataclass
class Pg:
    engine: Engine  # the service's schema
    application_name: str  # the service's backends, and only they, carry it
    port: int

    @contextmanager
    def autocommit(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")

    def blocked_by(self, conn: Connection, blocker: int, statement: str) -> dict[int, int]:
        """The service's backends running ``statement…`` and waiting on a lock that backend
        ``blocker`` holds, as backend pid → client port. ``conn`` must be in autocommit:
        pg_stat_activity is a snapshot per transaction."""
        rows = conn.execute(
            text(
                "SELECT pid, client_port FROM pg_stat_activity WHERE application_name = :app "
                "AND :blocker = ANY(pg_blocking_pids(pid)) AND query ILIKE :statement"
            ),
            {"app": self.application_name, "blocker": blocker, "statement": statement + "%"},
        )
        return {int(pid): int(port) for pid, port in rows if port is not None and port > 0}

    def transactions_of(self, conn: Connection, worker: Worker) -> list[str]:
        """The last statement of each of ``worker``'s backends that is inside a transaction."""
        ports = pg_ports_by_pid([worker.pid], self.port).get(worker.pid, set())
        if not ports:
            return []
        rows = conn.execute(
            text(
                "SELECT query FROM pg_stat_activity WHERE application_name = :app "
                "AND client_port = ANY(:ports) AND state IN ('active', 'idle in transaction')"
            ),
            {"app": self.application_name, "ports": sorted(ports)},
        )
        return [str(query) for (query,) in rows]

    def holds_integrator_lock(self, conn: Connection, backend: int) -> bool:
        """Whether ``backend`` holds the integrator lock (audit_tree._lock)."""
        held = conn.execute(
            text(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE l.pid = :pid AND c.relname = 'audit_checkpoints' "
                "AND l.mode = 'ShareRowExclusiveLock' AND l.granted"
            ),
            {"pid": backend},
        ).scalar_one()
        return bool(held)

    def owners(self, service: ServiceProcess, client_ports: Iterable[int]) -> list[Worker]:
        """The workers whose PostgreSQL connections use these local ports."""
        workers = list(service.workers().values())
        sockets = pg_ports_by_pid([w.pid for w in workers], self.port)
        ports = set(client_ports)
        return [w for w in workers if sockets.get(w.pid, set()) & ports]


def backend_pid(conn: Connection) -> int:
    return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def kill_mid_append(killer: Killer, pg: Pg) -> dict[str, Any]:
    """Stop every issuance at its leaf INSERT (token row written, nothing committed), kill the
    worker of one of them, then let the others go on."""
    killer.wait_until_all_serve()
    with pg.autocommit() as watch, pg.engine.begin() as gate:
        gate.execute(text("SET LOCAL lock_timeout = '10s'"))
        gate.execute(text("LOCK TABLE audit_leaves IN SHARE MODE"))
        me = backend_pid(gate)

        def blocked_workers() -> list[Worker] | None:
            ports = pg.blocked_by(watch, me, "INSERT INTO audit_leaves").values()
            owners = [w for w in pg.owners(killer.service, ports) if w.started]
            allowed = [w for w in owners if not killer.restricted(w.idx)]
            return allowed or None

        victims = wait_for("an issuance blocked at its leaf INSERT", blocked_workers, seconds=15)
        victim = killer.rng.choice(victims)
        blocked = len(pg.blocked_by(watch, me, "INSERT INTO audit_leaves"))
        killer.kill(victim, "mid-append")
    return {"blocked_inserts": blocked, "worker": victim.idx}


def kill_mid_integration(killer: Killer, pg: Pg) -> dict[str, Any]:
    """Let a backlog pile up behind the integrator lock, make the integrator that takes it
    block on the newest pending leaf after it assigned indexes to all older ones, kill its
    worker. Another worker's integrator must integrate the whole batch; returns its figures."""
    killer.wait_until_all_serve()
    with pg.autocommit() as watch, pg.engine.connect() as gate, pg.engine.connect() as holder:
        gate_tx = gate.begin()
        gate.execute(text("SET LOCAL lock_timeout = '10s'"))
        gate.execute(text("LOCK TABLE audit_checkpoints IN SHARE ROW EXCLUSIVE MODE"))
        time.sleep(BACKLOG_SECONDS)  # every integrator now waits for the gate; leaves pile up
        holder_tx = holder.begin()
        newest = holder.execute(
            select(audit_leaves.c.id)
            .where(audit_leaves.c.tree_index.is_(None))
            .order_by(audit_leaves.c.id.desc())
            .limit(1)
            .with_for_update()
        ).scalar_one_or_none()
        assert newest is not None, "no leaf was appended while integration was held back"
        backlog = int(
            holder.execute(
                select(func.count())
                .select_from(audit_leaves)
                .where(audit_leaves.c.tree_index.is_(None), audit_leaves.c.id <= newest)
            ).scalar_one()
        )
        me = backend_pid(holder)
        gate_tx.commit()  # an integrator takes the lock and the whole backlog

        def integrator() -> dict[int, int] | None:
            return pg.blocked_by(watch, me, "UPDATE audit_leaves") or None

        ((backend, port),) = wait_for(
            "an integrator to block on the held leaf", integrator, seconds=15
        ).items()
        # It took the integrator lock and assigned indexes to every older leaf of its batch
        # (in id order) before it reached the held one: this is the middle of an integration.
        assert pg.holds_integrator_lock(watch, backend)
        owners = pg.owners(killer.service, [port])
        assert len(owners) == 1, f"the integrating backend's worker: {owners}"
        victim = owners[0]
        killer.wait_until_allowed(victim)  # the integrator stays blocked meanwhile
        killer.kill(victim, "mid-integration")
        holder_tx.rollback()

    def integrated() -> int | None:
        with pg.autocommit() as conn:
            index = conn.execute(
                select(audit_leaves.c.tree_index).where(audit_leaves.c.id == newest)
            ).scalar_one()
            latest = audit_tree.latest_checkpoint(conn)
        return index if index is not None and latest is not None and latest.size > index else None

    index = wait_for(
        "another integrator to integrate the killed one's batch", integrated, seconds=30
    )
    return {"backlog": backlog, "worker": victim.idx, "held_leaf_index": index}


# --- the test -----------------------------------------------------------------------------------


def cli_audit(*args: str) -> Result:
    return CliRunner().invoke(cli, ["audit", *args])


@dataclass
class FinalLog:
    audit: AuditLog
    verifiers: list[Verifier]
    checkpoint: Checkpoint
    note: str
    tree: MemoryTree
    by_ref: dict[str, list[tuple[int, str]]]  # ref → (tree index, entry) of every leaf


def settle(db: Database, service: ServiceProcess, keys_dir: Path) -> FinalLog:
    """Wait for the service's integrators to leave nothing pending, then read the whole log."""

    def drained() -> bool | None:
        with db.reader() as conn:
            pending = conn.execute(
                select(func.count())
                .select_from(audit_leaves)
                .where(audit_leaves.c.tree_index.is_(None))
            ).scalar_one()
            total = conn.execute(select(func.count()).select_from(audit_leaves)).scalar_one()
            latest = audit_tree.latest_checkpoint(conn)
        return True if pending == 0 and latest is not None and latest.size == total else None

    wait_for("the service's integrators to integrate every leaf", drained, seconds=30)
    verifiers: list[Verifier] = [info.verifier() for info in list_audit_keys(keys_dir)]
    audit = AuditLog(db, load_audit_key(keys_dir), SystemClock(), verifiers=verifiers)
    latest = audit.latest_checkpoint()
    checkpoint = verify_checkpoint(latest.note, verifiers, origin=audit.origin)
    tree = MemoryTree()
    by_ref: dict[str, list[tuple[int, str]]] = {}
    with db.reader() as conn:
        rows = conn.execute(
            select(
                audit_leaves.c.tree_index,
                audit_leaves.c.leaf_hash,
                audit_leaves.c.ref,
                audit_leaves.c.entry,
            ).order_by(audit_leaves.c.tree_index)
        ).all()
        times = list(
            conn.execute(
                select(audit_checkpoints.c.created_at).order_by(audit_checkpoints.c.size)
            ).scalars()
        )
        assert list(times) == sorted(times), "a larger checkpoint carries an earlier time"
    for row in rows:
        assert row.tree_index == tree.append(bytes.fromhex(row.leaf_hash)), "a gap in the tree"
        if row.ref is not None:
            by_ref.setdefault(row.ref, []).append((int(row.tree_index), row.entry))
    assert (tree.size, tree.root()) == (checkpoint.size, checkpoint.root_hash)
    assert service.running
    return FinalLog(audit, verifiers, checkpoint, latest.note, tree, by_ref)


def check_received_tokens(final: FinalLog, tokens: list[str]) -> None:
    """Each received token: one token_issued leaf, integrated, provably in the signed tree."""
    size, root = final.checkpoint.size, final.checkpoint.root_hash
    assert len({jti_of(t) for t in tokens}) == len(tokens), "a jti was issued twice"
    for token in tokens:
        jti = jti_of(token)
        leaves = final.by_ref.get(jti, [])
        issued = [(i, e) for i, e in leaves if isinstance(parse_entry(e.encode()), TokenIssued)]
        assert len(issued) == 1, f"token {jti}: {len(issued)} token_issued leaves"
        index, entry = issued[0]
        logged = parse_entry(entry.encode())
        assert isinstance(logged, TokenIssued)
        assert (logged.token_kind, logged.client_id) == ("access_token", LEDGER.client_id)
        assert index < size
        leaf = final.tree.leaf(index)
        verify_inclusion(leaf, index, size, inclusion_proof(final.tree, index, size), root)


def check_committed_tokens_match_leaves(db: Database, final: FinalLog) -> int:
    """Every committed access token has exactly one token_issued leaf, and every logged access
    token was committed: an issuance and its leaf commit together or not at all."""
    with db.reader() as conn:
        committed = set(conn.execute(select(access_tokens.c.jti)).scalars())
    logged = Counter(
        ref
        for ref, leaves in final.by_ref.items()
        for _, entry in leaves
        if isinstance(e := parse_entry(entry.encode()), TokenIssued)
        and e.token_kind == "access_token"
    )
    assert set(logged) == committed, (
        f"{len(committed - set(logged))} committed tokens without a leaf, "
        f"{len(set(logged) - committed)} leaves without a committed token"
    )
    assert set(logged.values()) == {1}, "an access token logged twice"
    return len(committed)


def check_stored_subtrees(db: Database, final: FinalLog) -> int:
    """The perfect-subtree hashes the integrators stored for proofs (``audit_nodes``; not covered
    by ``verify_stored_log``, which recomputes from the leaves): every complete subtree of the
    final tree is there once, with the hash the leaves give — none lost or left over from an
    integration killed halfway. Returns how many."""
    with db.reader() as conn:
        rows = conn.execute(
            select(audit_nodes.c.level, audit_nodes.c.position, audit_nodes.c.hash)
        ).all()
    size = final.checkpoint.size
    expected = {(lv, pos) for lv in range(1, size.bit_length()) for pos in range(size >> lv)}
    assert {(row.level, row.position) for row in rows} == expected
    for row in rows:
        start, end = row.position << row.level, (row.position + 1) << row.level
        assert bytes.fromhex(row.hash) == final.tree.hash_range(start, end), (row.level, start)
    return len(rows)


def check_observed_checkpoints(final: FinalLog, notes: list[str]) -> int:
    """The auditor's view during the run: signed, never shrinking, the stored checkpoint of its
    size (no split view), and consistent with the final tree (no fork). Returns how many
    distinct checkpoints were seen."""
    assert notes, "the auditor saw no checkpoint"
    size, at = 0, 0
    seen: dict[int, Checkpoint] = {}
    for note in notes:
        checkpoint = verify_checkpoint(note, final.verifiers, origin=final.audit.origin)
        assert checkpoint.size >= size, f"checkpoint size fell from {size} to {checkpoint.size}"
        assert checkpoint.time is not None and checkpoint.time >= at, "checkpoint time went back"
        size, at = checkpoint.size, checkpoint.time
        assert final.audit.checkpoint(checkpoint.size).note == note, "another note of that size"
        seen[checkpoint.size] = checkpoint
    final_size, final_root = final.checkpoint.size, final.checkpoint.root_hash
    for old, checkpoint in sorted(seen.items()):
        assert final.tree.root(old) == checkpoint.root_hash, f"tree of {old} was rewritten"
        proof = final.audit.consistency_proof(old, final_size)
        verify_consistency(old, final_size, checkpoint.root_hash, final_root, proof)
    return len(seen)


def check_with_the_auditor_cli(
    service: ServiceProcess,
    final: FinalLog,
    auditor_token: str,
    tokens: list[str],
    first_note: str,
    out: Path,
) -> None:
    """What an auditor would do: download everything once, then verify offline."""
    kept = out / "kept-checkpoint.txt"
    kept.parent.mkdir(parents=True, exist_ok=True)
    kept.write_text(first_note, encoding="utf-8")
    refs = [arg for token in tokens for arg in ("--ref", jti_of(token))]
    fetched = cli_audit(
        "fetch",
        "--url",
        service.issuer,
        "--token",
        auditor_token,
        "--out",
        str(out),
        "--since",
        str(kept),
        *refs,
    )
    assert fetched.exit_code == 0, fetched.output
    assert (out / "checkpoint.txt").read_text(encoding="utf-8") == final.note
    files = ["--keys", str(out / "keys.json"), "--checkpoint", str(out / "checkpoint.txt")]
    for token in tokens:
        proof = out / f"proof-{jti_of(token)}.json"
        verified = cli_audit("verify", token, *files, "--proof", str(proof))
        assert verified.exit_code == 0, verified.output
        assert "VERIFIED" in verified.output
    replayed = cli_audit("replay", "--entries", str(out / "entries.jsonl"), *files)
    assert replayed.exit_code == 0, replayed.output
    assert "REPLAYED" in replayed.output
    checked = cli_audit(
        "check", "--since", str(kept), *files, "--proof", str(out / "consistency.json")
    )
    assert checked.exit_code == 0, checked.output
    assert "CONSISTENT" in checked.output


@dataclass
class Run:
    """What happened while the load ran."""

    load: Load
    watcher: CheckpointWatcher
    killer: Killer
    phases: dict[str, Any]
    seconds: float


def run_with_kills(
    service: ServiceProcess, auditor_token: str, pg: Pg | None, rng: random.Random, seconds: float
) -> Run:
    """Load, auditor and killer until ``seconds`` passed and MIN_KILLS kills were made; on
    PostgreSQL with a kill mid-append and one mid-integration on the way. The auditor keeps
    watching (the caller stops it once the log settled)."""
    load = Load(service, threading.Event())
    watcher = CheckpointWatcher(service, auditor_token, threading.Event())
    clients = [threading.Thread(target=load.run, daemon=True) for _ in range(CLIENT_THREADS)]
    phases: dict[str, Any] = {}
    start = time.monotonic()
    with ExitStack() as stack:
        watch = stack.enter_context(pg.autocommit()) if pg is not None else None
        killer = Killer(service, rng, pg, watch)
        threading.Thread(target=watcher.run, daemon=True).start()
        try:
            for thread in clients:
                thread.start()
            killer.random_kills(until=start + seconds * 0.3)
            if pg is not None:
                phases["mid_append"] = kill_mid_append(killer, pg)
            killer.random_kills(until=start + seconds * 0.6)
            if pg is not None:
                phases["mid_integration"] = kill_mid_integration(killer, pg)
            killer.random_kills(until=start + seconds)
            while len(killer.kills) < MIN_KILLS and time.monotonic() < start + MAX_LOAD_SECONDS:
                killer.random_kills(until=time.monotonic() + 1)
        except BaseException:
            watcher.stop.set()
            raise
        finally:
            load.stop.set()
            for thread in clients:
                thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in clients), "a client thread hangs"
    return Run(load, watcher, killer, phases, time.monotonic() - start)


def application_errors(service: ServiceProcess) -> list[str]:
    """What the service (not granian, whose ``[ERROR] Unexpected exit`` lines are expected)
    logged as an error: a failed integration, a storage error, an exception."""
    lines = service.log().splitlines()
    return [
        line
        for line in lines
        if re.search(r" (ERROR|CRITICAL) trustanchor", line) or line.startswith("Traceback")
    ]


def kill_figures(kills: list[Kill]) -> dict[str, int]:
    return {
        "kills_in_transaction": sum(1 for k in kills if k.in_transaction),
        "kills_after_an_audit_statement": sum(
            1 for k in kills if any("audit_" in q for q in k.in_transaction)
        ),
    }


def auditor_token_of(service: ServiceProcess) -> str:
    data = token_request(AUDITOR, service.issuer, scope="audit")
    got = requests.post(service.url("/token"), data=data, timeout=30)
    assert got.status_code == 200, got.text
    return str(got.json()["access_token"])


@pytest.mark.parametrize(
    "database_url",
    ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
    indirect=True,
)
@pytest.mark.timeout(240)
def test_workers_killed_under_load_lose_no_received_token_and_never_fork_the_log(
    tmp_path: Path, database_url: str
) -> None:
    if not Path("/proc/net/tcp").exists():
        pytest.skip("finds worker processes and their connections through Linux's /proc")
    began = time.monotonic()
    rng = random.Random()
    db = Database(database_url)
    pg: Pg | None = None
    service_url = database_url
    if db.dialect == "postgresql":
        application_name = "ta_crash_" + secrets.token_hex(4)
        service_url = f"{database_url}&application_name={application_name}"
        pg = Pg(create_engine(database_url), application_name, make_url(database_url).port or 5432)
    run: Run | None = None
    try:
        with running_service(
            tmp_path,
            database_url=service_url,
            clients=CLIENTS,
            workers=WORKERS,
            overrides={"audit": {"checkpoint_interval_ms": INTERVAL_MS}},
        ) as service:
            auditor_token = auditor_token_of(service)
            run = run_with_kills(service, auditor_token, pg, rng, LOAD_SECONDS[db.dialect])
            assert service.running, f"the service did not survive the kills:\n{service.tail()}"
            run.killer.wait_until_all_serve()
            assert len(service.workers()) == WORKERS
            final = settle(db, service, tmp_path / "keys")
            run.watcher.stop.set()

            assert len(run.killer.kills) >= MIN_KILLS, run.killer.kills
            assert application_errors(service) == [], "the service logged errors"
            assert run.load.refused == [], f"answers other than 200: {run.load.refused[:5]}"
            assert run.watcher.refused == [], f"auditor refused: {run.watcher.refused[:5]}"
            assert run.load.received, "no token was received"
            check_received_tokens(final, run.load.received)
            committed = check_committed_tokens_match_leaves(db, final)
            verification = final.audit.verify_stored_log()
            assert (verification.size, verification.root_hash) == (
                final.checkpoint.size,
                final.checkpoint.root_hash,
            )
            subtrees = check_stored_subtrees(db, final)
            distinct = check_observed_checkpoints(final, run.watcher.notes)
            sample = rng.sample(run.load.received, min(CLI_SAMPLE, len(run.load.received)))
            check_with_the_auditor_cli(
                service, final, auditor_token, sample, run.watcher.notes[0], tmp_path / "auditor"
            )
            figures = {
                "database": db.dialect,
                "kills": len(run.killer.kills),
                "kills_by_kind": Counter(k.where for k in run.killer.kills),
                **run.phases,
                **(
                    {
                        "kills_in_transaction": sum(
                            1 for k in run.killer.kills if k.in_transaction
                        ),
                        "kills_after_an_audit_statement": sum(
                            1
                            for k in run.killer.kills
                            if any("audit_" in q for q in k.in_transaction)
                        ),
                    }
                    if pg is not None
                    else {}
                ),
                "tokens_received": len(run.load.received),
                "tokens_committed": committed,
                "committed_not_received": committed - 1 - len(run.load.received),
                "failed_requests_cut": run.load.cut,
                "failed_connections_refused": run.load.not_listening,
                "longest_gap_between_tokens_s": round(run.load.longest_gap(), 2),
                "final_tree_size": final.checkpoint.size,
                "stored_checkpoints_verified": verification.checkpoints,
                "stored_subtree_hashes_verified": subtrees,
                "checkpoints_seen_by_auditor": distinct,
                "auditor_poll_failures": run.watcher.failures,
                "load_seconds": round(run.seconds, 1),
                "test_seconds": round(time.monotonic() - began, 1),
            }
            print("\ncrash test:", json.dumps(figures, default=dict))
    finally:
        if run is not None:
            run.load.stop.set()
            run.watcher.stop.set()
        if pg is not None:
            pg.engine.dispose()
        db.dispose()
