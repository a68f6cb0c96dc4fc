"""Properties of the policy engine over random trust worlds: random anchor sets and policies,
anchors with random statuses and memberships, holders with one to three identities in any state,
logins of any level and age, amounts of any size.

The engine is checked against an independent, deliberately naive transcription of
docs/POLICY.md ("allowed iff some set passes every check; the first such set by id is relied
on"), and against the properties the issue asks for: no common set → never allowed; a suspended
anchor never helps; a stronger login never hurts; a smaller amount never hurts; an allowed
decision relies only on active anchors of the relied set, including one for every party; and
following a step-up request leads to an allowed decision. Channels (docs/POLICY.md,
"Channels"): a login at a branch counter never hurts, and a login taken over from SSO never
satisfies an in-person requirement. Dynamic linking (docs/POLICY.md, "Dynamic linking") is in
the worlds and the reference too; its own properties, and funding's, are in
test_policy_funding_properties.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from support.policy_world import AT

from trustanchor.domain.assurance import LEVELS, rank
from trustanchor.domain.money import Amount
from trustanchor.policy.anchor_set_policy import AnchorSetPolicy, Operation, parse_policy
from trustanchor.policy.decision import REASONS, Decision, StepUp
from trustanchor.policy.engine import (
    STAGE_REASONS,
    STANDING_REASONS,
    decide_link,
    decide_transfer,
)
from trustanchor.policy.facts import (
    AccountFact,
    AnchorFact,
    AnchorSetFact,
    AuthenticationFact,
    IdentityFact,
    KycState,
    LinkRequest,
    TransferRequest,
)
from trustanchor.policy.snapshot import TrustSnapshot

SET_IDS = ("s0", "s1", "s2", "s3")
ANCHOR_IDS = ("a0", "a1", "a2", "a3")
ACCOUNT_REASONS = {
    "account_not_bound",
    "holder_mismatch",
    "account_kind_mismatch",
    "link_not_found",
    "account_closed",
    "account_flagged",
}

# -- random worlds ---------------------------------------------------------------------------
# Choices are weighted towards what passes, so that allowed decisions are common enough for the
# properties about them to bite (see test_the_random_worlds_reach_every_outcome).


def mostly(common: Any, *rare: Any) -> st.SearchStrategy[Any]:
    """``common`` seven times in ten, else one of ``rare``. (Hypothesis' own choice among
    ``sampled_from`` elements is far from uniform, and we want passing values to dominate.)"""
    return st.integers(0, 9).map(lambda n: common if n < 7 else rare[n % len(rare)])


# Strategies are built once here: building them inside every draw costs more than the tests.
OPERATIONS = mostly(["account_link", "value_transfer"], ["account_link"], ["value_transfer"], [])
MINIMUM = mostly("substantial", "low", "high")
REVOCATION_CHECK = st.sampled_from(["fail_open", "fail_closed"])
# One account_kyc for every set of a world, drawn after the world (so the worlds are drawn as
# before), and the KYC states of a request's two accounts: both matching seven times in ten, so
# that KYC refusals do not hide the checks before them too often.
ACCOUNT_KYC = st.sampled_from(["if_registered", "required", "off"])
KYC_PAIR = mostly(("match", "match"), ("none", "match"), ("match", "mismatch"), ("none", "none"))
LIMIT = st.sampled_from([1000, 100_000, 500_000, 1_000_000]) | st.integers(1, 2_000_000)
THRESHOLDS = st.lists(
    st.sampled_from([1000, 100_000, 500_000]) | st.integers(1, 1_500_000), unique=True, max_size=2
)
LEVEL = st.sampled_from(LEVELS)
WINDOW = st.sampled_from(["calendar_day", "calendar_month", "rolling_24h"])
PER = st.sampled_from(["holder", "debtor_account"])
# What the service already authorized in every window (minor units, whatever the currency).
ALREADY = st.sampled_from([0, 0, 0, 500_000, 999_999, 1_000_000]) | st.integers(0, 2_000_000)
MAX_AGE = st.sampled_from([60, 300, 1000]) | st.integers(1, 1000)
VERSION = st.integers(1, 9)
WORLD_SETS = st.lists(st.sampled_from(SET_IDS), unique=True, min_size=1, max_size=4)
ANCHOR_STATUS = mostly("active", "suspended", "retired")
MEMBER = mostly(True, False)
# Channels, drawn after everything else (so the worlds and logins are drawn as before): a set's
# channel_link / channel_transfer and whether its step-up rules require the counter, and the
# login's channel and freshness (False: taken over from an SSO session).
# In-person requirements are rarer than the other choices: a set that requires one reports
# step_up_required, which would hide the KYC refusals of the other sets too often.
SET_CHANNEL = st.integers(0, 19).map(lambda n: "in_person" if n == 0 else "any")
RULE_CHANNEL = st.integers(0, 9).map(lambda n: "in_person" if n < 2 else "any")
LOGIN_CHANNEL = mostly("remote", "in_person", "in_person", "bogus")
FRESH = mostly(True, False)
# Dynamic linking (docs/POLICY.md, "Dynamic linking"), drawn last of all: a set lists
# value_transfer one time in ten (so that its step-up does not hide the other checks), and the
# login signed the transfer seven times in ten.
SET_DYNAMIC = st.integers(0, 9).map(lambda n: ("value_transfer",) if n == 3 else ())
SIGNED = mostly(True, False)
IDENTITY = st.builds(
    IdentityFact,
    id=st.just(""),
    holder_id=st.just(""),
    anchor_id=st.sampled_from(ANCHOR_IDS),  # an anchor the world lacks: test_policy_engine
    level=mostly("high", "substantial", "low", "bogus"),
    expires_at=mostly(None, AT + 1, AT + 10**6, AT - 1, AT),
    credential_status=mostly("valid", "revoked", "suspended", "unknown"),
)
IDENTITIES = st.lists(IDENTITY, min_size=1, max_size=3)
LOGIN_LEVEL = mostly("high", "substantial", "low")
LOGIN_AGE = st.sampled_from([0, 10, 59, 60, 61, 299, 300, 301, 1200, -5])
PICK = st.integers(0, 2)
CURRENCY = mostly("JPY", "EUR", "USD")
UNITS = st.sampled_from(
    [1000, 1001, 100_000, 100_001, 500_000, 500_001, 1_000_000, 1_000_001]
) | st.integers(1, 2_000_000)  # boundaries of the limits and thresholds above, and anything


@st.composite
def policies(draw: st.DrawFn) -> dict[str, Any]:
    policy: dict[str, Any] = {
        "operations": draw(OPERATIONS),
        "min_assurance_link": draw(MINIMUM),
        "min_assurance_transfer": draw(MINIMUM),
        "revocation_check": draw(REVOCATION_CHECK),
        "limits": {"JPY": str(draw(LIMIT))},
    }
    if draw(st.booleans()):
        policy["limits"]["EUR"] = "5000.00"
    policy["step_up"] = [
        {"currency": "JPY", "above": str(above), "assurance": draw(LEVEL), "max_age": draw(MAX_AGE)}
        for above in draw(THRESHOLDS)
    ]
    if draw(st.booleans()):  # a cumulative limit over the window totals a transfer carries
        policy["cumulative"] = [
            {
                "id": "total",
                "currency": "JPY",
                "window": draw(WINDOW),
                "per": draw(PER),
                "limit": str(draw(LIMIT)),
            }
        ]
    if draw(st.booleans()):
        policy["cumulative_step_up"] = [
            {
                "currency": "JPY",
                "window": draw(WINDOW),
                "per": draw(PER),
                "above": str(above),
                "assurance": draw(LEVEL),
                "max_age": draw(MAX_AGE),
            }
            for above in draw(THRESHOLDS)
        ]
    return policy


POLICY = policies()


@st.composite
def worlds(draw: st.DrawFn) -> TrustSnapshot:
    """One to four sets; four anchors, each in some of them (and perhaps in a set the world
    does not have)."""
    set_ids = draw(WORLD_SETS)
    sets = [AnchorSetFact(s, parse_policy(draw(POLICY)), draw(VERSION)) for s in set_ids]
    anchors = []
    for anchor_id in ANCHOR_IDS:
        member_of = {s for s in set_ids if draw(MEMBER)} | (
            {"elsewhere"} if draw(MEMBER) else set()
        )
        anchors.append(AnchorFact(anchor_id, draw(ANCHOR_STATUS), frozenset(member_of)))
    return TrustSnapshot.build(anchors, sets)


WORLDS = worlds()


def with_account_kyc(world: TrustSnapshot, mode: Any) -> TrustSnapshot:
    """``world`` with every set's ``account_kyc`` set to ``mode``."""
    anchors = [
        AnchorFact(a.id, "active" if a.active else "suspended", frozenset(a.set_ids))
        for a in world.anchors.values()
    ]
    sets = [
        AnchorSetFact(s.id, replace(s.policy, account_kyc=mode), s.version)
        for s in world.sets.values()
    ]
    return TrustSnapshot.build(anchors, sets)


