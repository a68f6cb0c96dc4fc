"""Authorization decisions on the operations of a request (account links, value transfers,
funding): read the facts the policy engine needs from storage, ask it, record the decision in
the audit log, count approved movements against cumulative limits, and carry out what an
allowed decision means (binding accounts, creating or removing a link).

This module dispatches through the operation registry (``services/operation_kinds.py``); each
type's decision lives in its own module (``link_decision.py``, ``transfer_decision.py``,
``funding_decision.py``) over the shared reader of ``decision_reader.py``. The engine
(``trustanchor.policy``) is pure; these modules are the only place that turns stored rows into
its facts. The rules of ours that sit here rather than in the engine:

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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, assert_never

from sqlalchemy import Connection

from trustanchor.audit.entries import Decision as DecisionEntry
from trustanchor.audit.entries import DecisionOperation
from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import level_from_acr
from trustanchor.domain.identity import Authentication
from trustanchor.domain.money import Amount
from trustanchor.oauth import account_link, funding, standing_funding, value_transfer
from trustanchor.oauth.account_link import AccountLinkDetail
from trustanchor.oauth.authorization_details import Operation
from trustanchor.oauth.funding import FundingDetail
from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.oauth.value_transfer import ValueTransferDetail
from trustanchor.policy.decision import StepUp, denied
from trustanchor.policy.facts import AuthenticationFact
from trustanchor.policy.snapshot import TrustSnapshot
from trustanchor.services import audit_trail
from trustanchor.services.container import Services
from trustanchor.services.decision_reader import CarryingOut, Context, DetailDecision, Reader
from trustanchor.services.interaction import BindingConflict
from trustanchor.services.operation_kinds import KINDS
from trustanchor.storage import grants_repo

__all__ = ["BindingConflict", "DetailDecision", "Outcome", "decide", "needs_decision"]

SNAPSHOT = "policy.trust_snapshot"


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

    def granted_details(self) -> tuple[dict[str, Any], ...]:
        """The entries as granted: what the grant stores and its tokens carry (a funding entry
        names the link it moves over)."""
        return tuple(dict(d.granted if d.granted is not None else d.entry) for d in self.decisions)

    def grant_expires_at(self, default: int) -> int:
        """When the grant ends: ``default``, or the earliest end an operation sets (a standing
        authorization's own expiry, which may be later than the default)."""
        ends = [d.expires_at for d in self.decisions if d.expires_at is not None]
        return min(ends) if ends else default


def needs_decision(operations: Sequence[Operation]) -> bool:
    """Every operation type needs a policy decision (a request without authorization_details
    needs none)."""
    return bool(operations)


def trust_snapshot(services: Services) -> TrustSnapshot:
    """The engine's view of anchors and sets, rebuilt whenever the anchor repository reloads."""

    def build(anchors: list[Anchor], sets: list[AnchorSet]) -> TrustSnapshot:
        return TrustSnapshot.from_domain(anchors, sets)

    return services.anchors.derived(SNAPSHOT, build)


def decide(
    services: Services,
    conn: Connection,
    operations: Sequence[Operation],
    authentication: Authentication,
    *,
    at: int,
    client_id: str,
    fresh_login: bool = True,
) -> Outcome:
    """Decide every operation of ``client_id``'s request for this login. Deny by default: an
    operation of a type without a row in the registry is denied, never skipped."""
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
    # Only a presentation made for this request counts as signing its operations: an SSO
    # session's authentication never does (docs/DYNAMIC-LINKING.md).
    signed = frozenset(authentication.signed_operations) if fresh_login else frozenset()
    ctx = Context(Reader(services, conn, client_id), snapshot, login, at, signed)
    decisions: list[DetailDecision] = []
    for operation in operations:
        entry = operation.to_entry()
        kind = KINDS.get(entry["type"])
        if kind is None:
            decisions.append(
                DetailDecision(
                    "dec_" + services.randomness.token(16),
                    entry,
                    denied("operation_not_allowed"),
                    {},
                    None,
                    (),
                    operation=operation,
                )
            )
            continue
        decisions.append(kind.decide(ctx, operation))
    if len(decisions) > 1 and len({d.decision.anchor_set_id for d in decisions}) > 1:
        # One token names one anchor set: two operations relying on different sets cannot
        # share it. (PAR refuses such combinations; this guards stored requests.)
        decisions = [
            DetailDecision(
                d.decision_id,
                d.entry,
                denied("no_common_anchor_set"),
                d.accounts,
                d.link,
                (),
                operation=d.operation,
            )
            for d in decisions
        ]
    return Outcome(tuple(decisions), client_id)


def record(conn: Connection, outcome: Outcome, *, at: int) -> None:
    """Append, in the caller's transaction, per decision one audit ``decision`` entry and right
    after it the ``decision_operation`` entry saying what was decided on: the operation type
    and its amount or link action, never an account or a party (docs/AUDIT-FORMAT.md §1.2)."""
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
        audit_trail.record(conn, _operation_entry(item.decision_id, item.operation, at=at))


def _operation_entry(decision_id: str, operation: Operation, *, at: int) -> DecisionOperation:
    """The ``decision_operation`` entry of one typed operation. The operation types are listed
    here one by one: a new type fails this function (and mypy) until its entry is decided."""
    action: str | None = None
    amount: Amount | None = None
    if isinstance(operation, AccountLinkDetail):
        kind, action = account_link.TYPE, operation.action
    elif isinstance(operation, ValueTransferDetail):
        kind, amount = value_transfer.TYPE, operation.amount
    elif isinstance(operation, FundingDetail):
        kind, amount = funding.TYPE, operation.amount
    elif isinstance(operation, StandingFundingDetail):
        kind, amount = standing_funding.TYPE, operation.max_amount
    else:
        assert_never(operation)
    return DecisionOperation(
        at=at,
        decision_id=decision_id,
        operation=kind,
        currency=None if amount is None else amount.currency,
        amount=None if amount is None else amount.minor,
        action=action,
    )


def count(services: Services, conn: Connection, outcome: Outcome, *, at: int) -> bool:
    """Count every allowed movement of ``outcome`` against the cumulative limits of the set it
    relied on, in the consent transaction (services/cumulative.py). False when a parallel
    approval used up the room first: the caller rolls back and decides again."""
    snapshot = trust_snapshot(services)
    for item in outcome.decisions:
        kind = KINDS[item.entry["type"]]
        if kind.count is None or not item.decision.allowed:
            continue
        if not kind.count(conn, snapshot, item, at):
            return False
    return True


def carry_out(
    conn: Connection, outcome: Outcome, authentication: Authentication, *, grant_id: str, at: int
) -> str | None:
    """Do what the allowed decisions mean, in the consent transaction, and record what the
    grant relied on. Returns the id of a link created, if any. Raises BindingConflict when an
    account was bound to someone else meanwhile."""
    assert outcome.allowed and outcome.anchor_set_id is not None
    link_id: str | None = None
    for item in outcome.decisions:
        kind = KINDS[item.entry["type"]]
        if kind.carry_out is None:
            continue
        created = kind.carry_out(
            conn, item, CarryingOut(outcome.client_id, authentication, grant_id, at)
        )
        link_id = created or link_id
    grants_repo.record_reliance(
        conn,
        grant_id,
        anchor_set_id=outcome.anchor_set_id,
        anchor_ids=outcome.relied_anchors,
        link_id=link_id or _moved_over(outcome),
    )
    return link_id


def _moved_over(outcome: Outcome) -> str | None:
    """The link a funding movement of this grant moves over (its removal ends the grant)."""
    for item in outcome.decisions:
        if item.link is not None and KINDS[item.entry["type"]].moves_over_link:
            return item.link.id
    return None
