"""An anchor set's policy: what the set allows, how strongly, up to how much.

Declared in TOML under ``[anchor_sets.policy]`` and stored as JSON (the repository bumps the set's
version whenever the stored JSON changes). :func:`parse_policy` is the one way in, from either
source; :meth:`AnchorSetPolicy.to_json` is the canonical way out: the original fields spelt out
with their defaults, the fields added since (joins, KYC, channels, cumulative rules, funding,
dynamic linking, standing authorizations) only when not at their default, so that sets stored
before them keep their JSON; amounts in canonical text, operations, lists and rules in a fixed
order. So two declarations that mean the same policy store the same JSON and do not bump the
version, and ``parse_policy(p.to_json()) == p``.

Deny by default: a policy that names no ``operations`` allows nothing, a currency without a limit
is not allowed, and an unknown field is refused (a misspelt security setting must not be silently
ignored). Every problem is reported at once as ``(field, message)`` pairs in a
:class:`PolicyError`, fields as paths inside the policy table (``limits.JPY``,
``step_up[0].max_age``), so the declarations loader can prefix them with
``anchor_sets.<id>.policy``. See docs/POLICY.md.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final, Literal, cast

from trustanchor.domain.assurance import LEVELS, AssuranceLevel
from trustanchor.domain.claim_normalizer import NORMALIZER_ID
from trustanchor.domain.money import MINOR_UNITS, Amount, MoneyError, parse_amount

Operation = Literal["account_link", "value_transfer", "funding"]
OPERATIONS: Final[tuple[Operation, ...]] = ("account_link", "value_transfer", "funding")
# The operations that move money: what cumulative rules count (each apart from the other) and
# what dynamic linking may apply to (docs/POLICY.md, "Funding" and "Dynamic linking").
Movement = Literal["value_transfer", "funding"]
MOVEMENTS: Final[tuple[Movement, ...]] = ("value_transfer", "funding")
DEFAULT_CUMULATIVE_OPERATION: Final[Movement] = "value_transfer"
RevocationCheck = Literal["fail_closed", "fail_open"]
REVOCATION_CHECKS: Final[tuple[RevocationCheck, ...]] = ("fail_closed", "fail_open")
# Whether the identity binding an account must match the KYC attributes its intermediary
# registered (docs/POLICY.md): ``required`` (registered and matching), ``if_registered``
# (matching where registered), ``off`` (not looked at).
AccountKyc = Literal["required", "if_registered", "off"]
ACCOUNT_KYC: Final[tuple[AccountKyc, ...]] = ("required", "if_registered", "off")
# Where the login must have been made (docs/POLICY.md, "Channels"): ``any``, or ``in_person`` at
# a bank branch's counter terminal (a client with the branch role, services/counter_login.py),
# performed for this request (a login taken over from SSO never counts as in person).
Channel = Literal["any", "in_person"]
CHANNELS: Final[tuple[Channel, ...]] = ("any", "in_person")
DEFAULT_CHANNEL: Final[Channel] = "any"

DEFAULT_MIN_ASSURANCE_LINK: Final[AssuranceLevel] = "substantial"
DEFAULT_MIN_ASSURANCE_TRANSFER: Final[AssuranceLevel] = "high"
DEFAULT_MIN_ASSURANCE_FUNDING: Final[AssuranceLevel] = "substantial"
DEFAULT_REVOCATION_CHECK: Final[RevocationCheck] = "fail_closed"
DEFAULT_ACCOUNT_KYC: Final[AccountKyc] = "if_registered"
MAX_STEP_UP_RULES: Final = 32
MAX_STEP_UP_AGE: Final = 86_400  # one day: "recently" means minutes, a day is already generous
MAX_JOIN_RULES: Final = 16
MAX_JOIN_CLAIMS: Final = 16
JOIN_LEVELS: Final[tuple[AssuranceLevel, ...]] = ("substantial", "high")  # never self-asserted

POLICY_FIELDS: Final = frozenset(
    {
        "operations",
        "min_assurance_link",
        "min_assurance_transfer",
        "revocation_check",
        "limits",
        "step_up",
        "identity_joins",
        "account_kyc",
        "channel_link",
        "channel_transfer",
        "time_zone",
        "cumulative",
        "cumulative_step_up",
        "min_assurance_funding",
        "funding_limits",
        "funding_step_up",
        "channel_funding",
        "dynamic_linking",
        "standing_funding_max_days",
    }
)
# Standing authorizations (docs/POLICY.md, "Standing authorizations"): the most days a holder may
# approve automatic funding for at once; 0 (the default) allows none.
MAX_STANDING_FUNDING_DAYS: Final = 366
DEFAULT_STANDING_FUNDING_MAX_DAYS: Final = 0
# Cumulative limits and step-up rules (docs/POLICY.md, "Cumulative limits"): what the service
# authorized in a window, per holder or per debtor account, per currency. Calendar windows are
# in the set's ``time_zone``; ``rolling_24h`` sums the last 24 hourly buckets.
Window = Literal["calendar_day", "calendar_month", "rolling_24h"]
WINDOWS: Final[tuple[Window, ...]] = ("calendar_day", "calendar_month", "rolling_24h")
Per = Literal["holder", "debtor_account"]
PERS: Final[tuple[Per, ...]] = ("holder", "debtor_account")
DEFAULT_TIME_ZONE: Final = "Asia/Tokyo"
MAX_CUMULATIVE_RULES: Final = 16
CUMULATIVE_FIELDS: Final = frozenset({"id", "currency", "window", "per", "limit", "operation"})
CUMULATIVE_STEP_UP_FIELDS: Final = frozenset(
    {"currency", "window", "per", "above", "assurance", "max_age", "operation"}
)
CUMULATIVE_OPTIONAL_FIELDS: Final = frozenset({"operation"})
STEP_UP_FIELDS: Final = frozenset({"currency", "above", "assurance", "max_age", "channel"})
STEP_UP_REQUIRED_FIELDS: Final = STEP_UP_FIELDS - {"channel"}
JOIN_FIELDS: Final = frozenset({"id", "claims", "min_assurance", "normalizer"})
_JOIN_ID: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_CLAIM_NAME: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_NO_LIMITS: Final[Mapping[str, Amount]] = MappingProxyType({})
_TIME_ZONE: Final = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+){0,2}")


class PolicyError(ValueError):
    """A policy was refused. ``problems`` lists every problem as ``(field, message)``; ``field``
    is a path inside the policy table (``""`` for the table itself)."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("\n".join(self.lines("policy")))

    def lines(self, prefix: str) -> list[str]:
        """The problems as ``<prefix>.<field>: <message>`` lines, e.g. with prefix
        ``anchor_sets.jp-cbdc.policy``."""
        return [f"{_join(prefix, where)}: {message}" for where, message in self.problems]


