"""How the consent page words account links, payments and funding, in the person's language.

A payment leads with its amount, written for the language (``5,000円``, ``JPY 5,000``), and its
payee in words a person recognises (``services/payee.py``): the account name the payee's
intermediary registered (another party's free text: bounded and stripped of control characters
there, escaped by the page, and always shown as that intermediary's registered name, beside the
intermediary's own name and a masked account reference), never more than the payee's own bank
would show. The person's own accounts are shown by the label their intermediary registered, and
so are the requesting intermediary's accounts nobody is bound to yet (the ones a link will
bind); any other account only by a masked reference.

A refused operation says why, naming the trust schemes (anchor sets) involved; an operation that
needs a new login is not a refusal: :func:`step_up_view` says why the login is needed, from the
decision's step-up and the set's policy (``services/payment_wording.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustanchor.domain.accounts import Account
from trustanchor.domain.money import Amount
from trustanchor.oauth import standing_funding
from trustanchor.services import payee, payment_wording
from trustanchor.services.container import Services
from trustanchor.services.decisions import DetailDecision, Outcome
from trustanchor.services.payment_wording import LoginState, StepUpReason
from trustanchor.web.i18n import Translator

TRANSFER = payment_wording.TRANSFER
FUNDING = payment_wording.FUNDING
LINK = payment_wording.LINK
STANDING = standing_funding.TYPE


@dataclass(frozen=True, slots=True)
class PayeeView:
    """The payee as shown: ``label`` the account name ``intermediary`` registered (None: an
    account this service does not know), ``reference`` the masked account id."""

    label: str | None
    intermediary: str | None
    reference: str
    # Whose account it is, as this service knows (never from the label, which another party
    # wrote and which could say "your own wallet"): someone else's, or the payer's own.
    own: bool = False


@dataclass(frozen=True, slots=True)
class OperationView:
    text: str
    notes: tuple[str, ...]
    allowed: bool
    refusal: str | None  # the denial in plain words (None when allowed or when a step-up helps)
    amount: str | None = None  # a payment's or movement's amount, written for the language
    payee: PayeeView | None = None  # a payment's payee
    why: tuple[str, ...] = ()  # a refusal's explanation: the trust schemes involved, the limit
    step_up: bool = False  # not allowed yet: a new login can allow it
    money: bool = False  # moves money (now, or later within bounds): it leads the page


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who reads the consent page (the logged-in holder) and for which client's request."""

    holder_id: str
    client_id: str


def _label(account: Account | None, viewer: Viewer, t: Translator) -> str:
    if account is None:
        return t("operation.unknown_account")
    own = account.holder_id == viewer.holder_id
    to_bind = account.holder_id is None and account.client_id == viewer.client_id
    return payee.shown_label(account.label) if own or to_bind else _short(account.id)


def _short(account_id: str) -> str:
    return payee.masked_reference(account_id)


def set_name(services: Services, set_id: str | None, language: str) -> str:
    if set_id is None:
        return ""
    anchor_set = services.anchors.get_set(set_id)
    return anchor_set.name(language) if anchor_set is not None else set_id


def listed(items: list[str], t: Translator) -> str:
    """Items listed as the language writes them: ``A, B and C``; ``A、B、C``."""
    if len(items) < 2:
        return "".join(items)
    head = t("operation.list_separator").join(items[:-1])
    return f"{head}{t('operation.list_last_separator')}{items[-1]}"


def _set_names(services: Services, set_ids: tuple[str, ...], t: Translator) -> str:
    """Set names quoted and listed as the language writes them."""
    opening, closing = ("「", "」") if t.language == "ja" else ("“", "”")
    return listed([f"{opening}{set_name(services, s, t.language)}{closing}" for s in set_ids], t)


def refusal_text(reason: str, t: Translator) -> str:
    key = f"policy.reasons.{reason}"
    return t(key) if t.has(key) else t("policy.reasons.generic")


def format_amount(amount: Amount, t: Translator) -> str:
    return payment_wording.format_amount(amount, t.language)


def _member(entry: Mapping[str, Any], name: str) -> str:
    value = entry.get(name)
    return value if isinstance(value, str) else ""


