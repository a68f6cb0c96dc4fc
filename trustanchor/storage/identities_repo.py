"""Holders and the identities anchors verified for them. An identity is keyed by
(anchor, subject at that anchor), never by a subject alone."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update

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
    """Create or refresh the identity for (anchor, subject); a new one gets a new holder."""
    existing = _refresh(conn, verified)
    if existing is not None:
        return existing
    conn.execute(insert(holders).values(id=new_holder_id, created_at=now))
    inserted = insert_once(
        conn,
        identities,
        {
            "id": new_identity_id,
            "holder_id": new_holder_id,
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
        },
    )
    if inserted:
        return _identity(new_identity_id, new_holder_id, verified)
    # Another request created it first: drop our holder and refresh theirs.
    conn.execute(delete(holders).where(holders.c.id == new_holder_id))
    refreshed = _refresh(conn, verified)
    if refreshed is None:  # pragma: no cover - the conflicting row must exist
        raise RuntimeError("identity vanished during insert")
    return refreshed


def _refresh(conn: Connection, verified: VerifiedIdentity) -> Identity | None:
    row = conn.execute(
        update(identities)
        .where(
            identities.c.anchor_id == verified.anchor_id,
            identities.c.subject == verified.subject,
        )
        .values(
            claims=dict(verified.claims),
            assurance_level=verified.assurance_level,
            verified_at=verified.verified_at,
            expires_at=verified.expires_at,
            evidence_digest=verified.evidence_digest,
            status_reference=dict(verified.status_reference) if verified.status_reference else None,
        )
        .returning(identities.c.id, identities.c.holder_id)
    ).first()
    return None if row is None else _identity(row.id, row.holder_id, verified)


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
    if row is None:
        return None
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