@dataclass(frozen=True, slots=True)
class StepUpRule:
    """Above ``above`` (strictly), the debtor must have authenticated at ``assurance`` or higher
    within the last ``max_age`` seconds, and at a branch counter when ``channel`` is
    ``in_person``."""

    currency: str
    above: Amount
    assurance: AssuranceLevel
    max_age: int
    channel: Channel = DEFAULT_CHANNEL

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "above": str(self.above),
            "assurance": self.assurance,
            "max_age": self.max_age,
            # Only when not the default: rules stored before channels existed keep their JSON.
            **({"channel": self.channel} if self.channel != DEFAULT_CHANNEL else {}),
        }


@dataclass(frozen=True, slots=True)
class CumulativeLimit:
    """What the service authorized for one ``per`` subject (the holder, or the debtor account:
    for funding, the account debited) in ``currency`` within one ``window``, this transfer (or
    movement) included, must not exceed ``limit``. ``operation``: what is counted, transfers
    (the default) or funding movements, each apart from the other."""

    id: str
    currency: str
    window: Window
    per: Per
    limit: Amount
    operation: Movement = DEFAULT_CUMULATIVE_OPERATION

    def to_json(self) -> dict[str, Any]:
        return {
            # Only when not the default: rules stored before funding existed keep their JSON.
            **_operation_json(self.operation),
            "id": self.id,
            "currency": self.currency,
            "window": self.window,
            "per": self.per,
            "limit": str(self.limit),
        }


@dataclass(frozen=True, slots=True)
class CumulativeStepUp:
    """When the window's total plus this transfer (or movement, for ``operation`` ``funding``)
    is above ``above`` (strictly), the login must be at ``assurance`` or higher and at most
    ``max_age`` seconds old, as for a per-transfer step-up rule."""

    currency: str
    window: Window
    per: Per
    above: Amount
    assurance: AssuranceLevel
    max_age: int
    operation: Movement = DEFAULT_CUMULATIVE_OPERATION

    def to_json(self) -> dict[str, Any]:
        return {
            **_operation_json(self.operation),
            "currency": self.currency,
            "window": self.window,
            "per": self.per,
            "above": str(self.above),
            "assurance": self.assurance,
            "max_age": self.max_age,
        }


