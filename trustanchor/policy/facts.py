"""The plain facts a policy decision is made from. No I/O: the service reads them from storage
(and from the anchors' status lists) and hands them over frozen.

Levels are plain strings on purpose: a stored or asserted level that is not one of
``low`` / ``substantial`` / ``high`` ranks below every level and so satisfies no minimum
(:func:`trustanchor.domain.assurance.rank`), instead of raising in the middle of a decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final, Literal

from trustanchor.domain.assurance import level_from_acr
from trustanchor.domain.identity import Authentication, Identity
from trustanchor.domain.money import Amount
from trustanchor.policy.anchor_set_policy import AnchorSetPolicy

AccountKind = Literal["bank_deposit", "cbdc_wallet"]
AccountStatus = Literal["active", "flagged", "closed"]
CredentialStatus = Literal["valid", "revoked", "suspended", "unknown"]
CREDENTIAL_STATUSES: Final[tuple[CredentialStatus, ...]] = (
    "valid",
    "revoked",
    "suspended",
    "unknown",
)
LinkAction = Literal["link", "unlink"]
# A funding movement between one holder's own accounts over their link: which way the money goes.
FundingDirection = Literal["deposit_to_wallet", "wallet_to_deposit"]
FUNDING_DIRECTIONS: Final[tuple[FundingDirection, ...]] = (
    "deposit_to_wallet",
    "wallet_to_deposit",
)
# The KYC attributes the intermediary registered for an account, against the verified claims of
# the identity binding it (the one consent would bind it through, for an account bound now):
# ``none`` registered, all ``match``, or not (``mismatch``, also when the identity lacks one of
# the claims). Computed by services/decisions.py; the engine never sees a claim value.
KycState = Literal["none", "match", "mismatch"]


@dataclass(frozen=True, slots=True)
class AccountFact:
    """A registered account. ``holder_id`` and ``binding_identity_id`` are ``None`` until the
    account is bound to a holder through one of the holder's identities.
    ``registered_elsewhere``: another intermediary than the one making this request registered
    it (only its registering intermediary's request may bind it). ``kyc``: see
    :data:`KycState`. The service always sets both; the defaults serve tests of other rules."""

    id: str
    kind: AccountKind
    holder_id: str | None
    binding_identity_id: str | None
    status: AccountStatus = "active"
    registered_elsewhere: bool = False
    kyc: KycState = "none"


@dataclass(frozen=True, slots=True)
class IdentityFact:
    """One of a holder's identities, as of now. ``credential_status`` is what the anchor's
    revocation mechanism last said about the credential behind it (``unknown``: it could not be
    checked); ``expires_at`` ``None`` means the identity does not expire."""

    id: str
    holder_id: str
    anchor_id: str
    level: str
    expires_at: int | None
    credential_status: CredentialStatus = "valid"

    @classmethod
    def of(cls, identity: Identity, credential_status: CredentialStatus) -> IdentityFact:
        return cls(
            id=identity.id,
            holder_id=identity.holder_id,
            anchor_id=identity.anchor_id,
            level=identity.assurance_level,
            expires_at=identity.expires_at,
            credential_status=credential_status,
        )


@dataclass(frozen=True, slots=True)
class AuthenticationFact:
    """This login: which holder, through which identity and anchor, how strongly, when.
    ``fresh`` is False for a login taken over from the browser's SSO session instead of being
    performed for this request: such a login never satisfies a step-up rule by itself, nor an
    in-person requirement. ``channel``: ``remote`` (the person's own device) or ``in_person``
    (a branch counter terminal submitted it, services/counter_login.py); anything else counts
    as remote."""

    holder_id: str
    identity_id: str
    anchor_id: str
    level: str
    auth_time: int
    fresh: bool = True
    channel: str = "remote"

    @classmethod
    def of(cls, authentication: Authentication) -> AuthenticationFact:
        """The login as recorded; an ``acr`` that names no known level gives level ``""``,
        which satisfies no minimum."""
        return cls(
            holder_id=authentication.holder_id,
            identity_id=authentication.identity_id,
            anchor_id=authentication.anchor_id,
            level=level_from_acr(authentication.acr) or "",
            auth_time=authentication.auth_time,
            channel=authentication.channel,
        )


@dataclass(frozen=True, slots=True)
class LinkRequest:
    """``account_link``: link (or unlink) a bank deposit account and a CBDC wallet of one holder.
    ``linked`` says whether the two accounts are linked now (unlink needs an existing link)."""

    action: LinkAction
    deposit_account: AccountFact
    wallet_account: AccountFact
    linked: bool = False


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """``value_transfer``: move ``amount`` from the debtor's account to the creditor's.
    ``debtor_linked_here``: an active, unflagged link of the logged-in holder joins the debtor
    account to an account the requesting intermediary registered (what makes a debtor account
    registered elsewhere debitable by this intermediary). ``totals``: what the service already
    authorized in the amount's currency, keyed by ``(anchor set id, window, per)`` for the
    windows the sets' cumulative rules name (missing: nothing yet), in minor units.
    ``transaction_signed``: the login is a wallet presentation made in this interaction whose
    key binding JWT signed this transfer's transaction data (what a set's ``dynamic_linking``
    asks for; the engine also requires the login to be fresh)."""

    amount: Amount
    debtor_account: AccountFact
    creditor_account: AccountFact
    debtor_linked_here: bool = False
    totals: Mapping[tuple[str, str, str], int] = field(default_factory=lambda: MappingProxyType({}))
    transaction_signed: bool = False


@dataclass(frozen=True, slots=True)
class FundingRequest:
    """``funding``: move ``amount`` between the deposit account and the CBDC wallet of one
    holder, over their link, in ``direction``. ``linked``: an active link joins the two
    accounts now; ``link_flagged``: that link is flagged for review. ``debit_approved``: when
    the debited account was registered by another intermediary than the requester, that
    intermediary approved debits over this link (ignored otherwise). ``transaction_signed``
    and ``totals`` as for :class:`TransferRequest`, the totals counted over funding movements
    (``per = "debtor_account"``: the debited account)."""

    direction: FundingDirection
    amount: Amount
    deposit_account: AccountFact
    wallet_account: AccountFact
    linked: bool
    link_flagged: bool
    debit_approved: bool
    transaction_signed: bool = False
    totals: Mapping[tuple[str, str, str], int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if self.direction not in FUNDING_DIRECTIONS:
            raise ValueError(f"unknown funding direction {self.direction!r}")

    @property
    def debtor_account(self) -> AccountFact:
        """The account debited."""
        if self.direction == "deposit_to_wallet":
            return self.deposit_account
        return self.wallet_account

    @property
    def creditor_account(self) -> AccountFact:
        """The account credited."""
        if self.direction == "deposit_to_wallet":
            return self.wallet_account
        return self.deposit_account


@dataclass(frozen=True, slots=True)
class StandingFundingRequest:
    """``standing_funding``: the holder approves, once, automatic funding movements over their
    link within bounds (docs/POLICY.md, "Standing authorizations"). Decided as a funding
    movement of ``max_amount`` in every direction of ``directions`` (one or both, each once),
    plus the set's ``standing_funding_max_days`` against ``valid_days``.

    ``linked``, ``link_flagged`` and ``transaction_signed`` as for :class:`FundingRequest`.
    ``debit_approved``: for EVERY direction asked whose debited account was registered by
    another intermediary than the requester, that intermediary approved debits over this link
    (ignored for a debited account of the requester's). ``totals``: funding window totals as
    for :class:`FundingRequest`, the same for every direction; the service passes none (the
    approval itself is not counted: each movement is, when it is minted). ``daily_amount`` is
    not a policy matter: the service checks it when each movement is minted; it is here so that
    the request is the whole entry."""

    directions: tuple[FundingDirection, ...]
    max_amount: Amount
    daily_amount: Amount
    valid_days: int
    deposit_account: AccountFact
    wallet_account: AccountFact
    linked: bool
    link_flagged: bool
    debit_approved: bool
    transaction_signed: bool = False
    totals: Mapping[tuple[str, str, str], int] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        if not self.directions:
            raise ValueError("a standing authorization needs at least one direction")
        for direction in self.directions:
            if direction not in FUNDING_DIRECTIONS:
                raise ValueError(f"unknown funding direction {direction!r}")
        if len(set(self.directions)) != len(self.directions):
            raise ValueError("a direction is given twice")
        if type(self.valid_days) is not int or self.valid_days < 1:
            raise ValueError("valid_days must be a whole number of days, at least 1")

    @property
    def debtor_accounts(self) -> tuple[AccountFact, ...]:
        """The accounts a movement may debit: one per direction asked, in the same order."""
        return tuple(self.movement(d).debtor_account for d in self.directions)

    def movement(self, direction: FundingDirection) -> FundingRequest:
        """The funding request for one movement of ``max_amount`` in ``direction``: what the
        standing authorization is decided as, direction by direction."""
        return FundingRequest(
            direction=direction,
            amount=self.max_amount,
            deposit_account=self.deposit_account,
            wallet_account=self.wallet_account,
            linked=self.linked,
            link_flagged=self.link_flagged,
            debit_approved=self.debit_approved,
            transaction_signed=self.transaction_signed,
            totals=self.totals,
        )


@dataclass(frozen=True, slots=True)
class AnchorFact:
    """An anchor's status and the anchor sets it belongs to."""

    id: str
    status: str  # active / suspended / retired; only ``active`` vouches for anyone
    anchor_sets: frozenset[str]


@dataclass(frozen=True, slots=True)
class AnchorSetFact:
    """An anchor set's parsed policy and the version it is stored under."""

    id: str
    policy: AnchorSetPolicy
    version: int
