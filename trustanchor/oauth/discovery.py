"""Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery 1.0):
only what the service really supports. Checked with Authlib's metadata validators at start-up."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

from trustanchor.config.settings import Settings
from trustanchor.domain.assurance import ACR_VALUES_SUPPORTED
from trustanchor.endpoints import Endpoints
from trustanchor.oauth.authorization_details import supported_types, type_schema
from trustanchor.oauth.authorization_request import PROMPT_VALUES, UI_LOCALES
from trustanchor.oauth.scopes import CLAIMS_BY_SCOPE, SUPPORTED_SCOPES

SIGNING_ALGS = ["ES256", "EdDSA"]


def metadata(
    settings: Settings,
    endpoints: Endpoints,
    *,
    trust_frameworks: list[str],
    claims: list[str],
    demo_secret_auth: bool,
) -> dict[str, Any]:
    auth_methods = ["private_key_jwt", "none"]
    if demo_secret_auth:
        auth_methods.append("client_secret_basic")
    client_auth_algs = list(settings.client_auth.allowed_algs)
    standard_claims = sorted({c for names in CLAIMS_BY_SCOPE.values() for c in names} | set(claims))
    doc: dict[str, Any] = {
        "issuer": settings.issuer,
        "authorization_endpoint": endpoints.authorize,
        "token_endpoint": endpoints.token,
        "pushed_authorization_request_endpoint": endpoints.par,
        "require_pushed_authorization_requests": True,
        "jwks_uri": endpoints.jwks,
        "userinfo_endpoint": endpoints.userinfo,
        "introspection_endpoint": endpoints.introspection,
        "revocation_endpoint": endpoints.revocation,
        "scopes_supported": list(SUPPORTED_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": client_auth_algs,
        "introspection_endpoint_auth_methods_supported": [m for m in auth_methods if m != "none"],
        "introspection_endpoint_auth_signing_alg_values_supported": client_auth_algs,
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": client_auth_algs,
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "dpop_signing_alg_values_supported": list(settings.dpop.allowed_algs),
        "authorization_details_types_supported": list(supported_types()),
        # Not a registered metadata name: where each type's JSON Schema is served.
        "authorization_details_schemas": {
            name: endpoints.authorization_details_schema(name) for name in supported_types()
        },
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": [settings.tokens.signing_alg],
        "acr_values_supported": list(ACR_VALUES_SUPPORTED),
        "claims_parameter_supported": True,
        "claims_supported": ["sub", "acr", "amr", "auth_time", *standard_claims],
        "request_parameter_supported": False,
        # False although /authorize takes only a request_uri: one from /par is usable whatever
        # this says (RFC 9126 section 5); a request_uri the client hosts (RFC 9101) is never
        # fetched. README ("PAR only") explains it to integrators.
        "request_uri_parameter_supported": False,
        "prompt_values_supported": list(PROMPT_VALUES),
        "ui_locales_supported": list(UI_LOCALES),
        "verified_claims_supported": True,
        "trust_frameworks_supported": trust_frameworks,
        "evidence_supported": ["electronic_record"],
        "claims_in_verified_claims_supported": standard_claims,
    }
    return doc


# OIDC Discovery 1.0 demands RS256 among the ID token algorithms; FAPI 2.0 forbids RS256
# (PS256, ES256 and EdDSA only). FAPI wins, so that single check is skipped.
_SKIPPED_OIDC_CHECKS = frozenset({"validate_id_token_signing_alg_values_supported"})


def validate(doc: dict[str, Any]) -> None:
    """Raise if Authlib's RFC 8414 / OIDC Discovery validators reject the document, or if the
    authorization_details types and their schemas do not match one to one."""
    AuthorizationServerMetadata(doc).validate()
    oidc = OpenIDProviderMetadata(doc)
    for name in dir(oidc):
        if name.startswith("validate_") and name not in _SKIPPED_OIDC_CHECKS:
            getattr(oidc, name)()
    _validate_authorization_details_schemas(doc)


def _validate_authorization_details_schemas(doc: dict[str, Any]) -> None:
    """Every supported type publishes a schema that we actually have, under our issuer."""
    types = doc.get("authorization_details_types_supported")
    schemas = doc.get("authorization_details_schemas")
    if not isinstance(types, list) or not isinstance(schemas, dict):
        raise ValueError("authorization_details types and schemas must be a list and an object")
    if sorted(schemas) != sorted(types):
        raise ValueError("authorization_details_schemas must name exactly the supported types")
    for name, url in schemas.items():
        if not isinstance(url, str) or not url.startswith(doc["issuer"] + "/"):
            raise ValueError(f"the schema URL of {name!r} is not under the issuer")
        type_schema(name)  # LookupError when the type has no packaged schema