@dataclass(frozen=True, slots=True)
class JoinRule:
    """A new identity may join a holder when every claim in ``claims`` (sorted) is verified on
    both sides, by active anchors of the set at ``min_assurance`` or higher, and the values are
    the same under the normaliser ``normalizer`` (docs/POLICY.md, "Identity joins")."""

    id: str
    claims: tuple[str, ...]
    min_assurance: AssuranceLevel
    normalizer: str = NORMALIZER_ID

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "claims": list(self.claims),
            "min_assurance": self.min_assurance,
            "normalizer": self.normalizer,
        }


@dataclass(frozen=True, slots=True)
class AnchorSetPolicy:
    """A parsed, valid policy. The defaults are the deny-by-default policy: nothing allowed."""

    operations: tuple[Operation, ...] = ()
    min_assurance_link: AssuranceLevel = DEFAULT_MIN_ASSURANCE_LINK
    min_assurance_transfer: AssuranceLevel = DEFAULT_MIN_ASSURANCE_TRANSFER
    revocation_check: RevocationCheck = DEFAULT_REVOCATION_CHECK
    limits: Mapping[str, Amount] = field(default_factory=lambda: _NO_LIMITS)  # maximum per transfer
    step_up: tuple[StepUpRule, ...] = ()
    identity_joins: tuple[JoinRule, ...] = ()
    account_kyc: AccountKyc = DEFAULT_ACCOUNT_KYC
    channel_link: Channel = DEFAULT_CHANNEL
    channel_transfer: Channel = DEFAULT_CHANNEL
    time_zone: str = DEFAULT_TIME_ZONE
    cumulative: tuple[CumulativeLimit, ...] = ()
    cumulative_step_up: tuple[CumulativeStepUp, ...] = ()
    min_assurance_funding: AssuranceLevel = DEFAULT_MIN_ASSURANCE_FUNDING
    # maximum per funding movement (deposit ↔ wallet of one holder)
    funding_limits: Mapping[str, Amount] = field(default_factory=lambda: _NO_LIMITS)
    funding_step_up: tuple[StepUpRule, ...] = ()
    channel_funding: Channel = DEFAULT_CHANNEL
    # the operations approved only with a wallet presentation made for this request whose key
    # binding JWT signed the operation's transaction data (docs/POLICY.md, "Dynamic linking")
    dynamic_linking: tuple[Movement, ...] = ()
    # the most days a standing authorization of funding may run (0: none may be approved)
    standing_funding_max_days: int = DEFAULT_STANDING_FUNDING_MAX_DAYS

    def allows(self, operation: Operation) -> bool:
        return operation in self.operations

    def to_json(self) -> dict[str, Any]:
        """The canonical JSON form (every field, fixed order); parses back to an equal policy."""
        return {
            "operations": list(self.operations),
            "min_assurance_link": self.min_assurance_link,
            "min_assurance_transfer": self.min_assurance_transfer,
            "revocation_check": self.revocation_check,
            "limits": {code: str(amount) for code, amount in self.limits.items()},
            "step_up": [rule.to_json() for rule in self.step_up],
            # Only when declared: sets stored before identity joins existed keep their JSON,
            # hence their version.
            **(
                {"identity_joins": [rule.to_json() for rule in self.identity_joins]}
                if self.identity_joins
                else {}
            ),
            # Likewise only when not the default.
            **(
                {"account_kyc": self.account_kyc} if self.account_kyc != DEFAULT_ACCOUNT_KYC else {}
            ),
            **({"channel_link": self.channel_link} if self.channel_link != DEFAULT_CHANNEL else {}),
            **(
                {"channel_transfer": self.channel_transfer}
                if self.channel_transfer != DEFAULT_CHANNEL
                else {}
            ),
            # Cumulative rules only when declared, and the time zone then spelt out (it decides
            # where a calendar window starts): sets stored before them keep their JSON.
            **(
                {"time_zone": self.time_zone}
                if self.cumulative or self.cumulative_step_up or self.time_zone != DEFAULT_TIME_ZONE
                else {}
            ),
            **({"cumulative": [r.to_json() for r in self.cumulative]} if self.cumulative else {}),
            **(
                {"cumulative_step_up": [r.to_json() for r in self.cumulative_step_up]}
                if self.cumulative_step_up
                else {}
            ),
            # Funding and dynamic linking, likewise only when not the default: sets stored
            # before they existed keep their JSON, hence their version.
            **(
                {"min_assurance_funding": self.min_assurance_funding}
                if self.min_assurance_funding != DEFAULT_MIN_ASSURANCE_FUNDING
                else {}
            ),
            **(
                {"funding_limits": {c: str(a) for c, a in self.funding_limits.items()}}
                if self.funding_limits
                else {}
            ),
            **(
                {"funding_step_up": [rule.to_json() for rule in self.funding_step_up]}
                if self.funding_step_up
                else {}
            ),
            **(
                {"channel_funding": self.channel_funding}
                if self.channel_funding != DEFAULT_CHANNEL
                else {}
            ),
            **({"dynamic_linking": list(self.dynamic_linking)} if self.dynamic_linking else {}),
            # Standing authorizations, likewise only when allowed.
            **(
                {"standing_funding_max_days": self.standing_funding_max_days}
                if self.standing_funding_max_days != DEFAULT_STANDING_FUNDING_MAX_DAYS
                else {}
            ),
        }

    def requires_dynamic_linking(self, operation: str) -> bool:
        """Whether ``operation`` can be approved only with a presentation that signed it."""
        return operation in self.dynamic_linking


