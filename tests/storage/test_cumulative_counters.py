"""Counters of cumulative limits (storage/counters_repo.py) on SQLite and PostgreSQL: the
conditional add keeps every window within its limit, a rolling window sums its last 24 hourly
buckets, and parallel approvals against one limit never both squeeze under it."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from sqlalchemy import select

from trustanchor.policy.windows import HOUR, bucket_start, earliest_bucket
from trustanchor.storage import counters_repo
from trustanchor.storage.counters_repo import Meter
from trustanchor.storage.database import Database
from trustanchor.storage.tables import cumulative_counters

NOW = 1_800_000_000
DAY = Meter("jp-cbdc", "value_transfer", "calendar_day", "holder", "hld_1", "JPY")
ROLLING = Meter("jp-cbdc", "value_transfer", "rolling_24h", "holder", "hld_1", "JPY")
TZ = "Asia/Tokyo"


def add(database: Database, meter: Meter, amount: int, limit: int | None, at: int = NOW) -> bool:
    with database.transaction() as conn:
        return counters_repo.add_within(
            conn,
            meter,
            bucket=bucket_start(meter.time_window, at, TZ),
            since=earliest_bucket(meter.time_window, at, TZ),
            amount=amount,
            limit=limit,
        )


def total(database: Database, meter: Meter, at: int = NOW) -> int:
    with database.reader() as conn:
        return counters_repo.total(conn, meter, since=earliest_bucket(meter.time_window, at, TZ))


def test_adds_up_to_the_limit_and_not_beyond(database: Database) -> None:
    assert [add(database, DAY, 100_000, 1_000_000) for _ in range(11)] == [True] * 10 + [False]
    assert total(database, DAY) == 1_000_000
    assert add(database, DAY, 1, 1_000_000) is False


def test_a_first_amount_above_the_limit_is_not_inserted(database: Database) -> None:
    assert add(database, DAY, 1_000_001, 1_000_000) is False
    assert total(database, DAY) == 0


def test_other_subjects_currencies_sets_and_operations_count_apart(database: Database) -> None:
    assert add(database, DAY, 1_000_000, 1_000_000)
    others = [
        Meter("jp-cbdc", "value_transfer", "calendar_day", "holder", "hld_2", "JPY"),
        Meter("jp-cbdc", "value_transfer", "calendar_day", "debtor_account", "hld_1", "JPY"),
        Meter("jp-cbdc", "value_transfer", "calendar_day", "holder", "hld_1", "EUR"),
        Meter("eu-pilot", "value_transfer", "calendar_day", "holder", "hld_1", "JPY"),
        Meter("jp-cbdc", "funding", "calendar_day", "holder", "hld_1", "JPY"),
        Meter("jp-cbdc", "value_transfer", "calendar_month", "holder", "hld_1", "JPY"),
    ]
    assert all(add(database, meter, 1_000_000, 1_000_000) for meter in others)


def test_a_new_calendar_day_starts_from_zero(database: Database) -> None:
    assert add(database, DAY, 1_000_000, 1_000_000)
    tomorrow = bucket_start("calendar_day", NOW, TZ) + 86_400
    assert add(database, DAY, 1_000_000, 1_000_000, at=tomorrow)
    assert add(database, DAY, 1, 1_000_000, at=tomorrow - 1) is False


def test_without_a_limit_the_amount_is_always_added(database: Database) -> None:
    assert add(database, DAY, 700, None) and add(database, DAY, 700, None)
    assert total(database, DAY) == 1_400


def test_a_rolling_window_sums_the_last_24_hourly_buckets(database: Database) -> None:
    assert add(database, ROLLING, 600_000, 1_000_000, at=NOW)
    assert add(database, ROLLING, 400_000, 1_000_000, at=NOW + 23 * HOUR)
    assert add(database, ROLLING, 1, 1_000_000, at=NOW + 23 * HOUR) is False
    # 24 hours after the first hour's bucket started, its 600,000 no longer counts.
    next_day = bucket_start("rolling_24h", NOW, TZ) + 24 * HOUR
    assert total(database, ROLLING, at=next_day) == 400_000
    assert add(database, ROLLING, 600_000, 1_000_000, at=next_day)
    assert add(database, ROLLING, 1, 1_000_000, at=next_day) is False


def test_the_rolling_lock_row_counts_nothing(database: Database) -> None:
    assert add(database, ROLLING, 5, 10)
    with database.reader() as conn:
        amounts = sorted(conn.execute(select(cumulative_counters.c.amount)).scalars())
    assert amounts == [0, 5]  # the lock row and the bucket
    assert total(database, ROLLING) == 5


def test_a_bucket_outside_its_window_is_refused(database: Database) -> None:
    with database.transaction() as conn, pytest.raises(ValueError):
        counters_repo.add_within(conn, DAY, bucket=NOW, since=NOW + 1, amount=1, limit=None)


RACERS = 16


@pytest.mark.parametrize("meter", [DAY, ROLLING], ids=["calendar_day", "rolling_24h"])
def test_parallel_approvals_never_exceed_the_limit(database: Database, meter: Meter) -> None:
    """Sixteen threads approve 100,000 each against 1,000,000 at once, each keeping its
    transaction open a moment after adding: exactly ten succeed, the total is the limit."""
    if meter is ROLLING:
        # Something already counted in an earlier hour: the racers must see it.
        assert add(database, meter, 200_000, 1_000_000, at=NOW - 5 * HOUR)
    expected = 8 if meter is ROLLING else 10
    barrier = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            with database.transaction() as conn:
                added = counters_repo.add_within(
                    conn,
                    meter,
                    bucket=bucket_start(meter.time_window, NOW, TZ),
                    since=earliest_bucket(meter.time_window, NOW, TZ),
                    amount=100_000,
                    limit=1_000_000,
                )
                if added:
                    time.sleep(0.02)
            results[i] = added
        except BaseException as exc:  # surfaced by the assertion below
            results[i] = f"error: {exc!r}"

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [r for r in results if isinstance(r, str)] == []
    assert results.count(True) == expected
    assert total(database, meter) == 1_000_000
