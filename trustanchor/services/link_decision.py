"""The ``account_link`` operation at consent: its policy decision (the accounts as consent would
bind them) and what an allowed decision does (bind the accounts, create or remove the link, and
record the requesting intermediary's approval of the link for funding)."""

from __future__ import annotations

from sqlalchemy import Connection

from trustanchor.oauth.account_link import AccountLinkDetail
from trustanchor.policy.decision import denied
from trustanchor.policy.engine import decide_link
from trustanchor.policy.facts import LinkRequest
from trustanchor.services import links
from trustanchor.services.decision_reader import (
    CarryingOut,
    Context,
    DetailDecision,
    matched,
    new_decision_id,
)
from trustanchor.services.interaction import BindingConflict
from trustanchor.storage import accounts_repo, link_approvals_repo


def decide(ctx: Context, detail: AccountLinkDetail) -> DetailDecision:
    reader, login = ctx.reader, ctx.login
    conn = reader.conn
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
            ctx.snapshot,
            LinkRequest(detail.action, deposit_fact, wallet_fact, linked=link is not None),
            login,
            reader.identities([login.holder_id]),
            at=ctx.at,
        )
    return DetailDecision(
        new_decision_id(reader.services),
        detail.to_entry(),
        decision,
        accounts,
        link,
        (),
        kyc_matched=matched(deposit_fact, wallet_fact),
        operation=detail,
    )


def carry_out(
    conn: Connection,
    item: DetailDecision,
    carrying: CarryingOut,
) -> str | None:
    """Bind the accounts of a link to the person (through the identity they logged in with)
    and create the link, or remove it for an unlink. Returns the new link's id. Raises
    BindingConflict when an account was bound to someone else meanwhile."""
    detail = item.operation
    assert isinstance(detail, AccountLinkDetail)
    client_id, authentication, at = carrying.client_id, carrying.authentication, carrying.at
    if detail.action == "unlink":
        if item.link is not None:
            links.remove_in(conn, item.link.id, reason="unlinked_by_holder", at=at)
        return None
    # The link first, so that each account this consent binds records the link that bound it
    # (an existing active link of the pair is returned as it is): the intermediary removing
    # that link releases the binding (services/links.py, docs/HOLDER-INTEGRITY.md).
    link = accounts_repo.create_link(
        conn,
        link_id="lnk_" + item.decision_id.removeprefix("dec_"),  # both random, one-time
        holder_id=authentication.holder_id,
        deposit_account_id=detail.deposit_account,
        wallet_account_id=detail.wallet_account,
        now=at,
    )
    for account_id in (detail.deposit_account, detail.wallet_account):
        account = item.accounts[account_id]
        if account.holder_id is None or account.status == "flagged":
            bound = accounts_repo.bind(
                conn,
                account_id,
                registered_by=client_id,  # never an account of another intermediary
                holder_id=authentication.holder_id,
                identity_id=authentication.identity_id,
                now=at,
                kyc_matched=account_id in item.kyc_matched,
                link_id=link.id,
            )
        else:  # relied on as bound: it keeps the link that bound it; held against a release
            bound = accounts_repo.rely_on(conn, account_id, holder_id=authentication.holder_id)
        if not bound:
            raise BindingConflict(account_id)
    accounts_repo.clear_link_flag(conn, link.id)
    # The requesting intermediary approves the link for movements debiting its own account by
    # asking for it; the other one approves through the links API (docs/POLICY.md "Funding").
    link_approvals_repo.approve(conn, link.id, client_id, now=at)
    return link.id
