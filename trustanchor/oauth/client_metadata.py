"""Client registration data: parse and validate a client declaration into a :class:`Client`.

Clients are registered by the operator (``[[clients]]`` in the configuration, or
``trustanchor clients add``), never by self-service registration, so the rules here are the whole
gate between a typo and a misconfigured production client. Every problem raises ``ValueError``
naming the client and the field, and unknown keys are refused so a misspelt setting cannot be
silently ignored.

Two entry points share one parser:

* :func:`client_from_declaration` — operator input (TOML); may read ``jwks_file`` and, outside
  production, a demo ``client_secret`` (returned as a digest, never kept raw);
* :func:`client_from_metadata` — the stored form written by :func:`client_to_metadata`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

from trustanchor import strict_json
from trustanchor.audit.entries import EntryError, identifier
from trustanchor.digests import secret_digest
from trustanchor.domain.clients import (
    AUTH_METHODS,
    GRANT_TYPES,
    AuthMethod,
    BranchRole,
    Client,
    ClientType,
)
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import keys_from_jwks
from trustanchor.jose.jws import ASYMMETRIC_ALGS
from trustanchor.oauth.authorization_details import supported_types
from trustanchor.oauth.redirect_uri import check_registered_uri, redirect_host
from trustanchor.oauth.scopes import AUDIT

MODES = ("production", "demo", "test")
STORED_KEYS = frozenset(
    {
        "client_id",
        "client_name",
        "client_type",
        "token_endpoint_auth_method",
        "jwks",
        "redirect_uris",
        "grant_types",
        "scope",
        "dpop_bound_access_tokens",
        "authorization_details_types",
        "sector_identifier",
        "audiences",
        "introspection",
        "post_logout_redirect_uris",
        "trustanchor_branch",
    }
)
DECLARATION_KEYS = STORED_KEYS | {"jwks_file", "client_secret"}
PUBLIC_GRANTS = frozenset({"authorization_code", "refresh_token"})
MAX_JWKS_FILE_BYTES = 64 * 1024
MIN_DEMO_SECRET_LENGTH = 8

_CLIENT_ID = re.compile(r"[\x21-\x7e]{1,128}")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
_LANGUAGE = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{1,8})*")
_TOKEN = re.compile(r"[\x21-\x7e]{1,256}")
_SECTOR = re.compile(r"[a-z0-9.:\-]{1,255}")
# A branch id: lower-case, short, no spaces; recorded as is in identities and audit entries.
_BRANCH_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
BRANCH_KEYS = frozenset({"branch_id", "display_name"})


def client_from_declaration(
    decl: Mapping[str, Any], *, mode: str, base_dir: Path
) -> tuple[Client, str | None]:
    """Validate an operator's declaration. Returns the client and, for a demo
    ``client_secret_basic`` client, the digest of its secret (else ``None``)."""
    if mode not in MODES:
        raise ValueError(f"unknown service mode {mode!r}")
    return _Parser(decl, mode=mode, base_dir=base_dir, stored=False).build()


def client_from_metadata(metadata: Mapping[str, Any], *, updated_at: int = 0) -> Client:
    """Rebuild a client from its stored metadata (already validated when it was written).

    Validation runs again with the most permissive mode rules so a corrupted row is still refused,
    while a row written in demo mode stays readable.
    """
    client, _ = _Parser(metadata, mode="test", base_dir=None, stored=True).build(
        updated_at=updated_at
    )
    return client


def client_to_metadata(client: Client) -> dict[str, Any]:
    """The JSON form of a client for storage and ``clients show``. Never contains a secret.
    ``post_logout_redirect_uris`` only when there are any, so rows written before the field
    existed stay equal (no operator change recorded for them at the next start)."""
    metadata: dict[str, Any] = {
        "client_id": client.client_id,
        "client_name": dict(client.display_name),
        "client_type": client.client_type,
        "token_endpoint_auth_method": client.auth_method,
        "jwks": _plain_json(client.jwks) if client.jwks is not None else None,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "scope": " ".join(sorted(client.scopes)),
        "dpop_bound_access_tokens": client.require_dpop,
        "authorization_details_types": list(client.authorization_details_types),
        "sector_identifier": client.sector_identifier,
        "audiences": list(client.audiences),
        "introspection": client.can_introspect,
    }
    if client.post_logout_redirect_uris:
        metadata["post_logout_redirect_uris"] = list(client.post_logout_redirect_uris)
    if client.branch is not None:  # likewise only when declared
        metadata["trustanchor_branch"] = {
            "branch_id": client.branch.branch_id,
            "display_name": dict(client.branch.display_name),
        }
    return metadata


class _Parser:
    """One declaration, with the client id at hand for error messages."""

    def __init__(
        self, decl: Mapping[str, Any], *, mode: str, base_dir: Path | None, stored: bool
    ) -> None:
        if not isinstance(decl, Mapping):
            raise ValueError("client declaration must be a table")
        self.decl = decl
        self.production = mode == "production"
        self.allow_secret = not self.production and not stored
        self.base_dir = base_dir
        self.stored = stored
        raw_id = decl.get("client_id")
        self.name = raw_id if isinstance(raw_id, str) and raw_id else "<missing client_id>"

    def fail(self, field: str, problem: str) -> ValueError:
        return ValueError(f"client {self.name!r}: {field}: {problem}")

    def build(self, *, updated_at: int = 0) -> tuple[Client, str | None]:
        allowed = STORED_KEYS if self.stored else DECLARATION_KEYS
        unknown = sorted(str(k) for k in self.decl if k not in allowed)
        if unknown:
            raise self.fail(unknown[0], "unknown key (allowed: " + ", ".join(sorted(allowed)) + ")")
        client_id = self._client_id()
        client_type = self._client_type()
        auth_method = self._auth_method(client_type)
        grant_types = self._grant_types(client_type)
        redirect_uris = self._redirect_uris(grant_types)
        jwks = self._jwks(auth_method)
        digest = self._secret(auth_method)
        require_dpop = self._bool("dpop_bound_access_tokens", default=client_type == "public")
        if client_type == "public" and not require_dpop:
            raise self.fail(
                "dpop_bound_access_tokens", "public clients always get DPoP-bound tokens"
            )
        scopes = self._scopes()
        if AUDIT in scopes and (
            auth_method != "private_key_jwt" or tuple(grant_types) != ("client_credentials",)
        ):
            raise self.fail(
                "scope",
                "audit is only for confidential private_key_jwt clients whose only grant type "
                "is client_credentials",
            )
        can_introspect = self._bool("introspection", default=False)
        if can_introspect and client_type == "public":
            raise self.fail("introspection", "only confidential clients may introspect tokens")
        client = Client(
            client_id=client_id,
            client_type=client_type,
            auth_method=auth_method,
            display_name=self._display_name(),
            redirect_uris=redirect_uris,
            grant_types=grant_types,
            scopes=scopes,
            jwks=jwks,
            require_dpop=require_dpop,
            authorization_details_types=self._detail_types(),
            sector_identifier=self._sector_identifier(client_id, redirect_uris),
            audiences=self._audiences(),
            can_introspect=can_introspect,
            post_logout_redirect_uris=self._post_logout_redirect_uris(grant_types),
            branch=self._branch(client_type, auth_method, grant_types),
            updated_at=updated_at,
        )
        return client, digest

    def _client_id(self) -> str:
        value = self.decl.get("client_id")
        if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
            raise self.fail("client_id", "required: 1 to 128 visible ASCII characters")
        try:  # every token issued names the client in the audit log, which must be able to
            identifier("client_id", value)
        except EntryError as exc:
            raise self.fail(
                "client_id",
                "must not contain '@' nor look like a secret (43+ base64url characters): "
                "the audit log could not record it",
            ) from exc
        return value

    def _client_type(self) -> ClientType:
        value = self.decl.get("client_type")
        if value not in ("confidential", "public"):
            raise self.fail("client_type", 'required: "confidential" or "public"')
        return cast(ClientType, value)

    def _auth_method(self, client_type: ClientType) -> AuthMethod:
        default = "none" if client_type == "public" else "private_key_jwt"
        value = self.decl.get("token_endpoint_auth_method", default)
        if value not in AUTH_METHODS:
            choices = ", ".join(AUTH_METHODS)
            raise self.fail("token_endpoint_auth_method", f"must be one of {choices}")
        if client_type == "public" and value != "none":
            raise self.fail("token_endpoint_auth_method", 'public clients must use "none"')
        if client_type == "confidential" and value == "none":
            raise self.fail("token_endpoint_auth_method", 'confidential clients cannot use "none"')
        if value == "client_secret_basic" and self.production:
            raise self.fail(
                "token_endpoint_auth_method",
                "client_secret_basic is only allowed in demo/test mode; use private_key_jwt",
            )
        return cast(AuthMethod, value)

    def _grant_types(self, client_type: ClientType) -> tuple[str, ...]:
        grants = self._string_list("grant_types", default=["authorization_code"])
        for grant in grants:
            if grant not in GRANT_TYPES:
                raise self.fail("grant_types", f"unknown grant type {grant!r}")
        if "refresh_token" in grants and "authorization_code" not in grants:
            raise self.fail("grant_types", "refresh_token needs authorization_code")
        if client_type == "public" and (
            "authorization_code" not in grants or not set(grants) <= PUBLIC_GRANTS
        ):
            raise self.fail(
                "grant_types",
                "public clients use authorization_code (and optionally refresh_token)",
            )
        return grants

    def _redirect_uris(self, grant_types: tuple[str, ...]) -> tuple[str, ...]:
        uris = self._string_list("redirect_uris", default=[])
        if "authorization_code" in grant_types and not uris:
            raise self.fail("redirect_uris", "required for the authorization_code grant")
        if "authorization_code" not in grant_types and uris:
            raise self.fail("redirect_uris", "only used with the authorization_code grant")
        for uri in uris:
            try:
                check_registered_uri(uri, production=self.production)
            except ValueError as exc:
                raise self.fail("redirect_uris", f"{uri!r} {exc}") from None
        return uris

    def _post_logout_redirect_uris(self, grant_types: tuple[str, ...]) -> tuple[str, ...]:
        """RP-Initiated Logout 1.0 §3.1, held to the rules of redirect URIs (exact strings,
        https, loopback http outside production, no fragment, wildcard or dot-segment)."""
        uris = self._string_list("post_logout_redirect_uris", default=[])
        if uris and "authorization_code" not in grant_types:
            raise self.fail(
                "post_logout_redirect_uris", "only used with the authorization_code grant"
            )
        for uri in uris:
            try:
                check_registered_uri(uri, production=self.production)
            except ValueError as exc:
                raise self.fail("post_logout_redirect_uris", f"{uri!r} {exc}") from None
        return uris

    def _jwks(self, auth_method: AuthMethod) -> dict[str, Any] | None:
        inline = self.decl.get("jwks")
        path = self.decl.get("jwks_file")
        if inline is not None and path is not None:
            raise self.fail("jwks", "give jwks or jwks_file, not both")
        if path is not None:
            inline = self._read_jwks_file(path)
        if auth_method != "private_key_jwt":
            if inline is not None:
                raise self.fail("jwks", "only used with private_key_jwt")
            return None
        if inline is None:
            raise self.fail("jwks", "private_key_jwt needs jwks or jwks_file")
        try:
            jwks = _plain_json(inline)
            keys = keys_from_jwks(jwks)
        except JoseError as exc:
            raise self.fail("jwks", f"{exc.reason} ({exc.detail})") from None
        except ValueError as exc:
            raise self.fail("jwks", str(exc)) from None
        if not keys:
            raise self.fail("jwks", "needs at least one public signing key")
        kids = [k.get("kid") for k in jwks["keys"] if isinstance(k, dict) and "kid" in k]
        if len(kids) != len(set(map(str, kids))):
            raise self.fail("jwks", "two keys share a kid")
        for entry in jwks["keys"]:
            alg = entry.get("alg")
            if alg is not None and alg not in ASYMMETRIC_ALGS:
                raise self.fail("jwks", f"key alg {alg!r} is not an asymmetric signature algorithm")
        return jwks

    def _read_jwks_file(self, value: object) -> Any:
        if not isinstance(value, str) or not value or self.base_dir is None:
            raise self.fail("jwks_file", "must be a file name")
        path = self.base_dir / value
        try:
            with path.open("rb") as fh:
                data = fh.read(MAX_JWKS_FILE_BYTES + 1)
        except OSError as exc:
            raise self.fail("jwks_file", f"cannot read {path} ({exc.strerror})") from None
        if len(data) > MAX_JWKS_FILE_BYTES:
            raise self.fail("jwks_file", f"{path} is larger than {MAX_JWKS_FILE_BYTES} bytes")
        try:
            return strict_json.loads(data, max_depth=6)
        except strict_json.StrictJSONError as exc:
            raise self.fail("jwks_file", f"{path} is not valid JSON ({exc})") from None

    def _secret(self, auth_method: AuthMethod) -> str | None:
        secret = self.decl.get("client_secret")
        if self.stored:
            return None
        if auth_method != "client_secret_basic":
            if secret is not None:
                raise self.fail("client_secret", "only used with client_secret_basic")
            return None
        if not self.allow_secret:
            raise self.fail("client_secret", "client secrets are not allowed in production")
        if not isinstance(secret, str) or len(secret) < MIN_DEMO_SECRET_LENGTH:
            raise self.fail(
                "client_secret",
                f"client_secret_basic needs a secret of at least "
                f"{MIN_DEMO_SECRET_LENGTH} characters",
            )
        return secret_digest(secret)

    def _display_name(self) -> dict[str, str]:
        return self._names("client_name", self.decl.get("client_name"))

    def _names(self, field: str, value: object) -> dict[str, str]:
        if value is None:
            return {}
        if isinstance(value, str):
            value = {"en": value}
        if not isinstance(value, Mapping) or (not value and not self.stored):
            raise self.fail(field, "must be a string or a table of language = name")
        names: dict[str, str] = {}
        for lang, name in value.items():
            if not isinstance(lang, str) or not _LANGUAGE.fullmatch(lang):
                raise self.fail(field, f"{lang!r} is not a language tag")
            if not isinstance(name, str) or not name.strip() or len(name) > 200:
                raise self.fail(field, f"name for {lang} must be 1 to 200 characters")
            if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
                raise self.fail(field, f"name for {lang} contains control characters")
            names[lang] = name
        return names

    def _branch(
        self, client_type: ClientType, auth_method: AuthMethod, grant_types: tuple[str, ...]
    ) -> BranchRole | None:
        """``trustanchor_branch = {branch_id = "tokyo-marunouchi", display_name = {...}}``: the
        client is a bank branch's counter terminal. Its logins are recorded as made in person,
        so only a client that proves possession of a registered private key may carry the role
        (a shared secret could be anywhere), and it must be able to start interactions."""
        value = self.decl.get("trustanchor_branch")
        if value is None:
            return None
        field = "trustanchor_branch"
        if client_type != "confidential" or auth_method != "private_key_jwt":
            raise self.fail(field, "only confidential clients using private_key_jwt")
        if "authorization_code" not in grant_types:
            raise self.fail(field, "a counter terminal needs the authorization_code grant")
        if not isinstance(value, Mapping):
            raise self.fail(field, 'must be a table: {branch_id = "...", display_name = ...}')
        unknown = sorted(str(k) for k in value if k not in BRANCH_KEYS)
        if unknown:
            raise self.fail(
                f"{field}.{unknown[0]}", "unknown key (allowed: branch_id, display_name)"
            )
        branch_id = value.get("branch_id")
        if not isinstance(branch_id, str) or not _BRANCH_ID.fullmatch(branch_id):
            raise self.fail(
                f"{field}.branch_id",
                "required: 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit",
            )
        try:  # recorded in every in-person login's audit entry
            identifier("branch_id", branch_id)
        except EntryError:
            raise self.fail(
                f"{field}.branch_id", "looks like a secret (43+ base64url characters)"
            ) from None
        return BranchRole(
            branch_id=branch_id,
            display_name=self._names(f"{field}.display_name", value.get("display_name")),
        )

    def _scopes(self) -> frozenset[str]:
        value = self.decl.get("scope", "")
        if not isinstance(value, str):
            raise self.fail("scope", "must be a space-separated string")
        tokens = value.split(" ") if value else []
        for token in tokens:
            if not _SCOPE_TOKEN.fullmatch(token):
                raise self.fail("scope", f"{token!r} is not a scope token (single spaces only)")
        if len(tokens) != len(set(tokens)):
            raise self.fail("scope", "a scope is listed twice")
        return frozenset(tokens)

    def _tokens(self, field: str) -> tuple[str, ...]:
        values = self._string_list(field, default=[])
        for value in values:
            if not _TOKEN.fullmatch(value):
                raise self.fail(field, f"{value!r} must be 1 to 256 visible ASCII characters")
        return values

    def _detail_types(self) -> tuple[str, ...]:
        values = self._tokens("authorization_details_types")
        supported = supported_types()
        for value in values:
            if value not in supported:
                raise self.fail(
                    "authorization_details_types",
                    f"{value!r} is not a supported type ({', '.join(supported)})",
                )
        return values

    def _audiences(self) -> tuple[str, ...]:
        values = self._tokens("audiences")
        for value in values:
            if ":" not in value or "#" in value:
                raise self.fail("audiences", f"{value!r} must be an absolute URI without fragment")
        return values

    def _sector_identifier(self, client_id: str, redirect_uris: tuple[str, ...]) -> str:
        value = self.decl.get("sector_identifier")
        hosts = {redirect_host(uri) for uri in redirect_uris}
        if value is None:
            if len(hosts) > 1:
                raise self.fail(
                    "sector_identifier",
                    "required when redirect URIs use more than one host "
                    f"({', '.join(sorted(hosts))})",
                )
            return hosts.pop() if hosts else client_id
        if not isinstance(value, str) or not (_SECTOR.fullmatch(value) or value == client_id):
            raise self.fail("sector_identifier", "must be a lower-case host name")
        return value

    def _bool(self, field: str, *, default: bool) -> bool:
        value = self.decl.get(field, default)
        if not isinstance(value, bool):
            raise self.fail(field, "must be true or false")
        return value

    def _string_list(self, field: str, *, default: list[str]) -> tuple[str, ...]:
        value = self.decl.get(field, default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise self.fail(field, "must be a list of strings")
        if len(value) != len(set(value)):
            raise self.fail(field, "contains duplicates")
        if len(value) > 64:
            raise self.fail(field, "too many entries")
        return tuple(value)


def _plain_json(value: Any) -> dict[str, Any]:
    """A detached, JSON-only copy (TOML may carry dates and other non-JSON values)."""
    try:
        copied = json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a JSON value: {exc}") from None
    if not isinstance(copied, dict):
        raise ValueError("not a JSON object")
    return copied
