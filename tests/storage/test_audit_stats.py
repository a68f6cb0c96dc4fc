"""The console's statistics over the stored audit log (SQLite and PostgreSQL): which entries
count as allowed or denied and under which reason, time buckets, only what a signed checkpoint
covers, the bound on how much is read, and damaged rows reported instead of counted."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import insert

from trustanchor.audit.entries import Decision, Entry, Login, LoginInPerson, TokenIssued
from trustanchor.audit.merkle import leaf_hash
from trustanchor.clock import FixedClock
from trustanchor.digests import keyed_digest
from trustanchor.keystore.audit_key import AuditKey, generate_audit_key, load_audit_key
from trustanchor.services import audit_stats
from trustanchor.services.audit_log import AuditLog
from trustanchor.services.audit_stats import WINDOWS, Bucket, Denials, statistics, window_bounds
from trustanchor.storage import audit_repo
from trustanchor.storage.database import Database
from trustanchor.storage.tables import audit_leaves

HOUR, DAY = 3600, 86_400
NOW = 1_800_000_000 - 1_800_000_000 % DAY + 10 * HOUR + 1_234  # 10:20:34 UTC
ORIGIN = "as.example/trustanchor-audit"


@pytest.fixture
def key(tmp_path: Path) -> AuditKey:
    generate_audit_key(tmp_path / "keys", name=ORIGIN, now=NOW)
    return load_audit_key(tmp_path / "keys")


@pytest.fixture
def log(database: Database, key: AuditKey) -> AuditLog:
    return AuditLog(database, key, FixedClock(NOW), batch_size=1000)


def login_ok(at: int) -> Login:
    return Login(at=at, anchor_id="wallet", outcome="ok", reason=None, holder=None)


def login_failed(at: int, reason: str) -> Login:
    return Login(at=at, anchor_id="wallet", outcome="failed", reason=reason, holder=None)


def decision(at: int, result: str, reason: str) -> Decision:
    return Decision(at=at, decision_id=f"d-{at}", result=result, reason=reason, anchor_set_id=None)


def token(at: int) -> TokenIssued:
    return TokenIssued(
        at=at,
        jti=f"jti-{at}",
        token_kind="access_token",
        client_id="bank",
        sub=None,
        scope="openid",
        authorization_details=None,
        anchor_id=None,
        anchor_set_id=None,
        acr=None,
        exp=at + 300,
    )


def append(database: Database, *entries: Entry) -> None:
    with database.transaction() as conn:
        for entry in entries:
            audit_repo.append(conn, entry)


def append_raw(database: Database, kind: str, at: int, text: str) -> None:
    """A leaf as stored, whatever its text: a kind this module only knows by name, or a row
    damaged after it was written."""
    with database.transaction() as conn:
        conn.execute(
            insert(audit_leaves).values(
                entry=text,
                leaf_hash=leaf_hash(text.encode()).hex(),
                kind=kind,
                ref=None,
                created_at=at,
            )
        )


def size_of(log: AuditLog) -> int:
    log.integrate_pending()
    return log.latest_checkpoint().checkpoint.size


def refusal_text(at: int, reason: str) -> str:
    return (
        f'{{"at":{at},"client_id":"bank","endpoint":"token","error":"invalid_grant",'
        f'"grant_type":"authorization_code","kind":"refusal","reason":"{reason}","v":1}}'
    )


def test_outcomes_are_bucketed_by_hour_and_denials_ranked_by_reason(
    database: Database, log: AuditLog
) -> None:
    start, end = window_bounds(WINDOWS["24h"], NOW)
    assert (start, end) == (NOW - NOW % HOUR + HOUR - 24 * HOUR, NOW - NOW % HOUR + HOUR)
    append(
        database,
        login_ok(NOW - 10),  # last bucket
        login_failed(NOW - 20, "kb_stale"),  # last bucket
        token(NOW - 30),  # not an outcome: not counted
        decision(NOW - 2 * HOUR, "denied", "no_common_anchor_set"),
        decision(NOW - 2 * HOUR, "allowed", "policy_allows"),
        login_failed(start, "kb_stale"),  # first instant of the window
        login_failed(start - 1, "kb_stale"),  # just before it
        login_failed(NOW - 30 * HOUR, "credential_revoked"),  # in 7d, not in 24h
    )
    append_raw(database, "refusal", NOW - 40, refusal_text(NOW - 40, "code_reused"))
    size = size_of(log)

    stats = statistics(database, size=size, window=WINDOWS["24h"], now=NOW)
    assert len(stats.buckets) == 24
    assert stats.buckets[-1] == Bucket(NOW - NOW % HOUR, 1, 2)
    assert stats.buckets[-3] == Bucket(NOW - NOW % HOUR - 2 * HOUR, 1, 1)
    assert stats.buckets[0] == Bucket(start, 0, 1)
    assert (stats.allowed, stats.denied) == (2, 4)
    assert stats.denials == (
        Denials("login", "kb_stale", 2),
        Denials("decision", "no_common_anchor_set", 1),
        Denials("refusal", "code_reused", 1),
    )
    assert not stats.truncated and stats.scanned_from == 0 and stats.unreadable == 0

    week = statistics(database, size=size, window=WINDOWS["7d"], now=NOW)
    assert len(week.buckets) == 7 and week.buckets[-1].start == NOW - NOW % DAY
    assert (week.allowed, week.denied) == (2, 6)
    assert Denials("login", "credential_revoked", 1) in week.denials


def test_only_entries_under_the_checkpoint_are_counted(database: Database, log: AuditLog) -> None:
    append(database, login_failed(NOW - 5, "kb_stale"))
    size = size_of(log)
    append(database, login_failed(NOW - 4, "kb_stale"))  # appended, not yet integrated
    stats = statistics(database, size=size, window=WINDOWS["24h"], now=NOW)
    assert stats.denied == 1 and stats.size == size == 1


def test_reading_is_bounded_and_says_when_the_window_reaches_further(
    database: Database, log: AuditLog
) -> None:
    append(database, *(login_failed(NOW - 100 + i, "kb_stale") for i in range(6)))
    size = size_of(log)
    bounded = statistics(database, size=size, window=WINDOWS["24h"], now=NOW, max_scanned=4)
    assert bounded.scanned_from == 2 and bounded.truncated and bounded.denied == 4

    # When the entry before the range is older than the window, nothing was left out.
    append(database, login_failed(NOW - 40 * HOUR, "kb_stale"))
    append(database, *(login_failed(NOW - 10 + i, "kb_stale") for i in range(2)))
    size = size_of(log)
    complete = statistics(database, size=size, window=WINDOWS["24h"], now=NOW, max_scanned=2)
    assert complete.scanned_from == size - 2 and not complete.truncated
    assert complete.denied == 2


def test_a_damaged_row_is_reported_not_counted(database: Database, log: AuditLog) -> None:
    append(database, login_ok(NOW - 5))
    append_raw(database, "login", NOW - 4, "not json")
    append_raw(database, "decision", NOW - 3, '{"kind":"decision","result":"maybe"}')
    stats = statistics(database, size=size_of(log), window=WINDOWS["24h"], now=NOW)
    assert (stats.allowed, stats.denied, stats.unreadable) == (1, 0, 2)


def test_a_new_kind_plugs_in_with_one_classifier(database: Database, log: AuditLog) -> None:
    append_raw(database, "step_up", NOW - 5, '{"kind":"step_up","passed":false,"v":1}')
    size = size_of(log)
    assert statistics(database, size=size, window=WINDOWS["24h"], now=NOW).denied == 0
    classifiers = {
        **audit_stats.CLASSIFIERS,
        "step_up": lambda fields: (
            audit_stats.Outcome("denied", "step_up_failed")
            if fields.get("passed") is False
            else audit_stats.Outcome("allowed", None)
        ),
    }
    stats = statistics(database, size=size, window=WINDOWS["24h"], now=NOW, classifiers=classifiers)
    assert stats.denials == (Denials("step_up", "step_up_failed", 1),)


def test_classifiers() -> None:
    classify = audit_stats.CLASSIFIERS
    assert classify["login"]({"outcome": "ok", "reason": None}) == audit_stats.Outcome(
        "allowed", None
    )
    assert classify["login"]({"outcome": "failed", "reason": "kb_stale"}) == audit_stats.Outcome(
        "denied", "kb_stale"
    )
    assert classify["decision"]({"result": "denied", "reason": "r"}) == audit_stats.Outcome(
        "denied", "r"
    )
    assert classify["decision"]({"result": "allowed", "reason": "r"}) == audit_stats.Outcome(
        "allowed", None
    )
    assert classify["refusal"]({"error": "invalid_grant", "reason": 3}) == audit_stats.Outcome(
        "denied", None
    )
    assert classify["login"]({"outcome": 1}) is None


def test_logins_at_a_branch_counter_are_counted_as_allowed(
    database: Database, log: AuditLog
) -> None:
    """A ``login_in_person`` entry (a successful login at a counter, its own kind) counts like
    a successful ``login``; a failure at the counter is a ``login`` entry."""
    holder = keyed_digest(b"p" * 32, "audit-holder", "holder-1")
    append(
        database,
        LoginInPerson(
            at=NOW - 10,
            anchor_id="jpki",
            outcome="ok",
            reason=None,
            holder=holder,
            branch="tokyo-marunouchi",
            operator=keyed_digest(b"p" * 32, "audit-operator", "tokyo-marunouchi", "S-0042"),
        ),
        login_ok(NOW - 9),
        login_failed(NOW - 8, "certificate_revoked"),
    )
    stats = statistics(database, size=size_of(log), window=WINDOWS["24h"], now=NOW)
    assert (stats.allowed, stats.denied, stats.unreadable) == (2, 1, 0)
