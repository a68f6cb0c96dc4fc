"""The client registry: clients parsed from the rows of ``clients`` (validated metadata JSON plus an
optional demo secret digest; ``storage/clients_repo.py``), a short-lived in-process cache of the
parsed clients and their verification keys, and the use case of applying the configuration's
``[[clients]]`` declarations.

The token endpoint looks a client up on every request; parsing metadata and importing JWKS each
time would be wasted work, so parsed results are kept for ``cache_ttl`` seconds and, after that,
re-used as long as the row's ``updated_at`` has not changed. Writes through this repository drop
the cached entry at once; writes by other processes are seen within ``cache_ttl``.

Unknown client ids are remembered the same way, for ``cache_ttl`` seconds (issue 14): otherwise
every lookup of an unknown id was a database query while a registered client came from memory,
and client authentication answered unknown clients measurably later than a wrong key or secret
of a registered one (0.23 ms on SQLite), which told who is registered. Now only the first lookup
of an id within ``cache_ttl`` queries the database, registered or not. So a client added by
*another* process is usable within ``cache_ttl`` after an earlier lookup of its id, like a
change to a registered one. The memory of unknown ids is bounded (:data:`ABSENT_CACHE_SIZE`,
emptied when full), so a flood of made-up ids costs no more than that.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
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
from trustanchor.storage.database import Database

ABSENT_CACHE_SIZE = 4096


@dataclass(frozen=True, slots=True)
class _Entry:
    client: Client
    keys: Mapping[str, PublicKey]
    secret_digest: str | None
    checked_at: int


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
        self._cache: dict[str, _Entry] = {}
        self._absent: dict[str, int] = {}  # unknown id -> when the database said so
        self._lock = threading.Lock()

    def get(self, client_id: str) -> Client | None:
        entry = self._entry(client_id)
        return entry.client if entry else None

    def verification_keys(self, client: Client) -> dict[str, PublicKey]:
        """Parsed keys of ``client``, from the cache when it holds this version of the client."""
        with self._lock:
            entry = self._cache.get(client.client_id)
        if entry is not None and entry.client == client:
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
        self._forget(client.client_id)
        return written

    def remove(self, client_id: str) -> bool:
        with self._db.transaction() as conn:
            removed = clients_repo.delete_row(conn, client_id)
        self._forget(client_id)
        return removed

    def list(self) -> builtins.list[Client]:
        with self._db.reader() as conn:
            rows = clients_repo.list_rows(conn)
        return [client_from_metadata(row.metadata, updated_at=row.updated_at) for row in rows]

    def _entry(self, client_id: str) -> _Entry | None:
        now = self._clock.now()
        with self._lock:
            cached = self._cache.get(client_id)
            absent_since = self._absent.get(client_id)
        if cached is not None and now - cached.checked_at < self._ttl:
            return cached
        if absent_since is not None and now - absent_since < self._ttl:
            return None
        with self._db.reader() as conn:
            row = clients_repo.get_row(conn, client_id)
        if row is None:
            with self._lock:
                self._cache.pop(client_id, None)
                if len(self._absent) >= ABSENT_CACHE_SIZE:
                    self._absent.clear()
                self._absent[client_id] = now
            return None
        if cached is not None and cached.client.updated_at == row.updated_at:
            entry = replace(cached, secret_digest=row.secret_digest, checked_at=now)
        else:
            client = client_from_metadata(row.metadata, updated_at=row.updated_at)
            entry = _Entry(client, parse_verification_keys(client), row.secret_digest, now)
        with self._lock:
            self._cache[client_id] = entry
            self._absent.pop(client_id, None)
        return entry

    def _forget(self, client_id: str) -> None:
        with self._lock:
            self._cache.pop(client_id, None)
            self._absent.pop(client_id, None)


def upsert_row(conn: Connection, client: Client, secret_digest: str | None, now: int) -> bool:
    """Store ``client`` as its metadata row inside the caller's transaction; False if unchanged."""
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
