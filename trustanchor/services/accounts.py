"""The intermediaries' accounts API: register, list, read and close accounts; list and remove
the links between them. Framework-free; ``web/accounts_api.py`` maps HTTP onto these calls.

Only the registering intermediary sees an account. What it learns about the holder is the
pairwise ``sub`` it already receives for that person in ID tokens (its own sector), never our
internal holder id. The intermediary's own account reference is kept only as a keyed digest, and
so are the KYC attributes it may register for the holder (``services/account_kyc.py``).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from trustanchor.digests import keyed_digest
from trustanchor.domain.accounts import (
    ACCOUNT_KINDS,
    MAX_LABEL,
    MAX_REFERENCE,
    Account,
    AccountLink,
)
from trustanchor.domain.clients import Client
from trustanchor.oauth.pairwise import pairwise_subject
from trustanchor.services import account_kyc, links, standing_movements
from trustanchor.services.container import Services
from trustanchor.storage import accounts_repo, grants_repo, link_approvals_repo, standing_repo

REFERENCE_CONTEXT = "account-reference"
MAX_LIST = 1000
REGISTRATION_FIELDS = frozenset({"reference", "kind", "label", "kyc"})


class AccountsError(Exception):
    """A refused accounts-API call: HTTP status, an error code and a description safe to show."""

    def __init__(self, status: int, error: str, description: str) -> None:
        self.status = status
        self.error = error
        self.description = description
        super().__init__(f"{error}: {description}")


def _text(value: object, name: str, max_len: int) -> str:
    """Printable text of 1..max_len characters in NFC, without control or format characters."""
    if not isinstance(value, str) or not 1 <= len(value) <= max_len:
        raise AccountsError(400, "invalid_request", f"{name} must be a string of 1..{max_len}")
    if not unicodedata.is_normalized("NFC", value) or value != value.strip():
        raise AccountsError(400, "invalid_request", f"{name} must be NFC without outer spaces")
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        raise AccountsError(400, "invalid_request", f"{name} contains control characters")
    return value


def reference_digest(services: Services, client_id: str, reference: str) -> str:
    return keyed_digest(services.secrets.pairwise, REFERENCE_CONTEXT, client_id, reference)


def holder_reference(services: Services, client: Client, holder_id: str | None) -> str | None:
    """The holder as this client knows them: its pairwise ``sub``."""
    if holder_id is None:
        return None
    return pairwise_subject(services.secrets.pairwise, client.sector_identifier, holder_id)


def account_json(services: Services, client: Client, account: Account) -> dict[str, Any]:
    return {
        "account_id": account.id,
        "kind": account.kind,
        "label": account.label,
        "status": account.status,
        "bound": account.is_bound,
        "holder": holder_reference(services, client, account.holder_id),
        "bound_at": account.bound_at,
        "flagged_reason": account.flagged_reason,
        "created_at": account.created_at,
        "kyc_claims": None if account.kyc is None else list(account.kyc.claims),
    }


def standing_json(row: standing_repo.StandingRow, *, at: int) -> dict[str, Any]:
    """A standing authorization over a link, as the links API shows it to the intermediaries
    holding the link's accounts: who holds it, its bounds, and whether it is still active."""
    entry = row.entry
    return {
        "standing_authorization_id": row.id,
        "client_id": row.client_id,
        "directions": list(entry.get("directions", ())),
        "max_amount": entry.get("max_amount"),
        "daily_amount": entry.get("daily_amount"),
        "created_at": row.created_at,
        "expires_at": row.expires_at,
        "active": row.active(at),
        "revoked_reason": row.revoked_reason,
    }


def link_json(
    services: Services,
    client: Client,
    link: AccountLink,
    *,
    approved: bool = False,
    standing: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "link_id": link.id,
        "deposit_account": link.deposit_account_id,
        "wallet_account": link.wallet_account_id,
        "holder": holder_reference(services, client, link.holder_id),
        "created_at": link.created_at,
        "flagged": link.flagged_at is not None,
        "removed_at": link.removed_at,
        "removed_reason": link.removed_reason,
        # Whether this intermediary approved the link for funding movements that debit its
        # account (docs/POLICY.md "Funding").
        "approved_by_you": approved,
        # Standing authorizations over the link (docs/AUTHORIZATION-DETAILS.md): any
        # intermediary holding one of its accounts may end one.
        "standing_authorizations": standing or [],
    }


def register(services: Services, client: Client, body: object) -> tuple[dict[str, Any], bool]:
    """Register (or find again) an account of ``client``. True when it was created now.

    The same reference registered again answers the existing account; with another kind or
    label, or with KYC attributes other than those registered (none included), it is a conflict
    (409), never a silent change. Registering again without ``kyc`` does not compare them."""
    if not isinstance(body, Mapping):
        raise AccountsError(400, "invalid_request", "the body must be a JSON object")
    unknown = sorted(set(body) - REGISTRATION_FIELDS)
    if unknown:
        raise AccountsError(400, "invalid_request", f"unknown member {unknown[0][:40]!r}")
    reference = _text(body.get("reference"), "reference", MAX_REFERENCE)
    label = _text(body.get("label"), "label", MAX_LABEL)
    kind = body.get("kind")
    if kind not in ACCOUNT_KINDS:
        raise AccountsError(
            400, "invalid_request", f"kind must be one of {', '.join(ACCOUNT_KINDS)}"
        )
    attributes = None
    if "kyc" in body:
        try:
            attributes = account_kyc.parse_attributes(body["kyc"])
        except account_kyc.KycError as exc:
            raise AccountsError(400, "invalid_request", str(exc)) from exc
    key = services.secrets.pairwise
    account_id = "acc_" + services.randomness.token(16)
    at = services.clock.now()
    with services.db.transaction() as conn:
        account, created = accounts_repo.register(
            conn,
            account_id=account_id,
            client_id=client.client_id,
            kind=str(kind),
            label=label,
            reference_digest=reference_digest(services, client.client_id, reference),
            now=at,
            kyc=None if attributes is None else account_kyc.register(key, account_id, attributes),
        )
    if not created and (account.kind != kind or account.label != label):
        raise AccountsError(
            409, "conflict", "this reference is registered with another kind or label"
        )
    if not created and attributes is not None and not _same_kyc(key, account, attributes):
        raise AccountsError(
            409, "conflict", "this reference is registered with other KYC attributes"
        )
    return account_json(services, client, account), created