def _operation_json(operation: Movement) -> dict[str, Any]:
    return {"operation": operation} if operation != DEFAULT_CUMULATIVE_OPERATION else {}


DENY_ALL: Final = AnchorSetPolicy()


def parse_policy(mapping: object) -> AnchorSetPolicy:
    """Validate a policy table (from TOML or stored JSON). Raises :class:`PolicyError` listing
    every problem; never anything else, whatever the input."""
    if not isinstance(mapping, Mapping):
        raise PolicyError([("", "must be a table")])
    problems: list[tuple[str, str]] = []
    for key in mapping:
        if not isinstance(key, str):
            problems.append(("", "field names must be strings"))
        elif key not in POLICY_FIELDS:
            problems.append((_shown(key), "unknown field"))
    operations = _operations(mapping.get("operations", []), problems)
    min_link = _level(mapping, "min_assurance_link", DEFAULT_MIN_ASSURANCE_LINK, problems)
    min_transfer = _level(
        mapping, "min_assurance_transfer", DEFAULT_MIN_ASSURANCE_TRANSFER, problems
    )
    revocation_check = mapping.get("revocation_check", DEFAULT_REVOCATION_CHECK)
    if revocation_check not in REVOCATION_CHECKS:
        problems.append(("revocation_check", f"must be one of {', '.join(REVOCATION_CHECKS)}"))
    account_kyc = mapping.get("account_kyc", DEFAULT_ACCOUNT_KYC)
    if account_kyc not in ACCOUNT_KYC:
        problems.append(("account_kyc", f"must be one of {', '.join(ACCOUNT_KYC)}"))
    channel_link = _channel(mapping, "channel_link", problems)
    channel_transfer = _channel(mapping, "channel_transfer", problems)
    channel_funding = _channel(mapping, "channel_funding", problems)
    min_funding = _level(mapping, "min_assurance_funding", DEFAULT_MIN_ASSURANCE_FUNDING, problems)
    raw_limits = mapping.get("limits", {})
    limits = _limits(raw_limits, problems)
    raw_funding_limits = mapping.get("funding_limits", {})
    funding_limits = _limits(raw_funding_limits, problems, name="funding_limits")
    # A limit that failed to parse is reported once, not again by every rule for its currency.
    limited: dict[str, set[Any]] = {
        "value_transfer": set(raw_limits) if isinstance(raw_limits, Mapping) else set(),
        "funding": set(raw_funding_limits) if isinstance(raw_funding_limits, Mapping) else set(),
    }
    step_up = _step_up_rules(mapping.get("step_up", []), limited["value_transfer"], problems)
    funding_step_up = _step_up_rules(
        mapping.get("funding_step_up", []),
        limited["funding"],
        problems,
        name="funding_step_up",
        what="funding",
    )
    identity_joins = _join_rules(mapping.get("identity_joins", []), problems)
    time_zone = _time_zone(mapping.get("time_zone", DEFAULT_TIME_ZONE), problems)
    cumulative = _cumulative_limits(mapping.get("cumulative", []), limited, problems)
    cumulative_step_up = _cumulative_step_ups(
        mapping.get("cumulative_step_up", []), limited, problems
    )
    dynamic_linking = _dynamic_linking(mapping.get("dynamic_linking", []), problems)
    standing_days = _standing_days(
        mapping.get("standing_funding_max_days", DEFAULT_STANDING_FUNDING_MAX_DAYS), problems
    )
    troubled = _fields_with(problems)
    if standing_days > 0 and "funding" not in operations and "operations" not in troubled:
        problems.append(
            (
                "standing_funding_max_days",
                "standing authorizations are of funding, which operations does not list: "
                "add funding to operations, or set 0",
            )
        )
    if "value_transfer" in operations and not limits and "limits" not in troubled:
        problems.append(
            ("limits", "value_transfer is allowed but no currency has a limit; add one")
        )
    if "funding" in operations and not funding_limits and "funding_limits" not in troubled:
        problems.append(
            ("funding_limits", "funding is allowed but no currency has a funding limit; add one")
        )
    if problems:
        raise PolicyError(problems)
    return AnchorSetPolicy(
        operations=operations,
        min_assurance_link=min_link,
        min_assurance_transfer=min_transfer,
        revocation_check=cast(RevocationCheck, revocation_check),
        limits=MappingProxyType(dict(sorted(limits.items()))),
        step_up=tuple(sorted(step_up, key=lambda r: (r.currency, r.above.minor))),
        identity_joins=tuple(sorted(identity_joins, key=lambda r: r.id)),
        account_kyc=cast(AccountKyc, account_kyc),
        channel_link=channel_link,
        channel_transfer=channel_transfer,
        time_zone=time_zone,
        cumulative=tuple(sorted(cumulative, key=lambda r: r.id)),
        cumulative_step_up=tuple(
            sorted(
                cumulative_step_up,
                key=lambda r: (r.operation, r.currency, r.window, r.per, r.above.minor),
            )
        ),
        min_assurance_funding=min_funding,
        funding_limits=MappingProxyType(dict(sorted(funding_limits.items()))),
        funding_step_up=tuple(sorted(funding_step_up, key=lambda r: (r.currency, r.above.minor))),
        channel_funding=channel_funding,
        dynamic_linking=dynamic_linking,
        standing_funding_max_days=standing_days,
    )


