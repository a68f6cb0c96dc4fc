"""``trustanchor.storage.expiry``: the purge deletes exactly what can no longer matter, on SQLite
and PostgreSQL, in batches, and keeps codes and refresh tokens for the retention window after
they expired so that their reuse is still detected (and revokes the grant)."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Table, func, insert, select

from trustanchor.digests import secret_digest
from trustanchor.storage import expiry, grants_repo
from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade
from trustanchor.storage.tables import (
    access_tokens,
    auditor_sessions,
    authorization_codes,
    cumulative_counters,
    grants,
    holder_sessions,
    holders,
    interactions,
    par_requests,
    refresh_tokens,
    sessions,
    used_jtis,
    wallet_transactions,
)

NOW = 1_800_000_000
RETENTION = 3600
PAST = NOW - 10  # expired, within the retention
LONG_AGO = NOW - RETENTION - 10  # expired longer than the retention
LATER = NOW + 600  # still valid


@pytest.fixture
def db(database: Database) -> Database:
    upgrade(database)
    with database.transaction() as conn:
        conn.execute(insert(holders).values(id="hol_1", created_at=NOW - 9999))
        conn.execute(
            insert(grants).values(
                id="grant_1",
                client_id="c",
                holder_id="hol_1",
                details={},
                created_at=NOW - 9999,
                expires_at=NOW + 9999,
            )
        )
    return database


def add(db: Database, table: Table, **values: Any) -> None:
    with db.transaction() as conn:
        conn.execute(insert(table).values(**values))


def keys(db: Database, table: Table) -> set[str]:
    column = next(iter(table.primary_key.columns))
    with db.reader() as conn:
        return {str(value) for value in conn.execute(select(column)).scalars()}


def count(db: Database, table: Table) -> int:
    with db.reader() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def interaction(db: Database, ident: str, expires_at: int) -> None:
    add(
        db,
        interactions,
        id=ident,
        client_id="c",
        request={},
        state="login",
        created_at=NOW - 100,
        expires_at=expires_at,
    )


def test_the_purge_deletes_exactly_what_can_no_longer_matter(db: Database) -> None:
    for name, expires in (("old", PAST), ("live", LATER)):
        add(db, used_jtis, namespace="dpop", jti_digest=name, expires_at=expires)
        add(db, par_requests, id_digest=name, client_id="c", params={}, created_at=NOW,
            expires_at=expires)  # fmt: skip
        interaction(db, f"int_{name}", expires)
        add(db, wallet_transactions, id=f"tx_{name}", interaction_id=f"int_{name}",
            anchor_id="a", nonce=f"n_{name}", created_at=NOW, expires_at=expires)  # fmt: skip
        for table in (sessions, holder_sessions):
            add(db, table, id_digest=name, holder_id="hol_1", created_at=NOW,
                expires_at=expires, **({"authentication": {}} if table is sessions else
                                       {"grant_id": "grant_1"}))  # fmt: skip
        add(db, auditor_sessions, id_digest=name, holder_ref="r", grant_id="grant_1",
            created_at=NOW, expires_at=expires)  # fmt: skip
    add(db, sessions, id_digest="ended", holder_id="hol_1", authentication={}, created_at=NOW,
        expires_at=LATER, ended_at=NOW - 1)  # fmt: skip
    # A wallet transaction still open, of a login that expired: goes with its login.
    interaction(db, "int_gone", PAST)
    add(db, wallet_transactions, id="tx_open", interaction_id="int_gone", anchor_id="a",
        nonce="n_open", created_at=NOW, expires_at=LATER)  # fmt: skip
    for name, expires in (("long_ago", LONG_AGO), ("recent", PAST), ("live", LATER)):
        add(db, authorization_codes, code_digest=name, grant_id="grant_1", client_id="c",
            binding={}, created_at=NOW - 100, expires_at=expires)  # fmt: skip
        add(db, refresh_tokens, token_digest=name, grant_id="grant_1", client_id="c",
            created_at=NOW - 100, expires_at=expires, consumed_at=NOW - 50)  # fmt: skip
        add(db, access_tokens, jti=name, grant_id="grant_1", client_id="c",
            created_at=NOW - 100, expires_at=expires)  # fmt: skip

    # Cumulative-limit buckets: one outside every window, one in this month, and a lock row.
    for bucket in (NOW - expiry.COUNTER_AGE - 1, NOW - 86_400, 0):
        add(db, cumulative_counters, anchor_set_id="s", operation="value_transfer",
            time_window="calendar_month", subject_kind="holder", subject_id="hol_1",
            currency="JPY", bucket_start=bucket, amount=1)  # fmt: skip
    deleted = expiry.purge(db, now=NOW, retention=RETENTION, batch=2)

    assert deleted == {
        "used_jtis": 1,
        "par_requests": 1,
        "wallet_transactions": 2,
        "interactions": 2,
        "sessions": 2,
        "auditor_sessions": 1,
        "holder_sessions": 1,
        "authorization_codes": 1,
        "refresh_tokens": 1,
        "access_tokens": 1,
        "cumulative_counters": 1,
        "grants": 0,
        "revoked_grants": 0,
    }
    assert keys(db, par_requests) == {"live"}
    assert keys(db, interactions) == {"int_live"}
    assert keys(db, wallet_transactions) == {"tx_live"}
    assert keys(db, sessions) == {"live"}
    assert keys(db, holder_sessions) == keys(db, auditor_sessions) == {"live"}
    for table in (authorization_codes, refresh_tokens, access_tokens):
        assert keys(db, table) == {"recent", "live"}, table.name
    with db.reader() as conn:
        assert conn.execute(select(used_jtis.c.jti_digest)).scalars().all() == ["live"]
    # The grant, the holder and everything else stay; a second run deletes nothing.
    assert count(db, grants) == 1 and count(db, holders) == 1
    assert sum(expiry.purge(db, now=NOW, retention=RETENTION).values()) == 0


def test_a_refresh_token_reused_within_the_retention_still_revokes_its_grant(
    db: Database,
) -> None:
    add(db, refresh_tokens, token_digest=secret_digest("rt-1"), grant_id="grant_1",
        client_id="c", created_at=NOW - 100, expires_at=PAST, consumed_at=NOW - 50)  # fmt: skip
    expiry.purge(db, now=NOW, retention=RETENTION)
    with db.transaction() as conn, pytest.raises(grants_repo.Reused) as reused:
        grants_repo.rotate_refresh_token(conn, "rt-1", "c", now=NOW)
    assert reused.value.grant_id == "grant_1"


def test_a_large_backlog_goes_in_batches(db: Database) -> None:
    with db.transaction() as conn:
        conn.execute(
            insert(used_jtis),
            [{"namespace": "dpop", "jti_digest": f"j{i}", "expires_at": PAST} for i in range(25)],
        )
    reports: list[tuple[str, int]] = []
    deleted = expiry.purge(
        db, now=NOW, batch=10, progress=lambda rule, n: reports.append((rule, n))
    )
    assert deleted["used_jtis"] == 25 and count(db, used_jtis) == 0
    assert reports == [("used_jtis", 10), ("used_jtis", 20), ("used_jtis", 25)]


def test_the_purge_command_reports_each_rule(tmp_path: Any) -> None:
    from trustanchor.cli.main import cli

    config = tmp_path / "service.toml"
    config.write_text(
        '[service]\nmode = "test"\nissuer = "http://127.0.0.1:8000"\n'
        f'database_url = "sqlite:///{tmp_path / "ta.db"}"\nkeys_dir = "{tmp_path / "keys"}"\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "init"]).exit_code == 0
    # A failed first-party login counted (not recorded) in a window that has closed since.
    from trustanchor.services import login_failures
    from trustanchor.storage import audit_omissions_repo
    from trustanchor.storage.tables import audit_leaves

    db = Database(f"sqlite:///{tmp_path / 'ta.db'}")
    with db.transaction() as conn:
        audit_omissions_repo.count(
            conn, what=login_failures.WHAT, window_start=0, reason="wallet_declined"
        )
    before = count(db, audit_leaves)
    result = runner.invoke(cli, ["--config", str(config), "purge", "--retention", "60"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "omitted-entry summaries written: 1"
    assert count(db, audit_leaves) == before + 1
    assert lines[-1] == "purged 0 row(s)"
    assert [line.split(":")[0] for line in lines[1:-1]] == [rule.name for rule in expiry.RULES]