def with_channels(world: TrustSnapshot, draw: st.DrawFn) -> TrustSnapshot:
    """``world`` with each set's channel requirements drawn."""
    anchors = [
        AnchorFact(a.id, "active" if a.active else "suspended", frozenset(a.set_ids))
        for a in world.anchors.values()
    ]
    sets = []
    for view in world.sets.values():
        policy = replace(
            view.policy,
            channel_link=draw(SET_CHANNEL),
            channel_transfer=draw(SET_CHANNEL),
            step_up=tuple(replace(r, channel=draw(RULE_CHANNEL)) for r in view.policy.step_up),
        )
        sets.append(AnchorSetFact(view.id, policy, view.version))
    return TrustSnapshot.build(anchors, sets)


def with_dynamic_linking(world: TrustSnapshot, draw: st.DrawFn) -> TrustSnapshot:
    """``world`` with each set's ``dynamic_linking`` drawn."""
    anchors = [
        AnchorFact(a.id, "active" if a.active else "suspended", frozenset(a.set_ids))
        for a in world.anchors.values()
    ]
    sets = [
        AnchorSetFact(v.id, replace(v.policy, dynamic_linking=draw(SET_DYNAMIC)), v.version)
        for v in world.sets.values()
    ]
    return TrustSnapshot.build(anchors, sets)


