"""Which holder a verified identity belongs to, and when a new identity may join a holder.

An identity is (anchor, subject at that anchor). A known identity always logs in as its holder,
and never moves to another one (except by the operator's :func:`unjoin`). A new identity seen in
a plain login gets a new holder. A new identity seen in a *step-up* (the person is already logged
in as holder H and was asked for a stronger login) joins H only with proof that it is the same
person (docs/POLICY.md, "Identity joins"):

- an anchor set that contains both anchors declares a join rule (``identity_joins``): a list of
  claims, a minimum assurance and the one documented normaliser
  (:mod:`trustanchor.domain.claim_normalizer`);
- on both sides the claims are *verified* claims (those the anchor's credential carries, mapped by
  the anchor's declaration; nothing the person typed, nothing from an anchor at ``low``), from an
  active anchor of the set at or above the rule's minimum, and the holder's side from an identity
  that is current: not expired, credential not revoked, suspended or of unknown status;
- every claim of the rule is present on both sides and the same under the normaliser.

Otherwise the step-up is refused (:class:`JoinRefused`) with a reason the person is shown and the
audit log records: ``identity_mismatch`` (someone else's credential), ``join_needs_claims`` (the
holder's identity lacks the rule's claims, e.g. a minimal disclosure: the person may present
that anchor's credential again in the same interaction, which then asks for them),
``join_claims_missing`` (the new credential did not reveal them), ``join_identity_not_current``,
``join_no_rule`` or ``holder_mismatch`` (a known identity of another holder). A join is an audit
entry (``identity_join``) naming the rule, the set and the claim *names* that matched.

:func:`evaluate` is the pure rule matching; :func:`admit` wires it to storage and the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Connection

from trustanchor.audit.entries import IdentityJoin
from trustanchor.digests import keyed_digest
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import at_least
from trustanchor.domain.claim_normalizer import NORMALIZER_ID, same_value
from trustanchor.domain.identity import Identity, VerifiedIdentity
from trustanchor.policy.anchor_set_policy import JoinRule
from trustanchor.randomness import Randomness
from trustanchor.services import audit_trail, decisions, interaction
from trustanchor.services.container import Services
from trustanchor.services.links import revoke_grants
from trustanchor.storage import accounts_repo, grants_repo, identities_repo, sessions_repo
from trustanchor.storage.database import Database
from trustanchor.storage.identities_repo import JoinCandidate

IDENTITY_CONTEXT = "audit-identity"
STEP_UP_KEY = "join"  # the interaction's step_up JSON: what to present again, and its claims

# Reason codes (login failures, audited); the person's words are in the web catalogs.
REASONS: dict[str, str] = {
    "holder_mismatch": "the identity belongs to another holder",
    "identity_mismatch": "the verified claims differ from the holder's under every rule",
    "join_needs_claims": "the holder's identity lacks the claims a rule compares",
    "join_claims_missing": "the new credential did not reveal the claims a rule compares",
    "join_identity_not_current": "the holder's identities a rule could use are not current",
    "join_no_rule": "no anchor set with a join rule contains both anchors at the rule's level",
}
# When no rule matched, the reason reported: the first in this order that any rule hit.
_PRECEDENCE = (
    "join_needs_claims",
    "identity_mismatch",
    "join_claims_missing",
    "join_identity_not_current",
    "join_no_rule",
)

Comparison = Literal["match", "mismatch", "new_lacks", "existing_lacks"]


class JoinRefused(Exception):
    """The verified identity cannot log in as the step-up's holder. ``reason`` is a code from
    :data:`REASONS`. For ``join_needs_claims``, ``present_again`` names the anchors whose
    credential the person may present again (asking for ``claims``, of rule ``rule``)."""

    def __init__(
        self,
        reason: str,
        *,
        present_again: tuple[str, ...] = (),
        claims: tuple[str, ...] = (),
        rule: str | None = None,
        anchor_set_id: str | None = None,
    ) -> None:
        self.reason = reason
        self.present_again = present_again
        self.claims = claims
        self.rule = rule
        self.anchor_set_id = anchor_set_id
        super().__init__(f"{reason}: {REASONS.get(reason, '')}")


@dataclass(frozen=True, slots=True)
class NewSide:
    """The identity just verified (not stored yet)."""

    anchor_id: str
    assurance_level: str
    claims: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class AnchorState:
    assurance_level: str
    active: bool


@dataclass(frozen=True, slots=True)
class SetRules:
    """An anchor set as joining sees it: its members and its declared join rules."""

    id: str
    members: frozenset[str]
    rules: tuple[JoinRule, ...]


@dataclass(frozen=True, slots=True)
class Proof:
    """Why a new identity joins: ``rule`` of ``anchor_set_id`` matched ``claims`` against the
    holder's identity ``matched_identity_id`` (at ``matched_anchor_id``)."""

    rule: str
    anchor_set_id: str
    matched_identity_id: str
    matched_anchor_id: str
    claims: tuple[str, ...]