def _standing_days(value: object, problems: list[tuple[str, str]]) -> int:
    """A whole number of days from 0 to 366 (a JSON integer: a bool, float or string is not)."""
    if type(value) is not int or not 0 <= value <= MAX_STANDING_FUNDING_DAYS:
        problems.append(
            (
                "standing_funding_max_days",
                f"must be a whole number of days from 0 to {MAX_STANDING_FUNDING_DAYS} "
                "(0: standing authorizations not allowed)",
            )
        )
        return DEFAULT_STANDING_FUNDING_MAX_DAYS
    return value


def _time_zone(value: object, problems: list[tuple[str, str]]) -> str:
    """An IANA time zone name that this system's zone database knows."""
    if isinstance(value, str) and len(value) <= 64 and _TIME_ZONE.fullmatch(value):
        try:
            zoneinfo.ZoneInfo(value)
            return value
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            pass
    problems.append(("time_zone", 'must be an IANA time zone name, e.g. "Asia/Tokyo"'))
    return DEFAULT_TIME_ZONE


def _cumulative_common(
    item: Mapping[Any, Any],
    where: str,
    allowed: frozenset[str],
    limited: Mapping[str, set[Any]],
    problems: list[tuple[str, str]],
) -> Movement:
    """Unknown and missing fields, operation, currency, window and per: what both kinds of rule
    share. Returns the rule's operation (the default when it is refused: reported already)."""
    for key in item:
        if not isinstance(key, str):
            problems.append((where, "field names must be strings"))
        elif key not in allowed:
            problems.append((f"{where}.{_shown(key)}", "unknown field"))
    for key in sorted(allowed - CUMULATIVE_OPTIONAL_FIELDS - set(item)):
        problems.append((f"{where}.{key}", "missing"))
    operation = item.get("operation", DEFAULT_CUMULATIVE_OPERATION)
    known = operation in MOVEMENTS
    if not known:
        problems.append((f"{where}.operation", f"must be one of {', '.join(MOVEMENTS)}"))
    code = item.get("currency")
    if "currency" in item:
        if not isinstance(code, str) or code not in MINOR_UNITS:
            problems.append((f"{where}.currency", "not a supported ISO 4217 currency code"))
        elif known and code not in limited[operation]:
            problems.append((f"{where}.currency", _unlimited(code, operation)))
    if "window" in item and item.get("window") not in WINDOWS:
        problems.append((f"{where}.window", f"must be one of {', '.join(WINDOWS)}"))
    if "per" in item and item.get("per") not in PERS:
        problems.append((f"{where}.per", f"must be one of {', '.join(PERS)}"))
    return cast(Movement, operation) if known else DEFAULT_CUMULATIVE_OPERATION


def _unlimited(code: str, operation: str) -> str:
    if operation == "funding":
        return (
            f"{code} has no funding limit, so funding in it is refused and the rule never applies"
        )
    return f"{code} has no limit, so transfers in it are refused and the rule never applies"