def with_login_channel(login: AuthenticationFact, draw: st.DrawFn) -> AuthenticationFact:
    return replace(login, channel=draw(LOGIN_CHANNEL), fresh=draw(FRESH))


def identities_of(holder: str, drawn: list[IdentityFact]) -> list[IdentityFact]:
    return [replace(i, id=f"{holder}-{n}", holder_id=holder) for n, i in enumerate(drawn)]


def login_through(draw: st.DrawFn, identities: list[IdentityFact]) -> AuthenticationFact:
    through = identities[draw(PICK) % len(identities)]
    level, age = draw(LOGIN_LEVEL), draw(LOGIN_AGE)
    return AuthenticationFact(through.holder_id, through.id, through.anchor_id, level, AT - age)


def wallet(account_id: str, through: IdentityFact, kind: Any = "cbdc_wallet") -> AccountFact:
    return AccountFact(account_id, kind, through.holder_id, through.id)


@dataclass(frozen=True)
class Transfer:
    world: TrustSnapshot
    amount: Amount
    debtor: list[IdentityFact]
    creditor: list[IdentityFact]
    login: AuthenticationFact
    kyc: tuple[KycState, KycState] = ("none", "none")  # the debtor's and creditor's accounts
    already: int = 0  # authorized so far in every window of every set
    signed: bool = False  # the login is a presentation made now that signed this transfer

    @property
    def identities(self) -> list[IdentityFact]:
        return self.debtor + [i for i in self.creditor if i not in self.debtor]

    def request(
        self, amount: Amount | None = None, already: int | None = None, signed: bool | None = None
    ) -> TransferRequest:
        total = self.already if already is None else already
        return TransferRequest(
            amount or self.amount,
            replace(wallet("acc_debtor_0000000001", self.debtor[0]), kyc=self.kyc[0]),
            replace(wallet("acc_creditor_00000001", self.creditor[0]), kyc=self.kyc[1]),
            totals={
                (s, w, p): total
                for s in self.world.sets
                for w in ("calendar_day", "calendar_month", "rolling_24h")
                for p in ("holder", "debtor_account")
            },
            transaction_signed=self.signed if signed is None else signed,
        )

    def decide(self, **changes: Any) -> Decision:
        world = changes.pop("world", self.world)
        login = changes.pop("login", self.login)
        identities = changes.pop("identities", self.identities)
        request = self.request(
            changes.pop("amount", None), changes.pop("already", None), changes.pop("signed", None)
        )
        assert not changes
        return decide_transfer(world, request, login, identities, at=AT)


