"""Scope values the service understands, and what each releases."""

from __future__ import annotations

import re

from trustanchor.oauth.errors import InvalidScope

OPENID = "openid"
# Standard OIDC scopes that map to claims (OIDC Core §5.4), limited to what anchors verify.
CLAIMS_BY_SCOPE: dict[str, tuple[str, ...]] = {
    "profile": ("name", "given_name", "family_name", "birthdate"),
    "address": ("address",),
}
AUDIT = "audit"
"""Read access to the audit log API (``/audit/…``). It releases no claims and belongs to
machines, not people: it is granted only by client_credentials to a confidential client, never
in an authorization request (see ``CLIENT_CREDENTIALS_ONLY`` and ``check_grantable``)."""
ACCOUNTS = "accounts"
"""An intermediary's access to the accounts API (``/accounts``, ``/links``): registering its
accounts and managing the links between them. Machine-only, like ``audit``."""
ADMIN = "admin"
"""The operator's admin API (``/admin/…``): anchor-set policies. Machine-only, like ``audit``."""
CLIENT_CREDENTIALS_ONLY: frozenset[str] = frozenset({AUDIT, ACCOUNTS, ADMIN})
SUPPORTED_SCOPES = (OPENID, *CLAIMS_BY_SCOPE, AUDIT, ACCOUNTS, ADMIN)
MAX_SCOPE_LENGTH = 1024
# RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")


def parse_scope(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if len(value) > MAX_SCOPE_LENGTH:
        raise InvalidScope("scope is too long", reason="scope_malformed")
    parts = value.split(" ")
    if any(not p for p in parts):
        raise InvalidScope("scope must be space-separated tokens", reason="scope_malformed")
    for part in parts:
        if _SCOPE_TOKEN.fullmatch(part) is None:
            raise InvalidScope("scope contains illegal characters", reason="scope_malformed")
    seen: list[str] = []
    for part in parts:
        if part not in seen:
            seen.append(part)
    return tuple(seen)


def check_allowed(requested: tuple[str, ...], allowed: frozenset[str]) -> None:
    unknown = [s for s in requested if s not in allowed]
    if unknown:
        raise InvalidScope(
            f"scope not allowed for this client: {' '.join(unknown)}", reason="scope_not_allowed"
        )


def claims_for_scopes(scopes: tuple[str, ...]) -> tuple[str, ...]:
    names: list[str] = []
    for scope in scopes:
        for claim in CLAIMS_BY_SCOPE.get(scope, ()):
            if claim not in names:
                names.append(claim)
    return tuple(names)


def check_grantable(requested: tuple[str, ...], *, grant_type: str) -> None:
    """Refuse machine-only scopes (``audit``) in any grant but client_credentials: an auditor
    token must stand for the auditor itself, never for a person who logged in."""
    if grant_type == "client_credentials":
        return
    refused = [s for s in requested if s in CLIENT_CREDENTIALS_ONLY]
    if refused:
        raise InvalidScope(
            f"scope only available with client_credentials: {' '.join(refused)}",
            reason="scope_not_grantable",
        )
