"""The policy engine on a fixed trust world (tests/support/policy_world.py): one table row per
reason code and per case the issue names, then the finer points (which set is relied on or
reported, which anchors, what a step-up asks for).

SECURITY-CASES.md lines covered here: "debtor and creditor not verified under a common anchor
set → access_denied, audited with the reason" (``no_common_anchor_set``) and "anchor suspended or
credential revoked after linking → the next transfer is denied" (``anchor_suspended``,
``credential_revoked``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from support.policy_world import (
    AT,
    POLICIES,
    account,
    funding,
    identity,
    jpy,
    link,
    login,
    snapshot,
    transfer,
)

from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import Authentication, Identity
from trustanchor.domain.money import Amount, parse_amount
from trustanchor.policy.decision import REASONS, Decision, StepUp
from trustanchor.policy.engine import STAGE_REASONS, STANDING_REASONS
from trustanchor.policy.facts import AccountFact, AuthenticationFact, CredentialStatus, IdentityFact
from trustanchor.policy.snapshot import TrustSnapshot

# People and their identities.
TARO_MN = identity("taro-mn", "taro", "mynumber", "high")
TARO_BANK = identity("taro-bank", "taro", "bank-ekyc", "substantial")
HANAKO_MN = identity("hanako-mn", "hanako", "mynumber", "high")
JIRO_BANK = identity("jiro-bank", "jiro", "bank-ekyc", "substantial")
PIERRE_EU = identity("pierre-eu", "pierre", "eu-pid", "high")
MARIE_EU = identity("marie-eu", "marie", "eu-pid", "high")
KEN_ZENGIN = identity("ken-zengin", "ken", "zengin", "high")
AYA_ZENGIN = identity("aya-zengin", "aya", "zengin", "high")
EVERYONE = [TARO_MN, TARO_BANK, HANAKO_MN, JIRO_BANK, PIERRE_EU, MARIE_EU, KEN_ZENGIN, AYA_ZENGIN]

# Their accounts.
TARO_DEPOSIT = account("acc_taro_deposit_000001", TARO_BANK, "bank_deposit")
TARO_WALLET = account("acc_taro_wallet_0000001", TARO_MN)
HANAKO_WALLET = account("acc_hanako_wallet_00001", HANAKO_MN)
JIRO_WALLET = account("acc_jiro_wallet_0000001", JIRO_BANK)
PIERRE_WALLET = account("acc_pierre_wallet_00001", PIERRE_EU)
MARIE_WALLET = account("acc_marie_wallet_000001", MARIE_EU)
KEN_WALLET = account("acc_ken_wallet_00000001", KEN_ZENGIN)
AYA_WALLET = account("acc_aya_wallet_00000001", AYA_ZENGIN)

AS_TARO = login(TARO_MN)  # high, 10 s ago
AS_TARO_BANK = login(TARO_BANK)  # substantial, 10 s ago


def people_with(*replacements: IdentityFact) -> list[IdentityFact]:
    """EVERYONE, each replacement standing in for the identity of the same id (or added)."""
    by_id = {i.id: i for i in EVERYONE} | {r.id: r for r in replacements}
    return list(by_id.values())


def taro_pays(
    amount: str,
    by: AuthenticationFact = AS_TARO,
    people: list[IdentityFact] = EVERYONE,
    *,
    debtor: AccountFact = TARO_WALLET,
    creditor: AccountFact = HANAKO_WALLET,
    world: TrustSnapshot | None = None,
) -> Callable[[], Decision]:
    def decide() -> Decision:
        if world is None:
            return transfer(jpy(amount), debtor, creditor, by, people)
        return transfer(jpy(amount), debtor, creditor, by, people, world=world)

    return decide


def pays(
    amount: Amount, debtor: AccountFact, creditor: AccountFact, by: AuthenticationFact
) -> Callable[[], Decision]:
    return lambda: transfer(amount, debtor, creditor, by, EVERYONE)


def taro_links(
    by: AuthenticationFact = AS_TARO,
    people: list[IdentityFact] = EVERYONE,
    *,
    deposit: AccountFact = TARO_DEPOSIT,
    wallet: AccountFact = TARO_WALLET,
    action: str = "link",
    linked: bool = False,
) -> Callable[[], Decision]:
    return lambda: link(deposit, wallet, by, people, action=action, linked=linked)


def in_jp_open(
    creditor_status: CredentialStatus, *, fail_closed: bool = False
) -> Callable[[], Decision]:
    """Taro pays Hanako, both verified only by open-id (set jp-open, which fails open)."""
    taro, hanako = (
        identity("t-open", "taro", "open-id"),
        identity("h-open", "hanako", "open-id", status=creditor_status),
    )
    policies = POLICIES
    if fail_closed:
        policies = POLICIES | {"jp-open": POLICIES["jp-open"] | {"revocation_check": "fail_closed"}}
    return lambda: transfer(
        jpy("5000"),
        account("acc_taro_wallet_open01", taro),
        account("acc_hanako_wallet_open1", hanako),
        login(taro),
        [taro, hanako],
        world=snapshot(policies),
    )


@dataclass(frozen=True)
class Case:
    name: str
    decide: Callable[[], Decision]
    reason: str
    anchor_set: str | None = None


SUSPENDED_TARO_WALLET = account("acc_taro_wallet_old_ca1", identity("t-old", "taro", "old-ca"))
CASES = [
    # -- allowed ---------------------------------------------------------------------------
    Case(
        "link: deposit (bank eKYC) and wallet (My Number) share jp-cbdc",
        taro_links(),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "link: both bound through My Number: jp-banks comes first by id",
        taro_links(deposit=account("acc_taro_deposit_mn0001", TARO_MN, "bank_deposit")),
        "allowed",
        "jp-banks",
    ),
    Case("unlink an existing link", taro_links(action="unlink", linked=True), "allowed", "jp-cbdc"),
    Case(
        "unlink from a closed account",
        taro_links(action="unlink", linked=True, deposit=replace(TARO_DEPOSIT, status="closed")),
        "allowed",
        "jp-cbdc",
    ),
    Case("transfer in the same set (both My Number)", taro_pays("5000"), "allowed", "jp-cbdc"),
    Case(
        "transfer across anchors of one set (My Number → bank eKYC)",
        taro_pays("5000", creditor=JIRO_WALLET),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "transfer to oneself",
        taro_pays("5000", creditor=replace(TARO_WALLET, id="acc_taro_wallet_0000002")),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "transfer at exactly the step-up threshold needs no step-up",
        taro_pays("100000", AS_TARO_BANK),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "transfer above the threshold after a high login 300 s ago",
        taro_pays("100001", login(TARO_MN, age=300)),
        "allowed",
        "jp-cbdc",
    ),
    Case("transfer at exactly the limit", taro_pays("1000000"), "allowed", "jp-cbdc"),
    Case(
        "transfer in EUR between EU wallets",
        pays(parse_amount("4999.99", "EUR"), PIERRE_WALLET, MARIE_WALLET, login(PIERRE_EU)),
        "allowed",
        "eu-wallets",
    ),
    # -- account checks --------------------------------------------------------------------
    Case(
        "link: deposit account not bound",
        taro_links(deposit=account("acc_unbound_deposit_01", None, "bank_deposit")),
        "account_not_bound",
    ),
    Case(
        "link: bound through an identity not given",
        taro_links(deposit=replace(TARO_DEPOSIT, binding_identity_id="taro-vanished")),
        "account_not_bound",
    ),
    Case(
        "transfer: creditor account not bound",
        taro_pays("5000", creditor=account("acc_unbound_wallet_001", None)),
        "account_not_bound",
    ),
    Case(
        "link: wallet belongs to someone else", taro_links(wallet=HANAKO_WALLET), "holder_mismatch"
    ),
    Case(
        "transfer: debtor account belongs to someone else than the login",
        taro_pays("5000", debtor=JIRO_WALLET),
        "holder_mismatch",
    ),
    Case(
        "link: two wallets",
        taro_links(deposit=replace(TARO_WALLET, id="acc_taro_wallet_x0001")),
        "account_kind_mismatch",
    ),
    Case(
        "link: deposit and wallet swapped",
        taro_links(deposit=TARO_WALLET, wallet=TARO_DEPOSIT),
        "account_kind_mismatch",
    ),
    Case("unlink without a link", taro_links(action="unlink", linked=False), "link_not_found"),
    # Funding's own account checks (tests/unit/test_policy_funding.py has the rest).
    Case(
        "funding over a flagged link",
        lambda: funding(
            jpy("5000"), TARO_DEPOSIT, TARO_WALLET, AS_TARO, EVERYONE, link_flagged=True
        ),
        "link_flagged",
    ),
    Case(
        "funding debiting another intermediary's deposit account without its approval",
        lambda: funding(
            jpy("5000"),
            replace(TARO_DEPOSIT, registered_elsewhere=True),
            TARO_WALLET,
            AS_TARO,
            EVERYONE,
        ),
        "debit_not_approved",
    ),
    Case(
        "link: closed deposit account",
        taro_links(deposit=replace(TARO_DEPOSIT, status="closed")),
        "account_closed",
    ),
    Case(
        "transfer: closed creditor account",
        taro_pays("5000", creditor=replace(HANAKO_WALLET, status="closed")),
        "account_closed",
    ),
    Case(
        "transfer: flagged debtor account",
        taro_pays("5000", debtor=replace(TARO_WALLET, status="flagged")),
        "account_flagged",
    ),
    Case(
        "link: would bind an account another intermediary registered",
        taro_links(
            deposit=account(
                "acc_unbound_deposit_02", None, "bank_deposit", registered_elsewhere=True
            )
        ),
        "account_registered_elsewhere",
    ),
    Case(
        "transfer: debtor account of another intermediary, not linked to the requester's",
        taro_pays("5000", debtor=replace(TARO_WALLET, registered_elsewhere=True)),
        "debtor_account_elsewhere",
    ),
    # -- no common set ---------------------------------------------------------------------
    Case(
        "transfer: Japanese wallet to EU wallet",
        taro_pays("5000", creditor=PIERRE_WALLET),
        "no_common_anchor_set",
    ),
    Case(
        "transfer: creditor whose only anchor the snapshot does not know",
        taro_pays(
            "5000",
            people=people_with(identity("hanako-mn", "hanako", "unknown-anchor")),
        ),
        "no_common_anchor_set",
    ),
    Case(
        "link: deposit through zengin (jp-banks), wallet through bank eKYC (jp-cbdc)",
        taro_links(
            people=people_with(identity("taro-z", "taro", "zengin")),
            deposit=account(
                "acc_taro_deposit_z0001", identity("taro-z", "taro", "zengin"), "bank_deposit"
            ),
            wallet=account("acc_taro_wallet_b00001", TARO_BANK),
        ),
        "no_common_anchor_set",
    ),
    # -- per set, in order -----------------------------------------------------------------
    Case(
        "transfer where the only common set allows linking only",
        pays(jpy("5000"), KEN_WALLET, AYA_WALLET, login(KEN_ZENGIN)),
        "operation_not_allowed",
        "jp-banks",
    ),
    Case(
        "link where the only common set allows transfers only",
        lambda: link(
            account("acc_pierre_deposit_0001", PIERRE_EU, "bank_deposit"),
            PIERRE_WALLET,
            login(PIERRE_EU),
            EVERYONE,
        ),
        "operation_not_allowed",
        "eu-wallets",
    ),
    Case(
        "transfer: creditor's only anchor suspended",
        taro_pays("5000", people=people_with(identity("hanako-mn", "hanako", "old-ca"))),
        "anchor_suspended",
        "jp-cbdc",
    ),
    Case(
        "transfer: creditor's only anchor retired",
        taro_pays("5000", people=people_with(identity("hanako-mn", "hanako", "gone-ca"))),
        "anchor_suspended",
        "jp-cbdc",
    ),
    Case(
        "link: wallet bound through a now suspended anchor",
        taro_links(
            people=people_with(identity("t-old", "taro", "old-ca")), wallet=SUSPENDED_TARO_WALLET
        ),
        "anchor_suspended",
        "jp-cbdc",
    ),
    Case(
        "transfer: creditor's credential revoked",
        taro_pays(
            "5000",
            people=people_with(identity("hanako-mn", "hanako", "mynumber", status="revoked")),
        ),
        "credential_revoked",
        "jp-cbdc",
    ),
    Case(
        "transfer: creditor's credential suspended by its issuer",
        taro_pays(
            "5000",
            people=people_with(identity("hanako-mn", "hanako", "mynumber", status="suspended")),
        ),
        "credential_revoked",
        "jp-cbdc",
    ),
    Case(
        "link: deposit's binding credential revoked after linking",
        taro_links(
            people=people_with(
                identity("taro-bank", "taro", "bank-ekyc", "substantial", status="revoked")
            )
        ),
        "credential_revoked",
        "jp-cbdc",
    ),
    Case(
        "transfer: status unknown, fail_closed set",
        taro_pays(
            "5000",
            people=people_with(identity("hanako-mn", "hanako", "mynumber", status="unknown")),
        ),
        "credential_status_unknown",
        "jp-cbdc",
    ),
    Case(
        "transfer: creditor's identity expired",
        taro_pays(
            "5000", people=people_with(identity("hanako-mn", "hanako", "mynumber", expires_at=AT))
        ),
        "identity_expired",
        "jp-cbdc",
    ),
    Case(
        "transfer: creditor's identity below the set's minimum",
        taro_pays("5000", people=people_with(identity("hanako-mn", "hanako", "mynumber", "low"))),
        "assurance_too_low",
        "jp-cbdc",
    ),
    Case(
        "transfer: EU set requires high identities",
        lambda: transfer(
            parse_amount("10.00", "EUR"),
            PIERRE_WALLET,
            MARIE_WALLET,
            login(PIERRE_EU),
            people_with(identity("marie-eu", "marie", "eu-pid", "substantial")),
        ),
        "assurance_too_low",
        "eu-wallets",
    ),
    Case(
        "transfer: set requires registered KYC, the creditor's account has none",
        taro_pays(
            "5000",
            debtor=replace(TARO_WALLET, kyc="match"),
            world=snapshot(
                POLICIES | {"jp-cbdc": POLICIES["jp-cbdc"] | {"account_kyc": "required"}}
            ),
        ),
        "kyc_not_registered",
        "jp-cbdc",
    ),
    Case(
        "transfer: the debtor's registered KYC does not match its binding identity",
        taro_pays("5000", debtor=replace(TARO_WALLET, kyc="mismatch")),
        "kyc_mismatch",
        "jp-cbdc",
    ),
    Case(
        "transfer in a currency the set has no limit for",
        pays(parse_amount("10.00", "USD"), TARO_WALLET, HANAKO_WALLET, AS_TARO),
        "currency_not_allowed",
        "jp-cbdc",
    ),
    Case("transfer above the limit", taro_pays("1000001"), "limit_exceeded", "jp-cbdc"),
    Case(
        "transfer that would take the day's authorized total above the cumulative limit",
        lambda: transfer(
            jpy("100000"),
            TARO_WALLET,
            HANAKO_WALLET,
            AS_TARO,
            EVERYONE,
            world=snapshot(
                POLICIES
                | {
                    "jp-cbdc": POLICIES["jp-cbdc"]
                    | {
                        "cumulative": [
                            {
                                "id": "daily-jpy",
                                "currency": "JPY",
                                "window": "calendar_day",
                                "per": "holder",
                                "limit": "1000000",
                            }
                        ]
                    }
                }
            ),
            totals={("jp-cbdc", "calendar_day", "holder"): 900_001},
        ),
        "cumulative_limit_exceeded",
        "jp-cbdc",
    ),
    Case(
        "transfer above 100,000 JPY after a substantial login",
        taro_pays("100001", AS_TARO_BANK),
        "step_up_required",
        "jp-cbdc",
    ),
    Case(
        "transfer above 100,000 JPY after a high login 301 s ago",
        taro_pays("200000", login(TARO_MN, age=301)),
        "step_up_required",
        "jp-cbdc",
    ),
    Case(
        "transfer above 500,000 JPY after a high login 61 s ago",
        taro_pays("500001", login(TARO_MN, age=61)),
        "step_up_required",
        "jp-cbdc",
    ),
    Case(
        "transfer after a login through an anchor outside the set",
        taro_pays(
            "5000",
            login(identity("taro-z", "taro", "zengin")),
            people_with(identity("taro-z", "taro", "zengin")),
        ),
        "step_up_required",
        "jp-cbdc",
    ),
    Case(
        "transfer after a login whose credential was revoked since",
        taro_pays(
            "5000", AS_TARO, people_with(identity("taro-mn", "taro", "mynumber", status="revoked"))
        ),
        "step_up_required",
        "jp-cbdc",
    ),
    Case(
        "link after a low login", taro_links(login(TARO_MN, "low")), "step_up_required", "jp-cbdc"
    ),
    Case(
        "transfer after a login naming another anchor than its identity's",
        taro_pays("5000", replace(AS_TARO_BANK, anchor_id="mynumber", level="high")),
        "step_up_required",
        "jp-cbdc",
    ),
    Case(
        "transfer after a login through an identity we were not given",
        taro_pays("5000", replace(AS_TARO, identity_id="taro-vanished")),
        "step_up_required",
        "jp-cbdc",
    ),
    # -- revocation_check ------------------------------------------------------------------
    Case("transfer: status unknown, fail_open set", in_jp_open("unknown"), "allowed", "jp-open"),
    Case(
        "transfer: status unknown, same policy but fail_closed",
        in_jp_open("unknown", fail_closed=True),
        "credential_status_unknown",
        "jp-open",
    ),
    Case(
        "transfer: revoked is refused even in a fail_open set",
        in_jp_open("revoked"),
        "credential_revoked",
        "jp-open",
    ),
    # -- several identities ----------------------------------------------------------------
    Case(
        "creditor with two anchors, one suspended: allowed through the other",
        taro_pays("5000", people=people_with(identity("hanako-old", "hanako", "old-ca"))),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "creditor with two identities, one revoked: allowed through the other",
        taro_pays(
            "5000",
            people=people_with(identity("hanako-bank", "hanako", "bank-ekyc", status="revoked")),
        ),
        "allowed",
        "jp-cbdc",
    ),
    Case(
        "debtor whose My Number identity expired, logged in through bank eKYC",
        taro_pays(
            "5000",
            AS_TARO_BANK,
            people_with(identity("taro-mn", "taro", "mynumber", expires_at=AT - 1)),
        ),
        "allowed",
        "jp-cbdc",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decision(case: Case) -> None:
    decision = case.decide()
    assert (decision.reason, decision.anchor_set_id) == (case.reason, case.anchor_set)
    assert decision.allowed == (case.reason == "allowed")
    if decision.anchor_set_id is not None:
        version = 1 + sorted(POLICIES).index(decision.anchor_set_id)
        assert decision.policy_version == version


def test_every_reason_code_has_a_case() -> None:
    """Every reason but those only a standing authorization of funding can give
    (tests/unit/test_policy_standing.py has them)."""
    assert {case.reason for case in CASES} == set(REASONS) - set(STANDING_REASONS)


def test_the_check_order_is_the_documented_list_order() -> None:
    names = list(REASONS)
    after_search = names[names.index("no_common_anchor_set") + 1 :]
    assert list(STAGE_REASONS) == after_search


def test_docs_list_every_reason_code_in_order() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "POLICY.md").read_text()
    positions = [text.find(f"| `{reason}` |") for reason in REASONS]
    assert -1 not in positions, [r for r, p in zip(REASONS, positions, strict=True) if p == -1]
    assert positions == sorted(positions)


# -- what an allowed decision relied on ------------------------------------------------------


def test_relied_anchors_are_every_vouching_anchor_of_the_set_and_the_login() -> None:
    decision = taro_pays("5000", AS_TARO_BANK, creditor=JIRO_WALLET)()
    # Taro passes through My Number and bank eKYC, Jiro through bank eKYC; login bank eKYC.
    assert decision.relied_anchors == ("bank-ekyc", "mynumber")


def test_relied_anchors_leave_out_a_suspended_anchor_the_holder_also_has() -> None:
    decision = taro_pays("5000", people=people_with(identity("hanako-old", "hanako", "old-ca")))()
    assert decision.allowed
    assert "old-ca" not in decision.relied_anchors


def test_relied_anchors_are_only_those_of_the_relied_set() -> None:
    # Both accounts bound through My Number: jp-banks and jp-cbdc both pass; jp-banks is relied
    # on, and bank eKYC (jp-cbdc only) is not named although Taro holds an identity there.
    decision = taro_links(deposit=account("acc_taro_deposit_mn0001", TARO_MN, "bank_deposit"))()
    assert (decision.anchor_set_id, decision.relied_anchors) == ("jp-banks", ("mynumber",))


def test_a_denial_relies_on_no_anchor() -> None:
    assert taro_pays("1000001")().relied_anchors == ()


# -- step-up ---------------------------------------------------------------------------------


def test_step_up_names_level_age_set_and_the_anchors_that_can_satisfy_it() -> None:
    decision = taro_pays("100001", AS_TARO_BANK)()
    assert decision.step_up == StepUp("high", 300, "jp-cbdc", ("mynumber",))


def test_step_up_takes_the_strictest_of_the_rules_that_apply() -> None:
    decision = taro_pays("600000", login(TARO_MN, age=120))()
    assert decision.step_up == StepUp("high", 60, "jp-cbdc", ("mynumber",))


@pytest.mark.parametrize(
    ("age", "level", "reason"),
    [
        (60, "substantial", "allowed"),
        (61, "substantial", "step_up_required"),
        (60, "low", "step_up_required"),
    ],
)
def test_step_up_rules_combine_whatever_their_order(age: int, level: str, reason: str) -> None:
    # The lower threshold demands the shorter age, the higher one the higher level: above both,
    # the login must meet the strictest of each (substantial, 60 s), not just the last rule's.
    rules = [
        {"currency": "JPY", "above": "1000", "assurance": "low", "max_age": 60},
        {"currency": "JPY", "above": "100000", "assurance": "substantial", "max_age": 300},
    ]
    policy = {"operations": ["value_transfer"], "min_assurance_transfer": "low"}
    world = snapshot({"s1": {**policy, **JPY_LIMIT, "step_up": rules}}, {"a": ("active", ("s1",))})
    payer, payee = identity("p-a", "payer", "a"), identity("q-a", "payee", "a")
    decision = transfer(
        jpy("200000"),
        account("acc_payer_wallet_00001", payer),
        account("acc_payee_wallet_00001", payee),
        login(payer, level, age=age),
        [payer, payee],
        world=world,
    )
    assert decision.reason == reason
    if reason == "step_up_required":
        assert decision.step_up == StepUp("substantial", 60, "s1", ("a",))


def test_step_up_for_a_link_has_no_age() -> None:
    decision = taro_links(login(TARO_MN, "low"))()
    assert decision.step_up == StepUp("substantial", None, "jp-cbdc", ("bank-ekyc", "mynumber"))


def test_step_up_with_no_qualifying_anchor_says_so() -> None:
    # Jiro only has a substantial identity: a stronger login through it cannot reach high.
    jiro_pays = pays(jpy("200000"), JIRO_WALLET, TARO_WALLET, login(JIRO_BANK))
    decision = jiro_pays()
    assert decision.reason == "step_up_required"
    assert decision.step_up == StepUp("high", 300, "jp-cbdc", ())


def test_only_a_step_up_decision_carries_a_step_up() -> None:
    for case in CASES:
        decision = case.decide()
        assert (decision.step_up is not None) == (decision.reason == "step_up_required")


# -- several candidate sets ------------------------------------------------------------------

# Two sets that both hold anchors "a" and "b"; what each allows varies per test.
TWO_SETS_ANCHORS = {"a": ("active", ("s1", "s2")), "b": ("active", ("s1", "s2"))}
A_PAYER = identity("p-a", "payer", "a")
B_PAYEE = identity("q-b", "payee", "b")


def two_sets(s1: dict[str, object], s2: dict[str, object]) -> Decision:
    world = snapshot({"s1": s1, "s2": s2}, TWO_SETS_ANCHORS)
    return transfer(
        jpy("200000"),
        account("acc_payer_wallet_00001", A_PAYER),
        account("acc_payee_wallet_00001", B_PAYEE),
        login(A_PAYER, "substantial"),
        [A_PAYER, B_PAYEE],
        world=world,
    )


TRANSFERS = {"operations": ["value_transfer"], "min_assurance_transfer": "substantial"}
JPY_LIMIT = {"limits": {"JPY": "1000000"}}
STEP_UP = {"step_up": [{"currency": "JPY", "above": "100000", "assurance": "high", "max_age": 60}]}


def test_the_failure_furthest_along_is_reported_step_up_over_operation() -> None:
    decision = two_sets({"operations": ["account_link"]}, {**TRANSFERS, **JPY_LIMIT, **STEP_UP})
    assert (decision.reason, decision.anchor_set_id) == ("step_up_required", "s2")


def test_the_failure_furthest_along_is_reported_limit_over_currency() -> None:
    decision = two_sets(
        {**TRANSFERS, "limits": {"EUR": "10.00"}}, {**TRANSFERS, "limits": {"JPY": "1000"}}
    )
    assert (decision.reason, decision.anchor_set_id) == ("limit_exceeded", "s2")


def test_equal_failures_report_the_first_set_by_id() -> None:
    decision = two_sets(
        {**TRANSFERS, **JPY_LIMIT, **STEP_UP}, {**TRANSFERS, **JPY_LIMIT, **STEP_UP}
    )
    assert (decision.reason, decision.anchor_set_id) == ("step_up_required", "s1")


def test_a_passing_set_wins_over_a_failing_one_whatever_the_order() -> None:
    decision = two_sets({**TRANSFERS, **JPY_LIMIT, **STEP_UP}, {**TRANSFERS, **JPY_LIMIT})
    assert (decision.reason, decision.anchor_set_id) == ("allowed", "s2")


def test_the_first_passing_set_by_id_is_relied_on() -> None:
    decision = two_sets({**TRANSFERS, **JPY_LIMIT}, {**TRANSFERS, **JPY_LIMIT})
    assert (decision.reason, decision.anchor_set_id) == ("allowed", "s1")


def test_overlapping_sets_where_only_the_overlap_is_common() -> None:
    # payer's anchor a in s1 and s2, payee's anchor b in s2 and s3: only s2 is a candidate.
    world = snapshot(
        {
            "s1": {**TRANSFERS, **JPY_LIMIT},
            "s2": {**TRANSFERS, **JPY_LIMIT},
            "s3": TRANSFERS | JPY_LIMIT,
        },
        {"a": ("active", ("s1", "s2")), "b": ("active", ("s2", "s3"))},
    )
    decision = transfer(
        jpy("5000"),
        account("acc_payer_wallet_00001", A_PAYER),
        account("acc_payee_wallet_00001", B_PAYEE),
        login(A_PAYER),
        [A_PAYER, B_PAYEE],
        world=world,
    )
    assert (decision.reason, decision.anchor_set_id, decision.relied_anchors) == (
        "allowed",
        "s2",
        ("a", "b"),
    )


def test_a_party_is_only_as_far_as_its_best_identity_and_the_set_as_its_weakest_party() -> None:
    # Payer: one identity revoked, one expired (expired is further along); payee: suspended.
    world = snapshot(
        {"s1": {**TRANSFERS, **JPY_LIMIT}},
        {"a": ("active", ("s1",)), "b": ("active", ("s1",)), "c": ("suspended", ("s1",))},
    )
    payer_revoked = identity("p-a", "payer", "a", status="revoked")
    payer_expired = identity("p-b", "payer", "b", expires_at=AT)
    payee_suspended = identity("q-c", "payee", "c")

    def decide(payee: IdentityFact) -> Decision:
        return transfer(
            jpy("5000"),
            account("acc_payer_wallet_00001", payer_revoked),
            account("acc_payee_wallet_00001", payee),
            login(payer_revoked),
            [payer_revoked, payer_expired, payee],
            world=world,
        )

    assert decide(payee_suspended).reason == "anchor_suspended"
    # The payee now passes: the payer's best identity (expired, not revoked) decides.
    assert decide(identity("q-c", "payee", "a")).reason == "identity_expired"


# -- snapshot --------------------------------------------------------------------------------


def domain_set(set_id: str, policy: dict[str, object], version: int = 1) -> AnchorSet:
    return AnchorSet(id=set_id, display_name={"en": set_id}, policy=policy, version=version)


def domain_anchor(anchor_id: str, status: str, sets: tuple[str, ...]) -> Anchor:
    return Anchor(
        id=anchor_id,
        kind="sd_jwt_vc",
        display_name={"en": anchor_id},
        assurance_level="high",
        status=status,  # type: ignore[arg-type]
        settings={},
        anchor_sets=sets,
    )


def test_snapshot_from_domain_objects_parses_policies_once() -> None:
    world = TrustSnapshot.from_domain(
        [domain_anchor("a", "active", ("s1", "nowhere")), domain_anchor("b", "suspended", ("s1",))],
        [domain_set("s1", {**TRANSFERS, **JPY_LIMIT}, version=7)],
    )
    view = world.sets["s1"]
    assert (view.version, view.members, view.limits, view.allows_transfer) == (
        7,
        frozenset({"a", "b"}),
        {"JPY": 1_000_000},
        True,
    )
    assert world.anchors["a"].set_ids == ("s1",)  # the unknown set is ignored
    assert (world.anchors["a"].active, world.anchors["b"].active) == (True, False)
    assert world.unusable_sets == ()


def test_snapshot_keeps_a_set_whose_stored_policy_does_not_parse_as_deny_all() -> None:
    world = TrustSnapshot.from_domain(
        [domain_anchor("a", "active", ("bad", "good"))],
        [
            domain_set("bad", {"operations": ["value_transfer"], "limts": {}}),
            domain_set("good", {"operations": ["account_link"]}),
        ],
    )
    [(set_id, error)] = world.unusable_sets
    assert set_id == "bad"
    assert ("limts", "unknown field") in error.problems
    assert not world.sets["bad"].allows_transfer and not world.sets["bad"].allows_link
    assert world.sets["good"].allows_link


def test_snapshot_refuses_an_id_given_twice() -> None:
    with pytest.raises(ValueError, match="anchor 'a' given twice"):
        TrustSnapshot.from_domain(
            [domain_anchor("a", "active", ()), domain_anchor("a", "active", ())], []
        )
    with pytest.raises(ValueError, match="anchor set 's' given twice"):
        TrustSnapshot.from_domain([], [domain_set("s", {}), domain_set("s", {})])


# -- the Decision type -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"allowed": False, "reason": "nope"}, "unknown reason code"),
        ({"allowed": True, "reason": "limit_exceeded"}, "exactly when"),
        ({"allowed": False, "reason": "allowed"}, "exactly when"),
        ({"allowed": False, "reason": "step_up_required"}, "step_up must be given"),
        (
            {"allowed": False, "reason": "limit_exceeded", "step_up": StepUp("high", 1, "s", ())},
            "step_up must be given",
        ),
    ],
)
def test_a_decision_cannot_be_built_inconsistent(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Decision(**fields)  # type: ignore[arg-type]


def test_result_is_the_audit_entry_value() -> None:
    assert taro_pays("5000")().result == "allowed"
    assert taro_pays("1000001")().result == "denied"


# -- facts from the domain objects -----------------------------------------------------------


def test_facts_from_a_stored_identity_and_login() -> None:
    stored = Identity(
        id="id-1",
        holder_id="taro",
        anchor_id="mynumber",
        subject="s-1",
        claims={},
        assurance_level="high",
        verified_at=AT - 100,
        expires_at=AT + 100,
        evidence_digest="00",
    )
    assert IdentityFact.of(stored, "unknown") == IdentityFact(
        "id-1", "taro", "mynumber", "high", AT + 100, "unknown"
    )
    logged_in = Authentication(
        holder_id="taro",
        identity_id="id-1",
        anchor_id="mynumber",
        acr="urn:trustanchor:acr:substantial",
        amr=("hwk",),
        auth_time=AT - 5,
        trust_framework="jp_my_number_card",
    )
    assert AuthenticationFact.of(logged_in) == AuthenticationFact(
        "taro", "id-1", "mynumber", "substantial", AT - 5
    )


def test_a_login_with_an_acr_we_do_not_know_satisfies_no_minimum() -> None:
    logged_in = Authentication(
        holder_id="taro",
        identity_id="taro-mn",
        anchor_id="mynumber",
        acr="urn:example:acr:gold",
        amr=(),
        auth_time=AT - 5,
        trust_framework="x",
    )
    fact = AuthenticationFact.of(logged_in)
    assert fact.level == ""
    decision = link(TARO_DEPOSIT, TARO_WALLET, fact, EVERYONE)
    assert decision.reason == "step_up_required"


# -- a login taken over from an SSO session (issue 10) -----------------------------------------


def test_an_sso_login_never_satisfies_a_step_up_rule() -> None:
    """The same login, fresh a second ago, passes the step-up; taken over from the browser's
    SSO session it is asked to step up, however strong and recent it is."""
    fresh = login(TARO_MN, "high", age=1)
    assert taro_pays("100001", fresh)().allowed
    from_sso = replace(fresh, fresh=False)
    decision = taro_pays("100001", from_sso)()
    assert decision.reason == "step_up_required"
    assert decision.step_up == StepUp("high", 300, "jp-cbdc", ("mynumber",))


def test_an_sso_login_still_counts_where_no_step_up_rule_applies() -> None:
    from_sso = replace(login(TARO_MN, "high", age=1), fresh=False)
    assert taro_pays("5000", from_sso)().allowed
    assert taro_links(from_sso)().allowed