@st.composite
def transfers(draw: st.DrawFn) -> Transfer:
    debtor = identities_of("debtor", draw(IDENTITIES))
    creditor = debtor if draw(PICK) == 0 else identities_of("creditor", draw(IDENTITIES))
    currency = draw(CURRENCY)
    t = Transfer(
        world=with_account_kyc(draw(WORLDS), draw(ACCOUNT_KYC)),
        amount=Amount(currency, draw(UNITS) * (1 if currency == "JPY" else 100)),
        debtor=debtor,
        creditor=creditor,
        login=login_through(draw, debtor),
        kyc=draw(KYC_PAIR),
        already=draw(ALREADY),
    )
    t = replace(t, world=with_channels(t.world, draw), login=with_login_channel(t.login, draw))
    return replace(t, world=with_dynamic_linking(t.world, draw), signed=draw(SIGNED))


@dataclass(frozen=True)
class Link:
    world: TrustSnapshot
    identities: list[IdentityFact]
    deposit_through: IdentityFact
    wallet_through: IdentityFact
    login: AuthenticationFact
    kyc: tuple[KycState, KycState] = ("none", "none")  # the deposit's and wallet's

    def decide(self, **changes: Any) -> Decision:
        world = changes.pop("world", self.world)
        login = changes.pop("login", self.login)
        identities = changes.pop("identities", self.identities)
        assert not changes
        request = LinkRequest(
            "link",
            replace(
                wallet("acc_deposit_000000001", self.deposit_through, "bank_deposit"),
                kyc=self.kyc[0],
            ),
            replace(wallet("acc_wallet_0000000001", self.wallet_through), kyc=self.kyc[1]),
        )
        return decide_link(world, request, login, identities, at=AT)


@st.composite
def links(draw: st.DrawFn) -> Link:
    identities = identities_of("holder", draw(IDENTITIES))
    k = Link(
        world=with_account_kyc(draw(WORLDS), draw(ACCOUNT_KYC)),
        identities=identities,
        deposit_through=identities[draw(PICK) % len(identities)],
        wallet_through=identities[draw(PICK) % len(identities)],
        login=login_through(draw, identities),
        kyc=draw(KYC_PAIR),
    )
    return replace(k, world=with_channels(k.world, draw), login=with_login_channel(k.login, draw))


# -- the naive reference: docs/POLICY.md read literally ----------------------------------------


ORDER = list(REASONS)  # the documented order of the checks


def identity_failure(
    world: TrustSnapshot, identity: IdentityFact, set_id: str, minimum: str
) -> str | None:
    """The first identity check ``identity`` fails in the set (None: it vouches there)."""
    anchor = world.anchors[identity.anchor_id]
    policy = world.sets[set_id].policy
    status = identity.credential_status
    checks = [
        ("anchor_suspended", anchor.active),
        ("credential_revoked", status in ("valid", "unknown")),
        ("credential_status_unknown", status == "valid" or policy.revocation_check == "fail_open"),
        ("identity_expired", identity.expires_at is None or identity.expires_at > AT),
        ("assurance_too_low", rank(identity.level) >= rank(minimum)),
    ]
    return next((reason for reason, passed in checks if not passed), None)


def in_set(world: TrustSnapshot, identity: IdentityFact, set_id: str) -> bool:
    anchor = world.anchors.get(identity.anchor_id)
    return anchor is not None and set_id in anchor.set_ids


def login_enough(
    world: TrustSnapshot,
    login: AuthenticationFact,
    identities: list[IdentityFact],
    set_id: str,
    minimum: str,
    requirement: tuple[str, int | None, bool],
    signed: bool | None = None,
) -> bool:
    """A step-up rule's age and an in-person requirement are met only by a fresh login (not
    taken over from SSO); in person means exactly the channel ``in_person``. ``signed``: None
    when the set asks for no dynamic linking, else whether the login signed the operation."""
    level, max_age, in_person = requirement
    through = [i for i in identities if i.id == login.identity_id]
    return (
        len(through) == 1
        and through[0].holder_id == login.holder_id
        and through[0].anchor_id == login.anchor_id
        and in_set(world, through[0], set_id)
        and identity_failure(world, through[0], set_id, minimum) is None
        and rank(login.level) >= rank(level)
        and (max_age is None or (login.fresh and AT - login.auth_time <= max_age))
        and (not in_person or (login.fresh and login.channel == "in_person"))
        and (signed is None or (login.fresh and signed))
    )


