"""Parked authorization requests waiting for the person to log in and consent.

States: ``login`` → ``consent`` (after a finished authentication) → ``done`` or ``denied``;
``consent`` → ``login`` again when a policy decision needs a stronger login (step-up);
``login`` or ``consent`` → ``denied`` when the person gives up. Every transition is one
conditional UPDATE so a double submit yields one outcome. The typed seam over these rows is
``trustanchor.services.interaction``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select, update

from trustanchor.storage.tables import interactions


@dataclass(frozen=True, slots=True)
class InteractionRow:
    id: str
    client_id: str
    request: dict[str, Any]
    state: str
    expires_at: int
    authentication: dict[str, Any] | None
    step_up: dict[str, Any] | None = None
    browser_digest: str | None = None
    login_via: str | None = None
    login_transaction: str | None = None
    login_device: str | None = None


def create(
    conn: Connection,
    interaction_id: str,
    client_id: str,
    request: dict[str, Any],
    *,
    browser_digest: str,
    now: int,
    expires_at: int,
) -> None:
    conn.execute(
        insert(interactions).values(
            id=interaction_id,
            client_id=client_id,
            request=request,
            browser_digest=browser_digest,
            state="login",
            created_at=now,
            expires_at=expires_at,
        )
    )


def get(conn: Connection, interaction_id: str, *, now: int) -> InteractionRow | None:
    row = conn.execute(
        select(interactions).where(
            interactions.c.id == interaction_id, interactions.c.expires_at > now
        )
    ).first()
    return None if row is None else _row(row)


def authenticated(
    conn: Connection,
    interaction_id: str,
    authentication: dict[str, Any],
    *,
    login_via: str,
    now: int,
    login_transaction: str | None = None,
    login_device: str | None = None,
) -> bool:
    """Record a finished login; only while the interaction still waits for one. A login made in
    this interaction names its transaction and where its answer arrived (``this`` browser or an
    ``other`` device); an SSO takeover names neither."""
    values = {
        "state": "consent",
        "authentication": authentication,
        "step_up": None,
        "login_via": login_via,
        "login_transaction": login_transaction,
        "login_device": login_device,
    }
    return _move(conn, interaction_id, "login", values, now=now) is not None


def answer_reached_browser(conn: Connection, interaction_id: str, transaction_id: str) -> bool:
    """The answer of ``transaction_id`` came back to the interaction's own browser (the
    same-device return): its login is marked ``this``, only while it is still the interaction's
    current login (a later step-up's login stays as it was)."""
    result = conn.execute(
        update(interactions)
        .where(
            interactions.c.id == interaction_id,
            interactions.c.login_transaction == transaction_id,
        )
        .values(login_device="this")
    )
    return result.rowcount == 1


def require_step_up(
    conn: Connection, interaction_id: str, requirement: dict[str, Any], *, now: int
) -> bool:
    """Send a consenting interaction back to login for a stronger authentication. The earlier
    authentication stays on the row: the new login must be of the same holder."""
    values = {"state": "login", "step_up": requirement}
    return _move(conn, interaction_id, "consent", values, now=now) is not None


def finish(
    conn: Connection, interaction_id: str, outcome: str, *, now: int
) -> InteractionRow | None:
    """Move a consenting interaction to ``done``/``denied`` exactly once; the row when this won."""
    return _move(conn, interaction_id, "consent", {"state": outcome, "finished_at": now}, now=now)


def abandon(conn: Connection, interaction_id: str, *, now: int) -> InteractionRow | None:
    """Deny an interaction still waiting for login or consent (the person cancelled, or did not
    recognise the login shown at consent)."""
    values = {"state": "denied", "finished_at": now}
    return _move(conn, interaction_id, ("login", "consent"), values, now=now)


def _move(
    conn: Connection,
    interaction_id: str,
    from_state: str | tuple[str, ...],
    values: dict[str, Any],
    *,
    now: int,
) -> InteractionRow | None:
    """One transition: a conditional UPDATE from ``from_state`` of a live interaction; the row
    as it now is when this call won, None when it was not (any more) in that state."""
    states = (from_state,) if isinstance(from_state, str) else from_state
    row = conn.execute(
        update(interactions)
        .where(
            interactions.c.id == interaction_id,
            interactions.c.state.in_(states),
            interactions.c.expires_at > now,
        )
        .values(**values)
        .returning(*_COLUMNS)
    ).first()
    return None if row is None else _row(row)


_COLUMNS = (
    interactions.c.id,
    interactions.c.client_id,
    interactions.c.request,
    interactions.c.state,
    interactions.c.expires_at,
    interactions.c.authentication,
    interactions.c.step_up,
    interactions.c.browser_digest,
    interactions.c.login_via,
    interactions.c.login_transaction,
    interactions.c.login_device,
)


def _row(row: Any) -> InteractionRow:
    return InteractionRow(
        id=row.id,
        client_id=row.client_id,
        request=dict(row.request),
        state=row.state,
        expires_at=row.expires_at,
        authentication=dict(row.authentication) if row.authentication is not None else None,
        step_up=dict(row.step_up) if row.step_up is not None else None,
        browser_digest=row.browser_digest,
        login_via=row.login_via,
        login_transaction=row.login_transaction,
        login_device=row.login_device,
    )


def amend_step_up(
    conn: Connection, interaction_id: str, step_up: dict[str, Any], *, now: int
) -> bool:
    """Replace the pending step-up of an interaction still waiting for a login (identity
    joining notes which credential the person may present again, services.identity_joining)."""
    return _move(conn, interaction_id, "login", {"step_up": step_up}, now=now) is not None
