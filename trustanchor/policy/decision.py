"""The policy engine's answer, and the closed list of reason codes it can give.

The reason is recorded as is in the audit log's ``decision`` entry and is what the web layer
translates for the person (docs/POLICY.md lists them with the text shown). The order of
:data:`REASONS` after ``no_common_anchor_set`` is the order in which a candidate anchor set is
checked: a denial reports the check furthest along it that any candidate reached.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

REASONS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "allowed": "Every check passed in the anchor set relied on.",
        # account checks: the same in every anchor set, made before looking for one
        "account_not_bound": "An account in the request is not bound to a holder yet.",
        "account_registered_elsewhere": "A link would bind an account that another "
        "intermediary registered, or a link, unlink or funding movement names no account the "
        "requesting intermediary registered.",
        "holder_mismatch": "An account belongs to someone other than the person who logged in.",
        "debtor_account_elsewhere": "The debtor account was registered by another intermediary "
        "and no active link of the holder joins it to one the requesting intermediary registered.",
        "account_kind_mismatch": "A link or funding movement names an account of the wrong kind "
        "(deposit ↔ wallet).",
        "debit_not_approved": "A funding movement would debit an account registered by another "
        "intermediary, which has not approved debits over this link.",
        "link_not_found": "Unlink or funding asked for two accounts that are not linked.",
        "link_flagged": "The link a funding movement would use is flagged for review.",
        "account_closed": "An account in the request is closed.",
        "account_flagged": "An account in the request is flagged for review.",
        # looking for a set
        "no_common_anchor_set": "No anchor set holds an anchor that vouches for every party.",
        # per anchor set, in this order
        "operation_not_allowed": "The anchor set does not allow this operation.",
        # standing authorizations of funding only
        "standing_not_allowed": "The anchor set does not allow standing authorizations of "
        "funding (its standing_funding_max_days is 0).",
        "standing_too_long": "The standing authorization asks for more days (valid_days) than "
        "the anchor set's standing_funding_max_days.",
        "anchor_suspended": "The anchor behind a party's identity is suspended or retired.",
        "credential_revoked": "The credential behind a party's identity is revoked or suspended.",
        "credential_status_unknown": "A credential's revocation status could not be checked "
        "and the set's policy fails closed.",
        "identity_expired": "A party's identity has expired; it must be verified again.",
        "assurance_too_low": "A party's identity is below the set's minimum assurance level.",
        "kyc_not_registered": "The set requires registered KYC attributes for every account, "
        "and an account in the request has none.",
        "kyc_mismatch": "The KYC attributes registered for an account do not match the verified "
        "claims of the identity it is (or would be) bound through.",
        "currency_not_allowed": "The anchor set sets no limit for this currency (for transfers, "
        "or for funding).",
        "limit_exceeded": "The amount is above the anchor set's per-transfer (or per-movement "
        "funding) limit; for a standing authorization, its max_amount is.",
        "cumulative_limit_exceeded": "What the service already authorized in a window of the "
        "set's cumulative limits for this operation (per holder or per debtor account), plus "
        "this amount, is above the limit.",
        "step_up_required": "This login is not strong or recent enough, not through an anchor "
        "of the set, or (dynamic linking) not a presentation made for this request that signed "
        "the operation: log in again through one of the anchors named.",
    }
)


@dataclass(frozen=True, slots=True)
class StepUp:
    """What a new login must achieve for the decision to be allowed: ``assurance`` at least,
    within ``max_age`` seconds before the decision (``None``: any age), through one of
    ``anchors`` — the anchors of set ``anchor_set_id`` through which this person holds an
    identity that qualifies (empty: none does, so a new login cannot help) — and, when
    ``in_person``, at a bank branch's counter terminal. ``dynamic_linking``: the new login must
    be a wallet presentation made for this request whose key binding JWT signs the operation's
    transaction data (the set's ``dynamic_linking`` lists the operation)."""

    assurance: str
    max_age: int | None
    anchor_set_id: str
    anchors: tuple[str, ...]
    in_person: bool = False
    dynamic_linking: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """``reason`` is ``allowed`` exactly when ``allowed``. ``anchor_set_id`` and
    ``policy_version`` name the set relied on (allowed) or the set whose failure is reported
    (denied after a candidate set was found; ``None`` before). ``relied_anchors`` are the
    anchors whose identities and login the allowed decision rests on (empty when denied).
    ``step_up`` is set exactly when the reason is ``step_up_required``."""

    allowed: bool
    reason: str
    anchor_set_id: str | None = None
    policy_version: int | None = None
    relied_anchors: tuple[str, ...] = ()
    step_up: StepUp | None = None

    def __post_init__(self) -> None:
        if self.reason not in REASONS:
            raise ValueError(f"unknown reason code {self.reason!r}")
        if self.allowed != (self.reason == "allowed"):
            raise ValueError("reason must be 'allowed' exactly when the decision allows")
        if (self.step_up is not None) != (self.reason == "step_up_required"):
            raise ValueError("step_up must be given exactly with step_up_required")

    @property
    def result(self) -> Literal["allowed", "denied"]:
        """As recorded in the audit ``decision`` entry."""
        return "allowed" if self.allowed else "denied"


def denied(reason: str) -> Decision:
    """A denial made before any anchor set was considered."""
    return Decision(allowed=False, reason=reason)