def _same_kyc(key: bytes, account: Account, attributes: dict[str, str]) -> bool:
    registered = account.kyc
    return (
        registered is not None
        and set(registered.claims) == set(attributes)
        and account_kyc.matches(key, account.id, registered, attributes)
    )


def _own(services: Services, client: Client, account_id: str) -> Account:
    with services.db.reader() as conn:
        account = accounts_repo.get(conn, account_id)
    if account is None or account.client_id != client.client_id:
        raise AccountsError(404, "not_found", "no such account")
    return account


def get(services: Services, client: Client, account_id: str) -> dict[str, Any]:
    return account_json(services, client, _own(services, client, account_id))


def list_accounts(services: Services, client: Client) -> dict[str, Any]:
    with services.db.reader() as conn:
        rows = accounts_repo.list_for_client(conn, client.client_id, limit=MAX_LIST)
    return {"accounts": [account_json(services, client, account) for account in rows]}


def close(services: Services, client: Client, account_id: str) -> None:
    """Close an account: its active links are removed and the tokens that depend on them
    revoked, in the same transaction."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        if not accounts_repo.close(conn, account_id, client_id=client.client_id, now=at):
            raise AccountsError(404, "not_found", "no such open account")
        for link in accounts_repo.links_of_account(conn, account_id):
            links.remove_in(conn, link.id, reason="account_closed", at=at)


def list_links(services: Services, client: Client) -> dict[str, Any]:
    at = services.clock.now()
    with services.db.reader() as conn:
        rows = accounts_repo.links_for_client(conn, client.client_id)
        approved = link_approvals_repo.approved_among(
            conn, [link.id for link in rows], client.client_id
        )
        standing: dict[str, list[dict[str, Any]]] = {}
        for row in standing_repo.for_links(conn, [link.id for link in rows]):
            standing.setdefault(row.link_id, []).append(standing_json(row, at=at))
    return {
        "links": [
            link_json(
                services,
                client,
                link,
                approved=link.id in approved,
                standing=standing.get(link.id),
            )
            for link in rows
        ]
    }


def end_standing(services: Services, client: Client, link_id: str, standing_id: str) -> None:
    """End a standing authorization over a link touching one of ``client``'s accounts (its
    grant is revoked, audited; the movement tokens minted from it stop being active)."""
    if not standing_movements.revoke_for_intermediary(
        services, client.client_id, link_id, standing_id
    ):
        raise AccountsError(404, "not_found", "no such active standing authorization")


def _own_active_link(conn: Connection, client: Client, link_id: str) -> AccountLink:
    """An active link touching one of ``client``'s accounts; 404 for anything else (another
    intermediary's link is not told apart from none)."""
    link = accounts_repo.get_link(conn, link_id)
    if link is None or link.removed_at is not None:
        raise AccountsError(404, "not_found", "no such active link")
    owners = accounts_repo.get_many(conn, [link.deposit_account_id, link.wallet_account_id])
    if not any(account.client_id == client.client_id for account in owners.values()):
        raise AccountsError(404, "not_found", "no such active link")
    return link


def approve_link(services: Services, client: Client, link_id: str) -> None:
    """``client`` approves the link for funding movements that debit the account it holds
    (idempotent). The intermediary whose request created the link approved it then."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        link = _own_active_link(conn, client, link_id)
        link_approvals_repo.approve(conn, link.id, client.client_id, now=at)


def withdraw_link_approval(services: Services, client: Client, link_id: str) -> None:
    """``client`` withdraws its approval: funding movements debiting its account over this link
    are refused from now on, and the live grants other intermediaries hold over the link are
    revoked (audited). 404 when it had not approved the link."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        link = _own_active_link(conn, client, link_id)
        if not link_approvals_repo.withdraw(conn, link.id, client.client_id):
            raise AccountsError(404, "not_found", "this link has no approval of yours")
        others = grants_repo.live_grants_of_link(conn, link.id, except_client=client.client_id)
        links.revoke_grants(conn, others, reason="link_approval_withdrawn", at=at)


def remove_link(services: Services, client: Client, link_id: str) -> None:
    """Remove a link that touches one of ``client``'s accounts (the intermediary's side of
    grant management); tokens that depend on it are revoked."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        _own_active_link(conn, client, link_id)
        removed = links.remove_in(
            conn, link_id, reason="removed_by_intermediary", at=at, removed_by=client.client_id
        )
        if not removed:
            raise AccountsError(404, "not_found", "no such active link")
