"""One call for a ledger endpoint: verify the token and its DPoP proof, check the instruction
against the token, optionally ask the issuer whether the token was revoked, and only then spend
the token (single use). :func:`authorize_transfer` does it for a value transfer,
:func:`authorize_funding` for a funding movement; both spend tokens in the same replay store
namespace, so one token is spent once whichever endpoint it is presented to.

The order matters: every check that can refuse runs before the token's ``jti`` is recorded, so a
refused request never burns a token the holder could still use for the transfer they approved;
and recording is one unique insert, so of two requests racing with the same token exactly one is
approved. A ledger that wants the record and the booking in one database transaction calls the
steps itself and uses :meth:`SqlReplayStore.consume_in` (docs/LEDGER.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from trustanchor.ledger.errors import LedgerRefusal
from trustanchor.ledger.funding_check import ApprovedFunding, FundingInstruction, check_funding
from trustanchor.ledger.replay_store import TOKEN_NAMESPACE, ReplayStore
from trustanchor.ledger.token_check import HeaderValues, LedgerTokenVerifier, VerifiedAccessToken
from trustanchor.ledger.transfer_check import ApprovedTransfer, TransferInstruction, check_transfer

_Approved = TypeVar("_Approved")

Introspector = Callable[[str], Mapping[str, Any]]
"""Posts the token to the issuer's introspection endpoint (RFC 7662, authenticated as a client
registered for introspection) and returns the parsed JSON response."""


def require_active(introspect: Introspector, token: VerifiedAccessToken) -> None:
    """Refuse a token the issuer reports as not active (``token_revoked``).

    Transfer and funding tokens are short-lived and single-use, so revocation within their lifetime
    is rare; this is for ledgers that want it anyway (for a funding token: removing its link revokes
    the grants relying on it, and with them the token). It fails closed: an introspection call that
    raises, or an answer about another token, is ``revocation_check_failed`` (503), not an approval.
    """
    try:
        answer = introspect(token.token)
    except Exception as exc:  # the ledger's HTTP call: any failure means "unknown"
        raise LedgerRefusal(
            "revocation_check_failed", log_detail=f"introspection failed: {exc.__class__.__name__}"
        ) from exc
    if not isinstance(answer, Mapping):
        raise LedgerRefusal("revocation_check_failed", log_detail="introspection answer malformed")
    if answer.get("active") is not True:
        raise LedgerRefusal("token_revoked")
    jti = answer.get("jti")
    if jti is not None and jti != token.jti:
        raise LedgerRefusal(
            "revocation_check_failed", log_detail="introspection answered for another token"
        )


def consume_token(replay: ReplayStore, token: VerifiedAccessToken) -> None:
    """Spend the token: ``token_used`` unless this is its first use."""
    if not replay.consume(token.jti, token.valid_until, namespace=TOKEN_NAMESPACE):
        raise LedgerRefusal("token_used")


def authorize_transfer(
    verifier: LedgerTokenVerifier,
    replay: ReplayStore,
    *,
    authorization: HeaderValues,
    dpop: HeaderValues,
    method: str,
    url: str,
    instruction: TransferInstruction,
    introspect: Introspector | None = None,
) -> ApprovedTransfer:
    """The approved transfer (the token is now spent), or :class:`LedgerRefusal` (nothing spent
    but the DPoP proof's jti). ``replay`` is the store the verifier records proofs in.

    ``url``: this endpoint's URL from the ledger's configured base URL (see
    :meth:`LedgerTokenVerifier.verify`). ``introspect``: optional revocation check.
    """
    return _authorize(
        verifier,
        replay,
        authorization=authorization,
        dpop=dpop,
        method=method,
        url=url,
        check=lambda token, at: check_transfer(token, instruction, at=at),
        introspect=introspect,
    )


def authorize_funding(
    verifier: LedgerTokenVerifier,
    replay: ReplayStore,
    *,
    authorization: HeaderValues,
    dpop: HeaderValues,
    method: str,
    url: str,
    instruction: FundingInstruction,
    introspect: Introspector | None = None,
) -> ApprovedFunding:
    """The approved funding movement (the token is now spent), or :class:`LedgerRefusal`
    (nothing spent but the DPoP proof's jti); the same steps, in the same order, as
    :func:`authorize_transfer`. Pass ``introspect`` to learn that the movement's link was removed
    since the token was issued."""
    return _authorize(
        verifier,
        replay,
        authorization=authorization,
        dpop=dpop,
        method=method,
        url=url,
        check=lambda token, at: check_funding(token, instruction, at=at),
        introspect=introspect,
    )


def _authorize(
    verifier: LedgerTokenVerifier,
    replay: ReplayStore,
    *,
    authorization: HeaderValues,
    dpop: HeaderValues,
    method: str,
    url: str,
    check: Callable[[VerifiedAccessToken, int], _Approved],
    introspect: Introspector | None,
) -> _Approved:
    at = verifier.clock.now()
    token = verifier.verify(authorization, dpop, method=method, url=url, at=at)
    approved = check(token, at)
    if introspect is not None:
        require_active(introspect, token)
    consume_token(replay, token)
    return approved


__all__ = [
    "Introspector",
    "authorize_funding",
    "authorize_transfer",
    "consume_token",
    "require_active",
]
