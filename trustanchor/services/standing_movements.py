"""Movements under a standing authorization: the token request that names one concrete funding
movement, the checks and counting when it is minted, and the standing authorizations as the
holder (``/my``) and the intermediaries (the links API) see and end them.

A movement token is asked for with the standing grant's DPoP-bound refresh token
(``grant_type=refresh_token`` with ``authorization_details`` naming ONE ``funding`` entry,
RFC 9396 §6 at the token endpoint). It is minted only when, at that instant:

- the movement lies within the standing authorization's bounds (``covers``: same accounts, a
  direction it allows, the same currency, at most ``max_amount``);
- the standing authorization has not ended (its grant is not revoked or expired);
- the link it names is still active and not flagged, both accounts are still active and the
  holder's, and a debited account registered by another intermediary is still approved for
  debits by it (``storage/link_approvals_repo.py``);
- the anchor set it relied on still allows funding and standing authorizations, and the amount
  is within its current funding limit;
- the day's total stays within ``daily_amount`` (the set's calendar day, one conditional
  update: ``storage/counters_repo.py``), and within the set's cumulative funding rules.

Everything runs in the token endpoint's transaction, so a refused movement rolls back the
refresh token's rotation and counts nothing. The minted token carries the concrete movement
with the link and standing authorization ids; every movement is recorded for the listings and
audited as the access token it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from trustanchor.domain.clients import Client
from trustanchor.oauth import funding, standing_funding
from trustanchor.oauth.authorization_details import parse_authorization_details
from trustanchor.oauth.errors import InvalidAuthorizationDetails, InvalidGrant
from trustanchor.oauth.funding import FundingDetail
from trustanchor.oauth.standing_funding import StandingFundingDetail
from trustanchor.policy.snapshot import SetView, TrustSnapshot
from trustanchor.policy.windows import bucket_start, earliest_bucket
from trustanchor.services import cumulative, decisions, links
from trustanchor.services.container import Services
from trustanchor.storage import (
    accounts_repo,
    counters_repo,
    link_approvals_repo,
    standing_repo,
)
from trustanchor.storage.counters_repo import Meter
from trustanchor.storage.grants_repo import Grant

OPERATION = standing_funding.TYPE
DAILY_WINDOW = "calendar_day"
SUBJECT = "standing"


@dataclass(frozen=True, slots=True)
class Minted:
    """The movement to put in the access token, and its standing authorization's id."""

    entry: dict[str, Any]
    standing_id: str
    movement: FundingDetail


def movement(
    services: Services,
    conn: Connection,
    client: Client,
    grant: Grant,
    granted: tuple[Mapping[str, Any], ...],
    anchor_set_id: str | None,
    requested_raw: str | None,
    *,
    at: int,
) -> Minted:
    """Check and count the movement named by ``requested_raw`` under the standing grant; raises
    an OAuthError with its reason code when it may not be minted."""
    standing = standing_funding.find(granted)
    if standing is None or standing.standing_authorization_id is None:
        raise InvalidGrant("the grant holds no standing authorization", reason="grant_revoked")
    if requested_raw is None:
        raise InvalidAuthorizationDetails(
            "a standing authorization's token request names one funding movement in "
            "authorization_details",
            reason="standing_movement_missing",
        )
    requested = parse_authorization_details(
        requested_raw,
        allowed_types=client.authorization_details_types,
        max_entries=services.settings.limits.max_authorization_details,
        max_depth=services.settings.limits.max_json_depth,
    )
    if len(requested) != 1 or requested[0]["type"] != funding.TYPE:
        raise InvalidAuthorizationDetails(
            "name exactly one funding movement", reason="standing_movement_invalid"
        )
    wanted = FundingDetail.from_entry(requested[0])
    if not standing.covers(wanted):
        raise InvalidAuthorizationDetails(
            "the movement is not within the standing authorization's bounds",
            reason="standing_movement_not_covered",
        )
    standing_id = standing.standing_authorization_id
    row = standing_repo.of_grant(conn, grant.id)
    if row is None or row.id != standing_id or not row.active(at):
        raise InvalidGrant("the standing authorization has ended", reason="standing_ended")
    _check_link_and_accounts(conn, client, grant, standing, wanted)
    snapshot = decisions.trust_snapshot(services)
    view = _check_policy(snapshot, anchor_set_id, wanted)
    _count(conn, snapshot, view, grant, standing, wanted, at=at)
    minted = FundingDetail(
        direction=wanted.direction,
        amount=wanted.amount,
        deposit_account=standing.deposit_account,
        wallet_account=standing.wallet_account,
        link_id=standing.link_id,
        standing_authorization_id=standing_id,
    )
    return Minted(minted.to_entry(), standing_id, minted)