def compare(
    claims: Sequence[str], new: Mapping[str, Any], existing: Mapping[str, Any]
) -> Comparison:
    """One rule's claims on both sides. A claim present on both sides that differs decides
    (``mismatch``) before any missing claim; a missing claim proves nothing."""
    for name in claims:
        left, right = new.get(name), existing.get(name)
        if left is not None and right is not None and not same_value(left, right):
            return "mismatch"
    if any(new.get(name) is None for name in claims):
        return "new_lacks"
    if any(existing.get(name) is None for name in claims):
        return "existing_lacks"
    return "match"


def _current(candidate: JoinCandidate, at: int) -> bool:
    return candidate.credential_status == "valid" and (
        candidate.expires_at is None or candidate.expires_at > at
    )


def _qualifies(anchor: AnchorState | None, level: str, rule: JoinRule) -> bool:
    return (
        anchor is not None
        and anchor.active
        and at_least(anchor.assurance_level, rule.min_assurance)
        and at_least(level, rule.min_assurance)
    )


def evaluate(
    new: NewSide,
    existing: Sequence[JoinCandidate],
    sets: Iterable[SetRules],
    anchors: Mapping[str, AnchorState],
    *,
    at: int,
) -> Proof:
    """The proof that ``new`` is the same person as the holder of ``existing``, or
    :class:`JoinRefused`. Pure: sets and rules in id order, the holder's identities in id order,
    the first match wins."""
    hits: set[str] = set()
    asks: list[tuple[str, JoinRule, str]] = []  # (anchor to present again, rule, set)
    for anchor_set in sorted(sets, key=lambda s: s.id):
        if new.anchor_id not in anchor_set.members:
            continue
        for rule in sorted(anchor_set.rules, key=lambda r: r.id):
            if rule.normalizer != NORMALIZER_ID:
                continue  # fail closed: a rule only ever means the normaliser it names
            if not _qualifies(anchors.get(new.anchor_id), new.assurance_level, rule):
                hits.add("join_no_rule")
                continue
            usable = [
                c
                for c in existing
                if c.anchor_id in anchor_set.members
                and _qualifies(anchors.get(c.anchor_id), c.assurance_level, rule)
            ]
            if not usable:
                hits.add("join_no_rule")
            for candidate in usable:
                if not _current(candidate, at):
                    hits.add("join_identity_not_current")
                    continue
                result = compare(rule.claims, new.claims, candidate.claims)
                if result == "match":
                    return Proof(
                        rule=rule.id,
                        anchor_set_id=anchor_set.id,
                        matched_identity_id=candidate.id,
                        matched_anchor_id=candidate.anchor_id,
                        claims=rule.claims,
                    )
                if result == "existing_lacks":
                    asks.append((candidate.anchor_id, rule, anchor_set.id))
                    hits.add("join_needs_claims")
                elif result == "mismatch":
                    hits.add("identity_mismatch")
                else:
                    hits.add("join_claims_missing")
    reason = next((r for r in _PRECEDENCE if r in hits), "join_no_rule")
    if reason == "join_needs_claims":
        _, rule, set_id = asks[0]
        again = tuple(dict.fromkeys(a for a, r, s in asks if r.id == rule.id and s == set_id))
        raise JoinRefused(
            reason, present_again=again, claims=rule.claims, rule=rule.id, anchor_set_id=set_id
        )
    raise JoinRefused(reason)


