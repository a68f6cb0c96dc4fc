"""trustanchor.ledger.check_funding: the resource-side check of a funding movement (between one
holder's deposit account and CBDC wallet) against the token's ``funding`` authorization detail.

Tokens are real (service signing path, DPoP proof verified once per token); ``check_funding``
itself is pure, so the property tests reuse one verified token.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.ledger import (
    ANCHOR_SET,
    AT,
    CLIENT_ID,
    DEBTOR,
    DEPOSIT,
    FUNDING_URL,
    LINK_ID,
    STANDING_ID,
    TRANSFER_LIFETIME,
    Intermediary,
    ServiceIssuer,
    funding_entry,
    make_verifier,
    matching_funding,
    matching_instruction,
    transfer_entry,
)

from trustanchor.domain.money import Amount
from trustanchor.ledger import (
    REASONS,
    FundingInstruction,
    InMemoryReplayStore,
    LedgerRefusal,
    VerifiedAccessToken,
    check_funding,
    check_transfer,
)

WALLET = DEBTOR  # the holder's wallet in support.ledger's funding entry
MISMATCH_REASONS = {
    "direction_mismatch",
    "currency_mismatch",
    "amount_mismatch",
    "deposit_account_mismatch",
    "wallet_account_mismatch",
    "invalid_instruction",
}


class TokenFactory:
    """Mints a funding token with the given claims and verifies it as the ledger would."""

    def __init__(self, keys_dir: Path) -> None:
        self.issuer = ServiceIssuer(keys_dir)
        self.client = Intermediary()
        self.verifier = make_verifier(self.issuer, InMemoryReplayStore())

    def __call__(self, **claims: Any) -> VerifiedAccessToken:
        claims.setdefault("authorization_details", [funding_entry()])
        token = self.issuer.transfer_token(jkt=self.client.jkt, **claims)
        return self.verifier.verify(
            f"DPoP {token}",
            self.client.proof(token, url=FUNDING_URL),
            method="POST",
            url=FUNDING_URL,
            at=AT,
        )


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> TokenFactory:
    return TokenFactory(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def token(tokens: TokenFactory) -> VerifiedAccessToken:
    return tokens()


def refused(reason: str, token: VerifiedAccessToken, instruction: FundingInstruction) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        check_funding(token, instruction, at=AT)
    assert caught.value.reason == reason, caught.value.log_detail
    assert (caught.value.error, caught.value.status) == REASONS[reason][:2]


# -- accepted ----------------------------------------------------------------------------------


def test_instruction_equal_to_the_approved_detail_is_accepted(token: VerifiedAccessToken) -> None:
    approved = check_funding(token, matching_funding(), at=AT)
    assert approved.direction == "deposit_to_wallet"
    assert approved.amount == Amount("JPY", 10000)
    assert (approved.deposit_account, approved.wallet_account) == (DEPOSIT, WALLET)
    assert (approved.debtor_account, approved.creditor_account) == (DEPOSIT, WALLET)
    assert approved.link_id == LINK_ID
    assert approved.anchor_set == ANCHOR_SET
    assert approved.jti == token.jti
    assert (approved.client_id, approved.sub) == (CLIENT_ID, token.sub)
    assert approved.valid_until == token.valid_until
    assert approved.standing_authorization_id is None  # approved by the holder on its own


def test_a_movement_from_a_standing_authorization_names_it(tokens: TokenFactory) -> None:
    token = tokens(authorization_details=[funding_entry(standing_authorization_id=STANDING_ID)])
    approved = check_funding(token, matching_funding(), at=AT)
    assert approved.standing_authorization_id == STANDING_ID
    assert approved.link_id == LINK_ID
    # Checked like any funding token: the movement is exact, not "within the standing bounds".
    refused("amount_mismatch", token, matching_funding(amount="9999"))
    refused("direction_mismatch", token, matching_funding(direction="wallet_to_deposit"))


def test_a_sweep_to_the_deposit_account_is_accepted(tokens: TokenFactory) -> None:
    token = tokens(authorization_details=[funding_entry(direction="wallet_to_deposit")])
    approved = check_funding(token, matching_funding(direction="wallet_to_deposit"), at=AT)
    assert (approved.debtor_account, approved.creditor_account) == (WALLET, DEPOSIT)


def test_amount_equal_in_value_but_spelled_otherwise_is_accepted(tokens: TokenFactory) -> None:
    entry = funding_entry(instructed_amount={"currency": "EUR", "amount": "12.5"})
    assert entry["instructed_amount"]["amount"] == "12.50"
    token = tokens(authorization_details=[entry])
    approved = check_funding(token, matching_funding(amount="12.5", currency="EUR"), at=AT)
    assert str(approved.amount) == "12.50"


def test_funding_token_may_also_carry_an_account_link_entry(tokens: TokenFactory) -> None:
    link = {
        "type": "account_link",
        "actions": ["link"],
        "deposit_account": DEPOSIT,
        "wallet_account": WALLET,
    }
    token = tokens(authorization_details=[link, funding_entry()])
    assert check_funding(token, matching_funding(), at=AT).jti == token.jti


# -- beyond what the token grants --------------------------------------------------------------


def test_the_other_direction_is_refused(token: VerifiedAccessToken) -> None:
    refused("direction_mismatch", token, matching_funding(direction="wallet_to_deposit"))


def test_amount_other_than_the_approved_is_refused(token: VerifiedAccessToken) -> None:
    refused("amount_mismatch", token, matching_funding(amount="10001"))
    refused("amount_mismatch", token, matching_funding(amount="9999"))
    refused("amount_mismatch", token, matching_funding(amount="1000000"))


def test_currency_other_than_the_approved_is_refused(token: VerifiedAccessToken) -> None:
    refused("currency_mismatch", token, matching_funding(currency="USD"))
    refused("currency_mismatch", token, matching_funding(currency="jpy"))


def test_deposit_account_other_than_the_approved_is_refused(token: VerifiedAccessToken) -> None:
    refused("deposit_account_mismatch", token, matching_funding(deposit_account="acc_" + "X" * 20))


def test_wallet_account_other_than_the_approved_is_refused(token: VerifiedAccessToken) -> None:
    refused("wallet_account_mismatch", token, matching_funding(wallet_account="acc_" + "M" * 20))


def test_accounts_swapped_are_refused(token: VerifiedAccessToken) -> None:
    swapped = matching_funding(deposit_account=WALLET, wallet_account=DEPOSIT)
    refused("deposit_account_mismatch", token, swapped)


# -- tokens that authorize no funding movement -------------------------------------------------


@pytest.mark.parametrize(
    "details",
    [
        None,
        [],
        "funding",
        [transfer_entry()],
        [{"type": "account_link", "actions": ["link"]}],
        [funding_entry(), funding_entry(instructed_amount={"currency": "JPY", "amount": "1"})],
        [{**funding_entry(), "locations": ["https://ledger.example.com"]}],
        [{**funding_entry(), "instructed_amount": {"currency": "JPY", "amount": 10000}}],
        [{**funding_entry(), "direction": "sideways"}],
        [{**funding_entry(), "wallet_account": DEPOSIT}],
        [{**funding_entry(), "link_id": "lnk_short"}],
        [{**funding_entry(), "standing_authorization_id": "sta_short"}],
        [{**funding_entry(), "standing_authorization_id": None}],
        [
            {
                "type": "standing_funding",
                "directions": ["deposit_to_wallet"],
                "deposit_account": DEPOSIT,
                "wallet_account": WALLET,
                "max_amount": {"currency": "JPY", "amount": "10000"},
                "daily_amount": {"currency": "JPY", "amount": "10000"},
                "valid_days": 90,
                "link_id": LINK_ID,
                "standing_authorization_id": STANDING_ID,
                "expires_at": AT + 86400,
            }
        ],
        [funding_entry(link_id=None)],
        [funding_entry(), "junk"],
    ],
    ids=[
        "absent",
        "empty",
        "not-an-array",
        "transfer-only",
        "other-type-only",
        "two-fundings",
        "unknown-member",
        "amount-as-number",
        "unknown-direction",
        "deposit-equals-wallet",
        "malformed-link-id",
        "malformed-standing-authorization-id",
        "null-standing-authorization-id",
        "standing-funding-only",
        "no-link-id",
        "junk-entry",
    ],
)
def test_token_without_exactly_one_understood_granted_funding_is_refused(
    tokens: TokenFactory, details: object
) -> None:
    token = tokens(authorization_details=details)
    refused("not_a_funding_token", token, matching_funding())


def test_funding_token_without_anchor_set_is_refused(tokens: TokenFactory) -> None:
    refused("not_a_funding_token", tokens(anchor_set=None), matching_funding())


def test_a_funding_token_authorizes_no_transfer(token: VerifiedAccessToken) -> None:
    transfer = matching_instruction(
        amount="10000", debtor_account=DEPOSIT, creditor_account=WALLET, remittance_reference=None
    )
    with pytest.raises(LedgerRefusal) as caught:
        check_transfer(token, transfer, at=AT)
    assert caught.value.reason == "not_a_transfer_token"


# -- the instruction itself --------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["10000.0", "010000", "-10000", "1e4", " 10000", "", "0"])
def test_instruction_amount_not_valid_in_its_currency_is_refused(
    token: VerifiedAccessToken, amount: str
) -> None:
    refused("invalid_instruction", token, matching_funding(amount=amount))


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 10000},
        {"amount": 10000.0},
        {"direction": None},
        {"direction": ""},
        {"deposit_account": b"acc"},
        {"wallet_account": None},
        {"currency": 392},
        {"wallet_account": "a" * 300},
    ],
)
def test_instruction_with_members_of_the_wrong_form_is_refused(
    token: VerifiedAccessToken, change: dict[str, Any]
) -> None:
    refused("invalid_instruction", token, matching_funding(**change))


def test_a_malformed_instruction_is_described_as_a_funding_instruction(
    token: VerifiedAccessToken,
) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        check_funding(token, matching_funding(wallet_account=None), at=AT)
    assert caught.value.body() == {
        "error": "invalid_request",
        "error_description": "the funding instruction is malformed",
        "reason": "invalid_instruction",
    }


def test_funding_check_refuses_a_token_that_expired_since_it_was_verified(
    token: VerifiedAccessToken,
) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        check_funding(token, matching_funding(), at=token.valid_until)
    assert caught.value.reason == "token_expired"
    assert token.valid_until > token.exp == AT + TRANSFER_LIFETIME


# -- property: nothing but the approved movement passes ----------------------------------------

_TEXT = st.text(min_size=0, max_size=40)
_FIELDS = {
    "direction": st.one_of(_TEXT, st.just("wallet_to_deposit"), st.just("DEPOSIT_TO_WALLET")),
    "amount": st.one_of(_TEXT, st.integers(1, 10**6).map(str)),
    "currency": st.one_of(_TEXT, st.sampled_from(["USD", "EUR", "KRW", "jpy"])),
    "deposit_account": st.one_of(_TEXT, st.just(WALLET)),
    "wallet_account": st.one_of(_TEXT, st.just(DEPOSIT)),
}


@st.composite
def differing_instructions(draw: st.DrawFn) -> FundingInstruction:
    """The approved instruction with one or more members replaced by a different value."""
    approved = matching_funding()
    names = draw(st.sets(st.sampled_from(sorted(_FIELDS)), min_size=1))
    changes: dict[str, Any] = {}
    for name in names:
        original = getattr(approved, name)
        changes[name] = draw(_FIELDS[name].filter(lambda value, o=original: value != o))
    return matching_funding(**changes)


@settings(max_examples=300, deadline=None)
@given(instruction=differing_instructions())
def test_any_instruction_differing_from_the_approved_detail_is_refused(
    token: VerifiedAccessToken, instruction: FundingInstruction
) -> None:
    with pytest.raises(LedgerRefusal) as caught:
        check_funding(token, instruction, at=AT)
    assert caught.value.reason in MISMATCH_REASONS


@settings(max_examples=100, deadline=None)
@given(
    minor=st.integers(1, 10**9),
    direction=st.sampled_from(["deposit_to_wallet", "wallet_to_deposit"]),
)
def test_the_approved_movement_is_accepted_and_one_more_minor_unit_refused(
    tokens: TokenFactory, minor: int, direction: str
) -> None:
    amount = Amount("EUR", minor)
    entry = funding_entry(
        direction=direction, instructed_amount={"currency": "EUR", "amount": str(amount)}
    )
    token = tokens(authorization_details=[entry])
    instruction = matching_funding(direction=direction, amount=str(amount), currency="EUR")
    approved = check_funding(token, instruction, at=AT)
    assert (approved.amount, approved.direction) == (amount, direction)
    with pytest.raises(LedgerRefusal) as caught:
        check_funding(token, replace(instruction, amount=str(Amount("EUR", minor + 1))), at=AT)
    assert caught.value.reason == "amount_mismatch"


@st.composite
def mutated_entries(draw: st.DrawFn) -> dict[str, Any]:
    """The granted entry with one member of the movement changed to another valid value."""
    member = draw(
        st.sampled_from(["direction", "currency", "amount", "deposit_account", "wallet_account"])
    )
    accounts = st.from_regex(r"acc_[A-Za-z0-9_-]{16,60}", fullmatch=True)
    if member == "direction":
        return funding_entry(direction="wallet_to_deposit")
    if member == "currency":
        currency = draw(st.sampled_from(["KRW", "EUR", "USD", "GBP"]))
        return funding_entry(instructed_amount={"currency": currency, "amount": "10000"})
    if member == "amount":
        minor = draw(st.integers(1, 10**12).filter(lambda value: value != 10000))
        return funding_entry(instructed_amount={"currency": "JPY", "amount": str(minor)})
    if member == "deposit_account":
        return funding_entry(
            deposit_account=draw(accounts.filter(lambda a: a not in (DEPOSIT, WALLET)))
        )
    return funding_entry(wallet_account=draw(accounts.filter(lambda a: a not in (DEPOSIT, WALLET))))


@settings(max_examples=100, deadline=None)
@given(entry=mutated_entries())
def test_a_token_granting_any_other_movement_refuses_the_instruction(
    tokens: TokenFactory, entry: dict[str, Any]
) -> None:
    token = tokens(authorization_details=[entry])
    with pytest.raises(LedgerRefusal) as caught:
        check_funding(token, matching_funding(), at=AT)
    assert caught.value.reason in MISMATCH_REASONS - {"invalid_instruction"}


@settings(max_examples=30, deadline=None)
@given(link_id=st.from_regex(r"lnk_[A-Za-z0-9_-]{16,60}", fullmatch=True))
def test_the_approved_movement_names_the_link_the_token_names(
    tokens: TokenFactory, link_id: str
) -> None:
    token = tokens(authorization_details=[funding_entry(link_id=link_id)])
    assert check_funding(token, matching_funding(), at=AT).link_id == link_id