def _cumulative_limits(
    value: object, limited: Mapping[str, set[Any]], problems: list[tuple[str, str]]
) -> list[CumulativeLimit]:
    if not isinstance(value, list):
        problems.append(("cumulative", "must be a list of tables"))
        return []
    if len(value) > MAX_CUMULATIVE_RULES:
        problems.append(("cumulative", f"at most {MAX_CUMULATIVE_RULES} rules"))
        return []
    rules: list[CumulativeLimit] = []
    for index, item in enumerate(value):
        where = f"cumulative[{index}]"
        if not isinstance(item, Mapping):
            problems.append((where, "must be a table with id, currency, window, per and limit"))
            continue
        before = len(problems)
        operation = _cumulative_common(item, where, CUMULATIVE_FIELDS, limited, problems)
        rule_id = item.get("id")
        if "id" in item and (not isinstance(rule_id, str) or not _JOIN_ID.fullmatch(rule_id)):
            problems.append((f"{where}.id", "must be 1-64 of a-z, 0-9 and '-', e.g. daily-jpy"))
        amount = None
        if "limit" in item:
            amount = _above(item.get("limit"), item.get("currency"), f"{where}.limit", problems)
        if len(problems) != before or amount is None:
            continue
        rule = CumulativeLimit(
            id=cast(str, rule_id),
            currency=amount.currency,
            window=cast(Window, item["window"]),
            per=cast(Per, item["per"]),
            limit=amount,
            operation=operation,
        )
        key = (rule.operation, rule.currency, rule.window, rule.per)
        if any(r.id == rule.id for r in rules):
            problems.append((f"{where}.id", "another rule has the same id"))
        elif any((r.operation, r.currency, r.window, r.per) == key for r in rules):
            problems.append(
                (where, "another rule of the same operation has the same currency, window and per")
            )
        rules.append(rule)
    return rules


def _cumulative_step_ups(
    value: object, limited: Mapping[str, set[Any]], problems: list[tuple[str, str]]
) -> list[CumulativeStepUp]:
    if not isinstance(value, list):
        problems.append(("cumulative_step_up", "must be a list of tables"))
        return []
    if len(value) > MAX_CUMULATIVE_RULES:
        problems.append(("cumulative_step_up", f"at most {MAX_CUMULATIVE_RULES} rules"))
        return []
    rules: list[CumulativeStepUp] = []
    for index, item in enumerate(value):
        where = f"cumulative_step_up[{index}]"
        if not isinstance(item, Mapping):
            problems.append(
                (where, "must be a table with currency, window, per, above, assurance, max_age")
            )
            continue
        before = len(problems)
        operation = _cumulative_common(item, where, CUMULATIVE_STEP_UP_FIELDS, limited, problems)
        assurance, max_age = item.get("assurance"), item.get("max_age")
        if "assurance" in item and assurance not in LEVELS:
            problems.append((f"{where}.assurance", f"must be one of {', '.join(LEVELS)}"))
        if "max_age" in item and (type(max_age) is not int or not 1 <= max_age <= MAX_STEP_UP_AGE):
            problems.append(
                (f"{where}.max_age", f"must be whole seconds from 1 to {MAX_STEP_UP_AGE}")
            )
        amount = None
        if "above" in item:
            amount = _above(item.get("above"), item.get("currency"), f"{where}.above", problems)
        if len(problems) != before or amount is None:
            continue
        rule = CumulativeStepUp(
            currency=amount.currency,
            window=cast(Window, item["window"]),
            per=cast(Per, item["per"]),
            above=amount,
            assurance=cast(AssuranceLevel, assurance),
            max_age=cast(int, max_age),
            operation=operation,
        )
        key = (rule.operation, rule.currency, rule.window, rule.per, rule.above.minor)
        if any((r.operation, r.currency, r.window, r.per, r.above.minor) == key for r in rules):
            problems.append(
                (
                    where,
                    "another rule of the same operation has the same currency, window, per "
                    "and above",
                )
            )
        rules.append(rule)
    return rules


def _channel(
    mapping: Mapping[Any, Any],
    name: str,
    problems: list[tuple[str, str]],
    *,
    where: str | None = None,
) -> Channel:
    value = mapping.get(name, DEFAULT_CHANNEL)
    if value not in CHANNELS:
        problems.append((where or name, f"must be one of {', '.join(CHANNELS)}"))
        return DEFAULT_CHANNEL
    return cast(Channel, value)


