"""Holders and the identities anchors verified for them. An identity is keyed by
(anchor, subject at that anchor), never by a subject alone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection, String, cast, delete, func, insert, select, update

from trustanchor.domain.identity import Identity, VerifiedIdentity
from trustanchor.storage.database import insert_once
from trustanchor.storage.tables import holders, identities


def record(
    conn: Connection,
    verified: VerifiedIdentity,
    *,
    new_holder_id: str,
    new_identity_id: str,
    now: int,
) -> Identity:
    """A plain login: refresh the identity for (anchor, subject), which keeps its holder, or
    create it with a new holder. An identity never joins an existing holder here: that takes
    proof (:func:`join`, called by ``services.identity_joining``)."""
    existing = _refresh(conn, verified)
    if existing is not None:
        return existing
    conn.execute(insert(holders).values(id=new_holder_id, created_at=now))
    if _insert(conn, verified, holder_id=new_holder_id, identity_id=new_identity_id):
        return _identity(new_identity_id, new_holder_id, verified)
    # Another request created it first: drop our new holder, refresh theirs.
    conn.execute(delete(holders).where(holders.c.id == new_holder_id))
    refreshed = _refresh(conn, verified)
    if refreshed is None:  # pragma: no cover - the conflicting row must exist
        raise RuntimeError("identity vanished during insert")
    return refreshed


def find(conn: Connection, anchor_id: str, subject: str) -> Identity | None:
    """The identity an anchor verified for ``subject``, if the service has seen it."""
    row = conn.execute(
        select(identities).where(
            identities.c.anchor_id == anchor_id, identities.c.subject == subject
        )
    ).first()
    return None if row is None else _stored(row)


def refresh_of_holder(
    conn: Connection, verified: VerifiedIdentity, holder_id: str
) -> Identity | None:
    """Refresh a known identity with a new verification, only while it belongs to
    ``holder_id``; None when it does not (any more)."""
    return _refresh(conn, verified, holder_id=holder_id)


def join(
    conn: Connection,
    verified: VerifiedIdentity,
    *,
    holder_id: str,
    new_identity_id: str,
) -> Identity | None:
    """Record a new identity for an existing holder, after the caller proved it is the same
    person. None when (anchor, subject) is already known (a concurrent login recorded it): the
    caller refuses, as the identity may belong to someone else and never moves."""
    if _insert(conn, verified, holder_id=holder_id, identity_id=new_identity_id):
        return _identity(new_identity_id, holder_id, verified)
    return None


def _insert(
    conn: Connection, verified: VerifiedIdentity, *, holder_id: str, identity_id: str
) -> bool:
    return insert_once(
        conn,
        identities,
        {
            "id": identity_id,
            "holder_id": holder_id,
            "anchor_id": verified.anchor_id,
            "subject": verified.subject,
            "claims": dict(verified.claims),
            "assurance_level": verified.assurance_level,
            "verified_at": verified.verified_at,
            "expires_at": verified.expires_at,
            "evidence_digest": verified.evidence_digest,
            "status_reference": dict(verified.status_reference)
            if verified.status_reference
            else None,
            "credential_status": "valid",
            "status_checked_at": verified.verified_at,
        },
    )


@dataclass(frozen=True, slots=True)
class JoinCandidate:
    """What matching a new identity against a holder's identities needs: the verified claims
    (compared, never logged), the level and anchor, and whether the identity is current."""

    id: str
    anchor_id: str
    claims: dict[str, Any]
    assurance_level: str
    expires_at: int | None
    credential_status: str


def join_candidates(conn: Connection, holder_id: str) -> list[JoinCandidate]:
    rows = conn.execute(
        select(
            identities.c.id,
            identities.c.anchor_id,
            identities.c.claims,
            identities.c.assurance_level,
            identities.c.expires_at,
            identities.c.credential_status,
        )
        .where(identities.c.holder_id == holder_id)
        .order_by(identities.c.id)
    ).all()
    return [
        JoinCandidate(
            id=row.id,
            anchor_id=row.anchor_id,
            claims=dict(row.claims) if isinstance(row.claims, dict) else {},
            assurance_level=row.assurance_level,
            expires_at=row.expires_at,
            credential_status=row.credential_status,
        )
        for row in rows
    ]


def move_to_new_holder(
    conn: Connection, identity_id: str, *, from_holder: str, new_holder_id: str, now: int
) -> bool:
    """Undo a join (the operator's ``identities unjoin``): the identity leaves ``from_holder``
    for a new holder of its own. One conditional UPDATE; False when the identity is unknown or
    no longer belongs to ``from_holder``."""
    conn.execute(insert(holders).values(id=new_holder_id, created_at=now))
    moved = conn.execute(
        update(identities)
        .where(identities.c.id == identity_id, identities.c.holder_id == from_holder)
        .values(holder_id=new_holder_id)
        .returning(identities.c.id)
    ).first()
    if moved is None:
        conn.execute(delete(holders).where(holders.c.id == new_holder_id))
        return False
    return True


def record_in_person(
    conn: Connection, identity_id: str, *, branch: str, operator: str, at: int
) -> None:
    """Note that the identity was just verified face to face at a bank branch's counter
    terminal: ``branch`` (the terminal's declared branch id), ``operator`` (the bank's staff id)
    and when. Kept until the next in-person verification replaces it; a remote login leaves it
    as it is (it records the last time the person was seen in person, not how they logged in
    last). The service's own table, never shown to clients or auditors as such."""
    conn.execute(
        update(identities)
        .where(identities.c.id == identity_id)
        .values(in_person={"branch": branch, "operator": operator, "at": at})
    )


def in_person_of(conn: Connection, identity_id: str) -> dict[str, Any] | None:
    """The last in-person verification of the identity (:func:`record_in_person`), or None."""
    value = conn.execute(
        select(identities.c.in_person).where(identities.c.id == identity_id)
    ).scalar_one_or_none()
    return dict(value) if isinstance(value, dict) else None


def count_of_holder(conn: Connection, holder_id: str) -> int:
    return int(
        conn.execute(
            select(func.count()).select_from(identities).where(identities.c.holder_id == holder_id)
        ).scalar_one()
    )


def _refresh(
    conn: Connection, verified: VerifiedIdentity, *, holder_id: str | None = None
) -> Identity | None:
    conditions = [
        identities.c.anchor_id == verified.anchor_id,
        identities.c.subject == verified.subject,
    ]
    if holder_id is not None:
        conditions.append(identities.c.holder_id == holder_id)
    values: dict[str, Any] = {
        "assurance_level": verified.assurance_level,
        "expires_at": verified.expires_at,
        "evidence_digest": verified.evidence_digest,
        "status_reference": dict(verified.status_reference) if verified.status_reference else None,
        "credential_status": "valid",  # just presented and verified, status included
        "status_checked_at": verified.verified_at,
    }
    if verified.claims:
        # A verification without claims (a certificate login with the authentication
        # certificate only) keeps the claims verified earlier (at enrolment) and when.
        values["claims"] = dict(verified.claims)
        values["verified_at"] = verified.verified_at
    row = conn.execute(
        update(identities)
        .where(*conditions)
        .values(**values)
        .returning(
            identities.c.id, identities.c.holder_id, identities.c.claims, identities.c.verified_at
        )
    ).first()
    if row is None:
        return None
    return replace(
        _identity(row.id, row.holder_id, verified),
        claims=dict(row.claims),
        verified_at=row.verified_at,
    )


def _identity(identity_id: str, holder_id: str, verified: VerifiedIdentity) -> Identity:
    return Identity(
        id=identity_id,
        holder_id=holder_id,
        anchor_id=verified.anchor_id,
        subject=verified.subject,
        claims=verified.claims,
        assurance_level=verified.assurance_level,
        verified_at=verified.verified_at,
        expires_at=verified.expires_at,
        evidence_digest=verified.evidence_digest,
    )


def get(conn: Connection, identity_id: str) -> Identity | None:
    row = conn.execute(select(identities).where(identities.c.id == identity_id)).first()
    return None if row is None else _stored(row)


def _stored(row: Any) -> Identity:
    return Identity(
        id=row.id,
        holder_id=row.holder_id,
        anchor_id=row.anchor_id,
        subject=row.subject,
        claims=dict(row.claims),
        assurance_level=row.assurance_level,
        verified_at=row.verified_at,
        expires_at=row.expires_at,
        evidence_digest=row.evidence_digest,
    )


@dataclass(frozen=True, slots=True)
class HolderIdentity:
    """What the policy engine needs of one identity (no claims, no subject)."""

    id: str
    holder_id: str
    anchor_id: str
    assurance_level: str
    expires_at: int | None
    credential_status: str


def for_holders(conn: Connection, holder_ids: Sequence[str]) -> list[HolderIdentity]:
    """Every identity of the given holders, for policy decisions."""
    if not holder_ids:
        return []
    rows = conn.execute(
        select(
            identities.c.id,
            identities.c.holder_id,
            identities.c.anchor_id,
            identities.c.assurance_level,
            identities.c.expires_at,
            identities.c.credential_status,
        )
        .where(identities.c.holder_id.in_(sorted(set(holder_ids))))
        .order_by(identities.c.id)
    ).all()
    return [
        HolderIdentity(
            id=row.id,
            holder_id=row.holder_id,
            anchor_id=row.anchor_id,
            assurance_level=row.assurance_level,
            expires_at=row.expires_at,
            credential_status=row.credential_status,
        )
        for row in rows
    ]


def ids_at_anchor(conn: Connection, anchor_id: str) -> list[str]:
    rows = conn.execute(select(identities.c.id).where(identities.c.anchor_id == anchor_id)).all()
    return [row.id for row in rows]


def set_credential_status(
    conn: Connection, identity_id: str, status: str, *, now: int
) -> IdentityStatusChange | None:
    """Record what a status check learned; the identity's holder and anchor, or None when the
    identity is unknown."""
    row = conn.execute(
        update(identities)
        .where(identities.c.id == identity_id)
        .values(credential_status=status, status_checked_at=now)
        .returning(identities.c.holder_id, identities.c.anchor_id)
    ).first()
    return None if row is None else IdentityStatusChange(identity_id, row.holder_id, row.anchor_id)


@dataclass(frozen=True, slots=True)
class IdentityStatusChange:
    identity_id: str
    holder_id: str
    anchor_id: str


@dataclass(frozen=True, slots=True)
class StatusCheckTarget:
    """What a periodic status re-check needs of one identity (no claims, no subject)."""

    id: str
    anchor_id: str
    status_reference: dict[str, Any]
    credential_status: str


def status_check_targets(
    conn: Connection, anchor_ids: Sequence[str], *, limit: int | None = None
) -> list[StatusCheckTarget]:
    """Identities at ``anchor_ids`` that carry a status reference and are not revoked (revocation
    is final), least recently checked first, so that runs with a ``limit`` take turns."""
    if not anchor_ids:
        return []
    query = (
        select(
            identities.c.id,
            identities.c.anchor_id,
            identities.c.status_reference,
            identities.c.credential_status,
        )
        .where(
            identities.c.anchor_id.in_(sorted(set(anchor_ids))),
            identities.c.status_reference.is_not(None),
            # None is stored as a JSON null, which is not SQL NULL.
            cast(identities.c.status_reference, String) != "null",
            identities.c.credential_status != "revoked",
        )
        .order_by(func.coalesce(identities.c.status_checked_at, 0), identities.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        StatusCheckTarget(row.id, row.anchor_id, row.status_reference, row.credential_status)
        for row in conn.execute(query).all()
        if isinstance(row.status_reference, dict)
    ]


def mark_status_checked(
    conn: Connection, identity_ids: Sequence[str], status: str, *, now: int
) -> None:
    """Note that a check confirmed ``status`` (unchanged) at ``now``; an identity whose status
    changed meanwhile (a login refreshed it) is left alone."""
    ids = sorted(set(identity_ids))
    for start in range(0, len(ids), 500):  # bounded IN lists
        conn.execute(
            update(identities)
            .where(
                identities.c.id.in_(ids[start : start + 500]),
                identities.c.credential_status == status,
            )
            .values(status_checked_at=now)
        )
