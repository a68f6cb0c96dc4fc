"""The policy engine: may this link, transfer, funding movement or standing authorization of
funding happen, and on which anchor set does it rely?

A pure function of (request, login, identities, snapshot of anchors and sets, ``at``): no I/O,
no clock, no randomness, so it is cheap to call on every request and can be tested exhaustively.
Nothing is allowed unless one anchor set passes every check; docs/POLICY.md is the reference.

1. **Account checks** (the same in every set, so made first):
   - link: no account bound now that another intermediary registered, both accounts bound,
     both the logged-in holder's, an account of the requesting intermediary named, the right
     kinds, an existing link for unlink, no closed or flagged account (not for unlink: an
     account's state never stands in the way of removing one of its links);
   - transfer: both accounts bound, the debtor's the logged-in holder's, a debtor account
     registered elsewhere linked to one of the requester's, no closed or flagged account;
   - funding: both accounts bound, both the logged-in holder's (``holder_mismatch``), the right
     kinds (``account_kind_mismatch``), an account of the requester named
     (``account_registered_elsewhere``), a debited account registered elsewhere only with its
     intermediary's approval of debits over the link (``debit_not_approved``), an active link
     (``link_not_found``) that is not flagged (``link_flagged``), no closed or flagged account;
   - standing authorization of funding: the funding checks, the debit approval for every
     direction asked (a movement of ``max_amount`` in each).
2. **Candidate sets**: the sets that hold, for every *party*, an anchor of one of the party's
   identities. Link and funding (and standing authorization) parties are the identity each
   account was bound through; transfer parties are the debtor's holder and the creditor's
   holder with all their identities (the anchors that vouch for a holder are the union of
   their identities). None →
   ``no_common_anchor_set``.
3. **Per candidate, in order**: ``operation_not_allowed``; for a standing authorization
   ``standing_not_allowed`` (the set's ``standing_funding_max_days`` is 0) and
   ``standing_too_long`` (``valid_days`` above it); then, for every party, whether one of
   its identities in the set passes ``anchor_suspended``, ``credential_revoked``,
   ``credential_status_unknown`` (fail_closed only), ``identity_expired`` and
   ``assurance_too_low`` (against the set's minimum for the operation; a party's best identity
   decides how far the party gets, the party that gets least far decides for the set); then
   ``kyc_not_registered`` and ``kyc_mismatch`` (the set's ``account_kyc`` against the accounts'
   KYC states; not for unlink); then, for transfer and funding (for a standing authorization,
   its ``max_amount`` as the amount), ``currency_not_allowed``, ``limit_exceeded``
   (``limits`` / ``funding_limits``) and ``cumulative_limit_exceeded`` (the window totals the
   service passes in, plus this amount, against the set's cumulative limits of the
   operation); then ``step_up_required``: the login must be through an anchor of the
   set, with an identity that itself passes the identity checks, at the level the set demands
   for this operation and amount, and recent enough if a step-up rule sets a maximum age, and
   made at a branch counter (channel ``in_person``) when the set's ``channel_link`` /
   ``channel_transfer`` / ``channel_funding`` or an applying step-up rule says so, and, when the
   set's ``dynamic_linking`` lists the operation, be a presentation made for this request that
   signed the operation's transaction data; a step-up rule, an in-person requirement and
   dynamic linking are only ever satisfied by a fresh login (one performed for this request,
   not taken over from an SSO session).
4. The first candidate by id that passes is relied on. If none passes, the reported failure is
   the one furthest along the order in 3 (ties: the first set by id), so that
   ``step_up_required`` wins whenever a stronger login would help somewhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from trustanchor.domain.assurance import LEVELS
from trustanchor.policy.decision import Decision, StepUp, denied
from trustanchor.policy.facts import (
    AccountFact,
    AuthenticationFact,
    FundingRequest,
    IdentityFact,
    LinkRequest,
    StandingFundingRequest,
    TransferRequest,
)
from trustanchor.policy.snapshot import SetView, TrustSnapshot

# How far a candidate set got: the index of the first check it failed, PASSED if none.
OPERATION_NOT_ALLOWED = 0
STANDING_NOT_ALLOWED = 1  # standing authorizations only
STANDING_TOO_LONG = 2  # standing authorizations only
ANCHOR_SUSPENDED = 3
CREDENTIAL_REVOKED = 4
CREDENTIAL_STATUS_UNKNOWN = 5
IDENTITY_EXPIRED = 6
ASSURANCE_TOO_LOW = 7
IDENTITY_PASSED = 8  # every identity check passed; the request checks follow
KYC_NOT_REGISTERED = 8
KYC_MISMATCH = 9
CURRENCY_NOT_ALLOWED = 10
LIMIT_EXCEEDED = 11
CUMULATIVE_LIMIT_EXCEEDED = 12
STEP_UP_REQUIRED = 13
PASSED = 14
# domain.assurance.rank as a dictionary: the engine ranks levels many times per decision.
_NO_TOTALS: Mapping[tuple[str, str, str], int] = MappingProxyType({})
_RANK: dict[str, int] = {level: index for index, level in enumerate(LEVELS)}
STAGE_REASONS = (
    "operation_not_allowed",
    "standing_not_allowed",
    "standing_too_long",
    "anchor_suspended",
    "credential_revoked",
    "credential_status_unknown",
    "identity_expired",
    "assurance_too_low",
    "kyc_not_registered",
    "kyc_mismatch",
    "currency_not_allowed",
    "limit_exceeded",
    "cumulative_limit_exceeded",
    "step_up_required",
)
# The stages only a standing authorization can fail (a link, transfer or funding never does).
STANDING_REASONS = ("standing_not_allowed", "standing_too_long")


@dataclass(slots=True)  # not frozen: private, never changed, and a frozen __init__ costs more
class _Evaluation:
    """One decision's inputs after the account checks, in the engine's terms."""

    snapshot: TrustSnapshot
    operation: str  # account_link, value_transfer or funding
    parties: tuple[Sequence[IdentityFact], ...]
    login: AuthenticationFact
    login_identity: IdentityFact | None
    login_rank: int
    holder_identities: Sequence[IdentityFact]  # the logged-in holder's: who can step up
    kyc: tuple[str, ...]  # the KYC states of the accounts the set's account_kyc applies to
    currency: str | None
    minor: int
    at: int
    totals: Mapping[tuple[str, str, str], int]  # (set id, window, per) → authorized so far
    transaction_signed: bool = False  # the login's presentation signed this operation
    standing_days: int | None = None  # a standing authorization's valid_days (None: not one)


def decide_link(
    snapshot: TrustSnapshot,
    request: LinkRequest,
    authentication: AuthenticationFact,
    identities: Sequence[IdentityFact],
    *,
    at: int,
) -> Decision:
    """Decide an ``account_link`` (link or unlink). ``identities``: the logged-in holder's
    identities, which include the identities the two accounts were bound through."""
    deposit, wallet = request.deposit_account, request.wallet_account
    if any(not _is_bound(a) and a.registered_elsewhere for a in (deposit, wallet)):
        return denied("account_registered_elsewhere")  # only its own intermediary binds it
    if not (_is_bound(deposit) and _is_bound(wallet)):
        return denied("account_not_bound")
    holder = authentication.holder_id
    if deposit.holder_id != holder or wallet.holder_id != holder:
        return denied("holder_mismatch")
    if deposit.registered_elsewhere and wallet.registered_elsewhere:
        return denied("account_registered_elsewhere")  # neither account is the requester's
    holder_identities = [i for i in identities if i.holder_id == holder]
    deposit_identity = _binding_identity(deposit, holder_identities)
    wallet_identity = _binding_identity(wallet, holder_identities)
    if deposit_identity is None or wallet_identity is None:
        return denied("account_not_bound")  # bound through an identity we were not given
    if deposit.kind != "bank_deposit" or wallet.kind != "cbdc_wallet":
        return denied("account_kind_mismatch")
    if request.action == "unlink":
        if not request.linked:
            return denied("link_not_found")
    else:
        refusal = _account_status(deposit, wallet)
        if refusal is not None:
            return denied(refusal)
    evaluation = _Evaluation(
        snapshot=snapshot,
        operation="account_link",
        parties=((deposit_identity,), (wallet_identity,)),
        login=authentication,
        login_identity=_login_identity(authentication, holder_identities),
        login_rank=_RANK.get(authentication.level, -1),
        holder_identities=holder_identities,
        kyc=(deposit.kyc, wallet.kyc) if request.action == "link" else (),
        currency=None,
        minor=0,
        at=at,
        totals=_NO_TOTALS,
    )
    return _decide(evaluation)


def decide_transfer(
    snapshot: TrustSnapshot,
    request: TransferRequest,
    authentication: AuthenticationFact,
    identities: Sequence[IdentityFact],
    *,
    at: int,
) -> Decision:
    """Decide a ``value_transfer``. ``identities``: the debtor holder's and the creditor
    holder's identities (others are ignored)."""
    debtor, creditor = request.debtor_account, request.creditor_account
    if not (_is_bound(debtor) and _is_bound(creditor)):
        return denied("account_not_bound")
    if debtor.holder_id != authentication.holder_id:
        return denied("holder_mismatch")
    if debtor.registered_elsewhere and not request.debtor_linked_here:
        return denied("debtor_account_elsewhere")
    refusal = _account_status(debtor, creditor)
    if refusal is not None:
        return denied(refusal)
    debtor_identities = [i for i in identities if i.holder_id == debtor.holder_id]
    creditor_identities = (
        debtor_identities
        if creditor.holder_id == debtor.holder_id
        else [i for i in identities if i.holder_id == creditor.holder_id]
    )
    evaluation = _Evaluation(
        snapshot=snapshot,
        operation="value_transfer",
        parties=(debtor_identities, creditor_identities),
        login=authentication,
        login_identity=_login_identity(authentication, debtor_identities),
        login_rank=_RANK.get(authentication.level, -1),
        holder_identities=debtor_identities,
        kyc=(debtor.kyc, creditor.kyc),
        currency=request.amount.currency,
        minor=request.amount.minor,
        at=at,
        totals=request.totals,
        transaction_signed=request.transaction_signed,
    )
    return _decide(evaluation)


