"""Authorization decisions for account links and value transfers: read the facts the policy
engine needs from storage, ask it, record the decision in the audit log, and carry out what an
allowed link decision means (binding accounts, creating or removing the link).

The engine (``trustanchor.policy``) is pure; this module is the only place that turns stored
rows into its facts. Two rules of ours sit here rather than in the engine:

- an ``account_link`` may name accounts nobody is bound to yet: consenting to the link is how an
  account becomes bound, so such an account is judged as bound to the person logging in through
  the identity they logged in with (that is the binding consent will record). The same goes for
  an account of theirs that was flagged for re-verification: linking again re-verifies it;
- an account id we do not know is ``account_not_bound`` (it certainly is not bound to anyone),
  and one registered but closed is ``account_closed``;
- only the intermediary that registered an account binds it, through its own request: an
  account another intermediary registered is judged as it is (``registered_elsewhere``), never
  as bound by this request, and the binding itself is conditional on the registrar
  (``accounts_repo.bind``). A debtor account registered elsewhere counts as linked here only
  through an active, unflagged link of the same holder to an account the requester registered;
- the KYC state of every account is computed here, so the engine and its audited decision see
  ``none`` / ``match`` / ``mismatch`` and never a claim value: for an account this consent
  would bind, the registered attributes against the verified claims of the identity logged in
  with (what its latest presentation disclosed); for an account already bound, what was found
  when it was bound (``kyc_matched_identity_id``: an identity's stored claims change with every
  login, so they are compared once, at binding, and the result is kept with the binding).

Decisions are computed for display (the consent page) and again, authoritatively, inside the
transaction that acts on them; only the latter is audited.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from trustanchor.audit.entries import Decision as DecisionEntry
from trustanchor.domain.accounts import Account, AccountLink
from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import level_from_acr
from trustanchor.domain.identity import Authentication
from trustanchor.oauth import account_link, value_transfer
from trustanchor.policy.decision import Decision, StepUp, denied
from trustanchor.policy.engine import decide_link, decide_transfer
from trustanchor.policy.facts import (
    AccountFact,
    AuthenticationFact,
    IdentityFact,
    KycState,
    LinkRequest,
    TransferRequest,
)
from trustanchor.policy.snapshot import TrustSnapshot
from trustanchor.services import account_kyc, audit_trail, cumulative, links
from trustanchor.services.container import Services
from trustanchor.services.interaction import BindingConflict
from trustanchor.storage import accounts_repo, grants_repo, identities_repo

SNAPSHOT = "policy.trust_snapshot"
DECISION_TYPES = (account_link.TYPE, value_transfer.TYPE)


@dataclass(frozen=True, slots=True)
class DetailDecision:
    """The decision on one authorization_details entry, with what the consent page shows."""

    decision_id: str
    entry: Mapping[str, Any]
    decision: Decision
    accounts: Mapping[str, Account]
    link: AccountLink | None  # the active link between the two accounts of an account_link
    counterparty_anchors: tuple[str, ...]  # transfers: the anchors vouching for the creditor
    kyc_matched: frozenset[str] = frozenset()  # accounts whose registered KYC matched


@dataclass(frozen=True, slots=True)
class Outcome:
    """Every decision of one authorization request at one login."""

    decisions: tuple[DetailDecision, ...]
    client_id: str  # the intermediary whose request was decided: the only one that binds

    @property
    def allowed(self) -> bool:
        return all(d.decision.allowed for d in self.decisions)

    @property
    def denial(self) -> DetailDecision | None:
        return next((d for d in self.decisions if not d.decision.allowed), None)

    @property
    def step_up(self) -> StepUp | None:
        denial = self.denial
        return denial.decision.step_up if denial is not None else None

    @property
    def anchor_set_id(self) -> str | None:
        """The anchor set the allowed request relied on (one set for the whole request)."""
        sets = {d.decision.anchor_set_id for d in self.decisions}
        return sets.pop() if len(sets) == 1 else None

    @property
    def relied_anchors(self) -> tuple[str, ...]:
        return tuple(sorted({a for d in self.decisions for a in d.decision.relied_anchors}))


def needs_decision(details: Sequence[Mapping[str, Any]]) -> bool:
    return any(entry.get("type") in DECISION_TYPES for entry in details)


def trust_snapshot(services: Services) -> TrustSnapshot:
    """The engine's view of anchors and sets, rebuilt whenever the anchor repository reloads."""

    def build(anchors: list[Anchor], sets: list[AnchorSet]) -> TrustSnapshot:
        return TrustSnapshot.from_domain(anchors, sets)

    return services.anchors.derived(SNAPSHOT, build)


