"""What every policy decision on an operation reads besides the operation itself, and what it
gives back: the requesting intermediary, the accounts as the engine judges them (with their KYC
states), the identities of the parties, and :class:`DetailDecision`.

The per-type decision modules (``services/link_decision.py``, ``transfer_decision.py``,
``funding_decision.py``) are the only callers; ``services/decisions.py`` dispatches to them
through ``services/operation_kinds.py``. The rules about accounts that sit here rather than in
the pure engine are listed in ``services/decisions.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from trustanchor.domain.accounts import Account, AccountLink
from trustanchor.domain.identity import Authentication
from trustanchor.oauth.authorization_details import Operation, parse_operations
from trustanchor.policy.decision import Decision
from trustanchor.policy.facts import AccountFact, AuthenticationFact, IdentityFact, KycState
from trustanchor.policy.snapshot import TrustSnapshot
from trustanchor.services import account_kyc
from trustanchor.services.container import Services
from trustanchor.storage import accounts_repo, identities_repo, link_approvals_repo


@dataclass(frozen=True, slots=True)
class DetailDecision:
    """The decision on one authorization_details entry, with what the consent page shows.
    ``operation`` is the entry as its typed operation (parsed from ``entry`` when not given)."""

    decision_id: str
    entry: Mapping[str, Any]
    decision: Decision
    accounts: Mapping[str, Account]
    link: AccountLink | None  # the active link between the two accounts of a link or funding
    counterparty_anchors: tuple[str, ...]  # transfers: the anchors vouching for the creditor
    kyc_matched: frozenset[str] = frozenset()  # accounts whose registered KYC matched
    operation: Operation = field(default=None)  # type: ignore[assignment]
    # The entry as it will be granted when it differs from the request's (a funding names the
    # link it moves over), and an end the grant must not outlive (a standing authorization).
    granted: Mapping[str, Any] | None = None
    expires_at: int | None = None

    def __post_init__(self) -> None:
        if self.operation is None:
            (operation,) = parse_operations([self.entry])
            object.__setattr__(self, "operation", operation)


def new_decision_id(services: Services) -> str:
    return "dec_" + services.randomness.token(16)


class Reader:
    """What one decision reads besides the accounts: the requesting intermediary, and the
    verified claims of binding identities (each read once) for the accounts' KYC states."""

    def __init__(self, services: Services, conn: Connection, client_id: str) -> None:
        self.services = services
        self.conn = conn
        self.client_id = client_id
        self._claims: dict[str, Mapping[str, Any] | None] = {}

    def fact(
        self, account: Account | None, *, proposed: AuthenticationFact | None = None
    ) -> AccountFact | None:
        """The account as the engine judges it: as consent would bind it when ``proposed``
        (a link) and this intermediary registered it, else as it is."""
        if account is None:
            return None
        elsewhere = account.client_id != self.client_id
        rebinding = account.holder_id is None or (
            account.status == "flagged"
            and account.holder_id == getattr(proposed, "holder_id", None)
        )
        if proposed is not None and rebinding and not elsewhere and account.status != "closed":
            # Linking binds an unbound account, and re-verifies a flagged one of the same
            # holder, through this login's identity: judge it as that binding.
            return AccountFact(
                id=account.id,
                kind=account.kind,
                holder_id=proposed.holder_id,
                binding_identity_id=proposed.identity_id,
                status="active",
                registered_elsewhere=False,
                kyc=self._kyc_now(account, proposed.holder_id, proposed.identity_id),
            )
        return AccountFact(
            id=account.id,
            kind=account.kind,
            holder_id=account.holder_id,
            binding_identity_id=account.binding_identity_id,
            status=account.status,
            registered_elsewhere=elsewhere,
            kyc=kyc_at_binding(account),
        )

    def _kyc_now(self, account: Account, holder_id: str, identity_id: str) -> KycState:
        """The registered attributes against the claims of the identity that would bind."""
        if account.kyc is None:
            return "none"
        if identity_id not in self._claims:
            identity = identities_repo.get(self.conn, identity_id)
            self._claims[identity_id] = (
                identity.claims
                if identity is not None and identity.holder_id == holder_id
                else None
            )
        claims = self._claims[identity_id]
        key = self.services.secrets.pairwise
        if claims is None or not account_kyc.matches(key, account.id, account.kyc, claims):
            return "mismatch"
        return "match"

    def linked_here(self, debtor: Account, holder_id: str) -> bool:
        """Whether an active, unflagged link of ``holder_id`` joins ``debtor`` to an active
        account of the same holder that this intermediary registered, and the intermediary
        holding ``debtor`` approves debits over that link (``storage/link_approvals_repo.py``:
        the same rule as for funding; withdrawing the approval stops transfers too)."""
        if debtor.holder_id != holder_id:
            return False
        others = [
            link.wallet_account_id
            if link.deposit_account_id == debtor.id
            else link.deposit_account_id
            for link in accounts_repo.links_of_account(self.conn, debtor.id)
            if link.holder_id == holder_id
            and link.flagged_at is None
            and link_approvals_repo.approved_by(self.conn, link.id, debtor.client_id)
        ]
        return any(
            other.client_id == self.client_id
            and other.holder_id == holder_id
            and other.status == "active"
            for other in accounts_repo.get_many(self.conn, others).values()
        )

    def identities(self, holder_ids: Sequence[str | None]) -> list[IdentityFact]:
        """Every identity of the given holders, as the engine's facts."""
        rows = identities_repo.for_holders(self.conn, [h for h in holder_ids if h is not None])
        return [
            IdentityFact(
                id=row.id,
                holder_id=row.holder_id,
                anchor_id=row.anchor_id,
                level=row.assurance_level,
                expires_at=row.expires_at,
                credential_status=row.credential_status  # type: ignore[arg-type]
                if row.credential_status in ("valid", "revoked", "suspended", "unknown")
                else "unknown",
            )
            for row in rows
        ]


def kyc_at_binding(account: Account) -> KycState:
    """An account judged as it is: whether its KYC matched the identity it is bound through."""
    if account.kyc is None:
        return "none"
    matched = account.kyc_matched_identity_id
    if matched is not None and matched == account.binding_identity_id:
        return "match"
    return "mismatch"


def matched(*facts: AccountFact | None) -> frozenset[str]:
    return frozenset(f.id for f in facts if f is not None and f.kyc == "match")


@dataclass(frozen=True, slots=True)
class Context:
    """One decision's inputs common to every operation of the request: the reader, the trust
    snapshot, the login as a fact, the instant, and the digests of the operations whose
    transaction data this interaction's wallet presentation signed (empty unless the login was
    made for this request: docs/DYNAMIC-LINKING.md)."""

    reader: Reader
    snapshot: TrustSnapshot
    login: AuthenticationFact
    at: int
    signed_operations: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class CarryingOut:
    """What an approved decision is carried out for: the requesting intermediary, the login,
    the grant being created, and the instant."""

    client_id: str
    authentication: Authentication
    grant_id: str
    at: int
