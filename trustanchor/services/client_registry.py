"""The client registry: clients parsed from the rows of ``clients`` (validated metadata JSON plus an
optional demo secret digest; ``storage/clients_repo.py``), an in-process snapshot of *all* of them
with their verification keys, and the use case of applying the configuration's ``[[clients]]``
declarations.

Why a snapshot of every client (issue 14). Client authentication must not tell a registered
client_id from an unknown one, by its answer or by its time. A cache of recently used clients
(plus, later, a bounded memory of unknown ids) did not achieve that: an attacker who flooded
more than the memory's 4,096 made-up ids emptied it, and then a registered, recently used id was
answered from memory while an unknown id cost a database query, about a millisecond later over
HTTP, with no overlap. Any cache that tells "seen recently" from "never seen" leaks the same way.
So the registry now holds every registered client, and :meth:`ClientRegistry.get` is one dict
lookup for any id, registered or not, with no database query on the request path (also the
cheapest token path, issue 13). A flood of made-up ids stores nothing.

Refresh. The snapshot is at most ``cache_ttl`` seconds old (injected clock,
``trustanchor/clock.py``). The first lookup after that refreshes it, whatever id it asks for: one
cheap query reads every ``(client_id, updated_at)`` (clients_repo.list_versions), and only rows
that are new or whose ``updated_at`` moved are read in full and parsed (metadata and JWKS); rows
that are gone are dropped. ``updated_at`` moves on every change of a row (clients_repo.upsert_row),
so this sees additions, changes and removals by other processes within ``cache_ttl``; writes
through this registry (:meth:`~ClientRegistry.upsert`, :meth:`~ClientRegistry.remove`) refresh
it at once. The refresh runs in whichever request comes first after the snapshot expires rather
than in a background thread: its cost depends only on the time and on what changed, never on the
id asked for, and it needs no thread to start, stop and survive the server's worker processes,
and a test can drive it with the injected clock. Only one thread refreshes at a time; meanwhile
the others keep answering from the previous snapshot (stale by at most that one query).

Start-up: the first lookup loads the snapshot (every row read and parsed once); threads that
arrive meanwhile wait for it.

A refresh that fails (database unreachable) raises ``StorageUnavailable`` in the request that
tried it (a 503, as every other use of the database fails) and marks the snapshot failed: until a
refresh succeeds, lookups do not answer from it (a client removed meanwhile must not stay usable
beyond ``cache_ttl``); the next lookup that finds no refresh running tries again, the others fail
at once instead of queueing behind the database's connect timeout. Token issuance writes to the
database anyway, so keeping the last snapshot would not keep the service up.

Size. The table holds intermediaries, wallets and auditors: tens to hundreds of rows. The
snapshot is bounded by :data:`MAX_CLIENTS` (10,000; a few KB each parsed, so tens of MB at most,
and a first load of about a second). With more rows the registry refuses to work
(:class:`TooManyClients`, fail closed) rather than fall back to per-id queries, which would leak
again; raise the bound only with measurements.

A stored row that no longer validates is kept as invalid: a lookup of that id raises
``ValueError`` (as before: the CLI turns it into advice), other ids are unaffected.
"""

from __future__ import annotations

import builtins
import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from trustanchor.clock import Clock
from trustanchor.domain.clients import Client
from trustanchor.jose.jwk import PublicKey, keys_from_jwks
from trustanchor.oauth.client_metadata import (
    client_from_declaration,
    client_from_metadata,
    client_to_metadata,
)
from trustanchor.storage import clients_repo
from trustanchor.storage.database import Database, StorageUnavailable

MAX_CLIENTS = 10_000


class TooManyClients(RuntimeError):
    """More rows in ``clients`` than the registry holds in memory (:data:`MAX_CLIENTS`)."""


@dataclass(frozen=True, slots=True)
class _Entry:
    client: Client
    keys: Mapping[str, PublicKey]
    secret_digest: str | None
    updated_at: int


@dataclass(frozen=True, slots=True)
class _Invalid:
    """A stored row whose metadata no longer validates (kept so that it is not re-parsed)."""

    problem: str
    updated_at: int


@dataclass(frozen=True, slots=True)
class _Snapshot:
    entries: Mapping[str, _Entry | _Invalid]  # never changed once published: replaced whole
    loaded_at: int
    failed: bool = False  # the last refresh failed: not to be answered from


