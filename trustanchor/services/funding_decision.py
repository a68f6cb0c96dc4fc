"""The ``funding`` operation at consent: a movement between one holder's own deposit account and
CBDC wallet over their active link (払出・受入), either direction.

The decision reads the two accounts as they are (a funding never binds anything), the active
link between them, whether the intermediary holding the debited account approved that link
(it did when the link was created by its own request, or later through the links API:
``storage/link_approvals_repo.py``), the cumulative totals of the funding operation (counted
apart from transfers, per holder and per debited account) and whether this interaction's wallet
presentation signed the movement's transaction data. The engine's ``decide_funding`` judges
them (docs/POLICY.md "Funding"). The granted entry names the link it moves over, so the token
carries the concrete movement and removing the link revokes the grant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from trustanchor.oauth import funding
from trustanchor.oauth.funding import FundingDetail
from trustanchor.openid4vp.transaction_data import operation_digest
from trustanchor.policy.decision import denied
from trustanchor.policy.engine import decide_funding
from trustanchor.policy.facts import FundingRequest
from trustanchor.policy.snapshot import TrustSnapshot
from trustanchor.services import cumulative
from trustanchor.services.decision_reader import (
    CarryingOut,
    Context,
    DetailDecision,
    new_decision_id,
)
from trustanchor.services.interaction import InteractionGone
from trustanchor.storage import accounts_repo, link_approvals_repo


def decide(ctx: Context, detail: FundingDetail) -> DetailDecision:
    reader, login = ctx.reader, ctx.login
    conn = reader.conn
    accounts = accounts_repo.get_many(conn, [detail.deposit_account, detail.wallet_account])
    deposit = accounts.get(detail.deposit_account)
    wallet = accounts.get(detail.wallet_account)
    debited = accounts.get(detail.debtor_account)
    link = accounts_repo.active_link(conn, detail.deposit_account, detail.wallet_account)
    if link is not None and detail.link_id is not None and link.id != detail.link_id:
        link = None  # the request names a link that is no longer the active one
    deposit_fact = reader.fact(deposit)
    wallet_fact = reader.fact(wallet)
    entry = detail.to_entry()
    if detail.standing_authorization_id is not None:
        # Only a movement token minted from a standing authorization names one
        # (services/standing_movements.py); a request for a one-off funding never does.
        decision = denied("operation_not_allowed")
    elif deposit_fact is None or wallet_fact is None or debited is None:
        decision = denied("account_not_bound")
    elif "closed" in (deposit_fact.status, wallet_fact.status):
        decision = denied("account_closed")
    else:
        debit_approved = debited.client_id == reader.client_id or (
            link is not None and link_approvals_repo.approved_by(conn, link.id, debited.client_id)
        )
        totals = cumulative.totals(
            conn,
            ctx.snapshot,
            operation=funding.TYPE,
            currency=detail.amount.currency,
            holder_id=login.holder_id,
            debtor_account_id=debited.id,
            at=ctx.at,
        )
        request = FundingRequest(
            direction=detail.direction,
            amount=detail.amount,
            deposit_account=deposit_fact,
            wallet_account=wallet_fact,
            linked=link is not None,
            link_flagged=link is not None and link.flagged_at is not None,
            debit_approved=debit_approved,
            transaction_signed=operation_digest(entry) in ctx.signed_operations,
            totals=totals,
        )
        decision = decide_funding(
            ctx.snapshot, request, login, reader.identities([login.holder_id]), at=ctx.at
        )
    return DetailDecision(
        new_decision_id(reader.services),
        entry,
        decision,
        accounts,
        link,
        (),
        operation=detail,
        granted=_granted(detail, link.id) if link is not None else None,
    )


def count(conn: Connection, snapshot: TrustSnapshot, item: DetailDecision, at: int) -> bool:
    """Count an allowed movement against the set's cumulative funding rules (False: a parallel
    approval used up the room first)."""
    detail = item.operation
    assert isinstance(detail, FundingDetail)
    debited = item.accounts.get(detail.debtor_account)
    if debited is None or debited.holder_id is None or item.decision.anchor_set_id is None:
        return False
    return cumulative.count(
        conn,
        snapshot,
        operation=funding.TYPE,
        anchor_set_id=item.decision.anchor_set_id,
        currency=detail.amount.currency,
        amount=detail.amount.minor,
        holder_id=debited.holder_id,
        debtor_account_id=debited.id,
        at=at,
    )


def carry_out(
    conn: Connection,
    item: DetailDecision,
    carrying: CarryingOut,
) -> str | None:
    """Nothing moves here (the ledger moves the money when the token is used), but the link
    must still be active when the grant relying on it is recorded: its row is locked until the
    consent transaction commits, so a removal racing with this approval either comes first
    (and this approval fails) or finds the grant and revokes it."""
    del carrying
    if item.link is None or not accounts_repo.lock_active_link(conn, item.link.id):
        raise InteractionGone("the link was removed meanwhile")
    return None


def _granted(detail: FundingDetail, link_id: str) -> dict[str, Any]:
    """The entry as granted: it names the link the movement goes over."""
    return FundingDetail(
        direction=detail.direction,
        amount=detail.amount,
        deposit_account=detail.deposit_account,
        wallet_account=detail.wallet_account,
        link_id=link_id,
    ).to_entry()
