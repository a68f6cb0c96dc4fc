"""Bringing a deployment to a runnable state: secrets, signing key, schema, declarations.

``trustanchor init`` runs all of it; ``serve`` runs it again at start (it is idempotent), except
that production never generates a signing key on its own and refuses demo keys.
"""

from __future__ import annotations

from pathlib import Path

from trustanchor.anchors.declarations import apply_anchor_declarations
from trustanchor.config.settings import Settings
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
