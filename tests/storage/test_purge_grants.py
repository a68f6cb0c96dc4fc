"""``trustanchor purge`` bounds the grants table (issue 13): a grant goes, with its grant_anchors,
once it has ended (expired, or revoked, more than the retention ago) and nothing names it any
more; a grant something still names stays, and every answer that starts from a token, code or
session is the same after the purge as before (introspection of a purged grant's token included).
On SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Table, delete, insert, select

from trustanchor.digests import secret_digest
from trustanchor.storage import expiry, grants_repo
from trustanchor.storage.database import Database
from trustanchor.storage.tables import (
    access_tokens,
    account_links,
    accounts,
    auditor_sessions,
    authorization_codes,
    grant_anchors,
    grants,
    holder_sessions,
    holders,
    refresh_tokens,
    standing_authorizations,
)

NOW = 1_800_000_000
RETENTION = 3600
TIMES = {
    "live": NOW + 600,  # not expired
    "recent": NOW - 10,  # expired (or revoked) within the retention
    "long_ago": NOW - RETENTION - 10,  # more than the retention ago
}
WHEN = st.sampled_from(sorted(TIMES))


def add(db: Database, table: Table, **values: Any) -> None:
    with db.transaction() as conn:
        conn.execute(insert(table).values(**values))


def grant_ids(db: Database) -> set[str]:
    with db.reader() as conn:
        return set(conn.execute(select(grants.c.id)).scalars())


def anchored(db: Database) -> set[str]:
    with db.reader() as conn:
        return set(conn.execute(select(grant_anchors.c.grant_id)).scalars())


def base(db: Database) -> None:
    """A holder, and an account link a standing authorization can rely on."""
    add(db, holders, id="hol_1", created_at=NOW - 9999)
    for account in ("acc_d", "acc_w"):
        add(db, accounts, id=account, client_id="c", kind="deposit", label="x",
            reference_digest=account, holder_id="hol_1", status="active",
            created_at=NOW - 9999, updated_at=NOW - 9999)  # fmt: skip
    add(db, account_links, id="lnk_1", holder_id="hol_1", deposit_account_id="acc_d",
        wallet_account_id="acc_w", created_at=NOW - 9999)  # fmt: skip


def grant(db: Database, gid: str, *, expires: str, revoked: str | None = None) -> None:
    add(db, grants, id=gid, client_id="c", holder_id="hol_1", details={},
        created_at=NOW - 99_999, expires_at=TIMES[expires],
        revoked_at=None if revoked is None else TIMES[revoked],
        revoked_reason=None if revoked is None else "test")  # fmt: skip
    add(db, grant_anchors, grant_id=gid, anchor_id="anchor-a")
    add(db, grant_anchors, grant_id=gid, anchor_id="anchor-b")


def code(db: Database, gid: str, name: str, expires: str) -> None:
    add(db, authorization_codes, code_digest=name, grant_id=gid, client_id="c", binding={},
        created_at=NOW - 99_999, expires_at=TIMES[expires], consumed_at=NOW - 99_000)  # fmt: skip


def refresh(db: Database, gid: str, name: str, expires: str, *, consumed: bool) -> None:
    add(db, refresh_tokens, token_digest=secret_digest(name), grant_id=gid, client_id="c",
        created_at=NOW - 99_999, expires_at=TIMES[expires],
        consumed_at=NOW - 99_000 if consumed else None)  # fmt: skip


def access(db: Database, gid: str, jti: str, expires: str) -> None:
    add(db, access_tokens, jti=jti, grant_id=gid, client_id="c", created_at=NOW - 99_999,
        expires_at=TIMES[expires])  # fmt: skip


def standing(db: Database, gid: str) -> None:
    add(db, standing_authorizations, id=f"sta_{gid}", grant_id=gid, link_id="lnk_1",
        client_id="c", holder_id="hol_1", entry={}, created_at=NOW - 99_999,
        expires_at=TIMES["long_ago"])  # fmt: skip


def session(db: Database, table: Table, gid: str, name: str, expires: str) -> None:
    owner = {"holder_ref": "r"} if table is auditor_sessions else {"holder_id": "hol_1"}
    add(db, table, id_digest=name, grant_id=gid, created_at=NOW - 99_999,
        expires_at=TIMES[expires], **owner)  # fmt: skip


def purge(db: Database, batch: int = expiry.BATCH) -> dict[str, int]:
    return expiry.purge(db, now=NOW, retention=RETENTION, batch=batch)


def test_ended_grants_nothing_names_go_and_the_others_stay(database: Database) -> None:
    db = database
    base(db)
    # Go: ended more than the retention ago, and whatever named them was purged first.
    grant(db, "gone_expired", expires="long_ago")
    code(db, "gone_expired", "code_old", "long_ago")
    refresh(db, "gone_expired", "rt_old", "long_ago", consumed=True)
    access(db, "gone_expired", "at_old", "long_ago")
    session(db, holder_sessions, "gone_expired", "hs_old", "recent")  # expired: purged
    grant(db, "gone_revoked", expires="live", revoked="long_ago")
    # Stay: something still names them, or they ended too recently, or they have not ended.
    grant(db, "live_refresh", expires="long_ago")
    refresh(db, "live_refresh", "rt_live", "live", consumed=False)
    grant(db, "consumed_refresh_in_retention", expires="long_ago")
    refresh(db, "consumed_refresh_in_retention", "rt_recent", "recent", consumed=True)
    grant(db, "unexpired_access_token", expires="long_ago", revoked="long_ago")
    access(db, "unexpired_access_token", "at_live", "live")
    grant(db, "code_in_retention", expires="long_ago")
    code(db, "code_in_retention", "code_recent", "recent")
    grant(db, "standing", expires="long_ago", revoked="long_ago")
    standing(db, "standing")
    grant(db, "console_session", expires="long_ago")
    session(db, auditor_sessions, "console_session", "as_live", "live")
    grant(db, "self_service_session", expires="long_ago")
    session(db, holder_sessions, "self_service_session", "hs_live", "live")
    grant(db, "expired_in_retention", expires="recent")
    grant(db, "revoked_in_retention", expires="live", revoked="recent")
    grant(db, "live", expires="live")

    deleted = purge(db)

    assert deleted["grants"] == 1 and deleted["revoked_grants"] == 1
    kept = {
        "live_refresh",
        "consumed_refresh_in_retention",
        "unexpired_access_token",
        "code_in_retention",
        "standing",
        "console_session",
        "self_service_session",
        "expired_in_retention",
        "revoked_in_retention",
        "live",
    }
    assert grant_ids(db) == kept
    assert anchored(db) == kept  # a purged grant's grant_anchors went with it
    with db.reader() as conn:
        # A purged grant's token (its record purged too) and a revoked grant's unexpired one.
        assert not grants_repo.access_token_active(conn, "at_old", now=NOW)
        assert not grants_repo.access_token_active(conn, "at_live", now=NOW)
        assert grants_repo.find_refresh_token(conn, "rt_old") is None
    # Reuse of a kept, consumed refresh token still finds its grant, and revokes it.
    with db.transaction() as conn, pytest.raises(grants_repo.Reused) as reused:
        grants_repo.rotate_refresh_token(conn, "rt_recent", "c", now=NOW)
    assert reused.value.grant_id == "consumed_refresh_in_retention"
    # Nothing more to do on a second run.
    assert sum(purge(db).values()) == 0


def test_grants_still_named_are_passed_over_by_the_batches(database: Database) -> None:
    """Batches walk the grants by expiry: kept grants between purgeable ones neither stop the
    purge nor are read again by every batch; everything purgeable goes, in batches."""
    db = database
    base(db)
    for i in range(23):
        grant(db, f"g{i:02d}", expires="long_ago")
        if i % 3 == 0:  # every third is still named by a refresh token
            refresh(db, f"g{i:02d}", f"rt{i:02d}", "live", consumed=False)
    deleted = purge(db, batch=2)
    assert deleted["grants"] == 15
    assert grant_ids(db) == {f"g{i:02d}" for i in range(0, 23, 3)}
    assert anchored(db) == grant_ids(db)


@dataclass(frozen=True)
class Family:
    """One grant and what names it, as drawn."""

    expires: str
    revoked: str | None
    codes: tuple[str, ...]
    refreshes: tuple[tuple[str, bool], ...]
    tokens: tuple[str, ...]
    standing: bool
    console: tuple[str, ...]
    self_service: tuple[str, ...]


def at_most_one(values: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[Any, ...]]:
    # Mostly none: a grant that only one thing still names must come up often.
    return st.one_of(st.just(()), st.just(()), values.map(lambda v: (v,)))


FAMILY = st.builds(
    Family,
    expires=WHEN,
    revoked=st.none() | WHEN,
    codes=at_most_one(WHEN),
    refreshes=at_most_one(st.tuples(WHEN, st.booleans())),
    tokens=at_most_one(WHEN),
    standing=st.booleans(),
    console=at_most_one(WHEN),
    self_service=at_most_one(WHEN),
)


def clear(db: Database) -> None:
    with db.transaction() as conn:
        for table in (standing_authorizations, account_links, accounts, authorization_codes,
                      refresh_tokens, access_tokens, auditor_sessions, holder_sessions,
                      grant_anchors, grants, holders):  # fmt: skip
            conn.execute(delete(table))


def ended_long_ago(family: Family) -> bool:
    cutoff = NOW - RETENTION
    return TIMES[family.expires] < cutoff or (
        family.revoked is not None and TIMES[family.revoked] < cutoff
    )


def still_named(family: Family) -> bool:
    """Whether something names the grant after the other rules ran (an oracle written from the
    rules' documented meaning, not from their code)."""
    kept_for_retention = [TIMES[w] >= NOW - RETENTION for w in family.codes + family.tokens]
    kept_for_retention += [TIMES[w] >= NOW - RETENTION for w, _ in family.refreshes]
    sessions_live = [TIMES[w] >= NOW for w in family.console + family.self_service]
    return family.standing or any(kept_for_retention) or any(sessions_live)


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(families=st.lists(FAMILY, min_size=1, max_size=8), batch=st.integers(1, 4))
def test_purge_deletes_exactly_the_ended_unnamed_grants_and_changes_no_answer(
    database: Database, families: list[Family], batch: int
) -> None:
    db = database
    clear(db)
    base(db)
    jtis: list[str] = []
    for g, family in enumerate(families):
        gid = f"grant_{g}"
        grant(db, gid, expires=family.expires, revoked=family.revoked)
        for i, when in enumerate(family.codes):
            code(db, gid, f"code_{g}_{i}", when)
        for i, (when, consumed) in enumerate(family.refreshes):
            refresh(db, gid, f"rt_{g}_{i}", when, consumed=consumed)
        for i, when in enumerate(family.tokens):
            access(db, gid, f"at_{g}_{i}", when)
            jtis.append(f"at_{g}_{i}")
        if family.standing:
            standing(db, gid)
        for i, when in enumerate(family.console):
            session(db, auditor_sessions, gid, f"as_{g}_{i}", when)
        for i, when in enumerate(family.self_service):
            session(db, holder_sessions, gid, f"hs_{g}_{i}", when)
    with db.reader() as conn:
        before = {jti: grants_repo.access_token_active(conn, jti, now=NOW) for jti in jtis}

    purge(db, batch=batch)

    expected = {
        f"grant_{g}"
        for g, family in enumerate(families)
        if not (ended_long_ago(family) and not still_named(family))
    }
    assert grant_ids(db) == expected
    assert anchored(db) == expected
    with db.reader() as conn:
        # Introspection answers as before for every token, whether its grant was purged or not.
        assert {jti: grants_repo.access_token_active(conn, jti, now=NOW) for jti in jtis} == before
        # Whatever is left still finds its grant.
        for table in (authorization_codes, refresh_tokens, access_tokens, standing_authorizations,
                      auditor_sessions, holder_sessions):  # fmt: skip
            for gid in conn.execute(select(table.c.grant_id)).scalars():
                assert grants_repo.get_grant(conn, gid) is not None, table.name
