"""Changes to the service's own keys, recorded in the audit log *before* they are made.

A key file on disk and a leaf in the database cannot change in one transaction, so one of them
goes first. The leaf does: the new key is made in memory, its ``operator_change`` entries (the
new key ``generated``, every key a rotation retires ``retired``) commit in one transaction, and
only then is the key written to disk.

- If the entries cannot be written (database unreachable, schema not created yet), nothing is
  changed: :class:`KeyChangeNotRecorded`.
- If writing the key fails after the entries committed, the log names a key that never came into
  use: no token, JWKS or checkpoint can carry it. :class:`KeyChangeIncomplete` says so.

The other order could leave a key that signs tokens or checkpoints with no entry at all (a crash
or a database outage between the two steps): exactly the gap the log exists to close.

Signing keys appear by the digest of their kid (:func:`audit_trail.signing_key_ref`: kids are
RFC 7638 thumbprints, which the identifier shape refuses); audit keys by their key ID in hex.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from trustanchor.audit.entries import OperatorChange, digest
from trustanchor.audit.note import Ed25519Signer
from trustanchor.clock import Clock
from trustanchor.keystore import audit_key, signing_keys
from trustanchor.keystore.audit_key import AuditKeyInfo
from trustanchor.services import audit_trail
from trustanchor.services.audit_log import MAX_PAGE, AuditLog, AuditLogError
from trustanchor.storage.database import Database, StorageUnavailable

SIGNING_KEY = "signing_key"
AUDIT_KEY = "audit_key"


class KeyChangeNotRecorded(Exception):
    """The audit log could not record the change, so no key was created or retired."""


class KeyChangeIncomplete(Exception):
    """The change is in the audit log but writing the key failed: the log names a key that
    does not exist (harmless: nothing can be signed with it), and the operator must know."""


def generate_signing_key(
    db: Database,
    keys_dir: str | Path,
    *,
    alg: str,
    now: int,
    demo: bool,
    active_from: int | None = None,
) -> str:
    """Record, then create a signing key, published at once, signing from ``active_from``
    (default: at once). Returns its kid."""
    private = signing_keys.new_private_key(alg)
    kid = signing_keys.key_id(private)
    _record(db, now, [(SIGNING_KEY, audit_trail.signing_key_ref(kid), "generated")])
    try:
        return signing_keys.generate_key(
            keys_dir, alg=alg, now=now, demo=demo, private=private, active_from=active_from
        )
    except (signing_keys.KeyStoreError, OSError) as exc:
        raise _incomplete(f"signing key {kid}", exc) from exc


def rotate_signing_keys(
    db: Database,
    keys_dir: str | Path,
    *,
    alg: str,
    now: int,
    demo: bool,
    activate_at: int | None = None,
) -> tuple[str, list[str]]:
    """Record, then publish a new key that signs from ``activate_at`` (default: at once) and
    retire the active ones at that instant. Returns (new, retired).

    The entries are recorded at ``now``, when the change is made: the new key ``generated``
    (published from then on), the old ones ``retired`` (they sign until ``activate_at``)."""
    private = signing_keys.new_private_key(alg)
    kid = signing_keys.key_id(private)
    retire = signing_keys.active_kids(keys_dir)
    changes = [(SIGNING_KEY, audit_trail.signing_key_ref(kid), "generated")]
    changes += [(SIGNING_KEY, audit_trail.signing_key_ref(old), "retired") for old in retire]
    _record(db, now, changes)
    try:
        return signing_keys.rotate(
            keys_dir,
            alg=alg,
            now=now,
            demo=demo,
            private=private,
            retire=retire,
            activate_at=activate_at,
        )
    except (signing_keys.KeyStoreError, OSError) as exc:
        raise _incomplete(f"the rotation to signing key {kid}", exc) from exc


def generate_audit_key(db: Database, keys_dir: str | Path, *, name: str, now: int) -> AuditKeyInfo:
    """Record, then create the audit (checkpoint) key named ``name``; it becomes current and a
    previously current one is retired (recorded too)."""
    private, key_id = audit_key.new_audit_key(keys_dir, name=name)
    retire = [i.key_id_hex for i in audit_key.list_audit_keys(keys_dir) if i.retired_at is None]
    changes = [(AUDIT_KEY, f"{key_id:08x}", "generated")]
    changes += [(AUDIT_KEY, old, "retired") for old in retire]
    _record(db, now, changes)
    try:
        return audit_key.generate_audit_key(keys_dir, name=name, now=now, private=private)
    except (signing_keys.KeyStoreError, OSError) as exc:
        raise _incomplete(f"audit key {name}+{key_id:08x}", exc) from exc


AUDIT_VKEY = "audit_vkey"


class AuditKeyTransitionFailed(Exception):
    """The entries introducing the new audit key were recorded but no checkpoint signed by the
    old key covers them yet, so the new key was not written (run the command again)."""


def rotate_audit_key(
    db: Database, keys_dir: str | Path, *, name: str, now: int, clock: Clock
) -> AuditKeyInfo:
    """Replace the audit (checkpoint) key so that auditors holding the old key can follow.

    1. The new key is made in memory; three ``operator_change`` entries commit in one
       transaction: ``audit_key <new key ID> generated``, ``audit_key <old key ID> retired`` and
       ``audit_vkey <digest(new vkey)> generated`` (the key ID is 32 bits; the vkey's digest
       binds the whole public key).
    2. The pending leaves are integrated under a checkpoint signed by the **old** key (here, or
       by a running worker meanwhile: the new key does not exist yet), so a checkpoint the old
       key signed covers the introduction.
    3. Only then is the new key written, with the leaf index of the ``audit_vkey`` entry and
       that checkpoint's size; running workers load it within a second and sign every later
       checkpoint with it. ``GET /audit/keys`` serves the transition (checkpoint, entry,
       inclusion proof) so ``trustanchor audit … --pin <old vkey>`` follows to the new key.
    """
    old = audit_key.load_audit_key(keys_dir)
    private, key_id = audit_key.new_audit_key(keys_dir, name=name)
    vkey = Ed25519Signer(name, private).verifier().vkey
    vkey_ref = digest(vkey)
    _record(
        db,
        now,
        [
            (AUDIT_KEY, f"{key_id:08x}", "generated"),
            (AUDIT_KEY, f"{old.key_id:08x}", "retired"),
            (AUDIT_VKEY, vkey_ref, "generated"),
        ],
    )
    log = AuditLog(db, old, clock)
    try:
        log.integrate_pending()
        size = log.latest_checkpoint().checkpoint.size
        index = _find_introduction(log, vkey_ref, size)
    except (StorageUnavailable, SQLAlchemyError, AuditLogError) as exc:
        raise AuditKeyTransitionFailed(
            f"the audit log records the new audit key {name}+{key_id:08x}, but no checkpoint "
            f"signed by the old key covers it yet ({exc}); nothing else changed: run the "
            "command again"
        ) from exc
    try:
        return audit_key.generate_audit_key(
            keys_dir, name=name, now=now, private=private, introduced=(index, size)
        )
    except (signing_keys.KeyStoreError, OSError) as exc:
        raise _incomplete(f"audit key {name}+{key_id:08x}", exc) from exc


def _find_introduction(log: AuditLog, vkey_ref: str, size: int) -> int:
    """The leaf index of the newest ``audit_vkey <vkey_ref> generated`` entry below ``size``."""
    end = size
    while end > 0:
        start = max(0, end - MAX_PAGE)
        for entry in reversed(log.entries(start, end)):
            parsed = entry.parsed()
            if (
                isinstance(parsed, OperatorChange)
                and parsed.what == AUDIT_VKEY
                and parsed.id == vkey_ref
            ):
                return entry.index
        end = start
    raise AuditLogError("not_found", "the entry introducing the new audit key")


def _record(db: Database, at: int, changes: Sequence[tuple[str, str, str]]) -> None:
    try:
        with db.transaction() as conn:
            for what, ident, action in changes:
                audit_trail.record(
                    conn, audit_trail.operator_change(at=at, what=what, id=ident, action=action)
                )
    except (StorageUnavailable, SQLAlchemyError) as exc:
        raise KeyChangeNotRecorded(
            f"the audit log could not record the key change ({exc}), so no key was created "
            "or retired"
        ) from exc


def _incomplete(what: str, exc: Exception) -> KeyChangeIncomplete:
    return KeyChangeIncomplete(
        f"the audit log records {what}, but the key directory could not be fully updated "
        f"({exc}). Check it with `trustanchor keys list` and run the command again: a key the "
        "log names that is not in the key directory never signed anything"
    )