def decide_funding(
    snapshot: TrustSnapshot,
    request: FundingRequest,
    authentication: AuthenticationFact,
    identities: Sequence[IdentityFact],
    *,
    at: int,
) -> Decision:
    """Decide a ``funding`` movement between the logged-in holder's deposit account and CBDC
    wallet over their link. ``identities``: the logged-in holder's identities, which include
    the identities the two accounts were bound through (the parties, as for a link)."""
    return _decide_funding(
        snapshot,
        request,
        (request.debtor_account,),
        authentication,
        identities,
        at=at,
        standing_days=None,
    )


def decide_standing_funding(
    snapshot: TrustSnapshot,
    request: StandingFundingRequest,
    authentication: AuthenticationFact,
    identities: Sequence[IdentityFact],
    *,
    at: int,
) -> Decision:
    """Decide a standing authorization of funding (``standing_funding``): the funding decision
    for a movement of ``max_amount`` in every direction asked — every funding account check,
    the debit approval for each debited account, the set's funding limit, cumulative funding
    rules and step-up rules against ``max_amount``, dynamic linking of ``funding`` — plus the
    set's ``standing_funding_max_days`` against ``valid_days``. ``identities`` as for
    :func:`decide_funding`. Allowed exactly when each direction's movement of ``max_amount``
    would be allowed by :func:`decide_funding` in a set that allows standing authorizations
    for that long (the set checks do not depend on the direction)."""
    return _decide_funding(
        snapshot,
        request.movement(request.directions[0]),
        request.debtor_accounts,
        authentication,
        identities,
        at=at,
        standing_days=request.valid_days,
    )


