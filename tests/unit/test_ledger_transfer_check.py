"""trustanchor.ledger: the resource-side check of a transfer against the token's
``value_transfer`` authorization detail (SECURITY-CASES.md: "the resource-side check: amount,
currency or creditor beyond what the token grants → refused").

Tokens are real (service signing path, DPoP proof verified once per token); ``check_transfer``
itself is pure, so the property tests reuse one verified token.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ledger import (
    ANCHOR_SET,
    AT,
    CLIENT_ID,
    CREDITOR,
    DEBTOR,
    LEDGER_URL,
    TRANSFER_LIFETIME,
    Intermediary,
    ServiceIssuer,
    make_verifier,
    matching_instruction,
    transfer_entry,
)

from trustanchor.domain.money import Amount
from trustanchor.ledger import (
    REASONS,
    InMemoryReplayStore,
    LedgerRefusal,
    TransferInstruction,
    VerifiedAccessToken,
    check_transfer,
)

MISMATCH_REASONS = {
    "currency_mismatch",
    "amount_mismatch",
    "debtor_mismatch",
    "creditor_mismatch",
    "reference_mismatch",
    "invalid_instruction",
}


class TokenFactory:
    """Mints a token with the given claims and verifies it as the ledger would."""

    def __init__(self, keys_dir: Path) -> None:
        self.issuer = ServiceIssuer(keys_dir)
        self.client = Intermediary()
        self.verifier = make_verifier(self.issuer, InMemoryReplayStore())

    def __call__(self, **claims: Any) -> VerifiedAccessToken:
        token = self.issuer.transfer_token(jkt=self.client.jkt, **claims)
        return self.verifier.verify(
            f"DPoP {token}", self.client.proof(token), method="POST", url=LEDGER_URL, at=AT
        )


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> TokenFactory:
    return TokenFactory(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def token(tokens: TokenFactory) -> VerifiedAccessToken:
    return tokens()


def refused(reason: str, token: VerifiedAccessToken, instruction: TransferInstruction) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        check_transfer(token, instruction, at=AT)
    assert caught.value.reason == reason, caught.value.log_detail
    assert (caught.value.error, caught.value.status) == REASONS[reason][:2]


# -- accepted ----------------------------------------------------------------------------------


def test_instruction_equal_to_the_approved_detail_is_accepted(token: VerifiedAccessToken) -> None:
    approved = check_transfer(token, matching_instruction(), at=AT)
    assert approved.amount == Amount("JPY", 5000)
    assert (approved.debtor_account, approved.creditor_account) == (DEBTOR, CREDITOR)
    assert approved.remittance_reference == "INV-2026-0001"
    assert approved.anchor_set == ANCHOR_SET
    assert approved.jti == token.jti
    assert (approved.client_id, approved.sub) == (CLIENT_ID, token.sub)
    assert approved.valid_until == token.valid_until


def test_amount_equal_in_value_but_spelled_otherwise_is_accepted(tokens: TokenFactory) -> None:
    entry = transfer_entry(instructed_amount={"currency": "EUR", "amount": "12.5"})
    assert entry["instructed_amount"]["amount"] == "12.50"
    token = tokens(authorization_details=[entry])
    approved = check_transfer(token, matching_instruction(amount="12.5", currency="EUR"), at=AT)
    assert str(approved.amount) == "12.50"


def test_token_without_reference_accepts_the_instruction_reference(tokens: TokenFactory) -> None:
    token = tokens(authorization_details=[transfer_entry(remittance_reference=None)])
    check_transfer(token, matching_instruction(remittance_reference=None), at=AT)
    approved = check_transfer(token, matching_instruction(remittance_reference="MINE"), at=AT)
    assert approved.remittance_reference == "MINE"


def test_transfer_token_may_also_carry_an_account_link_entry(tokens: TokenFactory) -> None:
    link = {
        "type": "account_link",
        "actions": ["link"],
        "deposit_account": "acc_" + "Deposit0000000000001",
        "wallet_account": DEBTOR,
    }
    token = tokens(authorization_details=[link, transfer_entry()])
    assert check_transfer(token, matching_instruction(), at=AT).jti == token.jti


# -- beyond what the token grants --------------------------------------------------------------


def test_amount_beyond_what_the_token_grants_is_refused(token: VerifiedAccessToken) -> None:
    refused("amount_mismatch", token, matching_instruction(amount="5001"))
    refused("amount_mismatch", token, matching_instruction(amount="500000"))


def test_amount_below_what_the_token_grants_is_refused(token: VerifiedAccessToken) -> None:
    refused("amount_mismatch", token, matching_instruction(amount="4999"))


def test_currency_beyond_what_the_token_grants_is_refused(token: VerifiedAccessToken) -> None:
    refused("currency_mismatch", token, matching_instruction(currency="USD"))
    refused("currency_mismatch", token, matching_instruction(currency="jpy"))
    refused("currency_mismatch", token, matching_instruction(currency="XXX"))


def test_creditor_beyond_what_the_token_grants_is_refused(token: VerifiedAccessToken) -> None:
    refused("creditor_mismatch", token, matching_instruction(creditor_account="acc_" + "M" * 20))


def test_debtor_other_than_the_approved_is_refused(token: VerifiedAccessToken) -> None:
    refused("debtor_mismatch", token, matching_instruction(debtor_account="acc_" + "X" * 20))


def test_debtor_and_creditor_swapped_are_refused(token: VerifiedAccessToken) -> None:
    swapped = matching_instruction(debtor_account=CREDITOR, creditor_account=DEBTOR)
    refused("debtor_mismatch", token, swapped)


def test_reference_other_than_the_approved_is_refused(token: VerifiedAccessToken) -> None:
    refused("reference_mismatch", token, matching_instruction(remittance_reference="INV-2"))
    refused("reference_mismatch", token, matching_instruction(remittance_reference=None))


# -- tokens that authorize no transfer ---------------------------------------------------------


@pytest.mark.parametrize(
    "details",
    [
        None,
        [],
        "value_transfer",
        [{"type": "account_link", "actions": ["link"]}],
        [transfer_entry(), transfer_entry(remittance_reference="OTHER")],
        [{**transfer_entry(), "locations": ["https://ledger.example.com"]}],
        [{**transfer_entry(), "instructed_amount": {"currency": "JPY", "amount": 5000}}],
        [{**transfer_entry(), "debtor_account": CREDITOR}],
        [transfer_entry(), "junk"],
    ],
    ids=[
        "absent",
        "empty",
        "not-an-array",
        "other-type-only",
        "two-transfers",
        "unknown-member",
        "amount-as-number",
        "debtor-equals-creditor",
        "junk-entry",
    ],
)
def test_token_without_exactly_one_understood_transfer_is_refused(
    tokens: TokenFactory, details: object
) -> None:
    token = tokens(authorization_details=details)
    refused("not_a_transfer_token", token, matching_instruction())


def test_transfer_token_without_anchor_set_is_refused(tokens: TokenFactory) -> None:
    refused("not_a_transfer_token", tokens(anchor_set=None), matching_instruction())


# -- the instruction itself --------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["5000.0", "05000", "-5000", "5e3", " 5000", "", "0"])
def test_instruction_amount_not_valid_in_its_currency_is_refused(
    token: VerifiedAccessToken, amount: str
) -> None:
    refused("invalid_instruction", token, matching_instruction(amount=amount))


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 5000},
        {"amount": 5000.0},
        {"debtor_account": None},
        {"creditor_account": b"acc"},
        {"remittance_reference": 7},
        {"remittance_reference": ""},
        {"debtor_account": "a" * 300},
    ],
)
def test_instruction_with_members_of_the_wrong_form_is_refused(
    token: VerifiedAccessToken, change: dict[str, Any]
) -> None:
    refused("invalid_instruction", token, matching_instruction(**change))


def test_transfer_check_refuses_a_token_that_expired_since_it_was_verified(
    token: VerifiedAccessToken,
) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        check_transfer(token, matching_instruction(), at=token.valid_until)
    assert caught.value.reason == "token_expired"
    assert token.valid_until > token.exp == AT + TRANSFER_LIFETIME


# -- property: nothing but the approved transfer passes ----------------------------------------

_TEXT = st.text(min_size=0, max_size=40)
_FIELDS = {
    "amount": st.one_of(_TEXT, st.integers(1, 10**6).map(str)),
    "currency": st.one_of(_TEXT, st.sampled_from(["USD", "EUR", "KRW", "jpy"])),
    "debtor_account": st.one_of(_TEXT, st.just(CREDITOR)),
    "creditor_account": st.one_of(_TEXT, st.just(DEBTOR)),
    "remittance_reference": st.one_of(st.none(), _TEXT),
}


@st.composite
def differing_instructions(draw: st.DrawFn) -> TransferInstruction:
    """The approved instruction with one or more fields replaced by a different value."""
    approved = matching_instruction()
    names = draw(st.sets(st.sampled_from(sorted(_FIELDS)), min_size=1))
    changes: dict[str, Any] = {}
    for name in names:
        original = getattr(approved, name)
        changes[name] = draw(_FIELDS[name].filter(lambda value, o=original: value != o))
    return matching_instruction(**changes)


@settings(max_examples=300, deadline=None)
@given(instruction=differing_instructions())
def test_any_instruction_differing_from_the_approved_detail_is_refused(
    token: VerifiedAccessToken, instruction: TransferInstruction
) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        check_transfer(token, instruction, at=AT)
    assert caught.value.reason in MISMATCH_REASONS


@settings(max_examples=100, deadline=None)
@given(cents=st.integers(1, 10**9), trailing_zero=st.booleans())
def test_any_spelling_of_the_approved_eur_amount_is_accepted_and_others_refused(
    tokens: TokenFactory, cents: int, trailing_zero: bool
) -> None:
    amount = Amount("EUR", cents)
    entry = transfer_entry(instructed_amount={"currency": "EUR", "amount": str(amount)})
    token = tokens(authorization_details=[entry])
    text = str(amount)
    if trailing_zero and text.endswith("0"):
        text = text[:-1].rstrip(".")
    approved = check_transfer(token, matching_instruction(amount=text, currency="EUR"), at=AT)
    assert approved.amount == amount
    other = str(Amount("EUR", cents + 1))
    with pytest.raises(LedgerRefusal) as caught:
        check_transfer(token, matching_instruction(amount=other, currency="EUR"), at=AT)
    assert caught.value.reason == "amount_mismatch"