def describe(
    services: Services,
    item: DetailDecision,
    language: str,
    viewer: Viewer,
    payees: Mapping[str, payee.Payee] | None = None,
    *,
    at: int | None = None,
) -> OperationView:
    t = Translator(language)
    decision = item.decision
    entry = item.entry
    kind = entry.get("type")
    notes: list[str] = []
    amount = payment_wording.entry_amount(entry)
    shown = format_amount(amount, t) if amount is not None else None
    payee_view: PayeeView | None = None
    if kind == LINK:
        action = "unlink" if entry.get("actions") == ["unlink"] else "link"
        text = t(
            f"operation.{action}",
            deposit=_label(item.accounts.get(_member(entry, "deposit_account")), viewer, t),
            wallet=_label(item.accounts.get(_member(entry, "wallet_account")), viewer, t),
        )
    elif kind == FUNDING:
        direction = _member(entry, "direction")
        text = t(
            f"operation.funding_{direction}"
            if direction in ("deposit_to_wallet", "wallet_to_deposit")
            else "operation.funding",
            amount=shown,
            deposit=_label(item.accounts.get(_member(entry, "deposit_account")), viewer, t),
            wallet=_label(item.accounts.get(_member(entry, "wallet_account")), viewer, t),
        )
        notes.append(t("operation.funding_own"))
    elif kind == STANDING:
        standing = standing_funding.StandingFundingDetail.from_entry(entry)
        client = services.clients.get(viewer.client_id)
        directions = "_".join(standing.directions) if len(standing.directions) == 1 else "both"
        text = t(
            f"operation.standing.{directions}",
            client=client.name(language) if client is not None else viewer.client_id,
            deposit=_label(item.accounts.get(standing.deposit_account), viewer, t),
            wallet=_label(item.accounts.get(standing.wallet_account), viewer, t),
        )
        notes.append(
            t(
                "operation.standing.bounds",
                max=format_amount(standing.max_amount, t),
                daily=format_amount(standing.daily_amount, t),
                days=standing.valid_days,
            )
        )
        notes.append(t("operation.funding_own"))
        notes.append(t("operation.standing.revocable"))
    elif kind == TRANSFER:
        creditor = _member(entry, "creditor_account")
        text = t(
            "operation.transfer",
            amount=shown,
            debtor=_label(item.accounts.get(_member(entry, "debtor_account")), viewer, t),
        )
        found = (payees or {}).get(creditor)
        creditor_account = item.accounts.get(creditor)
        own = creditor_account is not None and creditor_account.holder_id == viewer.holder_id
        payee_view = (
            PayeeView(found.label, found.intermediary, found.account_reference, own=own)
            if found is not None
            else PayeeView(None, None, _short(creditor), own=own)
        )
        reference = entry.get("remittance_reference")
        if isinstance(reference, str) and reference:
            notes.append(t("operation.reference", reference=reference))
        if decision.allowed and item.counterparty_anchors:
            names = []
            for anchor_id in item.counterparty_anchors:
                anchor = services.anchors.get(anchor_id)
                if anchor is None:
                    names.append(anchor_id)
                    continue
                level = t(f"levels.{anchor.assurance_level}")
                names.append(t("operation.anchor_level", anchor=anchor.name(language), level=level))
            notes.append(
                t(
                    "operation.recipient_verified",
                    anchors=listed(names, t),
                    anchor_set=set_name(services, decision.anchor_set_id, language),
                )
                if decision.anchor_set_id
                else t("operation.recipient_verified_by", anchors=listed(names, t))
            )
    else:  # a type this page has no words for yet: said so, never worded as another type
        text = t("operation.unknown_operation", type=str(kind))
    step_up = decision.step_up is not None
    return OperationView(
        text=text,
        notes=tuple(notes),
        allowed=decision.allowed,
        refusal=None if decision.allowed or step_up else refusal_text(decision.reason, t),
        amount=shown,
        payee=payee_view,
        why=()
        if decision.allowed or step_up
        else _why(services, item, t, viewer, at if at is not None else services.clock.now()),
        step_up=step_up,
        money=kind in (TRANSFER, FUNDING, STANDING),
    )


def _why(
    services: Services, item: DetailDecision, t: Translator, viewer: Viewer, at: int
) -> tuple[str, ...]:
    """A refusal's explanation beyond its reason: the trust schemes involved."""
    decision = item.decision
    if decision.reason == "no_common_anchor_set" and item.entry.get("type") == TRANSFER:
        found = payment_wording.schemes(services, item, viewer.holder_id, at=at)
        lines = []
        if found.payer:
            lines.append(
                t("operation.refused.payer_schemes", sets=_set_names(services, found.payer, t))
            )
        if found.payee:
            lines.append(
                t("operation.refused.payee_schemes", sets=_set_names(services, found.payee, t))
            )
        else:
            lines.append(t("operation.refused.payee_no_scheme"))
        lines.append(t("operation.refused.no_common"))
        return tuple(lines)
    if decision.anchor_set_id is None:
        return ()
    name = set_name(services, decision.anchor_set_id, t.language)
    lines = [t("operation.refused.under_rules", anchor_set=name)]
    policy = payment_wording.set_policy(services, decision.anchor_set_id)
    if decision.reason == "limit_exceeded":
        limit = payment_wording.single_limit(policy, item.entry)
        if limit is not None:
            key = "limit_funding" if item.entry.get("type") == FUNDING else "limit"
            lines.append(t(f"operation.refused.{key}", limit=format_amount(limit, t)))
    elif decision.reason == "cumulative_limit_exceeded":
        limits = [
            t(
                "operation.limit_item",
                amount=format_amount(rule.limit, t),
                window=t(f"operation.limit_windows.{rule.window}"),
                per=t(f"operation.limit_per.{rule.per}"),
            )
            for rule in payment_wording.cumulative_limits(policy, item.entry)
        ]
        if limits:
            key = "cumulative_funding" if item.entry.get("type") == FUNDING else "cumulative"
            lines.append(t(f"operation.refused.{key}", limits=listed(limits, t)))
    return tuple(lines)