def _decide_funding(
    snapshot: TrustSnapshot,
    request: FundingRequest,
    debited: Sequence[AccountFact],
    authentication: AuthenticationFact,
    identities: Sequence[IdentityFact],
    *,
    at: int,
    standing_days: int | None,
) -> Decision:
    """A funding movement (``debited``: its debtor account) or a standing authorization
    (``debited``: the account each direction asked debits; ``request``: a movement of
    ``max_amount`` in one of them, the set checks being the same for all)."""
    deposit, wallet = request.deposit_account, request.wallet_account
    if not (_is_bound(deposit) and _is_bound(wallet)):
        return denied("account_not_bound")
    holder = authentication.holder_id
    if deposit.holder_id != holder or wallet.holder_id != holder:
        return denied("holder_mismatch")  # funding never leaves the person's own accounts
    holder_identities = [i for i in identities if i.holder_id == holder]
    deposit_identity = _binding_identity(deposit, holder_identities)
    wallet_identity = _binding_identity(wallet, holder_identities)
    if deposit_identity is None or wallet_identity is None:
        return denied("account_not_bound")  # bound through an identity we were not given
    if deposit.kind != "bank_deposit" or wallet.kind != "cbdc_wallet":
        return denied("account_kind_mismatch")
    if deposit.registered_elsewhere and wallet.registered_elsewhere:
        return denied("account_registered_elsewhere")  # neither account is the requester's
    if any(account.registered_elsewhere for account in debited) and not request.debit_approved:
        return denied("debit_not_approved")  # only its own intermediary lets it be debited
    if not request.linked:
        return denied("link_not_found")
    if request.link_flagged:
        return denied("link_flagged")
    refusal = _account_status(deposit, wallet)
    if refusal is not None:
        return denied(refusal)
    evaluation = _Evaluation(
        snapshot=snapshot,
        operation="funding",
        parties=((deposit_identity,), (wallet_identity,)),
        login=authentication,
        login_identity=_login_identity(authentication, holder_identities),
        login_rank=_RANK.get(authentication.level, -1),
        holder_identities=holder_identities,
        kyc=(deposit.kyc, wallet.kyc),
        currency=request.amount.currency,
        minor=request.amount.minor,
        at=at,
        totals=request.totals,
        transaction_signed=request.transaction_signed,
        standing_days=standing_days,
    )
    return _decide(evaluation)