def decide(
    services: Services,
    conn: Connection,
    details: Sequence[Mapping[str, Any]],
    authentication: Authentication,
    *,
    at: int,
    client_id: str,
    fresh_login: bool = True,
) -> Outcome:
    """Decide every money-moving entry of ``details`` of ``client_id``'s request for this login.
    Deny by default: an entry of a type that needs a decision but cannot be read is denied,
    never skipped."""
    snapshot = trust_snapshot(services)
    login = AuthenticationFact(
        holder_id=authentication.holder_id,
        identity_id=authentication.identity_id,
        anchor_id=authentication.anchor_id,
        level=level_from_acr(authentication.acr) or "unknown",
        auth_time=authentication.auth_time,
        fresh=fresh_login,
        channel=authentication.channel,  # in_person only through services/counter_login.py
    )
    decisions: list[DetailDecision] = []
    reader = _Reader(services, conn, client_id)
    for entry in details:
        kind = entry.get("type")
        if kind == account_link.TYPE:
            decisions.append(_decide_link(reader, snapshot, entry, login, at))
        elif kind == value_transfer.TYPE:
            decisions.append(_decide_transfer(reader, snapshot, entry, login, at))
    if len(decisions) > 1 and len({d.decision.anchor_set_id for d in decisions}) > 1:
        # One token names one anchor set: two operations relying on different sets cannot
        # share it. (PAR refuses such combinations; this guards stored requests.)
        decisions = [
            DetailDecision(
                d.decision_id, d.entry, denied("no_common_anchor_set"), d.accounts, d.link, ()
            )
            for d in decisions
        ]
    return Outcome(tuple(decisions), client_id)


def _decision_id(services: Services) -> str:
    return "dec_" + services.randomness.token(16)


class _Reader:
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
            kyc=_kyc_at_binding(account),
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
        account of the same holder that this intermediary registered."""
        if debtor.holder_id != holder_id:
            return False
        others = [
            link.wallet_account_id
            if link.deposit_account_id == debtor.id
            else link.deposit_account_id
            for link in accounts_repo.links_of_account(self.conn, debtor.id)
            if link.holder_id == holder_id and link.flagged_at is None
        ]
        return any(
            other.client_id == self.client_id
            and other.holder_id == holder_id
            and other.status == "active"
            for other in accounts_repo.get_many(self.conn, others).values()
        )


def _kyc_at_binding(account: Account) -> KycState:
    """An account judged as it is: whether its KYC matched the identity it is bound through."""
    if account.kyc is None:
        return "none"
    matched = account.kyc_matched_identity_id
    if matched is not None and matched == account.binding_identity_id:
        return "match"
    return "mismatch"


def _matched(*facts: AccountFact | None) -> frozenset[str]:
    return frozenset(f.id for f in facts if f is not None and f.kyc == "match")


def _identities(conn: Connection, holder_ids: Sequence[str | None]) -> list[IdentityFact]:
    rows = identities_repo.for_holders(conn, [h for h in holder_ids if h is not None])
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


def _decide_link(
    reader: _Reader,
    snapshot: TrustSnapshot,
    entry: Mapping[str, Any],
    login: AuthenticationFact,
    at: int,
) -> DetailDecision:
    conn = reader.conn
    detail = account_link.AccountLinkDetail.from_entry(entry)
    accounts = accounts_repo.get_many(conn, [detail.deposit_account, detail.wallet_account])
    deposit = accounts.get(detail.deposit_account)
    wallet = accounts.get(detail.wallet_account)
    link = accounts_repo.active_link(conn, detail.deposit_account, detail.wallet_account)
    proposed = login if detail.action == "link" else None
    deposit_fact = reader.fact(deposit, proposed=proposed)
    wallet_fact = reader.fact(wallet, proposed=proposed)
    if deposit_fact is None or wallet_fact is None:
        decision = denied("account_not_bound")
    elif "closed" in (deposit_fact.status, wallet_fact.status):
        decision = denied("account_closed")
    else:
        decision = decide_link(
            snapshot,
            LinkRequest(detail.action, deposit_fact, wallet_fact, linked=link is not None),
            login,
            _identities(conn, [login.holder_id]),
            at=at,
        )
    return DetailDecision(
        _decision_id(reader.services),
        entry,
        decision,
        accounts,
        link,
        (),
        kyc_matched=_matched(deposit_fact, wallet_fact),
    )


def _decide_transfer(
    reader: _Reader,
    snapshot: TrustSnapshot,
    entry: Mapping[str, Any],
    login: AuthenticationFact,
    at: int,
) -> DetailDecision:
    conn = reader.conn
    detail = value_transfer.ValueTransferDetail.from_entry(entry)
    accounts = accounts_repo.get_many(conn, [detail.debtor_account, detail.creditor_account])
    debtor_account = accounts.get(detail.debtor_account)
    debtor = reader.fact(debtor_account)
    creditor = reader.fact(accounts.get(detail.creditor_account))
    counterparty: tuple[str, ...] = ()
    if debtor_account is None or debtor is None or creditor is None:
        decision = denied("account_not_bound")
    elif "closed" in (debtor.status, creditor.status):
        decision = denied("account_closed")
    else:
        identities = _identities(conn, [login.holder_id, creditor.holder_id])
        linked_here = debtor.registered_elsewhere and reader.linked_here(
            debtor_account, login.holder_id
        )
        totals = cumulative.totals(
            conn,
            snapshot,
            currency=detail.amount.currency,
            holder_id=login.holder_id,
            debtor_account_id=debtor.id,
            at=at,
        )
        request = TransferRequest(
            detail.amount, debtor, creditor, debtor_linked_here=linked_here, totals=totals
        )
        decision = decide_transfer(snapshot, request, login, identities, at=at)
        if decision.allowed and decision.anchor_set_id is not None:
            members = snapshot.sets[decision.anchor_set_id].members
            counterparty = tuple(
                sorted(
                    {
                        i.anchor_id
                        for i in identities
                        if i.holder_id == creditor.holder_id and i.anchor_id in members
                    }
                    & set(decision.relied_anchors)
                )
            )
    return DetailDecision(
        _decision_id(reader.services), entry, decision, accounts, None, counterparty
    )


def record(conn: Connection, outcome: Outcome, *, at: int) -> None:
    """Append one audit ``decision`` entry per decision, in the caller's transaction."""
    for item in outcome.decisions:
        audit_trail.record(
            conn,
            DecisionEntry(
                at=at,
                decision_id=item.decision_id,
                result=item.decision.result,
                reason=item.decision.reason,
                anchor_set_id=item.decision.anchor_set_id,
            ),
        )


