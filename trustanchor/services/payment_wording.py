"""What the consent page needs to word a payment as a person understands it, without a web
framework: amounts written for the language, why a stronger or fresher login is needed (from the
decision's :class:`~trustanchor.policy.decision.StepUp` and the anchor set's policy), which trust
schemes a refusal involves, and who the payee is (``services/payee.py``).

Amounts: ``5,000円`` in Japanese for yen, otherwise the ISO code before the grouped number with
exactly the currency's decimals (``JPY 5,000``, ``EUR 1,234.50``). :func:`parse_shown_amount`
reads such a text back, so a test can check that nothing is lost or rounded on the way.

Step-up reasons are facts about the policy and the login, never guesses: a threshold is named
only when a rule of the set applies to this amount and asks for exactly what the step-up asks
for; otherwise the reason names the requirement without a threshold. The page words them
(``web/operations.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar

from trustanchor.domain.assurance import rank
from trustanchor.domain.money import MINOR_UNITS, Amount, MoneyError, parse_amount
from trustanchor.policy.anchor_set_policy import (
    AnchorSetPolicy,
    CumulativeLimit,
    CumulativeStepUp,
    StepUpRule,
)
from trustanchor.policy.decision import StepUp
from trustanchor.services import payee
from trustanchor.services.container import Services
from trustanchor.services.decisions import DetailDecision, Outcome, trust_snapshot
from trustanchor.storage import identities_repo

TRANSFER: Final = "value_transfer"
FUNDING: Final = "funding"
LINK: Final = "account_link"
STANDING: Final = "standing_funding"

# ----------------------------------------------------------------------------------- amounts


def _grouped(whole: int) -> str:
    return f"{whole:,}"


def amount_number(amount: Amount) -> str:
    """The number alone, grouped by thousands, with exactly the currency's decimals."""
    decimals = MINOR_UNITS[amount.currency]
    whole, fraction = divmod(amount.minor, 10**decimals)
    return _grouped(whole) + (f".{fraction:0{decimals}d}" if decimals else "")


def format_amount(amount: Amount, language: str) -> str:
    """``5,000円`` (Japanese, yen), else ``JPY 5,000`` / ``EUR 1,234.50``."""
    if language == "ja" and amount.currency == "JPY":
        return amount_number(amount) + "円"
    return f"{amount.currency} {amount_number(amount)}"


_SHOWN = re.compile(r"([A-Z]{3}) ([0-9]{1,3}(?:,[0-9]{3})*(?:\.[0-9]+)?)")
_SHOWN_YEN = re.compile(r"([0-9]{1,3}(?:,[0-9]{3})*)円")


def parse_shown_amount(text: str, language: str) -> Amount:
    """The amount a text of :func:`format_amount` shows; MoneyError for anything else."""
    match = _SHOWN_YEN.fullmatch(text) if language == "ja" else None
    if match is not None:
        return parse_amount(match.group(1).replace(",", ""), "JPY")
    match = _SHOWN.fullmatch(text)
    if match is None or (language == "ja" and match.group(1) == "JPY"):
        raise MoneyError("bad_amount", "not an amount as shown")
    amount = parse_amount(match.group(2).replace(",", ""), match.group(1))
    if amount_number(amount) != match.group(2):  # shown with exactly the currency's decimals
        raise MoneyError("bad_amount", "not an amount as shown")
    return amount


def entry_amount(entry: Mapping[str, Any]) -> Amount | None:
    """The instructed amount of a transfer or funding entry (already validated), else None."""
    instructed = entry.get("instructed_amount")
    if not isinstance(instructed, Mapping):
        return None
    try:
        return parse_amount(instructed.get("amount"), instructed.get("currency"))
    except MoneyError:
        return None


# ---------------------------------------------------------------------------- step-up reasons

ReasonCode = Literal[
    "amount_level",  # amounts above ``above`` need ``level``
    "operation_level",  # this operation needs ``level`` in this set, whatever the amount
    "total_level",  # with this payment, the total over ``window`` is above ``above``
    "level",  # ``level`` is needed (no rule of the set explains it alone)
    "amount_age",  # amounts above ``above`` need a login made within ``max_age``
    "total_age",  # the total over ``window`` above ``above`` needs a login within ``max_age``
    "age",  # a login made within ``max_age`` is needed
    "amount_in_person",  # amounts above ``above`` need a login at a branch counter
    "in_person",  # this operation needs a login at a branch counter
    "dynamic_linking",  # the payment must be confirmed (signed) in the wallet
]


