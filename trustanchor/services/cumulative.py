"""Cumulative limits at consent: the window totals a transfer or funding decision is made from,
and the counting of an approved transfer or movement (docs/POLICY.md, "Cumulative limits").

Counted is what the service AUTHORIZED: a transfer counts the moment consent approves it, in
the consent transaction, whether or not its token is ever used (tokens are not given back).
Each anchor set counts for itself (its rules, its time zone), per operation (``operation``:
``value_transfer``, the default, or ``funding``, counted apart so that a top-up never uses up a
transfer allowance; each with the set's rules of that operation), per window kind, per subject:
the debtor's holder (``per = "holder"``) or the debtor account (``per = "debtor_account"``; for
funding, the account debited), and per currency.

The engine decides from totals read before the decision; :func:`count` then adds the amount
with the conditional statement of storage/counters_repo.py, which refuses when a parallel
approval got there first. The caller treats that refusal as "decide again" (the second
decision sees the new total and is denied with ``cumulative_limit_exceeded``).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection

from trustanchor.oauth import value_transfer
from trustanchor.policy.anchor_set_policy import MOVEMENTS
from trustanchor.policy.snapshot import SetView, TrustSnapshot
from trustanchor.policy.windows import bucket_start, earliest_bucket
from trustanchor.storage import counters_repo
from trustanchor.storage.counters_repo import Meter

OPERATION = value_transfer.TYPE  # the default operation counted
OPERATIONS = MOVEMENTS  # value_transfer, funding


def _windows(view: SetView, operation: str, currency: str) -> dict[tuple[str, str], int | None]:
    """(window, per) → the limit in minor units (``None``: only step-up rules count it)."""
    if operation not in OPERATIONS:
        raise ValueError(f"no cumulative rules count {operation!r}")
    named: dict[tuple[str, str], int | None] = {}
    for step in view.cumulative_step_up.get((operation, currency), ()):
        named.setdefault((step.window, step.per), None)
    for limit in view.cumulative.get((operation, currency), ()):
        named[(limit.window, limit.per)] = limit.minor
    return named


def _meter(
    view: SetView,
    operation: str,
    window: str,
    per: str,
    currency: str,
    subjects: Mapping[str, str],
) -> Meter:
    return Meter(view.id, operation, window, per, subjects[per], currency)


def totals(
    conn: Connection,
    snapshot: TrustSnapshot,
    *,
    currency: str,
    holder_id: str,
    debtor_account_id: str,
    at: int,
    operation: str = OPERATION,
) -> dict[tuple[str, str, str], int]:
    """What every set with cumulative rules of ``operation`` in ``currency`` has counted so far
    in their windows, keyed ``(set id, window, per)``, for the engine's
    ``TransferRequest.totals`` (``FundingRequest.totals`` with ``operation="funding"``;
    ``debtor_account_id`` is then the account debited)."""
    subjects = {"holder": holder_id, "debtor_account": debtor_account_id}
    found: dict[tuple[str, str, str], int] = {}
    for view in snapshot.sets.values():
        for window, per in _windows(view, operation, currency):
            since = earliest_bucket(window, at, view.policy.time_zone)
            meter = _meter(view, operation, window, per, currency, subjects)
            found[(view.id, window, per)] = counters_repo.total(conn, meter, since=since)
    return found


def count(
    conn: Connection,
    snapshot: TrustSnapshot,
    *,
    anchor_set_id: str,
    currency: str,
    amount: int,
    holder_id: str,
    debtor_account_id: str,
    at: int,
    operation: str = OPERATION,
) -> bool:
    """Count an approved transfer (or, with ``operation="funding"``, movement) in every window
    of the relied-on set's cumulative rules of that operation for its currency. False when a
    limit would be exceeded (a parallel approval counted first): the caller must then roll back
    its transaction, which undoes any window already counted."""
    view = snapshot.sets.get(anchor_set_id)
    if view is None:
        return False
    subjects = {"holder": holder_id, "debtor_account": debtor_account_id}
    zone = view.policy.time_zone
    for (window, per), limit in sorted(_windows(view, operation, currency).items()):
        added = counters_repo.add_within(
            conn,
            _meter(view, operation, window, per, currency, subjects),
            bucket=bucket_start(window, at, zone),
            since=earliest_bucket(window, at, zone),
            amount=amount,
            limit=limit,
        )
        if not added:
            return False
    return True