def count_transfers(services: Services, conn: Connection, outcome: Outcome, *, at: int) -> bool:
    """Count every allowed transfer of ``outcome`` against the cumulative limits of the set it
    relied on, in the consent transaction (services/cumulative.py). False when a parallel
    approval used up the room first: the caller rolls back and decides again."""
    snapshot = trust_snapshot(services)
    for item in outcome.decisions:
        if item.entry.get("type") != value_transfer.TYPE or not item.decision.allowed:
            continue
        detail = value_transfer.ValueTransferDetail.from_entry(item.entry)
        debtor = item.accounts.get(detail.debtor_account)
        if debtor is None or debtor.holder_id is None or item.decision.anchor_set_id is None:
            return False
        counted = cumulative.count(
            conn,
            snapshot,
            anchor_set_id=item.decision.anchor_set_id,
            currency=detail.amount.currency,
            amount=detail.amount.minor,
            holder_id=debtor.holder_id,
            debtor_account_id=debtor.id,
            at=at,
        )
        if not counted:
            return False
    return True


def carry_out(
    conn: Connection, outcome: Outcome, authentication: Authentication, *, grant_id: str, at: int
) -> str | None:
    """Do what the allowed decisions mean, in the consent transaction: bind the accounts of a
    link to the person (through the identity they logged in with) and create the link, or
    remove it for an unlink. Records what the grant relied on. Returns the link id, if any.
    Raises BindingConflict when an account was bound to someone else meanwhile."""
    assert outcome.allowed and outcome.anchor_set_id is not None
    link_id: str | None = None
    for item in outcome.decisions:
        if item.entry.get("type") != account_link.TYPE:
            continue
        detail = account_link.AccountLinkDetail.from_entry(item.entry)
        if detail.action == "unlink":
            if item.link is not None:
                links.remove_in(conn, item.link.id, reason="unlinked_by_holder", at=at)
            continue
        for account_id in (detail.deposit_account, detail.wallet_account):
            account = item.accounts[account_id]
            if account.holder_id is None or account.status == "flagged":
                bound = accounts_repo.bind(
                    conn,
                    account_id,
                    registered_by=outcome.client_id,  # never an account of another intermediary
                    holder_id=authentication.holder_id,
                    identity_id=authentication.identity_id,
                    now=at,
                    kyc_matched=account_id in item.kyc_matched,
                )
                if not bound:
                    raise BindingConflict(account_id)
        link = accounts_repo.create_link(
            conn,
            link_id="lnk_" + _token(item.decision_id),
            holder_id=authentication.holder_id,
            deposit_account_id=detail.deposit_account,
            wallet_account_id=detail.wallet_account,
            now=at,
        )
        accounts_repo.clear_link_flag(conn, link.id)
        link_id = link.id
    grants_repo.record_reliance(
        conn,
        grant_id,
        anchor_set_id=outcome.anchor_set_id,
        anchor_ids=outcome.relied_anchors,
        link_id=link_id,
    )
    return link_id


def _token(decision_id: str) -> str:
    """A link id derived from the decision that created it (both are random, one-time)."""
    return decision_id.removeprefix("dec_")
