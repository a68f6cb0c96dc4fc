"""A small, fixed trust world for policy-engine tests, and builders for facts.

Anchor sets (policies in TOML terms):

- ``eu-wallets``: value_transfer only; EUR up to 5,000.00; transfer at ``high``.
- ``jp-banks``: account_link only; link at ``substantial``.
- ``jp-cbdc``: link and transfer; link at ``substantial``, transfer at ``substantial``; JPY up to
  1,000,000 with step-up above 100,000 (``high`` within 300 s) and above 500,000 (``high``
  within 60 s); fail_closed.
- ``jp-open``: like jp-cbdc without step-up, but ``fail_open``.

Anchors: ``mynumber`` (active; jp-banks, jp-cbdc), ``bank-ekyc`` (active; jp-cbdc),
``zengin`` (active; jp-banks), ``eu-pid`` (active; eu-wallets), ``old-ca`` (suspended; jp-cbdc),
``gone-ca`` (retired; jp-cbdc), ``open-id`` (active; jp-open).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from trustanchor.domain.money import parse_amount
from trustanchor.policy.anchor_set_policy import parse_policy
from trustanchor.policy.decision import Decision
from trustanchor.policy.engine import decide_funding, decide_link, decide_transfer
from trustanchor.policy.facts import (
    AccountFact,
    AccountKind,
    AnchorFact,
    AnchorSetFact,
    AuthenticationFact,
    CredentialStatus,
    FundingDirection,
    FundingRequest,
    IdentityFact,
    LinkRequest,
    TransferRequest,
)
from trustanchor.policy.snapshot import TrustSnapshot

AT = 1_800_000_000  # the instant every decision here is made at

JP_CBDC_POLICY: dict[str, Any] = {
    "operations": ["account_link", "value_transfer"],
    "min_assurance_link": "substantial",
    "min_assurance_transfer": "substantial",
    "revocation_check": "fail_closed",
    "limits": {"JPY": "1000000"},
    "step_up": [
        {"currency": "JPY", "above": "100000", "assurance": "high", "max_age": 300},
        {"currency": "JPY", "above": "500000", "assurance": "high", "max_age": 60},
    ],
}
POLICIES: dict[str, dict[str, Any]] = {
    "eu-wallets": {"operations": ["value_transfer"], "limits": {"EUR": "5000.00"}},
    "jp-banks": {"operations": ["account_link"]},
    "jp-cbdc": JP_CBDC_POLICY,
    "jp-open": {
        **JP_CBDC_POLICY,
        "revocation_check": "fail_open",
        "step_up": [],
    },
}
ANCHORS: dict[str, tuple[str, tuple[str, ...]]] = {
    "mynumber": ("active", ("jp-banks", "jp-cbdc")),
    "bank-ekyc": ("active", ("jp-cbdc",)),
    "zengin": ("active", ("jp-banks",)),
    "eu-pid": ("active", ("eu-wallets",)),
    "old-ca": ("suspended", ("jp-cbdc",)),
    "gone-ca": ("retired", ("jp-cbdc",)),
    "open-id": ("active", ("jp-open",)),
}


def snapshot(
    policies: Mapping[str, Mapping[str, Any]] | None = None,
    anchors: Mapping[str, tuple[str, tuple[str, ...]]] | None = None,
) -> TrustSnapshot:
    policies = POLICIES if policies is None else policies
    anchors = ANCHORS if anchors is None else anchors
    return TrustSnapshot.build(
        [AnchorFact(a, status, frozenset(sets)) for a, (status, sets) in anchors.items()],
        [
            AnchorSetFact(s, parse_policy(p), version=index + 1)
            for index, (s, p) in enumerate(sorted(policies.items()))
        ],
    )


WORLD = snapshot()


def identity(
    identity_id: str,
    holder: str,
    anchor: str,
    level: str = "high",
    *,
    expires_at: int | None = AT + 86_400,
    status: CredentialStatus = "valid",
) -> IdentityFact:
    return IdentityFact(identity_id, holder, anchor, level, expires_at, status)


def account(
    account_id: str, of: IdentityFact | None, kind: AccountKind = "cbdc_wallet", **changes: Any
) -> AccountFact:
    """An account bound to ``of``'s holder through ``of`` (unbound when ``of`` is None)."""
    fact = AccountFact(
        account_id,
        kind,
        holder_id=None if of is None else of.holder_id,
        binding_identity_id=None if of is None else of.id,
    )
    return replace(fact, **changes)


def login(through: IdentityFact, level: str | None = None, *, age: int = 10) -> AuthenticationFact:
    """A login through ``through`` ``age`` seconds before AT, at its level unless given."""
    return AuthenticationFact(
        holder_id=through.holder_id,
        identity_id=through.id,
        anchor_id=through.anchor_id,
        level=through.level if level is None else level,
        auth_time=AT - age,
    )


def jpy(amount: str) -> Any:
    return parse_amount(amount, "JPY")


def transfer(
    amount: Any,
    debtor: AccountFact,
    creditor: AccountFact,
    by: AuthenticationFact,
    identities: list[IdentityFact],
    *,
    world: TrustSnapshot = WORLD,
    at: int = AT,
    totals: Mapping[tuple[str, str, str], int] | None = None,
) -> Decision:
    request = TransferRequest(amount, debtor, creditor, totals=totals or {})
    return decide_transfer(world, request, by, identities, at=at)


def link(
    deposit: AccountFact,
    wallet: AccountFact,
    by: AuthenticationFact,
    identities: list[IdentityFact],
    *,
    action: str = "link",
    linked: bool = False,
    world: TrustSnapshot = WORLD,
    at: int = AT,
) -> Decision:
    assert action in ("link", "unlink")
    request = LinkRequest("link" if action == "link" else "unlink", deposit, wallet, linked)
    return decide_link(world, request, by, identities, at=at)


def funding(
    amount: Any,
    deposit: AccountFact,
    wallet: AccountFact,
    by: AuthenticationFact,
    identities: list[IdentityFact],
    *,
    direction: FundingDirection = "deposit_to_wallet",
    linked: bool = True,
    link_flagged: bool = False,
    debit_approved: bool = False,
    transaction_signed: bool = False,
    world: TrustSnapshot = WORLD,
    at: int = AT,
    totals: Mapping[tuple[str, str, str], int] | None = None,
) -> Decision:
    """A funding movement over an active, unflagged link unless told otherwise."""
    request = FundingRequest(
        direction,
        amount,
        deposit,
        wallet,
        linked=linked,
        link_flagged=link_flagged,
        debit_approved=debit_approved,
        transaction_signed=transaction_signed,
        totals=totals or {},
    )
    return decide_funding(world, request, by, identities, at=at)
