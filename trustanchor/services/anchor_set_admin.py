"""Changing an anchor set's policy at run time, from the CLI (``anchor-sets set-policy``) or the
admin API (``PUT /admin/anchor-sets/<id>/policy``): validated by the policy engine's parser,
stored in canonical form (the repository bumps the version when it changes), and recorded as an
``operator_change`` entry in the same transaction as the change — never one without the other.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.policy.anchor_set_policy import PolicyError, parse_policy
from trustanchor.services import audit_trail
from trustanchor.storage.anchors_repo import AnchorRepository, Change


class UnknownAnchorSet(LookupError):
    pass


def describe(repository: AnchorRepository, anchor_set: AnchorSet) -> dict[str, Any]:
    """A set as the CLI and the admin API show it: policy with every default spelt out (or
    ``policy_error`` when the stored policy no longer parses — the set then allows nothing)."""
    document: dict[str, Any] = {
        "id": anchor_set.id,
        "display_name": dict(anchor_set.display_name),
        "version": anchor_set.version,
        "anchors": list(repository.members(anchor_set.id)),
    }
    try:
        document["policy"] = parse_policy(anchor_set.policy).to_json()
    except PolicyError as exc:
        document["policy"] = None
        document["policy_error"] = exc.lines("policy")
    return document


def replace_policy(
    repository: AnchorRepository, set_id: str, policy: object, *, at: int
) -> tuple[Change, AnchorSet]:
    """Replace the policy of ``set_id``. Raises PolicyError (every problem listed),
    UnknownAnchorSet, or StorageUnavailable; returns the change and the stored set."""
    canonical = parse_policy(policy).to_json()
    existing = repository.get_set(set_id)
    if existing is None:
        raise UnknownAnchorSet(set_id)

    def record(conn: Connection, changes: Sequence[Change]) -> None:
        for change in changes:
            if change.policy_changed:
                audit_trail.record(
                    conn,
                    audit_trail.operator_change(
                        at=at, what="anchor_set", id=change.id, action="policy_changed"
                    ),
                )

    [change] = repository.apply(
        [dataclasses.replace(existing, policy=canonical)], [], at, on_write=record
    )
    stored = repository.get_set(set_id)
    assert stored is not None
    return change, stored
