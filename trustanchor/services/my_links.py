"""The holders' self-service page for account links (/my/links): who is there, what they see,
what they may remove.

The page is a second first-party client of this service (``services.first_party_login``): a
person logs in through a trust anchor like everywhere else, and the session knows the holder
the login resolved to. A holder sees only their own active links and can remove only those;
removing one revokes every grant that relied on it (``services.links.remove_for_holder``, audited).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import Connection

from trustanchor.config.settings import Settings
from trustanchor.domain.accounts import Account, AccountLink, is_link_id
from trustanchor.domain.money import Amount
from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.secrets_store import ServiceSecrets
from trustanchor.services import first_party_login, links, standing_movements
from trustanchor.services.container import Services
from trustanchor.storage import accounts_repo, holder_sessions_repo, standing_repo
from trustanchor.storage.database import Database
from trustanchor.storage.grants_repo import Grant
from trustanchor.storage.holder_sessions_repo import HolderSession

CLIENT_ID = "trustanchor-my-links"
CALLBACK_PATH = "/my/callback"
CLIENT_NAME = {"en": "trustanchor: your account links", "ja": "trustanchor: 口座連携の管理"}
MOVEMENTS_SHOWN = 10
STANDING_ID = re.compile(r"sta_[A-Za-z0-9_-]{16,60}")
# Short on purpose: the page can revoke other clients' tokens. Every login is a fresh proof.
SESSION_LIFETIME = 900


class _HolderSessions:
    def create(
        self,
        services: Services,
        conn: Connection,
        session_id: str,
        grant: Grant,
        *,
        now: int,
        expires_at: int,
    ) -> None:
        assert grant.holder_id is not None  # first_party_login checked it
        holder_sessions_repo.create_session(
            conn, session_id, grant.holder_id, grant.id, now=now, expires_at=expires_at
        )

    def end(self, conn: Connection, session_id: str, *, now: int) -> bool:
        return holder_sessions_repo.end_session(conn, session_id, now=now)


def _lifetime(settings: Settings) -> int:
    return SESSION_LIFETIME


CLIENT = first_party_login.FirstPartyClient(
    client_id=CLIENT_ID,
    callback_path=CALLBACK_PATH,
    client_name=CLIENT_NAME,
    context="my-links",
    title="holders' self-service page",
    session_lifetime=_lifetime,
    sessions=_HolderSessions(),
)


def register_client(
    settings: Settings, db: Database, secrets: ServiceSecrets, *, now: int
) -> list[str]:
    return first_party_login.register_client(settings, db, secrets, CLIENT, now=now)


def session(services: Services, session_id: str | None) -> HolderSession | None:
    """The live session behind the cookie, or None (no cookie, unknown, expired, ended, or its
    grant revoked)."""
    if not first_party_login.well_formed_session(session_id):
        return None
    assert session_id is not None
    with services.db.reader() as conn:
        return holder_sessions_repo.live_session(conn, session_id, now=services.clock.now())


# --- what the holder sees -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkView:
    id: str
    deposit_label: str
    wallet_label: str
    intermediaries: tuple[str, ...]  # display names of the clients that registered the accounts
    since: int
    needs_reverification: bool


def _view(
    services: Services, link: AccountLink, accounts: dict[str, Account], language: str
) -> LinkView:
    deposit = accounts.get(link.deposit_account_id)
    wallet = accounts.get(link.wallet_account_id)
    names: list[str] = []
    for account in (deposit, wallet):
        if account is None:
            continue
        client = services.clients.get(account.client_id)
        name = client.name(language) if client is not None else account.client_id
        if name not in names:
            names.append(name)
    flagged = link.flagged_at is not None or any(
        account is not None and account.status == "flagged" for account in (deposit, wallet)
    )
    return LinkView(
        id=link.id,
        deposit_label=deposit.label if deposit is not None else link.deposit_account_id,
        wallet_label=wallet.label if wallet is not None else link.wallet_account_id,
        intermediaries=tuple(names),
        since=link.created_at,
        needs_reverification=flagged,
    )


def links_of(services: Services, holder_id: str, *, language: str) -> list[LinkView]:
    """The holder's active links, oldest first."""
    with services.db.reader() as conn:
        found = accounts_repo.links_for_holder(conn, holder_id)
        accounts = accounts_repo.get_many(
            conn, [i for x in found for i in (x.deposit_account_id, x.wallet_account_id)]
        )
    return [_view(services, link, accounts, language) for link in found]


def link_of(services: Services, holder_id: str, link_id: str, *, language: str) -> LinkView | None:
    """One of the holder's active links; None when the id is malformed, unknown, removed or
    someone else's (the page does not tell these apart)."""
    if not is_link_id(link_id):
        return None
    with services.db.reader() as conn:
        link = accounts_repo.get_link(conn, link_id)
        if link is None or link.holder_id != holder_id or not link.is_active:
            return None
        accounts = accounts_repo.get_many(conn, [link.deposit_account_id, link.wallet_account_id])
    return _view(services, link, accounts, language)


@dataclass(frozen=True, slots=True)
class MovementView:
    at: int
    direction: str  # deposit_to_wallet / wallet_to_deposit
    amount: Amount


@dataclass(frozen=True, slots=True)
class StandingView:
    """One of the holder's active standing authorizations over a link: who may move money
    automatically, which way, within which bounds, until when, and its latest movements."""

    id: str
    link_id: str
    intermediary: str  # the display name of the client holding it
    directions: tuple[str, ...]
    max_amount: Amount
    daily_amount: Amount
    since: int
    until: int
    movements: tuple[MovementView, ...]


def standing_of(
    services: Services, holder_id: str, *, language: str
) -> dict[str, list[StandingView]]:
    """The holder's active standing authorizations by link id, each with its latest movements
    (services/standing_movements.py mints and records them)."""
    at = services.clock.now()
    with services.db.reader() as conn:
        rows = [r for r in standing_repo.for_holder(conn, holder_id) if r.active(at)]
        moved = standing_repo.movements(conn, [r.id for r in rows], limit=MOVEMENTS_SHOWN)
    found: dict[str, list[StandingView]] = {}
    for row in rows:
        detail = StandingFundingDetail.from_entry(row.entry)
        client = services.clients.get(row.client_id)
        found.setdefault(row.link_id, []).append(
            StandingView(
                id=row.id,
                link_id=row.link_id,
                intermediary=client.name(language) if client is not None else row.client_id,
                directions=detail.directions,
                max_amount=detail.max_amount,
                daily_amount=detail.daily_amount,
                since=row.created_at,
                until=row.expires_at,
                movements=tuple(
                    MovementView(m.at, m.direction, Amount(m.currency, m.amount))
                    for m in moved.get(row.id, [])
                ),
            )
        )
    return found


def stop_standing(services: Services, holder_id: str, standing_id: str) -> bool:
    """End one of the holder's own active standing authorizations (its grant is revoked,
    audited); False when it is not theirs or has ended."""
    if not STANDING_ID.fullmatch(standing_id):
        return False
    return standing_movements.revoke_for_holder(services, holder_id, standing_id)


def remove(services: Services, holder_id: str, link_id: str) -> bool:
    """Remove one of the holder's own active links and revoke the grants relying on it; False
    (nothing changed) when it is not theirs or not active."""
    if not is_link_id(link_id):
        return False
    return links.remove_for_holder(services, holder_id, link_id)