@dataclass(frozen=True, slots=True)
class StepUpReason:
    code: ReasonCode
    level: str | None = None
    above: Amount | None = None
    max_age: int | None = None
    window: str | None = None


LoginShortfall = Literal["level", "sso", "age", "not_in_person", "not_signed"]


@dataclass(frozen=True, slots=True)
class StepUpExplanation:
    """Why a new login is needed (``reasons``, from the set's rules), where the current login
    falls short (``shortfalls``, each a fact about it: ``level`` too low, from an earlier
    session (``sso``), older than ``max_age``, not made at a counter, the payment not signed
    in the wallet), and what the new login must be: ``stronger`` (a higher level),
    ``in_person``, ``signed`` (dynamic linking)."""

    reasons: tuple[StepUpReason, ...]
    shortfalls: tuple[LoginShortfall, ...]
    level: str
    login_level: str
    max_age: int | None
    anchor_set_id: str
    stronger: bool
    in_person: bool
    signed: bool


@dataclass(frozen=True, slots=True)
class LoginState:
    """The login the decision was made for, as far as a step-up is concerned."""

    level: str
    auth_time: int
    fresh: bool
    channel: str = "remote"


_Rule = TypeVar("_Rule", StepUpRule, CumulativeStepUp)


@dataclass(frozen=True, slots=True)
class _Rules:
    minimum: str
    channel: str
    per_amount: tuple[StepUpRule, ...]
    totals: tuple[CumulativeStepUp, ...]


def _rules(policy: AnchorSetPolicy, operation: str) -> _Rules:
    """The policy's requirements for ``operation``."""
    if operation == TRANSFER:
        return _Rules(
            policy.min_assurance_transfer,
            policy.channel_transfer,
            tuple(policy.step_up),
            tuple(r for r in policy.cumulative_step_up if r.operation == TRANSFER),
        )
    if operation in (FUNDING, STANDING):  # a standing authorization: no amount, no amount rule
        return _Rules(
            policy.min_assurance_funding,
            policy.channel_funding,
            tuple(policy.funding_step_up),
            tuple(r for r in policy.cumulative_step_up if r.operation == FUNDING),
        )
    return _Rules(policy.min_assurance_link, policy.channel_link, (), ())


def _lowest(rules: list[_Rule]) -> _Rule | None:
    return min(rules, key=lambda rule: rule.above.minor) if rules else None


def explain_step_up(
    policy: AnchorSetPolicy | None,
    needed: StepUp,
    entry: Mapping[str, Any],
    login: LoginState,
    *,
    at: int,
) -> StepUpExplanation:
    """Why ``needed`` (the decision's step-up for ``entry``) asks for a new login."""
    operation = str(entry.get("type", ""))
    amount = entry_amount(entry) if operation in (TRANSFER, FUNDING) else None
    rules = _rules(policy, operation) if policy is not None else _Rules("low", "any", (), ())
    applying = [
        r
        for r in rules.per_amount
        if amount is not None and r.currency == amount.currency and amount.minor > r.above.minor
    ]
    totals = [r for r in rules.totals if amount is not None and r.currency == amount.currency]
    reasons: list[StepUpReason] = []
    shortfalls: list[LoginShortfall] = []
    stronger = rank(login.level) < rank(needed.assurance)
    if stronger:
        shortfalls.append("level")
        rule = _lowest([r for r in applying if r.assurance == needed.assurance])
        total = _lowest([r for r in totals if r.assurance == needed.assurance])
        if rule is not None:
            reasons.append(StepUpReason("amount_level", level=needed.assurance, above=rule.above))
        elif rules.minimum == needed.assurance:
            reasons.append(StepUpReason("operation_level", level=needed.assurance))
        elif total is not None:
            reasons.append(
                StepUpReason(
                    "total_level", level=needed.assurance, above=total.above, window=total.window
                )
            )
        else:
            reasons.append(StepUpReason("level", level=needed.assurance))
    max_age = needed.max_age
    if max_age is not None and not (login.fresh and at - login.auth_time <= max_age):
        shortfalls.append("age" if login.fresh else "sso")
        rule = _lowest([r for r in applying if r.max_age == max_age])
        total = _lowest([r for r in totals if r.max_age == max_age])
        if rule is not None:
            reasons.append(StepUpReason("amount_age", max_age=max_age, above=rule.above))
        elif total is not None:
            reasons.append(
                StepUpReason("total_age", max_age=max_age, above=total.above, window=total.window)
            )
        else:
            reasons.append(StepUpReason("age", max_age=max_age))
    if needed.in_person and not (login.fresh and login.channel == "in_person"):
        shortfalls.append("not_in_person")
        rule = _lowest([r for r in applying if r.channel == "in_person"])
        if rule is not None and rules.channel != "in_person":
            reasons.append(StepUpReason("amount_in_person", above=rule.above))
        else:
            reasons.append(StepUpReason("in_person"))
    signed = needed.dynamic_linking
    if signed:
        shortfalls.append("not_signed")
        reasons.append(StepUpReason("dynamic_linking"))
    return StepUpExplanation(
        reasons=tuple(reasons),
        shortfalls=tuple(shortfalls),
        level=needed.assurance,
        login_level=login.level,
        max_age=max_age,
        anchor_set_id=needed.anchor_set_id,
        stronger=stronger,
        in_person=needed.in_person,
        signed=signed,
    )


