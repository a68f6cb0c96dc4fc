"""The demo bank's framework-free pieces: matching a verified identity to a customer, reading a
refusal's policy reason, the authorization_details it sends (checked with the service's own
validators), and a word for every reason in both languages."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trustanchor.demo.bank.client import AuthorizationRefused
from trustanchor.demo.bank.desk import (
    SIGN_IN_CLAIMS,
    BankDesk,
    link_details,
    transfer_details,
    verified_identity,
)
from trustanchor.demo.ledger_book import BOOK_REASONS
from trustanchor.demo.page_context import CATALOGS
from trustanchor.demo.people import load_people, person
from trustanchor.ledger import REASONS as LEDGER_REASONS
from trustanchor.oauth import account_link, value_transfer
from trustanchor.oauth.claims_request import parse_claims_request
from trustanchor.policy.decision import REASONS as POLICY_REASONS
from trustanchor.web.i18n import catalog

DEPOSIT = "acc_HanakoDeposit00000001"
WALLET = "acc_HanakoWallet000000001"
TARO_WALLET = "acc_TaroWallet0000000002"


def desk() -> BankDesk:
    # Matching needs only the people; the store, book and client are not touched.
    return BankDesk(load_people(), store=None, book=None, client=None)  # type: ignore[arg-type]


def id_token(claims: dict[str, Any]) -> dict[str, Any]:
    return {
        "sub": "pairwise",
        "verified_claims": {"verification": {"trust_framework": "x"}, "claims": claims},
    }


def test_the_verified_name_and_birthdate_find_the_customer() -> None:
    hanako = person("hanako")
    claims = {
        "given_name": hanako.given_name,
        "family_name": hanako.family_name,
        "birthdate": hanako.birthdate,
    }
    assert desk().customer_for(id_token(claims)) == hanako
    as_list = {"sub": "p", "verified_claims": [id_token(claims)["verified_claims"]]}
    assert desk().customer_for(as_list) == hanako


@pytest.mark.parametrize(
    "change",
    [
        {"birthdate": "1988-05-15"},
        {"given_name": "Hanako"},  # the credential says 花子
        {"birthdate": None},
    ],
)
def test_anything_less_than_an_exact_match_is_nobody(change: dict[str, Any]) -> None:
    hanako = person("hanako")
    claims = {
        "given_name": hanako.given_name,
        "family_name": hanako.family_name,
        "birthdate": hanako.birthdate,
        **change,
    }
    assert desk().customer_for(id_token({k: v for k, v in claims.items() if v})) is None


def test_unverified_claims_do_not_count() -> None:
    hanako = person("hanako")
    plain = {
        "sub": "p",
        "given_name": hanako.given_name,
        "family_name": hanako.family_name,
        "birthdate": hanako.birthdate,
    }
    assert verified_identity(plain) == {}
    assert desk().customer_for(plain) is None


def test_the_sign_in_claims_request_is_one_the_service_accepts() -> None:
    parsed = parse_claims_request(json.dumps(SIGN_IN_CLAIMS), max_depth=8)
    assert parsed.all_names() == ("given_name", "family_name", "birthdate")


@pytest.mark.parametrize(
    ("error", "description", "reason"),
    [
        ("access_denied", "denied by policy: no_common_anchor_set", "no_common_anchor_set"),
        ("access_denied", "the person declined", None),
        ("access_denied", None, None),
        ("access_denied", "denied by policy: <script>", None),
        ("server_error", "denied by policy: limit_exceeded", None),
    ],
)
def test_the_policy_reason_of_a_refusal(
    error: str, description: str | None, reason: str | None
) -> None:
    assert AuthorizationRefused(error, description).reason == reason


def test_the_details_the_bank_asks_for_are_valid_for_the_service() -> None:
    [link] = link_details(DEPOSIT, WALLET)
    assert account_link.validate(link) == link
    instruction = {
        "amount": "5000",
        "currency": "JPY",
        "debtor_account": WALLET,
        "creditor_account": TARO_WALLET,
        "remittance_reference": "DEMO 1",
    }
    [transfer] = transfer_details(instruction)
    assert value_transfer.validate(transfer) == transfer
    without = {k: v for k, v in instruction.items() if k != "remittance_reference"}
    assert "remittance_reference" not in transfer_details(without)[0]


@pytest.mark.parametrize("language", ["en", "ja"])
def test_every_reason_has_words_in_both_languages(language: str) -> None:
    texts = catalog(language, CATALOGS)
    policy = [r for r in POLICY_REASONS if r != "allowed"] + ["declined", "generic"]
    assert [r for r in policy if f"bank.reasons.{r}" not in texts] == []
    assert [r for r in BOOK_REASONS if f"ledger.reasons.{r}" not in texts] == []
    worded = [r for r in LEDGER_REASONS if f"ledger.reasons.{r}" in texts]
    assert len(worded) >= 20 and "ledger.reasons.generic" in texts  # the rest: generic


def test_the_two_languages_have_the_same_texts() -> None:
    en, ja = catalog("en", CATALOGS), catalog("ja", CATALOGS)
    mine = ("common.", "index.", "bank.", "ledger.")
    assert sorted(k for k in en if k.startswith(mine)) == sorted(
        k for k in ja if k.startswith(mine)
    )