def transfer_requirement(
    policy: AnchorSetPolicy, amount: Amount, already: int = 0
) -> tuple[str, int | None, bool]:
    applying = [r for r in policy.step_up if r.currency == amount.currency and amount > r.above]
    cumulative = [
        r
        for r in policy.cumulative_step_up
        if r.currency == amount.currency and already + amount.minor > r.above.minor
    ]
    level = max(
        [
            policy.min_assurance_transfer,
            *(r.assurance for r in applying),
            *(r.assurance for r in cumulative),
        ],
        key=rank,
    )
    in_person = policy.channel_transfer == "in_person" or any(
        r.channel == "in_person" for r in applying
    )
    ages = [r.max_age for r in applying] + [r.max_age for r in cumulative]
    return level, min(ages, default=None), in_person


def link_requirement(policy: AnchorSetPolicy) -> tuple[str, int | None, bool]:
    return policy.min_assurance_link, None, policy.channel_link == "in_person"


@dataclass(frozen=True)
class Expected:
    reason: str
    anchor_set_id: str | None
    step_up: StepUp | None = None


def reference(
    world: TrustSnapshot,
    operation: Operation,
    parties: list[list[IdentityFact]],
    login: AuthenticationFact,
    holder: list[IdentityFact],
    amount: Amount | None,
    kyc: tuple[KycState, ...] = (),
    already: int = 0,
    signed: bool = False,
) -> Expected:
    """docs/POLICY.md steps 2 to 4, read literally."""
    candidates = [
        s for s in sorted(world.sets) if all(any(in_set(world, i, s) for i in p) for p in parties)
    ]
    if not candidates:
        return Expected("no_common_anchor_set", None)
    failures: list[tuple[str, str]] = []
    for set_id in candidates:
        policy = world.sets[set_id].policy
        if operation == "value_transfer":
            assert amount is not None
            minimum = policy.min_assurance_transfer
            requirement = transfer_requirement(policy, amount, already)
        else:
            minimum = policy.min_assurance_link
            requirement = link_requirement(policy)
        party_failures: list[str] = []
        for party in parties:
            found = [
                identity_failure(world, i, set_id, minimum)
                for i in party
                if in_set(world, i, set_id)
            ]
            failed = [f for f in found if f is not None]
            if len(failed) == len(found):  # the party is as far as its best identity got
                party_failures.append(max(failed, key=ORDER.index))
        if not policy.allows(operation):
            failure = "operation_not_allowed"
        elif party_failures:  # the set is as far as its weakest party got
            failure = min(party_failures, key=ORDER.index)
        elif policy.account_kyc == "required" and "none" in kyc:
            failure = "kyc_not_registered"
        elif policy.account_kyc != "off" and "mismatch" in kyc:
            failure = "kyc_mismatch"
        elif amount is not None and amount.currency not in policy.limits:
            failure = "currency_not_allowed"
        elif amount is not None and amount > policy.limits[amount.currency]:
            failure = "limit_exceeded"
        elif amount is not None and any(
            already + amount.minor > r.limit.minor
            for r in policy.cumulative
            if r.currency == amount.currency
        ):
            failure = "cumulative_limit_exceeded"
        elif not login_enough(
            world,
            login,
            holder,
            set_id,
            minimum,
            requirement,
            signed if operation in policy.dynamic_linking else None,
        ):
            failure = "step_up_required"
        else:
            return Expected("allowed", set_id)
        failures.append((failure, set_id))
    furthest = max(ORDER.index(f) for f, _ in failures)
    reason, set_id = next((f, s) for f, s in failures if ORDER.index(f) == furthest)
    step_up = None
    if reason == "step_up_required":
        policy = world.sets[set_id].policy
        minimum = (
            policy.min_assurance_transfer
            if operation == "value_transfer"
            else policy.min_assurance_link
        )
        level, max_age, in_person = (
            transfer_requirement(policy, amount, already) if amount else link_requirement(policy)
        )
        anchors = {
            i.anchor_id
            for i in holder
            if in_set(world, i, set_id)
            and identity_failure(world, i, set_id, minimum) is None
            and rank(i.level) >= rank(level)
        }
        step_up = StepUp(
            level,
            max_age,
            set_id,
            tuple(sorted(anchors)),
            in_person,
            dynamic_linking=operation in policy.dynamic_linking,
        )
    return Expected(reason, set_id, step_up)


