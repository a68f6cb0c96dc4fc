"""The service half of the operation registry: for every authorization_details type of
``oauth/detail_types.py`` (validation, typed operation, schema, one-time token), what consent
does with it — its policy decision, its counting against cumulative limits when approved, what
an approved decision carries out, and the entry as granted (what the token will carry).

A type in the protocol table without a row here is refused at consent (deny by default), and a
test keeps both tables' keys equal. ``services/decisions.py`` dispatches through this table;
nothing else switches on a type name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from sqlalchemy import Connection

from trustanchor.oauth import account_link, funding, standing_funding, value_transfer
from trustanchor.policy.snapshot import TrustSnapshot
from trustanchor.services import (
    funding_decision,
    link_decision,
    standing_decision,
    transfer_decision,
)
from trustanchor.services.decision_reader import CarryingOut, Context, DetailDecision

Decide = Callable[[Context, Any], DetailDecision]
Count = Callable[[Connection, TrustSnapshot, DetailDecision, int], bool]
CarryOut = Callable[[Connection, DetailDecision, CarryingOut], str | None]


@dataclass(frozen=True, slots=True)
class OperationKind:
    """``decide(ctx, operation)`` (its DetailDecision says how the entry is granted and until
    when, where that differs); ``count(conn, snapshot, item, at)`` (None: not counted);
    ``carry_out(conn, item, carrying)`` returns the id of a link it created (None: nothing to
    do); ``moves_over_link``: the grant relies on the decision's active link (removing it
    revokes the grant)."""

    type: str
    decide: Decide
    count: Count | None = None
    carry_out: CarryOut | None = None
    moves_over_link: bool = False


KINDS: Mapping[str, OperationKind] = MappingProxyType(
    {
        account_link.TYPE: OperationKind(
            account_link.TYPE, link_decision.decide, carry_out=link_decision.carry_out
        ),
        value_transfer.TYPE: OperationKind(
            value_transfer.TYPE,
            transfer_decision.decide,
            count=transfer_decision.count,
            carry_out=transfer_decision.carry_out,
        ),
        funding.TYPE: OperationKind(
            funding.TYPE,
            funding_decision.decide,
            count=funding_decision.count,
            carry_out=funding_decision.carry_out,
            moves_over_link=True,
        ),
        # Not counted at approval: each movement is, when it is minted.
        standing_funding.TYPE: OperationKind(
            standing_funding.TYPE,
            standing_decision.decide,
            carry_out=standing_decision.carry_out,
            moves_over_link=True,
        ),
    }
)
