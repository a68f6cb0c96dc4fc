"""The resource-side check of a funding movement: is the movement between a holder's own deposit
account and CBDC wallet that the ledger is asked to execute exactly the one the token
authorizes?

The token's ``authorization_details`` must hold exactly one ``funding`` entry, read (and
validated again) by the service's own :mod:`trustanchor.oauth.funding`, and that entry must name
the link it relies on (``link_id``: the service always fills it in when it grants a movement, so
a granted entry without one was not issued by the service's grant path and authorizes nothing).
The instruction must then match the entry member by member: the same direction, currency and
amount (compared as :class:`Amount`), the same deposit account and the same wallet account. As
for transfers, "within the limit" is not enough: the token authorizes one movement, not a
budget.

The check is pure (no I/O, nothing consumed); ``at`` only re-checks that the token is still
within its lifetime for callers that verified it earlier. Whether the link still exists is not
something the token can say: a ledger that must know asks the issuer through introspection
(:func:`trustanchor.ledger.authorize.require_active`), which answers ``active: false`` for a
token whose grant was revoked because its link was removed.

A movement token minted from a standing authorization is checked the same way; its entry also
names the standing authorization (``standing_authorization_id``), returned in
:class:`ApprovedFunding` for the ledger's records. Whether that authorization has been revoked
since is again the issuer's to say through introspection.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustanchor.domain.money import Amount, MoneyError, parse_amount
from trustanchor.ledger.errors import LedgerRefusal
from trustanchor.ledger.token_check import VerifiedAccessToken
from trustanchor.oauth import funding
from trustanchor.oauth.errors import InvalidAuthorizationDetails
from trustanchor.oauth.funding import Direction

MAX_INSTRUCTION_MEMBER_LENGTH = 256
_MALFORMED = "the funding instruction is malformed"


@dataclass(frozen=True, slots=True)
class FundingInstruction:
    """The concrete movement the ledger is asked to execute, as the ledger received it.

    ``direction`` is ``"deposit_to_wallet"`` or ``"wallet_to_deposit"``; ``amount`` is decimal
    text (``"10000"``, ``"12.50"``) in ``currency`` (ISO 4217), never a float; the accounts are
    the service's account ids (``acc_…``) the ledger has on file.
    """

    direction: str
    amount: str
    currency: str
    deposit_account: str
    wallet_account: str


@dataclass(frozen=True, slots=True)
class ApprovedFunding:
    """A movement the token authorizes, with what the ledger should record beside it:
    ``link_id`` (the link the service relied on), ``anchor_set`` (the anchor set the service's
    decision relied on), the token's ``jti``, ``client_id`` (the intermediary), ``sub`` (the
    holder, as the service identifies them) and ``standing_authorization_id`` (the standing
    authorization the movement token was minted from; ``None`` for a movement the holder
    approved on its own)."""

    direction: Direction
    amount: Amount
    deposit_account: str
    wallet_account: str
    link_id: str
    anchor_set: str
    jti: str
    client_id: str
    sub: str
    valid_until: int
    standing_authorization_id: str | None = None

    @property
    def debtor_account(self) -> str:
        """The account the value leaves."""
        if self.direction == "deposit_to_wallet":
            return self.deposit_account
        return self.wallet_account

    @property
    def creditor_account(self) -> str:
        """The account the value reaches."""
        if self.direction == "deposit_to_wallet":
            return self.wallet_account
        return self.deposit_account


def check_funding(
    token: VerifiedAccessToken, instruction: FundingInstruction, *, at: int
) -> ApprovedFunding:
    """The approved movement, or :class:`LedgerRefusal`. Checks run in a fixed order (token
    lifetime, the token's detail, the instruction's form, direction, currency, the amount's
    form, amount, deposit account, wallet account), so one input always gets one reason."""
    if at >= token.valid_until:
        raise LedgerRefusal("token_expired")
    detail, link_id = _funding_detail(token)
    if token.anchor_set is None:
        raise LedgerRefusal("not_a_funding_token", log_detail="no anchor_set claim")
    _check_form(instruction)
    if instruction.direction != detail.direction:
        raise LedgerRefusal("direction_mismatch")
    if instruction.currency != detail.amount.currency:
        raise LedgerRefusal("currency_mismatch")
    amount = _instructed_amount(instruction)
    if amount.minor != detail.amount.minor:
        raise LedgerRefusal("amount_mismatch")
    if instruction.deposit_account != detail.deposit_account:
        raise LedgerRefusal("deposit_account_mismatch")
    if instruction.wallet_account != detail.wallet_account:
        raise LedgerRefusal("wallet_account_mismatch")
    return ApprovedFunding(
        direction=detail.direction,
        amount=detail.amount,
        deposit_account=detail.deposit_account,
        wallet_account=detail.wallet_account,
        link_id=link_id,
        anchor_set=token.anchor_set,
        jti=token.jti,
        client_id=token.client_id,
        sub=token.sub,
        valid_until=token.valid_until,
        standing_authorization_id=detail.standing_authorization_id,
    )


def _funding_detail(token: VerifiedAccessToken) -> tuple[funding.FundingDetail, str]:
    """The token's one funding entry and the link it names."""
    try:
        detail = funding.find(token.authorization_details)
    except InvalidAuthorizationDetails as exc:
        # Two entries, or one we do not fully understand: executing it would ignore a part of
        # what was approved (or add to it).
        raise LedgerRefusal("not_a_funding_token", log_detail=exc.description) from exc
    if detail is None:
        raise LedgerRefusal("not_a_funding_token", log_detail="no funding entry")
    if detail.link_id is None:
        raise LedgerRefusal("not_a_funding_token", log_detail="the funding entry has no link_id")
    return detail, detail.link_id


def _check_form(instruction: FundingInstruction) -> None:
    """Text where text is due, of sane length. A malformed instruction is the ledger caller's
    error (400), whatever the token says."""
    members = (
        instruction.direction,
        instruction.amount,
        instruction.currency,
        instruction.deposit_account,
        instruction.wallet_account,
    )
    if not all(isinstance(m, str) and 0 < len(m) <= MAX_INSTRUCTION_MEMBER_LENGTH for m in members):
        raise LedgerRefusal(
            "invalid_instruction", _MALFORMED, log_detail="a member is missing or not text"
        )


def _instructed_amount(instruction: FundingInstruction) -> Amount:
    """The instruction's amount in its currency (already known to be the token's)."""
    try:
        return parse_amount(instruction.amount, instruction.currency)
    except MoneyError as exc:
        raise LedgerRefusal(
            "invalid_instruction", f"the funding amount is refused ({exc.reason})"
        ) from exc


__all__ = ["ApprovedFunding", "FundingInstruction", "check_funding"]