# ------------------------------------------------------------------------------ account checks


def _is_bound(account: AccountFact) -> bool:
    return account.holder_id is not None and account.binding_identity_id is not None


def _binding_identity(
    account: AccountFact, holder_identities: Sequence[IdentityFact]
) -> IdentityFact | None:
    """The identity the account was bound through, among its holder's identities."""
    for identity in holder_identities:
        if identity.id == account.binding_identity_id:
            return identity
    return None


def _account_status(*accounts: AccountFact) -> str | None:
    if any(account.status == "closed" for account in accounts):
        return "account_closed"
    if any(account.status != "active" for account in accounts):
        return "account_flagged"
    return None


def _login_identity(
    login: AuthenticationFact, holder_identities: Sequence[IdentityFact]
) -> IdentityFact | None:
    for identity in holder_identities:
        if identity.id == login.identity_id:
            return identity if identity.anchor_id == login.anchor_id else None
    return None


# ----------------------------------------------------------------------------- set evaluation


def _decide(evaluation: _Evaluation) -> Decision:
    party_stages = [_party_stages(evaluation, party) for party in evaluation.parties]
    candidates = set(party_stages[0]).intersection(*party_stages[1:])
    if not candidates:
        return denied("no_common_anchor_set")
    sets = evaluation.snapshot.sets
    furthest, reported = -1, None
    for set_id in sorted(candidates):
        view = sets[set_id]
        stage = _set_stage(evaluation, view, min(stages[set_id] for stages in party_stages))
        if stage == PASSED:
            return Decision(
                allowed=True,
                reason="allowed",
                anchor_set_id=view.id,
                policy_version=view.version,
                relied_anchors=_relied_anchors(evaluation, view),
            )
        if stage > furthest:
            furthest, reported = stage, view
    assert reported is not None
    return Decision(
        allowed=False,
        reason=STAGE_REASONS[furthest],
        anchor_set_id=reported.id,
        policy_version=reported.version,
        step_up=_step_up(evaluation, reported) if furthest == STEP_UP_REQUIRED else None,
    )


