"""The anchors and anchor sets, arranged once for many decisions.

Building a :class:`TrustSnapshot` parses every policy and inverts the memberships (anchor → its
sets); a decision then only does dictionary look-ups and integer comparisons. The service keeps
one snapshot and rebuilds it when an anchor or a set changes (status, membership, policy
version): the snapshot is immutable, so a decision in flight keeps a consistent view.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import rank
from trustanchor.policy.anchor_set_policy import (
    DEFAULT_MIN_ASSURANCE_FUNDING,
    DENY_ALL,
    AccountKyc,
    AnchorSetPolicy,
    PolicyError,
    StepUpRule,
    parse_policy,
)
from trustanchor.policy.facts import AnchorFact, AnchorSetFact

T = TypeVar("T", AnchorFact, AnchorSetFact)


@dataclass(frozen=True, slots=True)
class StepUpThreshold:
    """A step-up rule in the form the engine compares: minor units and level rank."""

    above_minor: int
    rank: int
    max_age: int
    in_person: bool = False


@dataclass(frozen=True, slots=True)
class CumulativeThreshold:
    """A cumulative rule in the form the engine compares: which window total (``window``,
    ``per``), and the limit or step-up threshold in minor units. ``rank`` and ``max_age`` are
    set for a step-up rule only."""

    window: str
    per: str
    minor: int
    rank: int = -1
    max_age: int = 0


# The key of a set's cumulative rules: (operation, currency), the operation being
# ``value_transfer`` or ``funding`` (each counted apart from the other).
CumulativeKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class SetView:
    """One anchor set with its policy pre-digested for the engine. The funding fields mirror
    the transfer fields (``allows_funding`` … ``funding_step_up``);
    ``standing_funding_max_days`` is the policy's, for standing authorizations of funding."""

    id: str
    version: int
    policy: AnchorSetPolicy
    members: frozenset[str]
    allows_link: bool
    allows_transfer: bool
    min_rank_link: int
    min_rank_transfer: int
    fail_open: bool
    in_person_link: bool  # channel_link = "in_person"
    in_person_transfer: bool  # channel_transfer = "in_person"
    account_kyc: AccountKyc
    limits: Mapping[str, int]  # currency → largest allowed amount in minor units
    step_up: Mapping[str, tuple[StepUpThreshold, ...]]  # currency → rules, ascending `above`
    # (operation, currency) → cumulative limits / cumulative step-up rules (docs/POLICY.md)
    cumulative: Mapping[CumulativeKey, tuple[CumulativeThreshold, ...]] = field(
        default_factory=dict
    )
    cumulative_step_up: Mapping[CumulativeKey, tuple[CumulativeThreshold, ...]] = field(
        default_factory=dict
    )
    allows_funding: bool = False
    min_rank_funding: int = rank(DEFAULT_MIN_ASSURANCE_FUNDING)
    in_person_funding: bool = False  # channel_funding = "in_person"
    funding_limits: Mapping[str, int] = field(default_factory=dict)  # per movement, minor units
    funding_step_up: Mapping[str, tuple[StepUpThreshold, ...]] = field(default_factory=dict)
    # the operations (value_transfer, funding) that need a signed presentation made now
    dynamic_linking: frozenset[str] = frozenset()
    # the most days a standing authorization of funding may run; 0: none may be approved
    standing_funding_max_days: int = 0

    @classmethod
    def of(cls, fact: AnchorSetFact, members: Iterable[str]) -> SetView:
        policy = fact.policy
        limits: dict[CumulativeKey, list[CumulativeThreshold]] = {}
        for limit in policy.cumulative:
            limits.setdefault((limit.operation, limit.currency), []).append(
                CumulativeThreshold(limit.window, limit.per, limit.limit.minor)
            )
        steps: dict[CumulativeKey, list[CumulativeThreshold]] = {}
        for step in policy.cumulative_step_up:
            steps.setdefault((step.operation, step.currency), []).append(
                CumulativeThreshold(
                    step.window, step.per, step.above.minor, rank(step.assurance), step.max_age
                )
            )
        return cls(
            id=fact.id,
            version=fact.version,
            policy=policy,
            members=frozenset(members),
            allows_link=policy.allows("account_link"),
            allows_transfer=policy.allows("value_transfer"),
            min_rank_link=rank(policy.min_assurance_link),
            min_rank_transfer=rank(policy.min_assurance_transfer),
            fail_open=policy.revocation_check == "fail_open",
            in_person_link=policy.channel_link == "in_person",
            in_person_transfer=policy.channel_transfer == "in_person",
            account_kyc=policy.account_kyc,
            limits=MappingProxyType({c: a.minor for c, a in policy.limits.items()}),
            step_up=_thresholds(policy.step_up),
            cumulative=MappingProxyType({k: tuple(r) for k, r in limits.items()}),
            cumulative_step_up=MappingProxyType({k: tuple(r) for k, r in steps.items()}),
            allows_funding=policy.allows("funding"),
            min_rank_funding=rank(policy.min_assurance_funding),
            in_person_funding=policy.channel_funding == "in_person",
            funding_limits=MappingProxyType({c: a.minor for c, a in policy.funding_limits.items()}),
            funding_step_up=_thresholds(policy.funding_step_up),
            dynamic_linking=frozenset(policy.dynamic_linking),
            standing_funding_max_days=policy.standing_funding_max_days,
        )


