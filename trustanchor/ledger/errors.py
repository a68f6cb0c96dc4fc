"""The one refusal the ledger module raises, and the closed list of its reason codes.

A ledger answers every refusal the same way: the HTTP status and OAuth error code come from the
reason (RFC 6750 §3.1, RFC 9449 §7.1), the ``reason`` goes to the ledger's own records. The list
is closed on purpose: a reason that is not in :data:`REASONS` is a programming error, so a ledger
can switch on the reason without a default branch that silently accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

# error code, HTTP status, description that is safe to show to the caller
_INVALID_TOKEN = ("invalid_token", 401)
_INVALID_PROOF = ("invalid_dpop_proof", 401)
_NOT_GRANTED = ("insufficient_scope", 403)
_BAD_REQUEST = ("invalid_request", 400)
_UNAVAILABLE = ("temporarily_unavailable", 503)

REASONS: Mapping[str, tuple[str, int, str]] = MappingProxyType(
    {
        # -- the Authorization header and the access token (RFC 6750, RFC 9068) --------------
        "token_missing": (*_INVALID_TOKEN, "an access token is required"),
        "multiple_authorization_headers": (*_BAD_REQUEST, "more than one Authorization header"),
        "dpop_scheme_required": (*_INVALID_TOKEN, "the access token must be sent with DPoP"),
        "token_malformed": (*_INVALID_TOKEN, "the access token is not a well-formed JWT"),
        "wrong_typ": (*_INVALID_TOKEN, "the token is not an access token (typ at+jwt)"),
        "alg_not_allowed": (*_INVALID_TOKEN, "the access token alg is not accepted"),
        "unknown_key": (*_INVALID_TOKEN, "the access token is not signed by a known key"),
        "bad_signature": (*_INVALID_TOKEN, "the access token signature is invalid"),
        "wrong_issuer": (*_INVALID_TOKEN, "the access token is from another issuer"),
        "wrong_audience": (*_INVALID_TOKEN, "the access token is not for this ledger"),
        "token_expired": (*_INVALID_TOKEN, "the access token has expired"),
        "token_not_yet_valid": (*_INVALID_TOKEN, "the access token is not valid yet"),
        "missing_claim": (*_INVALID_TOKEN, "the access token lacks a required claim"),
        "not_dpop_bound": (*_INVALID_TOKEN, "the access token is not DPoP-bound"),
        "token_revoked": (*_INVALID_TOKEN, "the access token has been revoked"),
        "token_used": (*_INVALID_TOKEN, "the access token has already been used"),
        # -- the DPoP proof (RFC 9449 §4.3): the service's own codes (oauth/dpop.py, listed in
        # docs/AUDIT-FORMAT.md §1.5), so a proof is refused for the same reason on both sides
        "dpop_proof_missing": (*_INVALID_PROOF, "DPoP proof missing"),
        "dpop_proof_repeated": (*_INVALID_PROOF, "more than one DPoP header"),
        "dpop_proof_invalid": (*_INVALID_PROOF, "DPoP proof refused"),
        "dpop_jwk_missing": (*_INVALID_PROOF, "DPoP proof header has no jwk"),
        "dpop_jwk_alg": (*_INVALID_PROOF, "DPoP proof jwk does not fit its alg"),
        "dpop_claim_missing": (*_INVALID_PROOF, "DPoP proof lacks a required claim"),
        "dpop_jti_too_long": (*_INVALID_PROOF, "DPoP proof jti is too long"),
        "dpop_htm_mismatch": (*_INVALID_PROOF, "DPoP proof htm does not match the request"),
        "dpop_htu_mismatch": (*_INVALID_PROOF, "DPoP proof htu does not match the request"),
        "dpop_iat_missing": (*_INVALID_PROOF, "DPoP proof has no iat"),
        "dpop_iat_malformed": (*_INVALID_PROOF, "DPoP proof iat must be an integer"),
        "dpop_iat_window": (*_INVALID_PROOF, "DPoP proof iat is outside the window"),
        "dpop_ath_missing": (*_INVALID_PROOF, "DPoP proof has no ath for the access token"),
        "dpop_ath_mismatch": (*_INVALID_PROOF, "DPoP proof ath does not match the token"),
        "dpop_key_mismatch": (*_INVALID_PROOF, "DPoP proof key is not the token's key"),
        "dpop_jti_replay": (*_INVALID_PROOF, "DPoP proof jti reused"),
        "dpop_nonce_required": ("use_dpop_nonce", 401, "a DPoP nonce is required"),
        # -- the transfer against the token's authorization_details (RFC 9396) ---------------
        "not_a_transfer_token": (*_NOT_GRANTED, "the token does not authorize a transfer"),
        "currency_mismatch": (*_NOT_GRANTED, "the currency is not the one authorized"),
        "amount_mismatch": (*_NOT_GRANTED, "the amount is not the one authorized"),
        "debtor_mismatch": (*_NOT_GRANTED, "the debtor account is not the one authorized"),
        "creditor_mismatch": (*_NOT_GRANTED, "the creditor account is not the one authorized"),
        "reference_mismatch": (*_NOT_GRANTED, "the remittance reference is not the authorized"),
        "invalid_instruction": (*_BAD_REQUEST, "the transfer instruction is malformed"),
        # -- a funding movement against the token's funding detail (currency_mismatch,
        # amount_mismatch and invalid_instruction above apply to it too) ---------------------
        "not_a_funding_token": (*_NOT_GRANTED, "the token does not authorize a funding movement"),
        "direction_mismatch": (*_NOT_GRANTED, "the direction is not the one authorized"),
        "deposit_account_mismatch": (
            *_NOT_GRANTED,
            "the deposit account is not the one authorized",
        ),
        "wallet_account_mismatch": (*_NOT_GRANTED, "the wallet account is not the one authorized"),
        # -- dependencies the ledger configured ----------------------------------------------
        "keys_unavailable": (*_UNAVAILABLE, "the issuer's keys could not be obtained"),
        "revocation_check_failed": (*_UNAVAILABLE, "the token's status could not be checked"),
    }
)


class LedgerRefusal(Exception):
    """A presented token, proof or instruction was refused; nothing was consumed.

    ``reason``: one of :data:`REASONS` (stable, for the ledger's records and tests).
    ``error`` / ``status``: what to answer (``invalid_token`` 401, ``invalid_dpop_proof`` 401,
    ``use_dpop_nonce`` 401, ``insufficient_scope`` 403, ``invalid_request`` 400,
    ``temporarily_unavailable`` 503). ``description``: safe to show. ``log_detail``: for the
    ledger's log (never a token or a key). ``nonce``: with ``dpop_nonce_required``, the value
    for the ``DPoP-Nonce`` response header.
    """

    def __init__(
        self,
        reason: str,
        description: str | None = None,
        *,
        log_detail: str = "",
        nonce: str | None = None,
    ) -> None:
        if reason not in REASONS:
            raise ValueError(f"unknown ledger refusal reason {reason!r}")
        error, status, default_description = REASONS[reason]
        self.reason = reason
        self.error = error
        self.status = status
        self.description = description or default_description
        self.log_detail = log_detail or self.description
        self.nonce = nonce
        super().__init__(f"{reason}: {self.description}")

    def body(self) -> dict[str, str]:
        """The JSON error body (RFC 6749 §5.2 shape) plus the stable ``reason``."""
        return {"error": self.error, "error_description": self.description, "reason": self.reason}

    def response_headers(self, *, dpop_algs: Sequence[str]) -> dict[str, str]:
        """``WWW-Authenticate`` (RFC 9449 §7.1) and, when a nonce is demanded, ``DPoP-Nonce``."""
        headers: dict[str, str] = {}
        if self.status in (401, 403):
            description = self.description.replace("\\", "").replace('"', "")
            headers["WWW-Authenticate"] = (
                f'DPoP error="{self.error}", error_description="{description}", '
                f'algs="{" ".join(dpop_algs)}"'
            )
        if self.nonce is not None:
            headers["DPoP-Nonce"] = self.nonce
        return headers


__all__ = ["REASONS", "LedgerRefusal"]
