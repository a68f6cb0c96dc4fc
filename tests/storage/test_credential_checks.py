"""Periodic credential status re-check (issue 4) on SQLite and PostgreSQL: an identity recorded
by a real SD-JWT VC login with a Token Status List reference; later the issuer's list (a real
signed Status List Token from the test issuer) changes, and ``credential_checks.recheck`` records
the new status and runs the cascade: the holder's transfer grant relying on the anchor is revoked,
the accounts bound through the identity and their link are flagged. Failures never read as valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto.jwk import JWK  # type: ignore[import-untyped]
from sqlalchemy import select
from support.credentials import InMemoryFetcher, Issuer
from support.holdings import DEPOSIT, TRANSFER_GRANT, WALLET, bind_accounts_and_grant, log_in

from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import Identity
from trustanchor.services import credential_checks
from trustanchor.services.cascades import CascadeResult
from trustanchor.services.credential_checks import Summary
from trustanchor.storage import accounts_repo, grants_repo
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import Database
from trustanchor.storage.tables import identities

LOGIN_AT = 1_760_000_000
CHECK_AT = LOGIN_AT + 1800
ANCHOR_ID = "jp-pid"
STATUS_URI = "https://pid-issuer.example/status/7"
INDEX = 5


def statuses(value: int, *, at: int = INDEX, size: int = 16) -> list[int]:
    entries = [0] * size
    entries[at] = value
    return entries


@dataclass
class World:
    database: Database
    issuer: Issuer
    fetcher: InMemoryFetcher
    anchor: Anchor

    def publish(
        self, entries: list[int], *, bits: int = 1, key: JWK | None = None, iat: int = CHECK_AT - 60
    ) -> None:
        """Serve a Status List Token (expiring 10 minutes after ``iat``) at STATUS_URI."""
        self.fetcher.serve(
            STATUS_URI,
            self.issuer.status_list_token(
                STATUS_URI, entries, bits=bits, iat=iat, exp=iat + 600, key=key
            ),
        )

    def log_in(self, subject: str, *, index: int = INDEX) -> Identity:
        return log_in(
            self.database,
            self.anchor,
            self.issuer,
            self.fetcher,
            subject,
            status=(STATUS_URI, index),
            at=LOGIN_AT,
        )

    def recheck(self, **options: Any) -> Summary:
        return credential_checks.recheck(
            self.database,
            AnchorRepository(self.database).list(),
            self.fetcher,
            at=CHECK_AT,
            clock_skew=30,
            **options,
        )

    def status_of(self, identity_id: str) -> tuple[str, int | None]:
        with self.database.reader() as conn:
            row = conn.execute(
                select(identities.c.credential_status, identities.c.status_checked_at).where(
                    identities.c.id == identity_id
                )
            ).one()
        return row.credential_status, row.status_checked_at


def make_world(database: Database, *, status_check: str = "required") -> World:
    issuer = Issuer.generate()
    anchor = Anchor(
        id=ANCHOR_ID,
        kind="sd_jwt_vc",
        display_name={"en": "PID wallet"},
        assurance_level="high",
        status="active",
        settings={
            "issuer": issuer.issuer,
            "jwks": issuer.jwks(),
            "vct": [issuer.vct],
            "subject_claim": "sub",
            "claims": {"given_name": "given_name"},
            "trust_framework": "jp_my_number_card",
            "status_check": status_check,
        },
    )
    AnchorRepository(database).upsert(anchor, LOGIN_AT - 100)
    world = World(database, issuer, InMemoryFetcher(), anchor)
    world.publish(statuses(0), iat=LOGIN_AT - 60)
    return world


@pytest.fixture
def world(database: Database) -> World:
    return make_world(database)


def test_a_revoked_credential_is_recorded_and_revokes_transfer_grants_and_flags_accounts(
    world: World,
) -> None:
    identity = world.log_in("taro")
    bind_accounts_and_grant(world.database, identity, ANCHOR_ID, at=LOGIN_AT)
    world.publish(statuses(1))

    summary = world.recheck()

    assert (summary.checked, summary.changed, summary.unknown, summary.errors) == (
        1,
        {"revoked": 1},
        0,
        (),
    )
    [change] = summary.changes
    assert (change.identity_id, change.previous, change.status) == (identity.id, "valid", "revoked")
    assert change.cascade == CascadeResult(revoked_grants=1, flagged_accounts=2, flagged_links=1)
    assert world.status_of(identity.id) == ("revoked", CHECK_AT)
    with world.database.reader() as conn:
        grant = grants_repo.get_grant(conn, TRANSFER_GRANT)
        accounts = [accounts_repo.get(conn, a) for a in (DEPOSIT, WALLET)]
        [link] = accounts_repo.links_for_holder(conn, identity.holder_id)
    assert grant is not None and grant.revoked_at == CHECK_AT
    assert {(a.status, a.flagged_reason) for a in accounts if a} == {
        ("flagged", "credential_revoked")
    }
    assert link.flagged_at == CHECK_AT


def test_a_second_run_after_revocation_changes_nothing(world: World) -> None:
    identity = world.log_in("taro")
    bind_accounts_and_grant(world.database, identity, ANCHOR_ID, at=LOGIN_AT)
    world.publish(statuses(1))
    world.recheck()

    again = world.recheck()

    assert (again.checked, again.changes, again.revoked_grants) == (0, (), 0)
    assert world.status_of(identity.id)[0] == "revoked"


def test_an_unchanged_valid_status_runs_no_cascade_and_notes_the_check(world: World) -> None:
    identity = world.log_in("taro")
    bind_accounts_and_grant(world.database, identity, ANCHOR_ID, at=LOGIN_AT)
    world.publish(statuses(0))

    reports: list[tuple[int, int]] = []
    summary = world.recheck(progress=lambda done, total: reports.append((done, total)))

    assert (summary.checked, summary.changes, summary.unknown) == (1, (), 0)
    assert reports == [(0, 1), (1, 1)]  # before the first identity and after each one
    assert world.status_of(identity.id) == ("valid", CHECK_AT)
    with world.database.reader() as conn:
        grant = grants_repo.get_grant(conn, TRANSFER_GRANT)
    assert grant is not None and grant.revoked_at is None


def test_an_unreachable_status_list_records_unknown_never_valid(world: World) -> None:
    identity = world.log_in("taro")
    bind_accounts_and_grant(world.database, identity, ANCHOR_ID, at=LOGIN_AT)
    del world.fetcher.bodies[STATUS_URI]

    summary = world.recheck()

    assert (summary.changed, summary.unknown) == ({"unknown": 1}, 1)
    [failure] = summary.errors
    assert (failure.anchor_id, failure.uri, failure.reason, failure.identities) == (
        ANCHOR_ID,
        STATUS_URI,
        "status_unavailable",
        1,
    )
    assert summary.changes[0].cascade == CascadeResult(0, 0, 0)  # unknown withdraws nothing
    assert world.status_of(identity.id) == ("unknown", CHECK_AT)


def test_a_status_list_signed_by_a_key_not_of_the_anchor_is_unknown_not_valid(
    world: World,
) -> None:
    identity = world.log_in("taro")
    world.publish(statuses(0), key=JWK.from_pyca(ec.generate_private_key(ec.SECP256R1())))

    summary = world.recheck()

    assert (summary.changed, summary.unknown) == ({"unknown": 1}, 1)
    assert [f.reason for f in summary.errors] == ["status_list_invalid"]
    assert world.status_of(identity.id)[0] == "unknown"


def test_an_expired_status_list_is_unknown(world: World) -> None:
    identity = world.log_in("taro")  # the list served at login expired 10 minutes after it

    summary = world.recheck()

    assert [(f.reason, f.detail) for f in summary.errors] == [
        ("status_list_invalid", "status list token expired")
    ]
    assert world.status_of(identity.id)[0] == "unknown"


def test_a_suspended_bit_marks_the_credential_suspended(world: World) -> None:
    identity = world.log_in("taro")
    bind_accounts_and_grant(world.database, identity, ANCHOR_ID, at=LOGIN_AT)
    world.publish(statuses(2), bits=2)

    summary = world.recheck()

    assert summary.changed == {"suspended": 1}
    assert summary.changes[0].cascade == CascadeResult(1, 2, 1)
    assert world.status_of(identity.id)[0] == "suspended"
    with world.database.reader() as conn:
        account = accounts_repo.get(conn, WALLET)
    assert account is not None and account.flagged_reason == "credential_suspended"


def test_an_unreachable_list_does_not_lift_a_suspension(world: World) -> None:
    identity = world.log_in("taro")
    world.publish(statuses(2), bits=2)
    world.recheck()
    del world.fetcher.bodies[STATUS_URI]

    summary = world.recheck()

    assert (summary.changes, summary.unknown) == ((), 1)
    assert world.status_of(identity.id)[0] == "suspended"


def test_a_lifted_suspension_reads_valid_again(world: World) -> None:
    identity = world.log_in("taro")
    world.publish(statuses(2), bits=2)
    world.recheck()
    world.publish(statuses(0), bits=2)

    summary = world.recheck()

    assert summary.changed == {"valid": 1}
    assert world.status_of(identity.id)[0] == "valid"


def test_each_status_list_is_fetched_once_per_run(world: World) -> None:
    for number, subject in enumerate(("taro", "hanako", "jiro")):
        world.log_in(subject, index=number)
    world.fetcher.requests.clear()
    world.publish(statuses(1, at=1))

    summary = world.recheck()

    assert summary.checked == 3
    assert [c.identity_id for c in summary.changes] == ["idn_hanako"]
    assert [url for url, _, _ in world.fetcher.requests] == [STATUS_URI]


def test_an_index_beyond_the_list_is_unknown(world: World) -> None:
    identity = world.log_in("taro", index=12)
    world.publish([0] * 8)  # one byte: indices 0..7 only

    summary = world.recheck()

    assert summary.unknown == 1
    assert [(f.reason, f.detail) for f in summary.errors] == [
        ("status_list_invalid", "index beyond the end of the list")
    ]
    assert world.status_of(identity.id)[0] == "unknown"


def test_a_limit_takes_turns_through_the_least_recently_checked(world: World) -> None:
    for number, subject in enumerate(("a", "b", "c")):
        world.log_in(subject, index=number)
    world.publish(statuses(0))

    first = credential_checks.recheck(
        world.database, [world.anchor], world.fetcher, at=CHECK_AT, clock_skew=30, limit=2
    )
    second = credential_checks.recheck(
        world.database, [world.anchor], world.fetcher, at=CHECK_AT + 1, clock_skew=30, limit=2
    )

    assert first.checked == second.checked == 2
    assert world.status_of("idn_c")[1] == CHECK_AT + 1
    assert world.status_of("idn_a")[1] == CHECK_AT + 1  # least recently checked after run one


def test_anchors_with_status_check_off_are_not_checked(database: Database) -> None:
    world = make_world(database, status_check="off")
    identity = world.log_in("taro")
    world.fetcher.requests.clear()
    world.publish(statuses(1))

    summary = world.recheck()

    assert (summary.checked, summary.skipped_anchors) == (0, (ANCHOR_ID,))
    assert world.fetcher.requests == []
    assert world.status_of(identity.id)[0] == "valid"
