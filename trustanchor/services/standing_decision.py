"""The ``standing_funding`` operation at consent: a holder approves, once, automatic funding over
their link within bounds (docs/POLICY.md "Standing authorizations").

The decision is the funding decision for a movement of ``max_amount`` in every direction asked
(the accounts, the link, the intermediaries' approval of debits, the set's funding limit and
step-up rules for that amount), plus the set's ``standing_funding_max_days`` against the
requested ``valid_days`` — the engine's ``decide_standing_funding``. Today's totals do not stand
in the way of the approval: every movement is counted when it is minted
(services/standing_movements.py).

An allowed decision grants the entry with its link, its id (``sta_…``, derived from the
decision id) and its end; the grant lives exactly as long. Carrying it out records the standing
authorization beside its grant, under the lock of the link row (as for a funding).
"""

from __future__ import annotations

from sqlalchemy import Connection

from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.openid4vp.transaction_data import operation_digest
from trustanchor.policy.decision import denied
from trustanchor.policy.engine import decide_standing_funding
from trustanchor.policy.facts import StandingFundingRequest
from trustanchor.services.decision_reader import (
    CarryingOut,
    Context,
    DetailDecision,
    new_decision_id,
)
from trustanchor.services.interaction import InteractionGone
from trustanchor.storage import accounts_repo, link_approvals_repo, standing_repo

DAY = 86_400


def standing_id(decision_id: str) -> str:
    """The standing authorization's id, derived from its (random, one-time) decision id."""
    return "sta_" + decision_id.removeprefix("dec_")


def decide(ctx: Context, detail: StandingFundingDetail) -> DetailDecision:
    reader, login = ctx.reader, ctx.login
    conn = reader.conn
    decision_id = new_decision_id(reader.services)
    accounts = accounts_repo.get_many(conn, [detail.deposit_account, detail.wallet_account])
    deposit = accounts.get(detail.deposit_account)
    wallet = accounts.get(detail.wallet_account)
    link = accounts_repo.active_link(conn, detail.deposit_account, detail.wallet_account)
    if link is not None and detail.link_id is not None and link.id != detail.link_id:
        link = None
    deposit_fact = reader.fact(deposit)
    wallet_fact = reader.fact(wallet)
    entry = detail.to_entry()
    if detail.granted:
        decision = denied("operation_not_allowed")  # its id and end are ours to give
    elif deposit is None or wallet is None or deposit_fact is None or wallet_fact is None:
        decision = denied("account_not_bound")
    elif "closed" in (deposit_fact.status, wallet_fact.status):
        decision = denied("account_closed")
    else:
        debited = {"deposit_to_wallet": deposit, "wallet_to_deposit": wallet}
        debit_approved = all(
            debited[direction].client_id == reader.client_id
            or (
                link is not None
                and link_approvals_repo.approved_by(conn, link.id, debited[direction].client_id)
            )
            for direction in detail.directions
        )
        request = StandingFundingRequest(
            directions=detail.directions,
            max_amount=detail.max_amount,
            daily_amount=detail.daily_amount,
            valid_days=detail.valid_days,
            deposit_account=deposit_fact,
            wallet_account=wallet_fact,
            linked=link is not None,
            link_flagged=link is not None and link.flagged_at is not None,
            debit_approved=debit_approved,
            transaction_signed=operation_digest(entry) in ctx.signed_operations,
        )
        decision = decide_standing_funding(
            ctx.snapshot, request, login, reader.identities([login.holder_id]), at=ctx.at
        )
    granted = None
    expires_at = None
    if decision.allowed and link is not None:
        expires_at = ctx.at + detail.valid_days * DAY
        granted = StandingFundingDetail(
            directions=detail.directions,
            deposit_account=detail.deposit_account,
            wallet_account=detail.wallet_account,
            max_amount=detail.max_amount,
            daily_amount=detail.daily_amount,
            valid_days=detail.valid_days,
            link_id=link.id,
            standing_authorization_id=standing_id(decision_id),
            expires_at=expires_at,
        ).to_entry()
    return DetailDecision(
        decision_id,
        entry,
        decision,
        accounts,
        link,
        (),
        operation=detail,
        granted=granted,
        expires_at=expires_at,
    )


def carry_out(conn: Connection, item: DetailDecision, carrying: CarryingOut) -> str | None:
    """Record the standing authorization beside its grant; the link must still be active (its
    row locked until the consent transaction commits, as for a funding)."""
    if (
        item.link is None
        or item.granted is None
        or item.expires_at is None
        or not accounts_repo.lock_active_link(conn, item.link.id)
    ):
        raise InteractionGone("the link was removed meanwhile")
    standing_repo.create(
        conn,
        standing_id=standing_id(item.decision_id),
        grant_id=carrying.grant_id,
        link_id=item.link.id,
        client_id=carrying.client_id,
        holder_id=carrying.authentication.holder_id,
        entry=item.granted,
        now=carrying.at,
        expires_at=item.expires_at,
    )
    return None