def reference_transfer(t: Transfer) -> Expected:
    return reference(
        t.world,
        "value_transfer",
        [t.debtor, t.creditor],
        t.login,
        t.debtor,
        t.amount,
        t.kyc,
        t.already,
        t.signed,
    )


def reference_link(k: Link) -> Expected:
    parties = [[k.deposit_through], [k.wallet_through]]
    return reference(k.world, "account_link", parties, k.login, k.identities, None, k.kyc)


def sets_of(world: TrustSnapshot, identities: list[IdentityFact]) -> set[str]:
    found: set[str] = set()
    for identity in identities:
        anchor = world.anchors.get(identity.anchor_id)
        if anchor is not None:
            found.update(anchor.set_ids)
    return found


# -- properties ------------------------------------------------------------------------------

MANY = settings(max_examples=300)


@MANY
@given(transfers())
def test_transfer_matches_the_reference(t: Transfer) -> None:
    decision = t.decide()
    expected = reference_transfer(t)
    assert (decision.reason, decision.anchor_set_id, decision.step_up) == (
        expected.reason,
        expected.anchor_set_id,
        expected.step_up,
    )
    if expected.anchor_set_id is not None:
        assert decision.policy_version == t.world.sets[expected.anchor_set_id].version


@MANY
@given(links())
def test_link_matches_the_reference(k: Link) -> None:
    decision = k.decide()
    expected = reference_link(k)
    assert (decision.reason, decision.anchor_set_id, decision.step_up) == (
        expected.reason,
        expected.anchor_set_id,
        expected.step_up,
    )


@given(transfers())
def test_without_a_common_set_never_allowed(t: Transfer) -> None:
    if sets_of(t.world, t.debtor) & sets_of(t.world, t.creditor):
        return
    decision = t.decide()
    assert not decision.allowed
    assert decision.reason in {"no_common_anchor_set"} | ACCOUNT_REASONS


@given(transfers(), st.frozensets(st.sampled_from(SET_IDS)), st.data())
def test_a_suspended_anchor_never_turns_denied_into_allowed(
    t: Transfer, memberships: frozenset[str], data: st.DataObject
) -> None:
    before = t.decide()
    anchors = [
        AnchorFact(a.id, "active" if a.active else "suspended", frozenset(a.set_ids))
        for a in t.world.anchors.values()
    ]
    sets = [AnchorSetFact(s.id, s.policy, s.version) for s in t.world.sets.values()]
    world = TrustSnapshot.build([*anchors, AnchorFact("new", "suspended", memberships)], sets)
    # ... and every party gets an identity at it, the login may even go through it.
    extra = [
        IdentityFact("debtor-new", "debtor", "new", "high", None, "valid"),
        IdentityFact("creditor-new", "creditor", "new", "high", None, "valid"),
    ]
    identities = t.identities + extra
    login = t.login
    if data.draw(st.booleans()):
        login = AuthenticationFact("debtor", "debtor-new", "new", "high", AT)
    after = t.decide(world=world, identities=identities, login=login)
    if not before.allowed:
        assert not after.allowed
    if login is t.login and before.allowed:
        assert after.allowed  # and it does not hurt either


@given(transfers())
def test_a_stronger_login_never_turns_allowed_into_denied(t: Transfer) -> None:
    if not t.decide().allowed:
        return
    for level in LEVELS[rank(t.login.level) :]:
        assert t.decide(login=replace(t.login, level=level)).allowed
    assert t.decide(login=replace(t.login, auth_time=AT)).allowed  # fresher never hurts either


@given(links())
def test_a_stronger_login_never_turns_an_allowed_link_into_denied(k: Link) -> None:
    if not k.decide().allowed:
        return
    for level in LEVELS[rank(k.login.level) :]:
        assert k.decide(login=replace(k.login, level=level)).allowed


