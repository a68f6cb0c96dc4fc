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

from trustanchor.domain.identity import Authentication
from trustanchor.oauth import account_link, funding, value_transfer
from trustanchor.policy.snapshot import TrustSnapshot
from trustanchor.services import funding_decision, link_decision, transfer_decision
from trustanchor.services.decision_reader import Context, DetailDecision

Decide = Callable[[Context, Any], DetailDecision]
Count = Callable[[Connection, TrustSnapshot, DetailDecision, int], bool]
CarryOut = Callable[[Connection, DetailDecision, str, Authentication, int], str | None]
Granted = Callable[[DetailDecision], dict[str, Any]]


def _as_requested(item: DetailDecision) -> dict[str, Any]:
    return dict(item.entry)


@dataclass(frozen=True, slots=True)
class OperationKind:
    """``decide(ctx, operation)``; ``count(conn, snapshot, item, at)`` (None: not counted);
    ``carry_out(conn, item, client_id, authentication, at)`` returns the id of a link it
    created (None: nothing to do); ``granted(item)``: the entry as the grant and its tokens
    carry it; ``moves_over_link``: the grant relies on the decision's active link (removing it
    revokes the grant)."""

    type: str
    decide: Decide
    count: Count | None = None
    carry_out: CarryOut | None = None
    granted: Granted = _as_requested
    moves_over_link: bool = False


KINDS: Mapping[str, OperationKind] = MappingProxyType(
    {
        account_link.TYPE: OperationKind(
            account_link.TYPE, link_decision.decide, carry_out=link_decision.carry_out
        ),
        value_transfer.TYPE: OperationKind(
            value_transfer.TYPE, transfer_decision.decide, count=transfer_decision.count
        ),
        funding.TYPE: OperationKind(
            funding.TYPE,
            funding_decision.decide,
            count=funding_decision.count,
            carry_out=funding_decision.carry_out,
            granted=funding_decision.granted,
            moves_over_link=True,
        ),
    }
)
