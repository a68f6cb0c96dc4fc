"""Bringing a deployment to a runnable state: secrets, schema, signing key, declarations.

``trustanchor init`` runs all of it; ``serve`` runs it again at start (it is idempotent), except
that production never generates a signing key or an audit (checkpoint) key on its own and
refuses demo keys.

Every key generated and every declaration change is an ``operator_change`` entry of the audit
log, so the schema comes first (the checks that refuse a start still come before anything is
written). Declarations record their entries in the transaction of the change; keys record
theirs before the key is written (services/key_changes.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from trustanchor.audit.entries import EntryError, OperatorChange
from trustanchor.clock import FixedClock
from trustanchor.config.settings import Settings
from trustanchor.keystore.audit_key import list_audit_keys
from trustanchor.keystore.signing_keys import KeyStoreError, SigningKeyStore
from trustanchor.secrets_store import load_secrets
from trustanchor.services import (
    audit_trail,
    auditor_console,
    cascades,
    key_changes,
    my_links,
    upstream_login,
)
from trustanchor.services.anchor_declarations import apply_anchor_declarations
from trustanchor.services.client_registry import apply_client_declarations
from trustanchor.storage.anchors_repo import AnchorRepository, Change
from trustanchor.storage.database import Database, StorageUnavailable
from trustanchor.storage.migrate import upgrade

T = TypeVar("T")


class StartupRefused(Exception):
    """The deployment is not safe to run as configured; the message says exactly why."""


def initialise(settings: Settings, db: Database, *, now: int, generate_keys: bool) -> list[str]:
    messages: list[str] = []
    secrets = load_secrets(settings, create=not settings.is_production)
    keys_dir = Path(settings.service.keys_dir)
    store = SigningKeyStore.open(
        keys_dir, retention=settings.tokens.key_retention, clock=FixedClock(now)
    )
    needs_signing_key = not store.published_or_active()
    if needs_signing_key and not generate_keys:
        raise StartupRefused(
            f"no signing key in {keys_dir}: run `trustanchor init` (or `trustanchor keys generate`)"
        )
    if settings.is_production and store.has_demo_keys:
        raise StartupRefused(
            f"{keys_dir} holds demo signing keys that sign now or later; production needs keys "
            "generated in production mode (`trustanchor keys rotate --immediately` with mode = "
            '"production")'
        )
    needs_audit_key = _needs_audit_key(settings, keys_dir, generate_keys=generate_keys)
    _upgrade(settings, db)
    messages.append("database schema is up to date")
    if needs_signing_key:
        kid = _key_change(
            lambda: key_changes.generate_signing_key(
                db,
                keys_dir,
                alg=settings.tokens.signing_alg,
                now=now,
                demo=not settings.is_production,
            )
        )
        messages.append(f"generated signing key {kid}")
    if needs_audit_key:
        info = _key_change(
            lambda: key_changes.generate_audit_key(
                db, keys_dir, name=settings.audit_origin, now=now
            )
        )
        messages.append(f"generated audit key {info.name}+{info.key_id_hex}")
    for change in apply_anchor_declarations(
        db,
        settings.anchors,
        settings.anchor_sets,
        base_dir=settings.config_dir,
        now=now,
        on_write=_record_anchor_changes(now),
        allow_http=not settings.is_production,
    ):
        messages.append(change)
    # Trust withdrawn by a declaration (an anchor declared suspended or retired) has the same
    # effects as `trustanchor anchors suspend`; idempotent, so a start also finishes a cascade an
    # earlier failure interrupted.
    for anchor in AnchorRepository(db).list():
        if not anchor.is_active:
            result = cascades.anchor_suspended(db, anchor.id, at=now)
            if result != cascades.CascadeResult(0, 0, 0):
                messages.append(
                    f"anchor {anchor.id} is {anchor.status}: {result.revoked_grants} transfer "
                    f"grant(s) revoked, {result.flagged_accounts} account(s) and "
                    f"{result.flagged_links} link(s) flagged for re-verification"
                )
    # Our private_key_jwt key for every upstream OpenID Provider (anchor kind oidc), made when
    # missing (services/upstream_login.py; keystore/upstream_keys.py).
    messages.extend(
        upstream_login.ensure_client_keys(
            keys_dir, AnchorRepository(db).list(), generate=generate_keys
        )
    )
    for client_id in apply_client_declarations(
        db,
        settings.clients,
        mode=settings.service.mode,
        base_dir=settings.config_dir,
        now=now,
        on_write=_record_client_change(now),
    ):
        messages.append(f"client {client_id} written")
    messages.extend(auditor_console.register_client(settings, db, secrets, now=now))
    messages.extend(my_links.register_client(settings, db, secrets, now=now))
    return messages


def _needs_audit_key(settings: Settings, keys_dir: Path, *, generate_keys: bool) -> bool:
    """Whether the audit (checkpoint) key must be generated: like the signing key — by ``init``,
    or at start outside production — and always named like the configured log origin, which
    never changes once a key carries it."""
    origin = settings.audit_origin
    keys = list_audit_keys(keys_dir)
    if any(info.name != origin for info in keys):
        name = keys[0].name
        raise StartupRefused(
            f"the audit key in {keys_dir / 'audit'} is named {name!r} but the log origin is "
            f"{origin!r}; a log's origin never changes: set audit.origin = {name!r}"
        )
    if any(info.retired_at is None for info in keys):
        return False
    if not generate_keys:
        raise StartupRefused(
            f"no audit key in {keys_dir / 'audit'}: run `trustanchor init` to generate the "
            "checkpoint signing key (production never generates one at start)"
        )
    return True


def _upgrade(settings: Settings, db: Database) -> None:
    try:
        upgrade(db)
    except (StorageUnavailable, SQLAlchemyError) as exc:
        url = make_url(settings.service.database_url).render_as_string(hide_password=True)
        raise StartupRefused(
            f"cannot create or migrate the database {url} ({exc.__class__.__name__}); no key "
            "was generated and no declaration applied. Check service.database_url and that "
            "the database server is running"
        ) from exc


def _key_change(change: Callable[[], T]) -> T:
    """Run a recorded key change; whatever stops it becomes a refusal that says what happened
    (services/key_changes.py: not recorded means not made)."""
    try:
        return change()
    except (key_changes.KeyChangeNotRecorded, key_changes.KeyChangeIncomplete) as exc:
        raise StartupRefused(str(exc)) from exc
    except (KeyStoreError, OSError) as exc:
        raise StartupRefused(f"cannot create a key: {exc}") from exc


def _record_anchor_changes(now: int) -> Callable[[Connection, Sequence[Change]], None]:
    def record(conn: Connection, changes: Sequence[Change]) -> None:
        _record_all(conn, lambda: audit_trail.anchor_registry_changes(at=now, changes=changes))

    return record


def _record_client_change(now: int) -> Callable[[Connection, str, str], None]:
    def record(conn: Connection, client_id: str, action: str) -> None:
        _record_all(
            conn,
            lambda: [
                audit_trail.operator_change(at=now, what="client", id=client_id, action=action)
            ],
        )

    return record


def _record_all(conn: Connection, build: Callable[[], Sequence[OperatorChange]]) -> None:
    """Append the entries inside the declarations' transaction. An id the audit log cannot
    hold (an ``@``, or 43+ base64url characters: the shapes of addresses and secrets) refuses
    the declaration and the whole run writes nothing; tokens naming it could not be recorded
    either."""
    try:
        entries = build()
    except EntryError as exc:
        raise ValueError(
            f"a declared id cannot appear in the audit log ({exc}); choose an id without '@' "
            "that is not 43 or more letters, digits, '-' and '_' only"
        ) from exc
    for entry in entries:
        audit_trail.record(conn, entry)