def _check_link_and_accounts(
    conn: Connection,
    client: Client,
    grant: Grant,
    standing: StandingFundingDetail,
    wanted: FundingDetail,
) -> None:
    link = accounts_repo.get_link(conn, standing.link_id or "")
    if link is None or link.removed_at is not None:
        raise InvalidGrant("the standing authorization has ended", reason="standing_ended")
    if link.flagged_at is not None:
        raise InvalidGrant(
            "the link is flagged for the holder's re-verification", reason="link_flagged"
        )
    accounts = accounts_repo.get_many(conn, [standing.deposit_account, standing.wallet_account])
    if len(accounts) != 2 or any(
        account.status != "active" or account.holder_id != grant.holder_id
        for account in accounts.values()
    ):
        raise InvalidGrant(
            "an account of the standing authorization is no longer active or the holder's",
            reason="standing_accounts_changed",
        )
    debited = accounts[wanted.debtor_account]
    if debited.client_id != client.client_id and not link_approvals_repo.approved_by(
        conn, link.id, debited.client_id
    ):
        raise InvalidGrant(
            "the intermediary holding the debited account does not approve debits over this link",
            reason="debit_not_approved",
        )


def _check_policy(
    snapshot: TrustSnapshot, anchor_set_id: str | None, wanted: FundingDetail
) -> SetView:
    view = snapshot.sets.get(anchor_set_id or "")
    if view is None or not view.allows_funding or view.policy.standing_funding_max_days <= 0:
        raise InvalidGrant(
            "the anchor set no longer allows standing authorizations",
            reason="standing_not_allowed",
        )
    limit = view.funding_limits.get(wanted.amount.currency)
    if limit is None or wanted.amount.minor > limit:
        raise InvalidAuthorizationDetails(
            "the amount is above the anchor set's funding limit", reason="limit_exceeded"
        )
    return view


def _count(
    conn: Connection,
    snapshot: TrustSnapshot,
    view: SetView,
    grant: Grant,
    standing: StandingFundingDetail,
    wanted: FundingDetail,
    *,
    at: int,
) -> None:
    set_id = view.id
    zone = view.policy.time_zone
    assert standing.standing_authorization_id is not None
    meter = Meter(
        set_id,
        OPERATION,
        DAILY_WINDOW,
        SUBJECT,
        standing.standing_authorization_id,
        wanted.amount.currency,
    )
    within_day = counters_repo.add_within(
        conn,
        meter,
        bucket=bucket_start(DAILY_WINDOW, at, zone),
        since=earliest_bucket(DAILY_WINDOW, at, zone),
        amount=wanted.amount.minor,
        limit=standing.daily_amount.minor,
    )
    if not within_day:
        raise InvalidAuthorizationDetails(
            "the standing authorization's daily amount would be exceeded",
            reason="standing_daily_limit_exceeded",
        )
    assert grant.holder_id is not None
    if not cumulative.count(
        conn,
        snapshot,
        operation=funding.TYPE,
        anchor_set_id=set_id,
        currency=wanted.amount.currency,
        amount=wanted.amount.minor,
        holder_id=grant.holder_id,
        debtor_account_id=wanted.debtor_account,
        at=at,
    ):
        raise InvalidAuthorizationDetails(
            "the anchor set's cumulative funding limit would be exceeded",
            reason="cumulative_limit_exceeded",
        )


def record(conn: Connection, minted: Minted, *, jti: str, at: int) -> None:
    standing_repo.record_movement(
        conn,
        jti=jti,
        standing_id=minted.standing_id,
        at=at,
        direction=minted.movement.direction,
        currency=minted.movement.amount.currency,
        amount=minted.movement.amount.minor,
    )


# ---------------------------------------------------------------------------- ending one


def revoke_for_holder(services: Services, holder_id: str, standing_id: str) -> bool:
    """The holder ends one of their standing authorizations (``/my``); False when it is not
    theirs or has ended already."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        row = standing_repo.get(conn, standing_id)
        if row is None or row.holder_id != holder_id or not row.active(at):
            return False
        links.revoke_grants(conn, [row.grant_id], reason="revoked_by_holder", at=at)
    return True


def revoke_for_intermediary(
    services: Services, client_id: str, link_id: str, standing_id: str
) -> bool:
    """An intermediary holding one of the link's accounts ends a standing authorization over it
    (the links API); False when there is none such (active) on this link."""
    at = services.clock.now()
    with services.db.transaction() as conn:
        row = standing_repo.get(conn, standing_id)
        if row is None or row.link_id != link_id or not row.active(at):
            return False
        link = accounts_repo.get_link(conn, link_id)
        if link is None:
            return False
        owners = accounts_repo.get_many(conn, [link.deposit_account_id, link.wallet_account_id])
        if not any(account.client_id == client_id for account in owners.values()):
            return False
        links.revoke_grants(conn, [row.grant_id], reason="revoked_by_intermediary", at=at)
    return True