@given(transfers(), st.integers(0, 2_000_000))
def test_less_already_authorized_never_turns_allowed_into_denied(t: Transfer, less: int) -> None:
    """Cumulative limits and step-ups are monotone in the window totals."""
    if t.decide().allowed:
        assert t.decide(already=min(less, t.already)).allowed


@given(transfers())
def test_without_room_left_in_a_window_a_transfer_is_never_allowed(t: Transfer) -> None:
    """Whatever the login: the set relied on leaves room for this amount in every cumulative
    limit of its currency."""
    decision = t.decide()
    if decision.allowed:
        assert decision.anchor_set_id is not None
        policy = t.world.sets[decision.anchor_set_id].policy
        for rule in policy.cumulative:
            if rule.currency == t.amount.currency:
                assert t.already + t.amount.minor <= rule.limit.minor


@given(transfers(), st.integers(1, 2_000_000))
def test_a_smaller_amount_in_the_same_currency_is_allowed_too(t: Transfer, smaller: int) -> None:
    if not t.decide().allowed or smaller >= t.amount.minor:
        return
    assert t.decide(amount=Amount(t.amount.currency, smaller)).allowed


@MANY
@given(transfers())
def test_an_allowed_transfer_relies_only_on_active_anchors_of_the_set_and_covers_both_parties(
    t: Transfer,
) -> None:
    decision = t.decide()
    if not decision.allowed:
        assert decision.relied_anchors == ()
        return
    assert decision.anchor_set_id is not None
    view = t.world.sets[decision.anchor_set_id]
    for anchor_id in decision.relied_anchors:
        assert t.world.anchors[anchor_id].active
        assert anchor_id in view.members
    relied = set(decision.relied_anchors)
    assert relied & {i.anchor_id for i in t.debtor}
    assert relied & {i.anchor_id for i in t.creditor}
    assert t.login.anchor_id in relied


@given(links())
def test_an_allowed_link_relies_on_the_anchors_of_both_bindings(k: Link) -> None:
    decision = k.decide()
    if decision.allowed:
        assert {k.deposit_through.anchor_id, k.wallet_through.anchor_id} <= set(
            decision.relied_anchors
        )


@MANY
@given(transfers())
def test_following_a_step_up_request_is_allowed(t: Transfer) -> None:
    decision = t.decide()
    if decision.step_up is None:
        assert decision.reason != "step_up_required"
        return
    step_up = decision.step_up
    channel = "in_person" if step_up.in_person else "remote"
    for anchor_id in step_up.anchors:  # each anchor named can satisfy the step-up
        fresh = [
            AuthenticationFact("debtor", i.id, anchor_id, i.level, AT, channel=channel)
            for i in t.debtor
            if i.anchor_id == anchor_id and rank(i.level) >= rank(step_up.assurance)
        ]
        signed = step_up.dynamic_linking or t.signed
        assert any(t.decide(login=login, signed=signed).allowed for login in fresh)


@given(transfers())
def test_a_login_at_the_counter_never_turns_allowed_into_denied(t: Transfer) -> None:
    if t.decide().allowed:
        assert t.decide(login=replace(t.login, channel="in_person")).allowed


@given(links())
def test_a_link_login_at_the_counter_never_turns_allowed_into_denied(k: Link) -> None:
    if k.decide().allowed:
        assert k.decide(login=replace(k.login, channel="in_person")).allowed


@MANY
@given(transfers())
def test_a_login_taken_over_from_sso_never_meets_an_in_person_requirement(t: Transfer) -> None:
    """Whatever channel the session's login was made through."""
    from_sso = replace(t.login, channel="in_person", fresh=False)
    decision = t.decide(login=from_sso)
    if decision.allowed:
        assert decision.anchor_set_id is not None
        policy = t.world.sets[decision.anchor_set_id].policy
        assert not transfer_requirement(policy, t.amount)[2]


@MANY
@given(links())
def test_a_link_login_taken_over_from_sso_never_meets_an_in_person_requirement(k: Link) -> None:
    decision = k.decide(login=replace(k.login, channel="in_person", fresh=False))
    if decision.allowed:
        assert decision.anchor_set_id is not None
        assert k.world.sets[decision.anchor_set_id].policy.channel_link != "in_person"