def parse_verification_keys(client: Client) -> dict[str, PublicKey]:
    """The client's public signing keys by kid (thumbprint when the JWK has no kid)."""
    if client.jwks is None:
        return {}
    return keys_from_jwks(dict(client.jwks))


class ClientRegistry:
    def __init__(self, db: Database, *, cache_ttl: int = 30, clock: Clock) -> None:
        self._db = db
        self._ttl = cache_ttl
        self._clock = clock
        self._snapshot: _Snapshot | None = None  # read without the lock; replaced whole
        self._refresh_lock = threading.Lock()

    def get(self, client_id: str) -> Client | None:
        entry = self._entry(client_id)
        return entry.client if entry else None

    def verification_keys(self, client: Client) -> dict[str, PublicKey]:
        """Parsed keys of ``client``, from the snapshot when it holds this version of the client."""
        snapshot = self._snapshot
        entry = snapshot.entries.get(client.client_id) if snapshot is not None else None
        if isinstance(entry, _Entry) and (entry.client is client or entry.client == client):
            return dict(entry.keys)
        return parse_verification_keys(client)

    def secret_digest(self, client_id: str) -> str | None:
        """The stored digest of a demo ``client_secret_basic`` secret, if any."""
        entry = self._entry(client_id)
        return entry.secret_digest if entry else None

    def upsert(self, client: Client, secret_digest: str | None, now: int) -> bool:
        """Store ``client``. Returns False (and writes nothing) when the row is already equal."""
        with self._db.transaction() as conn:
            written = upsert_row(conn, client, secret_digest, now)
        self._refresh_after_write()
        return written

    def remove(self, client_id: str) -> bool:
        with self._db.transaction() as conn:
            removed = clients_repo.delete_row(conn, client_id)
        self._refresh_after_write()
        return removed

    def list(self) -> builtins.list[Client]:
        with self._db.reader() as conn:
            rows = clients_repo.list_rows(conn)
        return [client_from_metadata(row.metadata, updated_at=row.updated_at) for row in rows]

    def _entry(self, client_id: str) -> _Entry | None:
        entry = self._entries().get(client_id)
        if entry is None or isinstance(entry, _Entry):
            return entry
        raise ValueError(entry.problem)

    def _entries(self) -> Mapping[str, _Entry | _Invalid]:
        """The current snapshot's clients; refreshed first when it is older than the TTL. Nothing
        here depends on the client_id asked for."""
        snapshot = self._snapshot
        now = self._clock.now()
        if snapshot is not None and not snapshot.failed and now - snapshot.loaded_at < self._ttl:
            return snapshot.entries
        # Nothing loaded yet: wait for the first load. Expired: one thread refreshes, the
        # others answer from the previous snapshot meanwhile (or fail at once after a failure).
        if not self._refresh_lock.acquire(blocking=snapshot is None):
            assert snapshot is not None
            if snapshot.failed:
                raise StorageUnavailable("the client registry could not be refreshed")
            return snapshot.entries
        try:
            current = self._snapshot
            now = self._clock.now()
            if current is not None and not current.failed and now - current.loaded_at < self._ttl:
                return current.entries  # another thread refreshed it while we waited
            return self._refresh(current, now).entries
        finally:
            self._refresh_lock.release()

    def _refresh_after_write(self) -> None:
        """Our own write is visible at once: refresh now (the write has committed)."""
        # A failure leaves the snapshot marked failed: the write stands, the next lookup retries.
        with self._refresh_lock, contextlib.suppress(Exception):
            self._refresh(self._snapshot, self._clock.now())

    def _refresh(self, previous: _Snapshot | None, now: int) -> _Snapshot:
        """Load what changed since ``previous`` and publish the new snapshot (refresh lock held)."""
        old: Mapping[str, _Entry | _Invalid] = previous.entries if previous is not None else {}
        try:
            with self._db.reader() as conn:
                versions = clients_repo.list_versions(conn, limit=MAX_CLIENTS + 1)
                if len(versions) > MAX_CLIENTS:
                    raise TooManyClients(
                        f"more than {MAX_CLIENTS} clients are registered; the client registry "
                        "holds all of them in memory (services/client_registry.py)"
                    )
                changed = [
                    client_id
                    for client_id, updated_at in versions
                    if (known := old.get(client_id)) is None or known.updated_at != updated_at
                ]
                rows = clients_repo.get_rows(conn, changed) if changed else []
        except Exception:
            self._snapshot = _Snapshot(old, previous.loaded_at if previous else now, failed=True)
            raise
        fresh = {row.client_id: _parse(row) for row in rows}
        reread = set(changed)
        entries: dict[str, _Entry | _Invalid] = {}
        for client_id, _ in versions:
            entry = fresh.get(client_id) if client_id in reread else old.get(client_id)
            if entry is not None:  # None: removed between the two queries
                entries[client_id] = entry
        snapshot = _Snapshot(entries, now)
        self._snapshot = snapshot
        return snapshot


