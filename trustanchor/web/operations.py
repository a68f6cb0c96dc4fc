"""How the consent page words account links and value transfers, in the person's language.

Accounts of the person are shown by the label their intermediary registered, and so are the
requesting intermediary's own accounts that nobody is bound to yet (the ones a link will bind).
Any other account (someone else's, or another intermediary's that is not the person's) only by a
shortened account id: its label is another party's text about another person. The recipient of
a transfer is shown by a shortened account id and by who verified them ("verified by <anchor>
at high"), never by anything personal.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustanchor.domain.accounts import Account
from trustanchor.oauth import account_link, value_transfer
from trustanchor.services.container import Services
from trustanchor.services.decisions import DetailDecision, Outcome
from trustanchor.web.i18n import Translator


@dataclass(frozen=True, slots=True)
class OperationView:
    text: str
    notes: tuple[str, ...]
    allowed: bool
    refusal: str | None  # the denial in plain words


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
    return account.label if own or to_bind else _short(account.id)


def _short(account_id: str) -> str:
    return "…" + account_id[-6:]


def _set_name(services: Services, set_id: str | None, language: str) -> str:
    if set_id is None:
        return ""
    anchor_set = services.anchors.get_set(set_id)
    return anchor_set.name(language) if anchor_set is not None else set_id


def refusal_text(reason: str, t: Translator) -> str:
    key = f"policy.reasons.{reason}"
    return t(key) if t.has(key) else t("policy.reasons.generic")


def describe(
    services: Services, item: DetailDecision, language: str, viewer: Viewer
) -> OperationView:
    t = Translator(language)
    decision = item.decision
    notes: list[str] = []
    if item.entry.get("type") == account_link.TYPE:
        link = account_link.AccountLinkDetail.from_entry(item.entry)
        text = t(
            f"operation.{link.action}",
            deposit=_label(item.accounts.get(link.deposit_account), viewer, t),
            wallet=_label(item.accounts.get(link.wallet_account), viewer, t),
        )
    else:
        transfer = value_transfer.ValueTransferDetail.from_entry(item.entry)
        text = t(
            "operation.transfer",
            amount=f"{transfer.amount}",
            currency=transfer.amount.currency,
            debtor=_label(item.accounts.get(transfer.debtor_account), viewer, t),
            creditor=_short(transfer.creditor_account),
        )
        if transfer.remittance_reference:
            notes.append(t("operation.reference", reference=transfer.remittance_reference))
        if decision.allowed and item.counterparty_anchors:
            names = []
            for anchor_id in item.counterparty_anchors:
                anchor = services.anchors.get(anchor_id)
                name = anchor.name(language) if anchor else anchor_id
                level = t(f"levels.{anchor.assurance_level}") if anchor else ""
                names.append(f"{name} ({level})" if level else name)
            notes.append(
                t(
                    "operation.recipient_verified",
                    anchors=", ".join(names),
                    anchor_set=_set_name(services, decision.anchor_set_id, language),
                )
            )
    if decision.allowed and decision.anchor_set_id is not None:
        notes.append(
            t(
                "operation.relied_on",
                anchor_set=_set_name(services, decision.anchor_set_id, language),
            )
        )
    return OperationView(
        text=text,
        notes=tuple(notes),
        allowed=decision.allowed,
        refusal=None if decision.allowed else refusal_text(decision.reason, t),
    )


def describe_all(
    services: Services, outcome: Outcome, language: str, viewer: Viewer
) -> list[OperationView]:
    return [describe(services, item, language, viewer) for item in outcome.decisions]


def step_up_text(
    services: Services, outcome: Outcome, language: str, *, here: bool = True
) -> str | None:
    """What the step-up asks for. ``here``: the person can log in again from this request;
    otherwise (an in-person step-up, the client no counter terminal) the text sends them to a
    branch."""
    needed = outcome.step_up
    if needed is None:
        return None
    t = Translator(language)
    if not needed.in_person:
        key = "policy.step_up_text"
    else:
        # Only a branch counter can make an in-person login (docs/POLICY.md, "Channels").
        key = "policy.step_up_in_person_text" if here else "policy.step_up_at_branch_text"
    return t(
        key,
        level=t(f"levels.{needed.assurance}"),
        anchor_set=_set_name(services, needed.anchor_set_id, language),
    )