def _party_stages(evaluation: _Evaluation, party: Sequence[IdentityFact]) -> dict[str, int]:
    """For each set holding an anchor of one of the party's identities: how far the party's
    best identity in that set gets through the identity checks."""
    anchors, sets = evaluation.snapshot.anchors, evaluation.snapshot.sets
    stages: dict[str, int] = {}
    for identity in party:
        anchor = anchors.get(identity.anchor_id)
        if anchor is None:
            continue
        for set_id in anchor.set_ids:
            stage = _identity_stage(evaluation, identity, sets[set_id], anchor.active)
            if stage > stages.get(set_id, -1):
                stages[set_id] = stage
    return stages


def _identity_stage(
    evaluation: _Evaluation, identity: IdentityFact, view: SetView, anchor_active: bool
) -> int:
    if not anchor_active:
        return ANCHOR_SUSPENDED
    status = identity.credential_status
    if status == "unknown":
        if not view.fail_open:
            return CREDENTIAL_STATUS_UNKNOWN
    elif status != "valid":  # revoked, suspended, or anything we cannot act on
        return CREDENTIAL_REVOKED
    if identity.expires_at is not None and identity.expires_at <= evaluation.at:
        return IDENTITY_EXPIRED
    if _RANK.get(identity.level, -1) < _min_rank(view, evaluation.operation):
        return ASSURANCE_TOO_LOW
    return IDENTITY_PASSED


def _min_rank(view: SetView, operation: str) -> int:
    if operation == "value_transfer":
        return view.min_rank_transfer
    if operation == "funding":
        return view.min_rank_funding
    return view.min_rank_link


def _allows(view: SetView, operation: str) -> bool:
    if operation == "value_transfer":
        return view.allows_transfer
    if operation == "funding":
        return view.allows_funding
    return view.allows_link


def _set_stage(evaluation: _Evaluation, view: SetView, identity_stage: int) -> int:
    if not _allows(view, evaluation.operation):
        return OPERATION_NOT_ALLOWED
    if evaluation.standing_days is not None:
        if view.standing_funding_max_days <= 0:
            return STANDING_NOT_ALLOWED
        if evaluation.standing_days > view.standing_funding_max_days:
            return STANDING_TOO_LONG
    if identity_stage < IDENTITY_PASSED:
        return identity_stage
    if view.account_kyc == "required" and "none" in evaluation.kyc:
        return KYC_NOT_REGISTERED
    if view.account_kyc != "off" and "mismatch" in evaluation.kyc:
        return KYC_MISMATCH
    if evaluation.currency is not None:
        funding = evaluation.operation == "funding"
        limit = (view.funding_limits if funding else view.limits).get(evaluation.currency)
        if limit is None:
            return CURRENCY_NOT_ALLOWED
        if evaluation.minor > limit:
            return LIMIT_EXCEEDED
        for rule in view.cumulative.get((evaluation.operation, evaluation.currency), ()):
            if _window_total(evaluation, view, rule.window, rule.per) > rule.minor:
                return CUMULATIVE_LIMIT_EXCEEDED
    required_rank, max_age, in_person = _requirement(evaluation, view)
    if not _login_satisfies(evaluation, view, required_rank, max_age, in_person):
        return STEP_UP_REQUIRED
    return PASSED