@given(transfers())
def test_a_remote_login_is_allowed_only_where_no_channel_is_required(t: Transfer) -> None:
    decision = t.decide(login=replace(t.login, channel="remote"))
    if decision.allowed:
        assert decision.anchor_set_id is not None
        policy = t.world.sets[decision.anchor_set_id].policy
        assert not transfer_requirement(policy, t.amount)[2]


@MANY
@given(transfers())
def test_a_step_up_rule_at_the_counter_binds_every_amount_above_it(t: Transfer) -> None:
    """Every step-up rule of the world made in person: a remote login (or one from SSO) is
    allowed only where no rule applies to the amount, and a fresh login at the counter is
    allowed wherever the remote one was allowed with the rules as they were."""
    anchors = [
        AnchorFact(a.id, "active" if a.active else "suspended", frozenset(a.set_ids))
        for a in t.world.anchors.values()
    ]
    sets = [
        AnchorSetFact(
            v.id,
            replace(
                v.policy, step_up=tuple(replace(r, channel="in_person") for r in v.policy.step_up)
            ),
            v.version,
        )
        for v in t.world.sets.values()
    ]
    world = TrustSnapshot.build(anchors, sets)
    for login in (replace(t.login, channel="remote"), replace(t.login, fresh=False)):
        decision = t.decide(world=world, login=login)
        if decision.allowed:
            assert decision.anchor_set_id is not None
            policy = world.sets[decision.anchor_set_id].policy
            assert not any(
                r.currency == t.amount.currency and t.amount > r.above for r in policy.step_up
            )
    counter = replace(t.login, channel="in_person", fresh=True)
    if t.decide(login=replace(counter, channel="remote")).allowed:
        assert t.decide(world=world, login=counter).allowed


@MANY
@given(transfers())
def test_dynamic_linking_is_met_only_by_a_fresh_login_that_signed_the_transfer(
    t: Transfer,
) -> None:
    for decision in (t.decide(login=replace(t.login, fresh=False)), t.decide(signed=False)):
        if decision.allowed:
            assert decision.anchor_set_id is not None
            assert not t.world.sets[decision.anchor_set_id].policy.dynamic_linking


@given(transfers(), st.randoms(use_true_random=False))
def test_the_order_of_identities_does_not_matter(t: Transfer, rng: random.Random) -> None:
    shuffled = list(t.identities)
    rng.shuffle(shuffled)
    assert t.decide(identities=shuffled) == t.decide()


@given(transfers())
def test_identities_of_strangers_change_nothing(t: Transfer) -> None:
    stranger = IdentityFact("stranger-0", "stranger", "a0", "high", None, "valid")
    assert t.decide(identities=[stranger, *t.identities]) == t.decide()


def test_the_random_worlds_reach_every_outcome() -> None:
    """The properties above are only as good as the worlds they see: in a few hundred random
    transfers, every outcome of a set's checks (and a step-up someone can follow) turns up."""
    seen: set[str] = set()

    # Derandomised: the same worlds every run, so the coverage it asserts is not a dice roll.
    @settings(max_examples=1500, phases=[Phase.generate], database=None, derandomize=True)
    @given(transfers())
    def sample(t: Transfer) -> None:
        decision = t.decide()
        seen.add(decision.reason)
        if decision.step_up is not None and decision.step_up.anchors:
            seen.add("step_up_with_anchors")
            if decision.step_up.in_person:
                seen.add("step_up_in_person")
            if decision.step_up.dynamic_linking:
                seen.add("step_up_dynamic_linking")
        at_counter = replace(t.login, channel="in_person", fresh=True)
        remote = replace(at_counter, channel="remote")
        if t.decide(login=at_counter).allowed and not t.decide(login=remote).allowed:
            seen.add("allowed_in_person_only")  # the channel, and only it, made the difference

    sample()
    wanted = {
        "allowed",
        "no_common_anchor_set",
        *(r for r in STAGE_REASONS if r not in STANDING_REASONS),  # link and transfer: none
        "step_up_with_anchors",
        "step_up_in_person",
        "allowed_in_person_only",
        "step_up_dynamic_linking",
    }
    assert wanted <= seen, wanted - seen