def set_policy(services: Services, anchor_set_id: str | None) -> AnchorSetPolicy | None:
    """The parsed policy of a set, as the engine sees it (None for an unknown set)."""
    if anchor_set_id is None:
        return None
    view = trust_snapshot(services).sets.get(anchor_set_id)
    return view.policy if view is not None else None


def single_limit(policy: AnchorSetPolicy | None, entry: Mapping[str, Any]) -> Amount | None:
    """The set's limit for one transfer (or funding movement) in the entry's currency."""
    amount = entry_amount(entry)
    if policy is None or amount is None:
        return None
    limits = policy.funding_limits if entry.get("type") == FUNDING else policy.limits
    return limits.get(amount.currency)


def cumulative_limits(
    policy: AnchorSetPolicy | None, entry: Mapping[str, Any]
) -> tuple[CumulativeLimit, ...]:
    """The set's cumulative limits that count this transfer (or funding movement): its
    operation, its currency."""
    amount = entry_amount(entry)
    operation = entry.get("type")
    if policy is None or amount is None or operation not in (TRANSFER, FUNDING):
        return ()
    return tuple(
        r for r in policy.cumulative if r.operation == operation and r.currency == amount.currency
    )


# -------------------------------------------------------------------------- refusal schemes


@dataclass(frozen=True, slots=True)
class Schemes:
    """The anchor sets (trust schemes) each side of a refused transfer is verified in: through
    identities that are current (neither expired nor revoked) at anchors that are active."""

    payer: tuple[str, ...]
    payee: tuple[str, ...]


def schemes(services: Services, item: DetailDecision, holder_id: str, *, at: int) -> Schemes:
    """The sets of the payer (``holder_id``) and of the creditor's holder of a transfer."""
    creditor_id = item.entry.get("creditor_account")
    creditor = item.accounts.get(creditor_id) if isinstance(creditor_id, str) else None
    holders = [holder_id] + ([creditor.holder_id] if creditor and creditor.holder_id else [])
    with services.db.reader() as conn:
        rows = identities_repo.for_holders(conn, holders)
    sets: dict[str, set[str]] = {}
    for row in rows:
        anchor = services.anchors.get(row.anchor_id)
        current = row.credential_status in ("valid", "unknown") and (
            row.expires_at is None or row.expires_at > at
        )
        if anchor is None or not anchor.is_active or not current:
            continue
        sets.setdefault(row.holder_id, set()).update(anchor.anchor_sets)
    payee_holder = creditor.holder_id if creditor is not None else None
    return Schemes(
        payer=tuple(sorted(sets.get(holder_id, set()))),
        payee=tuple(sorted(sets.get(payee_holder, set()))) if payee_holder else (),
    )


# ------------------------------------------------------------------------------------ payees


def payees(services: Services, outcome: Outcome, language: str) -> dict[str, payee.Payee]:
    """The payee of every transfer in ``outcome``, by creditor account id. Only an account that
    is bound to a person and active is a payee whose registered name is shown: for any other
    (unknown, unbound, closed or flagged: the transfer cannot go there) the page shows the
    masked account id alone, so that naming an account id is no way to read its label."""
    wanted = []
    for item in outcome.decisions:
        creditor = item.entry.get("creditor_account")
        account = item.accounts.get(creditor) if isinstance(creditor, str) else None
        if item.entry.get("type") != TRANSFER or account is None:
            continue
        if account.holder_id is not None and account.status == "active":
            wanted.append(account.id)
    found: dict[str, payee.Payee] = {}
    if not wanted:
        return found
    with services.db.reader() as conn:
        for account_id in wanted:
            described = payee.describe(services, conn, account_id, language=language)
            if described is not None:
                found[account_id] = described
    return found
