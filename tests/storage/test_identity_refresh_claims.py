"""Refreshing a known identity at a new login (SQLite and PostgreSQL): a verification that
carries claims replaces the stored ones; one without claims — a certificate login with the
authentication certificate only, after an enrolment with the signature certificate — keeps the
claims verified at enrolment, and when they were verified, while the rest is refreshed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import VerifiedIdentity
from trustanchor.storage import identities_repo
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import Database
from trustanchor.storage.tables import identities

NOW = 1_800_000_000
ENROLLED = {"name": "山田 太郎", "birthdate": "1980-01-02"}


def _anchor(database: Database) -> None:
    AnchorRepository(database).upsert(
        Anchor(
            id="jpki",
            kind="x509",
            display_name={"en": "JPKI"},
            assurance_level="high",
            status="active",
            settings={},
        ),
        NOW,
    )


def _verified(claims: dict[str, Any], at: int, level: str = "high") -> VerifiedIdentity:
    return VerifiedIdentity(
        anchor_id="jpki",
        subject="issuer-digest:serial-1",
        claims=claims,
        assurance_level=level,  # type: ignore[arg-type]
        verified_at=at,
        expires_at=at + 1000,
        evidence_digest=f"{at:064d}",
        trust_framework="jp_aml",
    )


def _login(database: Database, verified: VerifiedIdentity, n: int) -> Any:
    with database.transaction() as conn:
        identity = identities_repo.record(
            conn, verified, new_holder_id=f"h{n}", new_identity_id=f"i{n}", now=verified.verified_at
        )
    with database.reader() as conn:
        row = conn.execute(select(identities)).one()
    return identity, row


def test_a_login_without_claims_keeps_the_claims_verified_at_enrolment(
    database: Database,
) -> None:
    _anchor(database)
    enrolled, _ = _login(database, _verified(ENROLLED, NOW), 1)

    later, row = _login(database, _verified({}, NOW + 500, level="substantial"), 2)

    assert (later.id, later.holder_id) == (enrolled.id, enrolled.holder_id)
    assert dict(later.claims) == ENROLLED and later.verified_at == NOW
    assert dict(row.claims) == ENROLLED and row.verified_at == NOW
    # Everything else is this login's.
    assert row.assurance_level == "substantial"
    assert row.expires_at == NOW + 1500
    assert row.status_checked_at == NOW + 500
    assert row.evidence_digest == f"{NOW + 500:064d}"


def test_a_login_with_claims_replaces_them(database: Database) -> None:
    _anchor(database)
    _login(database, _verified(ENROLLED, NOW), 1)

    renewed = {"name": "山田 太郎", "birthdate": "1980-01-02", "address": "東京都"}
    later, row = _login(database, _verified(renewed, NOW + 500), 2)

    assert dict(later.claims) == renewed and later.verified_at == NOW + 500
    assert dict(row.claims) == renewed and row.verified_at == NOW + 500


def test_refresh_of_holder_keeps_the_claims_too(database: Database) -> None:
    _anchor(database)
    enrolled, _ = _login(database, _verified(ENROLLED, NOW), 1)
    with database.transaction() as conn:
        refreshed = identities_repo.refresh_of_holder(
            conn, _verified({}, NOW + 10), enrolled.holder_id
        )
        assert identities_repo.refresh_of_holder(conn, _verified({}, NOW + 20), "other") is None
    assert refreshed is not None and dict(refreshed.claims) == ENROLLED
