"""services/cumulative.py per operation, on SQLite and PostgreSQL: funding movements and
transfers are read and counted apart, each against the set's rules of its own operation
(docs/POLICY.md, "Cumulative limits": "Operations")."""

from __future__ import annotations

from typing import Any

import pytest
from support.policy_world import JP_CBDC_POLICY, POLICIES, snapshot

from trustanchor.services import cumulative
from trustanchor.storage.database import Database

NOW = 1_800_000_000
RULE = {"currency": "JPY", "window": "calendar_day", "per": "holder"}
WORLD = snapshot(
    POLICIES
    | {
        "jp-cbdc": {
            **JP_CBDC_POLICY,
            "operations": ["account_link", "value_transfer", "funding"],
            "funding_limits": {"JPY": "500000"},
            "cumulative": [
                {**RULE, "id": "daily-transfers", "limit": "1000000"},
                {**RULE, "id": "daily-funding", "operation": "funding", "limit": "600000"},
            ],
            "cumulative_step_up": [
                {
                    **RULE,
                    "operation": "funding",
                    "per": "debtor_account",
                    "above": "100000",
                    "assurance": "high",
                    "max_age": 60,
                }
            ],
        }
    }
)
WHO = {"holder_id": "hld_taro", "debtor_account_id": "acc_taro_deposit_000001", "at": NOW}


def count(database: Database, amount: int, **operation: Any) -> bool:
    with database.transaction() as conn:
        return cumulative.count(
            conn, WORLD, anchor_set_id="jp-cbdc", currency="JPY", amount=amount, **WHO, **operation
        )


def totals(database: Database, **operation: Any) -> dict[tuple[str, str, str], int]:
    with database.reader() as conn:
        return cumulative.totals(conn, WORLD, currency="JPY", **WHO, **operation)


def test_funding_and_transfers_are_counted_apart(database: Database) -> None:
    assert count(database, 400_000, operation="funding")
    assert count(database, 300_000)  # a transfer: the default operation
    assert totals(database, operation="funding") == {
        ("jp-cbdc", "calendar_day", "holder"): 400_000,
        ("jp-cbdc", "calendar_day", "debtor_account"): 400_000,  # counted for the step-up rule
    }
    assert totals(database) == {("jp-cbdc", "calendar_day", "holder"): 300_000}
    assert totals(database, operation="value_transfer") == totals(database)


def test_each_operation_is_held_to_its_own_limit(database: Database) -> None:
    assert count(database, 500_000, operation="funding")
    assert not count(database, 100_001, operation="funding")  # 600,000 a day for funding
    assert count(database, 100_000, operation="funding")
    assert count(database, 1_000_000)  # transfers still have their whole day
    assert totals(database, operation="funding")[("jp-cbdc", "calendar_day", "holder")] == 600_000


def test_an_operation_no_rule_can_count_is_refused(database: Database) -> None:
    with pytest.raises(ValueError, match="account_link"):
        totals(database, operation="account_link")
    with pytest.raises(ValueError, match="account_link"):
        count(database, 1, operation="account_link")