def _parse(row: clients_repo.ClientRow) -> _Entry | _Invalid:
    try:
        client = client_from_metadata(row.metadata, updated_at=row.updated_at)
        return _Entry(client, parse_verification_keys(client), row.secret_digest, row.updated_at)
    except Exception as exc:  # this client only: the other clients stay usable
        return _Invalid(str(exc) or exc.__class__.__name__, row.updated_at)


def upsert_row(conn: Connection, client: Client, secret_digest: str | None, now: int) -> bool:
    """Store ``client`` as its metadata row inside the caller's transaction; False if unchanged.
    A new client beyond :data:`MAX_CLIENTS` is refused (TooManyClients): the registry could no
    longer hold every client, and every lookup would fail closed."""
    if not clients_repo.exists(conn, client.client_id) and clients_repo.count(conn) >= MAX_CLIENTS:
        raise TooManyClients(
            f"{MAX_CLIENTS} clients are registered already, the most the client registry holds "
            "in memory (services/client_registry.py); remove one first"
        )
    return clients_repo.upsert_row(
        conn, client.client_id, client_to_metadata(client), secret_digest, now
    )


def apply_client_declarations(
    db: Database,
    declarations: Sequence[Mapping[str, Any]],
    *,
    mode: str,
    base_dir: Path,
    now: int,
    on_write: Callable[[Connection, str, str], None] | None = None,
) -> builtins.list[str]:
    """Validate every declaration, then write them all in one transaction.

    Idempotent: unchanged clients are not rewritten, and the ids actually written are returned.
    Clients registered by other means (``trustanchor clients add``) are left alone. Any invalid
    declaration aborts the whole run before anything is written, with every problem listed.
    ``on_write(conn, client_id, "added" | "updated")`` runs in the same transaction for every
    client written (the audit log's operator_change entries), so both commit or neither does.
    """
    parsed: builtins.list[tuple[Client, str | None]] = []
    problems: builtins.list[str] = []
    seen: set[str] = set()
    for decl in declarations:
        try:
            client, digest = client_from_declaration(decl, mode=mode, base_dir=base_dir)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if client.client_id in seen:
            problems.append(f"client {client.client_id!r}: declared more than once")
            continue
        seen.add(client.client_id)
        parsed.append((client, digest))
    if problems:
        raise ValueError("invalid client declarations:\n  - " + "\n  - ".join(problems))
    written: builtins.list[str] = []
    with db.transaction() as conn:
        for client, digest in parsed:
            existed = clients_repo.exists(conn, client.client_id)
            if upsert_row(conn, client, digest, now):
                written.append(client.client_id)
                if on_write is not None:
                    on_write(conn, client.client_id, "updated" if existed else "added")
    return written


class StaticClients:
    """An in-memory client store (tests, tools that verify offline). Same interface as
    :class:`ClientRegistry` for reads."""

    def __init__(self, clients: Sequence[tuple[Client, str | None]]) -> None:
        self._clients = {c.client_id: (c, digest) for c, digest in clients}
        self._keys = {c.client_id: parse_verification_keys(c) for c, _ in clients}

    def get(self, client_id: str) -> Client | None:
        found = self._clients.get(client_id)
        return found[0] if found else None

    def verification_keys(self, client: Client) -> dict[str, PublicKey]:
        found = self._clients.get(client.client_id)
        if found is not None and found[0] == client:
            return dict(self._keys[client.client_id])
        return parse_verification_keys(client)

    def secret_digest(self, client_id: str) -> str | None:
        found = self._clients.get(client_id)
        return found[1] if found else None
