"""Removing account links, from whichever side asks (the intermediary's API, the holder's
self-service page, an account being closed): the link is marked removed and every grant that
relied on it is revoked — its refresh tokens and access tokens with it — and audited, in one
transaction. "A token for an account link used after the link is removed → refused": resource
servers see it through introspection and our own token checks, which consult grant revocation.

The intermediary's removal also undoes the bindings the link made (attack-session finding F1;
docs/HOLDER-INTEGRITY.md "When the wrong person approved a link"): an account is bound to the
holder who approved the link that named it, and the intermediary learns only afterwards, from
the ID token's subject, whether that was its customer. So when the link whose creation bound an
account (``accounts.bound_by_link_id``) has been removed by the intermediary that registered
that account (``account_links.removed_by``; another intermediary's removal releases only its
own accounts), and no active link
uses the account any more, the account is released — unbound, free for its real owner — and
every live grant of that holder naming it is revoked (reason ``binding_released``), in the same
transaction. The holder's own removals (``removed_by_holder``, ``unlinked_by_holder``) and an
account's closing keep the bindings: the holder is the person they are bound to.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection

from trustanchor.domain.accounts import AccountLink
from trustanchor.oauth import account_link
from trustanchor.services import audit_trail
from trustanchor.services.container import Services
from trustanchor.storage import accounts_repo, grants_repo

RELEASING_REASON = "removed_by_intermediary"
"""The link removal that undoes the bindings the link made."""

BINDING_RELEASED = "binding_released"
"""The revocation reason of grants that relied on a released binding (docs/AUDIT-FORMAT.md)."""


def remove_in(
    conn: Connection, link_id: str, *, reason: str, at: int, removed_by: str | None = None
) -> bool:
    """Remove ``link_id`` inside the caller's transaction (``removed_by``: the intermediary
    whose removal it is); False when it was not active. Releases the bindings an
    intermediary's removal undoes (:func:`release_bindings`)."""
    link = accounts_repo.remove_link(conn, link_id, reason=reason, now=at, removed_by=removed_by)
    if link is None:
        return False
    revoke_grants(conn, grants_repo.live_grants_of_link(conn, link_id), reason=reason, at=at)
    release_bindings(conn, link, at=at)
    return True


def release_bindings(conn: Connection, link: AccountLink, *, at: int) -> list[str]:
    """Release each account of the just-removed ``link`` whose binding link was removed by the
    intermediary that registered the account (this link, or an earlier one while this link
    still used the account) and which no active link uses now; revoke, audited, the live
    grants of the holder that name a released account, and record the release against the
    consent that made the binding.
    Returns the released account ids."""
    accounts = accounts_repo.get_many(conn, [link.deposit_account_id, link.wallet_account_id])
    released: list[str] = []
    binders: set[str] = set()
    for account_id in (link.deposit_account_id, link.wallet_account_id):
        account = accounts.get(account_id)
        if account is None or account.bound_by_link_id is None:
            continue  # unbound, or bound before migration 0012: kept
        if account.holder_id != link.holder_id:
            continue
        binder = account.bound_by_link_id
        binding_link = link if binder == link.id else accounts_repo.get_link(conn, binder)
        if binding_link is None or binding_link.removed_reason != RELEASING_REASON:
            continue
        # Only the intermediary that registered the account undoes its binding: it alone
        # binds it, and knows whether the person who approved was its customer. Another
        # intermediary's removal of a link through its own account releases only that one.
        if binding_link.removed_by != account.client_id:
            continue
        if accounts_repo.release(
            conn, account_id, holder_id=link.holder_id, link_id=binder, now=at
        ):
            released.append(account_id)
            binders.add(binder)
    if released:
        _revoke_for_release(conn, link.holder_id, released, binders, at=at)
    return released


def _revoke_for_release(
    conn: Connection, holder_id: str, released: list[str], binders: set[str], *, at: int
) -> None:
    """The holder's live grants naming a released account are revoked with reason
    ``binding_released``; the consent grant that made each released binding gets that entry
    too even when it was revoked already (by the removal a moment ago), so the release itself
    is in the audit log."""
    names = set(released)
    binding_grants = {
        grant.id
        for binder in sorted(binders)
        for grant in grants_repo.grants_of_link(conn, binder)
        if grant.holder_id == holder_id and _is_link_consent(grant.details)
    }
    naming = {
        grant.id
        for grant in grants_repo.live_grants_of_holder(conn, holder_id, now=at)
        if names & set(_accounts_named(grant.details))
    }
    for grant_id in sorted(binding_grants | naming):
        revoked = grants_repo.revoke_grant(conn, grant_id, now=at, reason=BINDING_RELEASED)
        if revoked or grant_id in binding_grants:
            audit_trail.record(
                conn,
                audit_trail.grant_revoked(at=at, grant_id=grant_id, reason=BINDING_RELEASED),
            )


def _entries(details: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    entries = details.get("authorization_details")
    if not isinstance(entries, list):
        return ()
    return [entry for entry in entries if isinstance(entry, Mapping)]


def _is_link_consent(details: Mapping[str, Any]) -> bool:
    return any(entry.get("type") == account_link.TYPE for entry in _entries(details))


def _accounts_named(details: Mapping[str, Any]) -> Iterable[str]:
    """The account ids a grant's authorization_details name: every ``…_account`` member of
    every type (deposit, wallet, debtor, creditor)."""
    for entry in _entries(details):
        for name, value in entry.items():
            if isinstance(name, str) and name.endswith("_account") and isinstance(value, str):
                yield value


def revoke_grants(conn: Connection, grant_ids: list[str], *, reason: str, at: int) -> None:
    for grant_id in grant_ids:
        if grants_repo.revoke_grant(conn, grant_id, now=at, reason=reason):
            audit_trail.record(
                conn, audit_trail.grant_revoked(at=at, grant_id=grant_id, reason=reason)
            )


def remove_for_holder(services: Services, holder_id: str, link_id: str) -> bool:
    """The holder's own removal (self-service page): only their own active links."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        link = accounts_repo.get_link(conn, link_id)
        if link is None or link.holder_id != holder_id:
            return False
        return remove_in(conn, link_id, reason="removed_by_holder", at=at)
