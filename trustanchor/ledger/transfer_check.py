"""The resource-side check of a transfer: is the transfer the ledger is asked to execute exactly
the one the token authorizes?

The token's ``authorization_details`` must hold exactly one ``value_transfer`` entry, read (and
validated again) by the service's own :mod:`trustanchor.oauth.value_transfer`, so that both sides
agree on its members, the account id syntax and the amount rules. The instruction must then match
it member by member: same currency, the same amount (compared as :class:`Amount`, so ``"12.5"`` and
``"12.50"`` EUR are one amount, while ``"5000.0"`` JPY is not an amount at all), the same debtor
and creditor account, and the same remittance reference when the token names one. "Within the
limit" is not enough: the holder approved one transfer, not a budget.

The check is pure (no I/O, nothing consumed); ``at`` only re-checks that the token is still
within its lifetime for callers that verified it earlier.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustanchor.domain.money import Amount, MoneyError, parse_amount
from trustanchor.ledger.errors import LedgerRefusal
from trustanchor.ledger.token_check import VerifiedAccessToken
from trustanchor.oauth import value_transfer
from trustanchor.oauth.errors import InvalidAuthorizationDetails

MAX_INSTRUCTION_MEMBER_LENGTH = 256


@dataclass(frozen=True, slots=True)
class TransferInstruction:
    """The concrete transfer the ledger is asked to execute, as the ledger received it.

    ``amount`` is decimal text (``"5000"``, ``"12.50"``) in ``currency`` (ISO 4217), never a
    float; the accounts are the service's account ids (``acc_…``) the ledger has on file.
    """

    amount: str
    currency: str
    debtor_account: str
    creditor_account: str
    remittance_reference: str | None = None


@dataclass(frozen=True, slots=True)
class ApprovedTransfer:
    """A transfer the token authorizes, with what the ledger should record beside it:
    ``anchor_set`` (the anchor set the service's decision relied on), the token's ``jti``,
    ``client_id`` (the intermediary) and ``sub`` (the holder, as the service identifies them)."""

    amount: Amount
    debtor_account: str
    creditor_account: str
    remittance_reference: str | None
    anchor_set: str
    jti: str
    client_id: str
    sub: str
    valid_until: int


def check_transfer(
    token: VerifiedAccessToken, instruction: TransferInstruction, *, at: int
) -> ApprovedTransfer:
    """The approved transfer, or :class:`LedgerRefusal`. Checks run in a fixed order (token
    lifetime, the token's detail, the instruction's form, currency, the amount's form, amount,
    debtor, creditor, reference), so one input always gets one reason."""
    if at >= token.valid_until:
        raise LedgerRefusal("token_expired")
    detail = _transfer_detail(token)
    if token.anchor_set is None:
        raise LedgerRefusal("not_a_transfer_token", log_detail="no anchor_set claim")
    _check_form(instruction)
    if instruction.currency != detail.amount.currency:
        raise LedgerRefusal("currency_mismatch")
    amount = _instructed_amount(instruction)
    if amount.minor != detail.amount.minor:
        raise LedgerRefusal("amount_mismatch")
    if instruction.debtor_account != detail.debtor_account:
        raise LedgerRefusal("debtor_mismatch")
    if instruction.creditor_account != detail.creditor_account:
        raise LedgerRefusal("creditor_mismatch")
    if (
        detail.remittance_reference is not None
        and instruction.remittance_reference != detail.remittance_reference
    ):
        raise LedgerRefusal("reference_mismatch")
    return ApprovedTransfer(
        amount=detail.amount,
        debtor_account=detail.debtor_account,
        creditor_account=detail.creditor_account,
        remittance_reference=instruction.remittance_reference,
        anchor_set=token.anchor_set,
        jti=token.jti,
        client_id=token.client_id,
        sub=token.sub,
        valid_until=token.valid_until,
    )


def _transfer_detail(token: VerifiedAccessToken) -> value_transfer.ValueTransferDetail:
    try:
        detail = value_transfer.find(token.authorization_details)
    except InvalidAuthorizationDetails as exc:
        # Two entries, or one we do not fully understand: executing it would ignore a part of
        # what the holder approved (or add to it).
        raise LedgerRefusal("not_a_transfer_token", log_detail=exc.description) from exc
    if detail is None:
        raise LedgerRefusal("not_a_transfer_token", log_detail="no value_transfer entry")
    return detail


def _check_form(instruction: TransferInstruction) -> None:
    """Text where text is due, of sane length. A malformed instruction is the ledger caller's
    error (400), whatever the token says."""
    members = (
        instruction.amount,
        instruction.currency,
        instruction.debtor_account,
        instruction.creditor_account,
    )
    if not all(isinstance(m, str) and 0 < len(m) <= MAX_INSTRUCTION_MEMBER_LENGTH for m in members):
        raise LedgerRefusal("invalid_instruction", log_detail="a member is missing or not text")
    reference = instruction.remittance_reference
    if reference is not None and (
        not isinstance(reference, str) or not 0 < len(reference) <= MAX_INSTRUCTION_MEMBER_LENGTH
    ):
        raise LedgerRefusal("invalid_instruction", log_detail="remittance_reference malformed")


def _instructed_amount(instruction: TransferInstruction) -> Amount:
    """The instruction's amount in its currency (already known to be the token's)."""
    try:
        return parse_amount(instruction.amount, instruction.currency)
    except MoneyError as exc:
        raise LedgerRefusal(
            "invalid_instruction", f"the transfer amount is refused ({exc.reason})"
        ) from exc


__all__ = ["ApprovedTransfer", "TransferInstruction", "check_transfer"]
