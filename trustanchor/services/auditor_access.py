"""What auditors get over HTTP: who may read the audit log, and the JSON shapes they read.

Framework-free; ``web/audit_api.py`` only maps HTTP onto these calls. An auditor presents an
access token of ours (Bearer, or DPoP when the token is bound) that

- carries the ``audit`` scope,
- was issued by client_credentials (no grant behind it, ``sub`` = ``client_id``): an audit token
  never stands for a person, so a token from a login cannot open the log even if a
  misconfigured client could obtain the scope there,
- belongs to a confidential client that authenticates with private_key_jwt.

The shapes are the file formats the ``trustanchor audit`` CLI reads (docs/AUDIT-FORMAT.md §3):
hashes are lowercase hex, entries are their canonical text, so an auditor stores exactly what
the leaf hash covers.
"""

from __future__ import annotations

from typing import Any

from trustanchor.keystore.audit_key import AuditKeyInfo, list_audit_keys
from trustanchor.oauth.errors import InvalidRequest
from trustanchor.oauth.jwt_tokens import AccessTokenClaims
from trustanchor.oauth.scopes import AUDIT
from trustanchor.services.audit_log import AuditLogError, LogEntry, SignedCheckpoint
from trustanchor.services.container import Services
from trustanchor.services.machine_access import authenticate_machine_client

MAX_DECIMAL_DIGITS = 19
# The largest index or size a query may name: the databases' integers are signed 64-bit, and a
# larger number is refused rather than overflowing in SQLite's driver (a 500).
MAX_DECIMAL = 2**63 - 1


def authenticate_auditor(
    services: Services,
    *,
    authorization: list[str],
    dpop_headers: list[str],
    method: str,
    url: str,
) -> AccessTokenClaims:
    """The auditor's verified token claims, or ``InvalidToken`` (401) / ``InsufficientScope``
    (403)."""
    claims, _ = authenticate_machine_client(
        services,
        scope=AUDIT,
        authorization=authorization,
        dpop_headers=dpop_headers,
        method=method,
        url=url,
    )
    return claims


def decimal_param(value: str | None, name: str) -> int:
    """A non-negative decimal query parameter (ASCII digits only; ``int()`` alone would take
    ``+1``, `` 1``, ``1_0`` and other scripts' digits)."""
    if value is None or value == "":
        raise InvalidRequest(f"{name} is required")
    if not value.isascii() or not value.isdigit() or len(value) > MAX_DECIMAL_DIGITS:
        raise InvalidRequest(f"{name} must be a non-negative decimal integer")
    number = int(value)
    if number > MAX_DECIMAL:
        raise InvalidRequest(f"{name} must be at most {MAX_DECIMAL}")
    return number


def checkpoint_json(signed: SignedCheckpoint) -> dict[str, Any]:
    checkpoint = signed.checkpoint
    return {
        "note": signed.note,
        "origin": checkpoint.origin,
        "size": checkpoint.size,
        "root_hash": checkpoint.root_hash.hex(),
    }


def entry_json(entry: LogEntry) -> dict[str, Any]:
    return {
        "index": entry.index,
        "entry": entry.entry.decode("utf-8"),
        "leaf_hash": entry.leaf_hash.hex(),
    }


def entries_json(start: int, end: int, entries: list[LogEntry]) -> dict[str, Any]:
    return {"start": start, "end": end, "entries": [entry_json(e) for e in entries]}


def inclusion_json(index: int, size: int, hashes: list[bytes]) -> dict[str, Any]:
    return {"index": index, "size": size, "hashes": [h.hex() for h in hashes]}


def consistency_json(old: int, new: int, hashes: list[bytes]) -> dict[str, Any]:
    return {"old": old, "new": new, "hashes": [h.hex() for h in hashes]}


def published_keys(services: Services) -> dict[str, Any]:
    """Every public key an auditor needs, retired ones included: the audit verifier keys (vkeys,
    for checkpoints) and the token signing keys (JWKs with ``created_at``/``retired_at``, for
    tokens issued at any time; the JWKS at /jwks drops keys after their retention)."""
    audit_keys = [
        {
            "vkey": info.vkey,
            "key_id": info.key_id_hex,
            "created_at": info.created_at,
            "retired_at": info.retired_at,
            **_introduction(services, info),
        }
        for info in list_audit_keys(services.settings.service.keys_dir)
    ]
    token_keys = [
        {**key.public_jwk(), "created_at": key.created_at, "retired_at": key.retired_at}
        for key in services.keys.all()
    ]
    return {
        "issuer": services.settings.issuer,
        "origin": services.audit.origin,
        "audit_keys": audit_keys,
        "token_keys": {"keys": token_keys},
    }


def _introduction(services: Services, info: AuditKeyInfo) -> dict[str, Any]:
    """For a key added by a rotation: ``{"introduced": {"checkpoint", "index", "size", "entry",
    "leaf_hash", "hashes"}}``, the checkpoint signed by the previous key, the ``audit_vkey``
    entry naming this key and its inclusion proof (docs/AUDIT-FORMAT.md §2.3). Empty for the
    first key, and when the log cannot give it (an auditor pinning keys then refuses the key)."""
    index, size = info.introduced_index, info.introduced_size
    if index is None or size is None:
        return {}
    try:
        checkpoint = services.audit.checkpoint(size)
        [entry] = services.audit.entries(index, index + 1)
        hashes = services.audit.inclusion_proof(index, size)
    except (AuditLogError, ValueError):
        return {}
    return {
        "introduced": {
            "checkpoint": checkpoint.note,
            "index": index,
            "size": size,
            "entry": entry.entry.decode("utf-8"),
            "leaf_hash": entry.leaf_hash.hex(),
            "hashes": [h.hex() for h in hashes],
        }
    }