def describe_all(
    services: Services, outcome: Outcome, language: str, viewer: Viewer
) -> list[OperationView]:
    payees = payment_wording.payees(services, outcome, language)
    at = services.clock.now()
    return [describe(services, item, language, viewer, payees, at=at) for item in outcome.decisions]


# ------------------------------------------------------------------------------------ step-up


@dataclass(frozen=True, slots=True)
class StepUpView:
    """Why a new login is needed and what it must be: ``heading`` (never a refusal's),
    ``reasons`` (what the set's rules ask for this operation), ``now`` (where the current login
    falls short), ``action`` (what to do)."""

    heading: str
    reasons: tuple[str, ...]
    now: tuple[str, ...]
    action: str


def duration(seconds: int, t: Translator) -> str:
    """``5 minutes``, ``1 hour``, ``90 seconds`` (exact: never rounded)."""
    for unit, size in (("hours", 3600), ("minutes", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return t(f"operation.duration.{unit}_{'one' if count == 1 else 'many'}", n=count)
    return t(f"operation.duration.seconds_{'one' if seconds == 1 else 'many'}", n=seconds)


def _reason_text(reason: StepUpReason, set_name: str, operation: object, t: Translator) -> str:
    """One reason in words; a funding movement's own wording where it differs."""
    values: dict[str, object] = {"anchor_set": set_name}
    if reason.level is not None:
        values["level"] = t(f"levels.{reason.level}")
    if reason.above is not None:
        values["above"] = format_amount(reason.above, t)
    if reason.max_age is not None:
        values["max_age"] = duration(reason.max_age, t)
    if reason.window is not None:
        values["window"] = t(f"operation.windows.{reason.window}")
    key = f"policy.step_up_reasons.{reason.code}"
    if operation == FUNDING and t.has(f"{key}_funding"):
        key = f"{key}_funding"
    return t(key, **values)


def step_up_view(
    services: Services,
    outcome: Outcome,
    language: str,
    login: LoginState,
    *,
    here: bool = True,
) -> StepUpView | None:
    """Why the outcome's step-up asks for a new login, or None without a step-up. ``here``: the
    person can log in again from this request; otherwise (an in-person step-up, the client no
    counter terminal) the action sends them to a branch."""
    denial = outcome.denial
    needed = outcome.step_up
    if denial is None or needed is None:
        return None
    t = Translator(language)
    at = services.clock.now()
    explained = payment_wording.explain_step_up(
        payment_wording.set_policy(services, needed.anchor_set_id),
        needed,
        denial.entry,
        login,
        at=at,
    )
    scheme = set_name(services, needed.anchor_set_id, language)
    level = t(f"levels.{needed.assurance}")
    if explained.in_person:
        heading = "policy.step_up_heading_branch"
    elif explained.stronger:
        heading = "policy.step_up_heading"
    elif explained.signed and not {"age", "sso"} & set(explained.shortfalls):
        heading = "policy.step_up_heading_signed"
    else:
        heading = "policy.step_up_heading_fresh"
    now = []
    for shortfall in explained.shortfalls:
        if shortfall == "level":
            now.append(t("policy.step_up_now.level", level=t(f"levels.{login.level}")))
        elif shortfall == "age" and explained.max_age is not None:
            now.append(t("policy.step_up_now.age", max_age=duration(explained.max_age, t)))
        elif shortfall in ("sso", "not_in_person"):
            now.append(t(f"policy.step_up_now.{shortfall}"))
    if not explained.in_person:
        action = "policy.step_up_signed_text" if explained.signed else "policy.step_up_text"
    else:
        # Only a branch counter can make an in-person login (docs/POLICY.md, "Channels").
        action = "policy.step_up_in_person_text" if here else "policy.step_up_at_branch_text"
    return StepUpView(
        heading=t(heading),
        reasons=tuple(
            _reason_text(r, scheme, denial.entry.get("type"), t) for r in explained.reasons
        ),
        now=tuple(now),
        action=t(action, level=level, anchor_set=scheme),
    )


def step_up_notice(services: Services, step_up: Mapping[str, Any], language: str) -> str:
    """The login page's notice while a step-up is asked for: what the new login must be (the
    consent page said why). Not a refusal: the anchors listed can give it."""
    t = Translator(language)
    level = str(step_up.get("assurance"))
    set_id = step_up.get("anchor_set_id")
    values: dict[str, object] = {
        "level": t(f"levels.{level}") if t.has(f"levels.{level}") else level,
        "anchor_set": set_name(services, set_id if isinstance(set_id, str) else None, language),
    }
    text = t("policy.step_up_notice", **values)
    if step_up.get("dynamic_linking"):
        text += t("policy.step_up_notice_signed")
    return text