def _thresholds(
    step_up: Iterable[StepUpRule],
) -> Mapping[str, tuple[StepUpThreshold, ...]]:
    """currency → the step-up rules as thresholds, ascending ``above``."""
    rules: dict[str, list[StepUpThreshold]] = {}
    for rule in step_up:
        threshold = StepUpThreshold(
            rule.above.minor,
            rank(rule.assurance),
            rule.max_age,
            in_person=rule.channel == "in_person",
        )
        rules.setdefault(rule.currency, []).append(threshold)
    return MappingProxyType(
        {c: tuple(sorted(r, key=lambda t: t.above_minor)) for c, r in rules.items()}
    )


@dataclass(frozen=True, slots=True)
class AnchorView:
    id: str
    active: bool
    set_ids: tuple[str, ...]  # the known sets it belongs to, by id


@dataclass(frozen=True, slots=True)
class TrustSnapshot:
    """Anchors and anchor sets ready for :mod:`trustanchor.policy.engine`.

    ``unusable_sets`` names the sets whose stored policy did not parse (only
    :meth:`from_domain` produces them): such a set is kept with the deny-all policy, so it
    allows nothing, and the caller should log the problems. Memberships in sets the snapshot
    does not know are ignored."""

    sets: Mapping[str, SetView]
    anchors: Mapping[str, AnchorView]
    unusable_sets: tuple[tuple[str, PolicyError], ...] = ()

    @classmethod
    def build(
        cls,
        anchors: Iterable[AnchorFact],
        anchor_sets: Iterable[AnchorSetFact],
        *,
        unusable_sets: tuple[tuple[str, PolicyError], ...] = (),
    ) -> TrustSnapshot:
        set_facts = _unique(anchor_sets, "anchor set")
        anchor_facts = _unique(anchors, "anchor")
        members: dict[str, list[str]] = {set_id: [] for set_id in set_facts}
        views: dict[str, AnchorView] = {}
        for anchor in anchor_facts.values():
            known = tuple(sorted(s for s in anchor.anchor_sets if s in set_facts))
            for set_id in known:
                members[set_id].append(anchor.id)
            views[anchor.id] = AnchorView(anchor.id, anchor.status == "active", known)
        return cls(
            sets=MappingProxyType(
                {set_id: SetView.of(fact, members[set_id]) for set_id, fact in set_facts.items()}
            ),
            anchors=MappingProxyType(views),
            unusable_sets=unusable_sets,
        )

    @classmethod
    def from_domain(
        cls, anchors: Iterable[Anchor], anchor_sets: Iterable[AnchorSet]
    ) -> TrustSnapshot:
        """From the repository's domain objects; each set's stored policy is parsed here."""
        set_facts: list[AnchorSetFact] = []
        unusable: list[tuple[str, PolicyError]] = []
        for anchor_set in anchor_sets:
            try:
                policy = parse_policy(anchor_set.policy)
            except PolicyError as exc:
                unusable.append((anchor_set.id, exc))
                policy = DENY_ALL
            set_facts.append(AnchorSetFact(anchor_set.id, policy, anchor_set.version))
        anchor_facts = [AnchorFact(a.id, a.status, frozenset(a.anchor_sets)) for a in anchors]
        return cls.build(anchor_facts, set_facts, unusable_sets=tuple(unusable))


def _unique(items: Iterable[T], what: str) -> dict[str, T]:
    by_id: dict[str, T] = {}
    for item in items:
        if item.id in by_id:
            raise ValueError(f"{what} {item.id!r} given twice")
        by_id[item.id] = item
    return by_id