def _requirement(evaluation: _Evaluation, view: SetView) -> tuple[int, int | None, bool]:
    """The login level this operation and amount need in this set, how old it may be, and
    whether it must have been made in person."""
    if evaluation.currency is None:
        return view.min_rank_link, None, view.in_person_link
    if evaluation.operation == "funding":
        required, max_age, in_person = view.min_rank_funding, None, view.in_person_funding
        rules = view.funding_step_up.get(evaluation.currency, ())
    else:
        required, max_age, in_person = view.min_rank_transfer, None, view.in_person_transfer
        rules = view.step_up.get(evaluation.currency, ())
    for rule in rules:
        if evaluation.minor <= rule.above_minor:
            break  # ascending: no later rule applies either
        required = max(required, rule.rank)
        max_age = rule.max_age if max_age is None else min(max_age, rule.max_age)
        in_person = in_person or rule.in_person
    for step in view.cumulative_step_up.get((evaluation.operation, evaluation.currency), ()):
        if _window_total(evaluation, view, step.window, step.per) > step.minor:
            required = max(required, step.rank)
            max_age = step.max_age if max_age is None else min(max_age, step.max_age)
    return required, max_age, in_person


def _window_total(evaluation: _Evaluation, view: SetView, window: str, per: str) -> int:
    """What the service authorized in this window for this set (for this operation: the
    service passes the totals of the operation decided), plus this transfer or movement."""
    return evaluation.totals.get((view.id, window, per), 0) + evaluation.minor


def _login_satisfies(
    evaluation: _Evaluation,
    view: SetView,
    required_rank: int,
    max_age: int | None,
    in_person: bool,
) -> bool:
    login, identity = evaluation.login, evaluation.login_identity
    if identity is None or login.anchor_id not in view.members:
        return False
    anchor = evaluation.snapshot.anchors[login.anchor_id]
    if _identity_stage(evaluation, identity, view, anchor.active) != IDENTITY_PASSED:
        return False
    if evaluation.login_rank < required_rank:
        return False
    if in_person and not (login.fresh and login.channel == "in_person"):
        return False  # an SSO session never stands in for a person at the counter
    if evaluation.operation in view.dynamic_linking and not (
        login.fresh and evaluation.transaction_signed
    ):
        return False  # only a presentation made now, that signed this operation, links it
    if max_age is None:
        return True  # no step-up rule applies
    return login.fresh and evaluation.at - login.auth_time <= max_age


def _relied_anchors(evaluation: _Evaluation, view: SetView) -> tuple[str, ...]:
    """Every anchor in the set through which a party passed, and the login's anchor."""
    anchors = {evaluation.login.anchor_id}
    for party in evaluation.parties:
        for identity in party:
            if _passes_in(evaluation, identity, view):
                anchors.add(identity.anchor_id)
    return tuple(sorted(anchors))


def _step_up(evaluation: _Evaluation, view: SetView) -> StepUp:
    required_rank, max_age, in_person = _requirement(evaluation, view)
    anchors = sorted(
        {
            identity.anchor_id
            for identity in evaluation.holder_identities
            if _RANK.get(identity.level, -1) >= required_rank
            and _passes_in(evaluation, identity, view)
        }
    )
    return StepUp(
        assurance=LEVELS[required_rank],
        max_age=max_age,
        anchor_set_id=view.id,
        anchors=tuple(anchors),
        in_person=in_person,
        dynamic_linking=evaluation.operation in view.dynamic_linking,
    )


def _passes_in(evaluation: _Evaluation, identity: IdentityFact, view: SetView) -> bool:
    if identity.anchor_id not in view.members:
        return False
    anchor = evaluation.snapshot.anchors[identity.anchor_id]
    return _identity_stage(evaluation, identity, view, anchor.active) == IDENTITY_PASSED
