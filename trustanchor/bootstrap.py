"""Bringing a deployment to a runnable state: secrets, signing key, schema, declarations.

``trustanchor init`` runs all of it; ``serve`` runs it again at start (it is idempotent), except
that production never generates a signing key or an audit (checkpoint) key on its own and
refuses demo keys.
"""

from __future__ import annotations

from pathlib import Path

from trustanchor.anchors.declarations import apply_anchor_declarations
from trustanchor.config.settings import Settings
from trustanchor.keystore.audit_key import generate_audit_key, list_audit_keys
from trustanchor.keystore.signing_keys import SigningKeyStore, generate_key
from trustanchor.secrets_store import load_secrets
from trustanchor.storage.clients_repo import apply_client_declarations
from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade


class StartupRefused(Exception):
    """The deployment is not safe to run as configured; the message says exactly why."""


def initialise(settings: Settings, db: Database, *, now: int, generate_keys: bool) -> list[str]:
    messages: list[str] = []
    load_secrets(settings, create=not settings.is_production)
    keys_dir = Path(settings.service.keys_dir)
    store = SigningKeyStore.open(keys_dir, retention=settings.tokens.key_retention)
    if not store.published_or_active():
        if not generate_keys:
            raise StartupRefused(
                f"no signing key in {keys_dir}: "
                "run `trustanchor keys generate` (or `trustanchor init`)"
            )
        kid = generate_key(
            keys_dir,
            alg=settings.tokens.signing_alg,
            now=now,
            demo=not settings.is_production,
        )
        messages.append(f"generated signing key {kid}")
        store = SigningKeyStore.open(keys_dir, retention=settings.tokens.key_retention)
    if settings.is_production and store.has_demo_keys:
        raise StartupRefused(
            f"{keys_dir} holds demo signing keys; production needs keys generated in production "
            'mode (`trustanchor keys rotate` with mode = "production")'
        )
    messages.extend(_audit_key(settings, keys_dir, now=now, generate_keys=generate_keys))
    upgrade(db)
    messages.append("database schema is up to date")
    for change in apply_anchor_declarations(
        db, settings.anchors, settings.anchor_sets, base_dir=settings.config_dir, now=now
    ):
        messages.append(change)
    for client_id in apply_client_declarations(
        db, settings.clients, mode=settings.service.mode, base_dir=settings.config_dir, now=now
    ):
        messages.append(f"client {client_id} written")
    return messages


def _audit_key(settings: Settings, keys_dir: Path, *, now: int, generate_keys: bool) -> list[str]:
    """The audit (checkpoint) key: generated like the signing key — by ``init``, or at start
    outside production — and always named like the configured log origin, which never
    changes once a key carries it."""
    origin = settings.audit_origin
    keys = list_audit_keys(keys_dir)
    if any(info.name != origin for info in keys):
        name = keys[0].name
        raise StartupRefused(
            f"the audit key in {keys_dir / 'audit'} is named {name!r} but the log origin is "
            f"{origin!r}; a log's origin never changes: set audit.origin = {name!r}"
        )
    if any(info.retired_at is None for info in keys):
        return []
    if not generate_keys:
        raise StartupRefused(
            f"no audit key in {keys_dir / 'audit'}: run `trustanchor init` to generate the "
            "checkpoint signing key (production never generates one at start)"
        )
    info = generate_audit_key(keys_dir, name=origin, now=now)
    return [f"generated audit key {origin}+{info.key_id_hex}"]