def _operations(value: object, problems: list[tuple[str, str]]) -> tuple[Operation, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(("operations", f"must be a list drawn from {', '.join(OPERATIONS)}"))
        return ()
    for item in value:
        if item not in OPERATIONS:
            problems.append(
                ("operations", f"{_shown(item)!r} is not one of {', '.join(OPERATIONS)}")
            )
    if len(set(value)) != len(value):
        problems.append(("operations", "lists an operation twice"))
    return tuple(op for op in OPERATIONS if op in value)


def _dynamic_linking(value: object, problems: list[tuple[str, str]]) -> tuple[Movement, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(("dynamic_linking", f"must be a list drawn from {', '.join(MOVEMENTS)}"))
        return ()
    for item in value:
        if item not in MOVEMENTS:
            problems.append(
                ("dynamic_linking", f"{_shown(item)!r} is not one of {', '.join(MOVEMENTS)}")
            )
    if len(set(value)) != len(value):
        problems.append(("dynamic_linking", "lists an operation twice"))
    return tuple(op for op in MOVEMENTS if op in value)


def _level(
    mapping: Mapping[Any, Any],
    name: str,
    default: AssuranceLevel,
    problems: list[tuple[str, str]],
) -> AssuranceLevel:
    value = mapping.get(name, default)
    if value not in LEVELS:
        problems.append((name, f"must be one of {', '.join(LEVELS)}"))
        return default
    return cast(AssuranceLevel, value)


def _limits(
    value: object, problems: list[tuple[str, str]], *, name: str = "limits"
) -> dict[str, Amount]:
    if not isinstance(value, Mapping):
        problems.append((name, 'must be a table of currency = "amount", e.g. JPY = "1000000"'))
        return {}
    limits: dict[str, Amount] = {}
    for code, text in value.items():
        where = f"{name}.{_shown(code)}"
        if not isinstance(code, str) or code not in MINOR_UNITS:
            problems.append((where, "not a supported ISO 4217 currency code"))
        elif not isinstance(text, str):
            problems.append((where, 'must be a decimal string, e.g. "1000000"'))
        else:
            try:
                limits[code] = parse_amount(text, code)
            except MoneyError as exc:
                problems.append((where, _money_message(exc)))
    return limits


def _step_up_rules(
    value: object,
    limited: set[Any],
    problems: list[tuple[str, str]],
    *,
    name: str = "step_up",
    what: str = "value_transfer",
) -> list[StepUpRule]:
    """``step_up`` (for transfers, against ``limits``) or ``funding_step_up`` (``what``
    ``funding``, against ``funding_limits``): the same shape."""
    if not isinstance(value, list):
        problems.append((name, f"must be a list of tables ([[anchor_sets.policy.{name}]])"))
        return []
    if len(value) > MAX_STEP_UP_RULES:
        problems.append((name, f"at most {MAX_STEP_UP_RULES} rules"))
        return []
    rules: list[StepUpRule] = []
    seen: set[tuple[str, int]] = set()
    for index, item in enumerate(value):
        rule = _step_up_rule(item, f"{name}[{index}]", limited, problems, what)
        if rule is None:
            continue
        if (rule.currency, rule.above.minor) in seen:
            problems.append((f"{name}[{index}]", "another rule has the same currency and above"))
        seen.add((rule.currency, rule.above.minor))
        rules.append(rule)
    return rules


def _step_up_rule(
    item: object, where: str, limited: set[Any], problems: list[tuple[str, str]], what: str
) -> StepUpRule | None:
    if not isinstance(item, Mapping):
        problems.append(
            (where, "must be a table with currency, above, assurance, max_age (and channel)")
        )
        return None
    before = len(problems)
    for key in item:
        if not isinstance(key, str):
            problems.append((where, "field names must be strings"))
        elif key not in STEP_UP_FIELDS:
            problems.append((f"{where}.{_shown(key)}", "unknown field"))
    for key in sorted(STEP_UP_REQUIRED_FIELDS - set(item)):
        problems.append((f"{where}.{key}", "missing"))
    channel = _channel(item, "channel", problems, where=f"{where}.channel")
    code, above = item.get("currency"), item.get("above")
    assurance, max_age = item.get("assurance"), item.get("max_age")
    amount: Amount | None = None
    if "currency" in item:
        if not isinstance(code, str) or code not in MINOR_UNITS:
            problems.append((f"{where}.currency", "not a supported ISO 4217 currency code"))
        elif code not in limited:
            problems.append((f"{where}.currency", _unlimited(code, what)))
        if "above" in item:
            amount = _above(above, code, f"{where}.above", problems)
    if "assurance" in item and assurance not in LEVELS:
        problems.append((f"{where}.assurance", f"must be one of {', '.join(LEVELS)}"))
    if "max_age" in item and (type(max_age) is not int or not 1 <= max_age <= MAX_STEP_UP_AGE):
        problems.append((f"{where}.max_age", f"must be whole seconds from 1 to {MAX_STEP_UP_AGE}"))
    if len(problems) != before or amount is None:
        return None
    return StepUpRule(
        currency=amount.currency,
        above=amount,
        assurance=cast(AssuranceLevel, assurance),
        max_age=cast(int, max_age),
        channel=channel,
    )


def _join_rules(value: object, problems: list[tuple[str, str]]) -> list[JoinRule]:
    if not isinstance(value, list):
        problems.append(("identity_joins", "must be a list of tables"))
        return []
    if len(value) > MAX_JOIN_RULES:
        problems.append(("identity_joins", f"at most {MAX_JOIN_RULES} rules"))
        return []
    rules: list[JoinRule] = []
    for index, item in enumerate(value):
        rule = _join_rule(item, f"identity_joins[{index}]", problems)
        if rule is None:
            continue
        if any(r.id == rule.id for r in rules):
            problems.append((f"identity_joins[{index}].id", "another rule has the same id"))
        rules.append(rule)
    return rules


def _join_rule(item: object, where: str, problems: list[tuple[str, str]]) -> JoinRule | None:
    if not isinstance(item, Mapping):
        problems.append((where, "must be a table with id, claims, min_assurance and normalizer"))
        return None
    before = len(problems)
    for key in item:
        if not isinstance(key, str):
            problems.append((where, "field names must be strings"))
        elif key not in JOIN_FIELDS:
            problems.append((f"{where}.{_shown(key)}", "unknown field"))
    for key in sorted(JOIN_FIELDS - set(item)):
        problems.append((f"{where}.{key}", "missing"))
    rule_id, claims = item.get("id"), item.get("claims")
    level, normalizer = item.get("min_assurance"), item.get("normalizer")
    if "id" in item and (not isinstance(rule_id, str) or not _JOIN_ID.fullmatch(rule_id)):
        problems.append(
            (f"{where}.id", "must be 1-64 of a-z, 0-9 and '-', e.g. name-and-birthdate")
        )
    if "claims" in item:
        if (
            not isinstance(claims, list)
            or not claims
            or not all(isinstance(c, str) and _CLAIM_NAME.fullmatch(c) for c in claims)
        ):
            problems.append(
                (f"{where}.claims", "must be a non-empty list of claim names, e.g. birthdate")
            )
        elif len(set(claims)) != len(claims):
            problems.append((f"{where}.claims", "lists a claim twice"))
        elif len(claims) > MAX_JOIN_CLAIMS:
            problems.append((f"{where}.claims", f"at most {MAX_JOIN_CLAIMS} claims"))
    if "min_assurance" in item and level not in JOIN_LEVELS:
        problems.append(
            (
                f"{where}.min_assurance",
                f"must be one of {', '.join(JOIN_LEVELS)} (claims at low are not proof)",
            )
        )
    if "normalizer" in item and normalizer != NORMALIZER_ID:
        problems.append((f"{where}.normalizer", f"must be {NORMALIZER_ID}"))
    if len(problems) != before:
        return None
    return JoinRule(
        id=cast(str, rule_id),
        claims=tuple(sorted(cast(list[str], claims))),
        min_assurance=cast(AssuranceLevel, level),
        normalizer=NORMALIZER_ID,
    )


def _above(
    value: object, code: object, where: str, problems: list[tuple[str, str]]
) -> Amount | None:
    if not isinstance(code, str) or code not in MINOR_UNITS:
        return None  # the currency problem is already reported
    if not isinstance(value, str):
        problems.append((where, 'must be a decimal string, e.g. "100000"'))
        return None
    try:
        return parse_amount(value, code)
    except MoneyError as exc:
        problems.append((where, _money_message(exc)))
        return None


def _money_message(exc: MoneyError) -> str:
    return {
        "bad_amount": "must be a plain decimal string (digits, at most one '.', no sign)",
        "too_many_decimals": f"too many decimals: {exc.detail}",
        "not_positive": "must be greater than zero",
        "too_large": "is out of range",
    }.get(exc.reason, exc.detail)


def _fields_with(problems: list[tuple[str, str]]) -> set[str]:
    return {where.split(".", 1)[0] for where, _ in problems}


def _shown(value: object) -> str:
    """A field name or value as it may appear in a message: short, printable."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) > 40 or not text.isprintable():
        return "?"
    return text


def _join(prefix: str, where: str) -> str:
    if not where:
        return prefix
    if not prefix or where.startswith("["):
        return prefix + where
    return f"{prefix}.{where}"