# -- wiring -----------------------------------------------------------------------------------


def set_rules(services: Services) -> list[SetRules]:
    """Every anchor set's join rules, from the policy engine's cached trust snapshot."""
    snapshot = decisions.trust_snapshot(services)
    return [
        SetRules(view.id, view.members, view.policy.identity_joins)
        for view in snapshot.sets.values()
        if view.policy.identity_joins
    ]


def _anchor_states(anchors: Iterable[Anchor]) -> dict[str, AnchorState]:
    return {a.id: AnchorState(a.assurance_level, a.is_active) for a in anchors}


def admit(
    conn: Connection,
    services: Services,
    verified: VerifiedIdentity,
    *,
    step_up_holder: str | None,
    at: int,
) -> Identity:
    """The identity ``verified`` logs in as: its holder when known; a new holder in a plain
    login; in a step-up, the logged-in holder ``step_up_holder`` — when known as theirs, or when
    a join rule proves it is the same person (recorded with its audit entry, in ``conn``'s
    transaction). Raises :class:`JoinRefused` otherwise; the caller rolls back."""
    if step_up_holder is None:
        return identities_repo.record(
            conn,
            verified,
            new_holder_id=services.randomness.token(16),
            new_identity_id=services.randomness.token(16),
            now=at,
        )
    known = identities_repo.find(conn, verified.anchor_id, verified.subject)
    if known is not None:
        if known.holder_id != step_up_holder:
            raise JoinRefused("holder_mismatch")
        refreshed = identities_repo.refresh_of_holder(conn, verified, step_up_holder)
        if refreshed is None:  # moved by an operator meanwhile
            raise JoinRefused("holder_mismatch")
        return refreshed
    proof = evaluate(
        NewSide(verified.anchor_id, verified.assurance_level, verified.claims),
        identities_repo.join_candidates(conn, step_up_holder),
        set_rules(services),
        _anchor_states(services.anchors.list()),
        at=at,
    )
    joined = identities_repo.join(
        conn, verified, holder_id=step_up_holder, new_identity_id=services.randomness.token(16)
    )
    if joined is None:  # a concurrent login recorded (anchor, subject) first
        raise JoinRefused("holder_mismatch")
    pairwise = services.secrets.pairwise
    audit_trail.record(
        conn,
        IdentityJoin(
            at=at,
            action="joined",
            identity=identity_pseudonym(pairwise, joined.id),
            anchor_id=joined.anchor_id,
            holder=audit_trail.holder_pseudonym(pairwise, step_up_holder),
            new_holder=None,
            rule=proof.rule,
            anchor_set_id=proof.anchor_set_id,
            matched_anchor_id=proof.matched_anchor_id,
            claims=" ".join(sorted(proof.claims)),
        ),
    )
    return joined


def identity_pseudonym(pairwise_secret: bytes, identity_id: str) -> str:
    """An identity as the audit log shows it (like holders: an HMAC, never the internal id)."""
    return keyed_digest(pairwise_secret, IDENTITY_CONTEXT, identity_id)


def ask_again(
    conn: Connection,
    interaction_id: str,
    step_up: Mapping[str, Any],
    refused: JoinRefused,
    *,
    at: int,
) -> None:
    """After ``join_needs_claims``: note in the interaction's pending step-up which anchors'
    credentials the person may present again, and which claims to ask them for (read by
    :func:`present_again` and :func:`claims_to_ask`)."""
    amended = {
        **dict(step_up),
        STEP_UP_KEY: {
            "rule": refused.rule,
            "anchor_set_id": refused.anchor_set_id,
            "present_again": list(refused.present_again),
            "claims": list(refused.claims),
        },
    }
    interaction.step_up_amended(conn, interaction_id, amended, at=at)


