"""Protocol errors as small classes carrying the registered error code and HTTP status.

``description`` is safe to show to the client: it never reveals secrets or which internal check of
a signature failed. ``log_detail`` is for the operator's log only (still nothing secret).

``reason`` is a stable snake_case code naming the check that refused the request
(``code_reused``, ``pkce_mismatch``, ``assertion_jti_replay``, ...). It is what the audit log's
``refusal`` entries record (docs/AUDIT-FORMAT.md), so it must never carry request data; it
defaults to the error code. Auditors may rely on the codes given at a raise site: rename one only
with a note in the changelog.
"""

from __future__ import annotations


class OAuthError(Exception):
    error: str = "invalid_request"
    status: int = 400

    def __init__(
        self,
        description: str = "",
        *,
        log_detail: str = "",
        reason: str | None = None,
        client_id: str | None = None,
    ) -> None:
        """``client_id``: set by client authentication when the request named a *registered*
        client but failed to authenticate as it, so the refusal can be attributed; never an
        unregistered value from the request."""
        self.description = description
        self.log_detail = log_detail or description
        self.reason = reason or self.error
        self.client_id = client_id
        super().__init__(f"{self.error}: {description}")

    def body(self) -> dict[str, str]:
        body = {"error": self.error}
        if self.description:
            body["error_description"] = self.description
        return body


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401


class InvalidGrant(OAuthError):
    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class UnsupportedTokenType(OAuthError):
    error = "unsupported_token_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class InvalidRequestUri(OAuthError):
    error = "invalid_request_uri"


class InvalidRequestObject(OAuthError):
    error = "invalid_request_object"


class InvalidAuthorizationDetails(OAuthError):
    error = "invalid_authorization_details"


class InvalidDpopProof(OAuthError):
    error = "invalid_dpop_proof"


class UseDpopNonce(OAuthError):
    """The client must retry with the server-provided nonce in the DPoP-Nonce header."""

    error = "use_dpop_nonce"

    def __init__(self, nonce: str, description: str = "a DPoP nonce is required") -> None:
        self.nonce = nonce
        super().__init__(description, reason="dpop_nonce_required")


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InteractionRequired(OAuthError):
    error = "interaction_required"


class InvalidToken(OAuthError):
    """Resource-side: the access token is missing, malformed, expired, revoked or mis-bound."""

    error = "invalid_token"
    status = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403


class TemporarilyUnavailable(OAuthError):
    error = "temporarily_unavailable"
    status = 503


class RequestTooLarge(OAuthError):
    error = "invalid_request"
    status = 413


class MethodNotAllowed(OAuthError):
    error = "invalid_request"
    status = 405
