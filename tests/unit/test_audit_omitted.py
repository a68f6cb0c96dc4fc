"""Issue 10, item 7: the ``omitted`` entry (docs/AUDIT-FORMAT.md §1.7), one per window, saying
how many entries the anonymous budget left out, by reason: its strict ``reasons`` shape, the
count that must add up, and the builder that never fails the request it summarises."""

from __future__ import annotations

import pytest

from trustanchor.audit.entries import (
    EntryError,
    Omitted,
    format_reason_counts,
    parse_entry,
    parse_reason_counts,
)
from trustanchor.services import audit_trail

T0 = 1_700_000_400


def omitted(**changes: object) -> Omitted:
    fields: dict[str, object] = {
        "at": T0,
        "what": "login",
        "since": T0 - 600,
        "until": T0,
        "count": 3,
        "reasons": "kb_nonce_mismatch=1 wallet_declined=2",
    }
    fields.update(changes)
    return Omitted(**fields)  # type: ignore[arg-type]


def test_a_summary_round_trips_canonically() -> None:
    entry = omitted()
    data = entry.to_canonical()
    assert data == (
        b'{"at":1700000400,"count":3,"kind":"omitted",'
        b'"reasons":"kb_nonce_mismatch=1 wallet_declined=2","since":1699999800,'
        b'"until":1700000400,"v":1,"what":"login"}'
    )
    assert parse_entry(data) == entry
    assert parse_reason_counts("reasons", entry.reasons) == {
        "kb_nonce_mismatch": 1,
        "wallet_declined": 2,
    }


@pytest.mark.parametrize(
    "reasons",
    [
        "",
        "wallet_declined=2 kb_nonce_mismatch=1",  # not in ascending order
        "wallet_declined=1 wallet_declined=2",  # twice
        "wallet_declined=0",  # a zero count
        "wallet_declined=01",  # a leading zero
        "wallet_declined=-1",
        "wallet_declined=1  kb=1",  # two spaces
        "Wallet_declined=1",  # not a code
        "wallet declined=1",
        "alice@example.com=1",
        "wallet_declined=9007199254740992",  # 2^53
        " ".join(f"r{i:03d}=1" for i in range(65)),  # more than 64 reasons
    ],
)
def test_reasons_have_one_strict_shape(reasons: str) -> None:
    with pytest.raises(EntryError) as refused:
        omitted(reasons=reasons, count=1)
    assert refused.value.field in ("reasons", "count")


def test_count_is_the_sum_and_the_window_is_not_empty() -> None:
    with pytest.raises(EntryError):
        omitted(count=4)
    with pytest.raises(EntryError):
        omitted(until=T0 - 600)
    with pytest.raises(EntryError):
        omitted(what="Login")


def test_builder_sorts_merges_and_never_fails_on_a_strange_reason() -> None:
    entry = audit_trail.omitted(
        at=T0,
        what="login",
        since=T0 - 600,
        until=T0,
        counts={"wallet_declined": 5, "Not A Code": 2, "bad-code": 1, "kb_stale": 0},
    )
    assert (entry.count, entry.reasons) == (8, "unclassified=3 wallet_declined=5")
    assert format_reason_counts({"b": 1, "a": 2}) == "a=2 b=1"