def present_again(step_up: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Anchors a pending step-up lets the person present again (for a join's claims)."""
    hint = step_up.get(STEP_UP_KEY) if step_up is not None else None
    if not isinstance(hint, Mapping):
        return ()
    anchors = hint.get("present_again")
    return tuple(a for a in anchors if isinstance(a, str)) if isinstance(anchors, list) else ()


def claims_to_ask(
    services: Services, anchor: Anchor, step_up: Mapping[str, Any] | None
) -> tuple[str, ...]:
    """The claims a step-up presentation at ``anchor`` is asked for beyond what the request
    needs, so that a join can be proved: those of every join rule of a set containing the
    anchor at its level (and of the pending re-presentation, if any) that the anchor's
    credential carries. None outside a step-up: a plain login discloses only what the request
    needs."""
    if step_up is None:
        return ()
    wanted: set[str] = set()
    hint = step_up.get(STEP_UP_KEY)
    if isinstance(hint, Mapping) and anchor.id in present_again(step_up):
        claims = hint.get("claims")
        if isinstance(claims, list):
            wanted.update(c for c in claims if isinstance(c, str))
    for anchor_set in set_rules(services):
        if anchor.id not in anchor_set.members:
            continue
        for rule in anchor_set.rules:
            if at_least(anchor.assurance_level, rule.min_assurance):
                wanted.update(rule.claims)
    mapping = anchor.settings.get("claims", {})
    carried = set(mapping) if isinstance(mapping, Mapping) else set()
    return tuple(sorted(wanted & carried))


# -- the operator's undo ----------------------------------------------------------------------


class UnjoinRefused(Exception):
    """``identities unjoin`` cannot act: unknown identity, or its holder's only identity."""


@dataclass(frozen=True, slots=True)
class Unjoined:
    identity_id: str
    new_holder_id: str
    revoked_grants: int
    flagged_accounts: int
    flagged_links: int
    ended_sessions: int = 0


def unjoin(
    db: Database,
    identity_id: str,
    *,
    pairwise_secret: bytes,
    randomness: Randomness,
    at: int,
) -> Unjoined:
    """Undo a wrong join: the identity moves to a new holder of its own. What the old holder
    obtained relying on it is withdrawn as when a credential is revoked
    (:mod:`trustanchor.services.cascades`): the old holder's live grants whose decision relied on
    the identity's anchor are revoked, the accounts bound through the identity and their links
    flagged for re-verification, and the former holder's SSO sessions end. One transaction with
    its audit entries."""
    with db.transaction() as conn:
        identity = identities_repo.get(conn, identity_id)
        if identity is None:
            raise UnjoinRefused(f"no identity {identity_id}")
        old_holder = identity.holder_id
        if identities_repo.count_of_holder(conn, old_holder) < 2:
            raise UnjoinRefused(
                f"identity {identity_id} is its holder's only identity: it joined nothing"
            )
        new_holder = randomness.token(16)
        if not identities_repo.move_to_new_holder(
            conn, identity_id, from_holder=old_holder, new_holder_id=new_holder, now=at
        ):
            raise UnjoinRefused(f"identity {identity_id} changed meanwhile; run the command again")
        grants = grants_repo.live_grants_of_holder_relying_on_anchor(
            conn, old_holder, identity.anchor_id
        )
        revoke_grants(conn, grants, reason="identity_unjoined", at=at)
        accounts = accounts_repo.flag_bound_by_identities(
            conn, [identity_id], reason="identity_unjoined", now=at
        )
        links = accounts_repo.flag_links_of_accounts(conn, accounts, now=at)
        # Any SSO session of the former holder may carry a login through that identity.
        ended = sessions_repo.end_all_of_holder(conn, old_holder, now=at)
        audit_trail.record(
            conn,
            IdentityJoin(
                at=at,
                action="unjoined",
                identity=identity_pseudonym(pairwise_secret, identity_id),
                anchor_id=identity.anchor_id,
                holder=audit_trail.holder_pseudonym(pairwise_secret, old_holder),
                new_holder=audit_trail.holder_pseudonym(pairwise_secret, new_holder),
                rule=None,
                anchor_set_id=None,
                matched_anchor_id=None,
                claims=None,
            ),
        )
    return Unjoined(identity_id, new_holder, len(grants), len(accounts), len(links), ended)


__all__ = [
    "REASONS",
    "JoinRefused",
    "Proof",
    "UnjoinRefused",
    "admit",
    "claims_to_ask",
    "evaluate",
    "present_again",
    "unjoin",
]
