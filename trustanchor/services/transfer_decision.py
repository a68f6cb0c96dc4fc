"""The ``value_transfer`` operation at consent: its policy decision (with the cumulative window
totals and whether the wallet signed it) and its counting against the cumulative limits when
the person approves."""

from __future__ import annotations

from sqlalchemy import Connection

from trustanchor.oauth import value_transfer
from trustanchor.oauth.value_transfer import ValueTransferDetail
from trustanchor.openid4vp.transaction_data import operation_digest
from trustanchor.policy.decision import denied
from trustanchor.policy.engine import decide_transfer
from trustanchor.policy.facts import TransferRequest
from trustanchor.policy.snapshot import TrustSnapshot
from trustanchor.services import cumulative
from trustanchor.services.decision_reader import (
    CarryingOut,
    Context,
    DetailDecision,
    new_decision_id,
)
from trustanchor.services.interaction import BindingConflict
from trustanchor.storage import accounts_repo


def decide(ctx: Context, detail: ValueTransferDetail) -> DetailDecision:
    reader, login = ctx.reader, ctx.login
    conn = reader.conn
    accounts = accounts_repo.get_many(conn, [detail.debtor_account, detail.creditor_account])
    debtor_account = accounts.get(detail.debtor_account)
    debtor = reader.fact(debtor_account)
    creditor = reader.fact(accounts.get(detail.creditor_account))
    counterparty: tuple[str, ...] = ()
    entry = detail.to_entry()
    if debtor_account is None or debtor is None or creditor is None:
        decision = denied("account_not_bound")
    elif "closed" in (debtor.status, creditor.status):
        decision = denied("account_closed")
    else:
        identities = reader.identities([login.holder_id, creditor.holder_id])
        linked_here = debtor.registered_elsewhere and reader.linked_here(
            debtor_account, login.holder_id
        )
        totals = cumulative.totals(
            conn,
            ctx.snapshot,
            operation=value_transfer.TYPE,
            currency=detail.amount.currency,
            holder_id=login.holder_id,
            debtor_account_id=debtor.id,
            at=ctx.at,
        )
        request = TransferRequest(
            detail.amount,
            debtor,
            creditor,
            debtor_linked_here=linked_here,
            totals=totals,
            transaction_signed=operation_digest(entry) in ctx.signed_operations,
        )
        decision = decide_transfer(ctx.snapshot, request, login, identities, at=ctx.at)
        if decision.allowed and decision.anchor_set_id is not None:
            members = ctx.snapshot.sets[decision.anchor_set_id].members
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
        new_decision_id(reader.services),
        entry,
        decision,
        accounts,
        None,
        counterparty,
        operation=detail,
    )


def count(conn: Connection, snapshot: TrustSnapshot, item: DetailDecision, at: int) -> bool:
    """Count an allowed transfer against the cumulative limits of the set it relied on (False:
    a parallel approval used up the room first)."""
    detail = item.operation
    assert isinstance(detail, ValueTransferDetail)
    debtor = item.accounts.get(detail.debtor_account)
    if debtor is None or debtor.holder_id is None or item.decision.anchor_set_id is None:
        return False
    return cumulative.count(
        conn,
        snapshot,
        operation=value_transfer.TYPE,
        anchor_set_id=item.decision.anchor_set_id,
        currency=detail.amount.currency,
        amount=detail.amount.minor,
        holder_id=debtor.holder_id,
        debtor_account_id=debtor.id,
        at=at,
    )


def carry_out(conn: Connection, item: DetailDecision, carrying: CarryingOut) -> str | None:
    """Hold the accounts of an approved transfer that are bound to the person until the consent
    commits (``accounts_repo.rely_on``): an intermediary's link removal releasing one of them
    (services/links.py) then either comes first, and this consent fails with BindingConflict,
    or waits and finds this grant to revoke. Creates no link."""
    detail = item.operation
    assert isinstance(detail, ValueTransferDetail)
    holder_id = carrying.authentication.holder_id
    for account_id in (detail.debtor_account, detail.creditor_account):
        account = item.accounts.get(account_id)
        if account is None or account.holder_id != holder_id:
            continue  # the creditor may be anyone's; the debtor was decided to be the person's
        if not accounts_repo.rely_on(conn, account_id, holder_id=holder_id):
            raise BindingConflict(account_id)
    return None
