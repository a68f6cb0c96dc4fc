"""The authorization request (RFC 6749 §4.1.1 + OIDC Core §3.1.2.1 + PKCE + RAR + DPoP), validated
once at the PAR endpoint and stored as JSON until the person has logged in and consented.

Its ``authorization_details`` are carried twice: as the normalised entries (what is stored and
granted) and as typed :attr:`AuthorizationRequest.operations`, parsed once when the request is
built, which is what the policy decisions, the consent page and the login methods read."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trustanchor.config.settings import LimitSettings
from trustanchor.domain.assurance import ACR_VALUES_SUPPORTED
from trustanchor.domain.clients import Client
from trustanchor.oauth import pkce
from trustanchor.oauth.authorization_details import (
    Operation,
    parse_authorization_details,
    parse_operations,
)
from trustanchor.oauth.claims_request import ClaimsRequest, parse_claims_request
from trustanchor.oauth.errors import (
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedResponseType,
)
from trustanchor.oauth.params import FormData, single
from trustanchor.oauth.redirect_uri import match_redirect_uri
from trustanchor.oauth.scopes import OPENID, check_allowed, check_grantable, parse_scope

PROMPT_VALUES = ("none", "login", "consent", "select_account")
UI_LOCALES = ("en", "ja")


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    scope: tuple[str, ...]
    code_challenge: str
    state: str | None = None
    nonce: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    acr_values: tuple[str, ...] = ()
    claims: ClaimsRequest = field(default_factory=ClaimsRequest)
    authorization_details: tuple[dict[str, Any], ...] = ()
    dpop_jkt: str | None = None
    ui_locales: tuple[str, ...] = ()
    operations: tuple[Operation, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "operations", parse_operations(self.authorization_details))

    @property
    def is_openid(self) -> bool:
        return OPENID in self.scope

    def to_json(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": list(self.scope),
            "code_challenge": self.code_challenge,
            "state": self.state,
            "nonce": self.nonce,
            "prompt": list(self.prompt),
            "max_age": self.max_age,
            "acr_values": list(self.acr_values),
            "claims": self.claims.to_json(),
            "authorization_details": list(self.authorization_details),
            "dpop_jkt": self.dpop_jkt,
            "ui_locales": list(self.ui_locales),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuthorizationRequest:
        return cls(
            client_id=data["client_id"],
            redirect_uri=data["redirect_uri"],
            scope=tuple(data["scope"]),
            code_challenge=data["code_challenge"],
            state=data.get("state"),
            nonce=data.get("nonce"),
            prompt=tuple(data.get("prompt", ())),
            max_age=data.get("max_age"),
            acr_values=tuple(data.get("acr_values", ())),
            claims=ClaimsRequest.from_json(data.get("claims")),
            authorization_details=tuple(data.get("authorization_details", ())),
            dpop_jkt=data.get("dpop_jkt"),
            ui_locales=tuple(data.get("ui_locales", ())),
        )


def parse_authorization_request(
    params: FormData, client: Client, *, limits: LimitSettings, dpop_jkt_from_proof: str | None
) -> AuthorizationRequest:
    """Validate a pushed authorization request for an authenticated ``client``.

    The redirect URI is checked first: until it is known to be registered, no error may be sent
    to it (the PAR endpoint answers directly anyway).
    """
    if "request_uri" in params:
        raise InvalidRequest(
            "request_uri must not be sent to the PAR endpoint", reason="request_uri_in_par"
        )
    if "request" in params:
        raise InvalidRequest(
            "request objects are not supported; push plain parameters",
            reason="request_object_unsupported",
        )
    body_client_id = single(params, "client_id")
    if body_client_id is not None and body_client_id != client.client_id:
        raise InvalidRequest(
            "client_id does not match the authenticated client", reason="client_id_mismatch"
        )
    redirect_uri = match_redirect_uri(client, single(params, "redirect_uri", required=True))
    if "authorization_code" not in client.grant_types:
        raise UnauthorizedClient(
            "client is not registered for the authorization code grant",
            reason="grant_type_not_registered",
        )
    response_type = single(params, "response_type", required=True)
    if response_type != "code":
        raise UnsupportedResponseType("only response_type=code is supported")
    response_mode = single(params, "response_mode")
    if response_mode not in (None, "query"):
        raise InvalidRequest(
            "only response_mode=query is supported", reason="response_mode_unsupported"
        )
    scope = parse_scope(single(params, "scope"))
    if not scope:
        raise InvalidScope("scope is required", reason="scope_missing")
    check_allowed(scope, client.scopes)
    check_grantable(scope, grant_type="authorization_code")
    code_challenge = pkce.validate_challenge(
        single(params, "code_challenge"), single(params, "code_challenge_method")
    )
    prompt = _prompt(single(params, "prompt"))
    max_age = _max_age(single(params, "max_age"))
    acr_values = tuple((single(params, "acr_values") or "").split())
    if any(acr not in ACR_VALUES_SUPPORTED for acr in acr_values):
        raise InvalidRequest(
            "acr_values contains an unsupported value", reason="acr_values_unsupported"
        )
    claims = parse_claims_request(
        single(params, "claims", max_len=8192), max_depth=limits.max_json_depth
    )
    details = parse_authorization_details(
        single(params, "authorization_details", max_len=16384),
        allowed_types=client.authorization_details_types,
        max_entries=limits.max_authorization_details,
        max_depth=limits.max_json_depth,
    )
    dpop_jkt = single(params, "dpop_jkt", max_len=128)
    if dpop_jkt is not None and dpop_jkt_from_proof is not None and dpop_jkt != dpop_jkt_from_proof:
        raise InvalidRequest(
            "dpop_jkt does not match the DPoP proof's key", reason="dpop_jkt_mismatch"
        )
    dpop_jkt = dpop_jkt or dpop_jkt_from_proof
    if client.require_dpop and dpop_jkt is None:
        raise InvalidRequest(
            "this client must bind the authorization code to a DPoP key (dpop_jkt)",
            reason="dpop_jkt_required",
        )
    ui_locales = tuple(
        tag.split("-")[0]
        for tag in (single(params, "ui_locales") or "").split()
        if tag.split("-")[0] in UI_LOCALES
    )
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge=code_challenge,
        state=single(params, "state", max_len=1024),
        nonce=single(params, "nonce", max_len=512),
        prompt=prompt,
        max_age=max_age,
        acr_values=acr_values,
        claims=claims,
        authorization_details=details,
        dpop_jkt=dpop_jkt,
        ui_locales=ui_locales,
    )


def _prompt(value: str | None) -> tuple[str, ...]:
    if value is None:
        return ()
    parts = tuple(value.split())
    if not parts or any(p not in PROMPT_VALUES for p in parts):
        raise InvalidRequest("prompt contains an unsupported value", reason="prompt_invalid")
    if "none" in parts and len(parts) > 1:
        raise InvalidRequest(
            "prompt=none cannot be combined with other values", reason="prompt_invalid"
        )
    return parts


def _max_age(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        raise InvalidRequest("max_age must be a non-negative integer", reason="max_age_invalid")
    return int(value)
