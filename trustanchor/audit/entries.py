"""The canonical, versioned format of audit log entries (docs/AUDIT-FORMAT.md is the reference).

An entry is one flat JSON object: ``v`` (format version, 1), ``kind``, ``at`` (POSIX seconds) and
the fields of its kind. Its *canonical bytes* are what the Merkle leaf hashes
(``SHA-256(0x00 || canonical bytes)``), so they must be reproducible by any auditor, forever:

- UTF-8, members sorted by name, no whitespace (``{"a":1,"b":"x"}``), the RFC 8785 (JCS) output
  for these values. Entries are restricted so JCS, Python's ``json.dumps(sort_keys=True,
  separators=(",", ":"), ensure_ascii=False)`` and any careful encoder agree byte for byte:
  member names are ASCII; values are strings, ``null`` or non-negative integers below 2^53; no
  floats, booleans, arrays or nested objects; no string contains a control character, so no
  string needs an escape other than ``\\"`` and ``\\\\``.
- Strings must already be in Unicode NFC and are *refused* otherwise, not normalised: silently
  rewriting an identifier would record something other than what the service acted on.

:func:`parse_entry` accepts only canonical bytes (it re-encodes and compares), so one entry has
exactly one encoding and a re-serialised or hand-edited entry is visible as such.

What entries may hold (SECURITY-CASES "entries hold no raw tokens, codes, or personal data"):
every field has one of a few shapes, none of which is free text. Digests are 64 lowercase hex
characters (SHA-256, as :func:`trustanchor.digests.secret_digest`), which no raw token,
authorization code or JWT this service hands out can match (those are base64url). Pseudonyms
(pairwise ``sub``, holder ids) are 43-character base64url HMAC-SHA256 outputs; identifiers are
short, whitespace-free, ``@``-free and refuse the shapes of raw secrets (an all-base64url string
of 43+ characters, a compact JWS). A pseudonym field cannot tell an HMAC output from a random
string of the same length: deriving it is the caller's duty (``oauth.pairwise``,
``digests.keyed_digest``).

Extension: a new kind is a new dataclass registered in ``_KINDS``; a new field in an existing
kind, or any change to an existing field, is a new format version. Every kind has exactly its
members, none optional: that is what gives an entry one encoding and keeps every earlier entry's
bytes and leaf hash when the format grows (a login at a bank branch is therefore its own kind,
``login_in_person``, not ``login`` with extra members).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from trustanchor.strict_json import StrictJSONError, dumps_canonical, loads

VERSION = 1
MAX_ENTRY_BYTES = 8192
MAX_INT = (1 << 53) - 1  # exact in every JSON implementation (RFC 8785 §3.2.2.3, I-JSON)
MAX_IDENTIFIER = 255
MAX_SCOPE = 1024

REASONS = frozenset(
    {
        "not_bytes",
        "too_large",
        "not_json",
        "not_object",
        "float",
        "bad_type",
        "unsupported_version",
        "unknown_kind",
        "missing_field",
        "unknown_field",
        "bad_value",
        "not_nfc",
        "not_canonical",
    }
)


class EntryError(Exception):
    """An entry was refused. ``reason`` is a stable code from :data:`REASONS`; ``field`` names
    the offending member when there is one."""

    def __init__(self, reason: str, field: str | None = None, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.field = field
        self.detail = detail
        where = f" ({field})" if field else ""
        super().__init__(f"{reason}{where}: {detail}" if detail else f"{reason}{where}")


# --- value shapes ---------------------------------------------------------------------------

Rule = Callable[[str, object], None]

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
# 43 base64url characters carry 258 bits; a canonical 32-byte value leaves the last 2 at zero.
_B64URL_256 = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{43,}")
_JWS_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_CODE = re.compile(r"[a-z][a-z0-9_]{0,63}")
_ASCII_IDENTIFIER = re.compile(r"[\x21-\x3f\x41-\x7e]+")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3 scope-token


def _string(name: str, value: object) -> str:
    if not isinstance(value, str):
        raise EntryError("bad_type", name, "expected a string")
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):  # ASCII is NFC
        raise EntryError("not_nfc", name)
    return value


def integer(name: str, value: object) -> None:
    """A non-negative integer below 2^53 (times are POSIX seconds). ``bool`` is not an int."""
    if isinstance(value, float):
        raise EntryError("float", name)
    if type(value) is not int:
        raise EntryError("bad_type", name, "expected an integer")
    if not 0 <= value <= MAX_INT:
        raise EntryError("bad_value", name, "integer out of range")


def digest_value(name: str, value: object) -> None:
    """SHA-256, 64 lowercase hex characters (see :func:`digest`)."""
    if not _HEX_DIGEST.fullmatch(_string(name, value)):
        raise EntryError("bad_value", name, "expected a SHA-256 digest in lowercase hex")


def pseudonym(name: str, value: object) -> None:
    """A keyed digest: the canonical base64url of 32 bytes (43 characters)."""
    if not _B64URL_256.fullmatch(_string(name, value)):
        raise EntryError("bad_value", name, "expected a 43-character base64url pseudonym")


def identifier(name: str, value: object) -> None:
    """A short opaque id (jti, client_id, anchor id, acr, ...): 1..255 characters without
    whitespace, control, format or private-use characters and without ``@`` (e-mail addresses
    are personal data); refuses the shapes of raw codes, refresh tokens and JWTs (base64url of
    43+ characters, ``eyJ….….…``) but takes a SHA-256 hex digest."""
    text = _string(name, value)
    if not 1 <= len(text) <= MAX_IDENTIFIER:
        raise EntryError("bad_value", name, "identifier length must be 1..255")
    # ASCII (the usual case) in one match: U+0021..U+007E but "@" are the ASCII characters
    # outside the categories C and Z; any other text is checked character by character.
    if not (text.isascii() and _ASCII_IDENTIFIER.fullmatch(text)):
        for ch in text:
            if ch == "@" or unicodedata.category(ch)[0] in "CZ":
                raise EntryError("bad_value", name, f"character U+{ord(ch):04X} not allowed")
    if _HEX_DIGEST.fullmatch(text):
        return  # a digest standing in for an opaque secret (refresh_rotation's jti)
    if _SECRET_SHAPE.fullmatch(text) or _JWS_SHAPE.fullmatch(text):
        raise EntryError("bad_value", name, "looks like a raw secret or token")


def code(name: str, value: object) -> None:
    """A machine reason or category code: ``[a-z][a-z0-9_]{0,63}``."""
    if not _CODE.fullmatch(_string(name, value)):
        raise EntryError("bad_value", name, "expected a snake_case code")


def scope(name: str, value: object) -> None:
    """An RFC 6749 scope: scope-tokens separated by single spaces; may be empty. Tokens with
    the shape of a raw secret, a JWT or an address (``@``) are refused; any other word is a
    valid scope-token, so what keeps personal data out is that only granted scope values, from
    the service's configured list, are recorded."""
    text = _string(name, value)
    if len(text) > MAX_SCOPE:
        raise EntryError("bad_value", name, "scope too long")
    if text == "":
        return
    for token in text.split(" "):
        if not _SCOPE_TOKEN.fullmatch(token):
            raise EntryError("bad_value", name, "not a space-separated list of scope tokens")
        if "@" in token or _SECRET_SHAPE.fullmatch(token) or _JWS_SHAPE.fullmatch(token):
            raise EntryError("bad_value", name, "a scope token looks like a secret or address")


def one_of(*allowed: str) -> Rule:
    def rule(name: str, value: object) -> None:
        if _string(name, value) not in allowed:
            raise EntryError("bad_value", name, f"expected one of {', '.join(allowed)}")

    return rule


def nullable(inner: Rule) -> Rule:
    def rule(name: str, value: object) -> None:
        if value is not None:
            inner(name, value)

    return rule


def digest(value: str) -> str:
    """SHA-256 of the UTF-8 value, lowercase hex: the digest format of audit entries. Equal to
    :func:`trustanchor.digests.secret_digest`, so a stored grant or refresh-token digest is
    recorded as is."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def authorization_details_digest(details: Sequence[Mapping[str, Any]]) -> str:
    """Digest of RFC 9396 ``authorization_details`` over their canonical JSON (sorted keys,
    compact, UTF-8: ``strict_json.dumps_canonical``). That equals RFC 8785 for strings,
    integers and nesting; a non-integer number is written as Python writes floats, which
    types registered in ``oauth.authorization_details`` should avoid (amounts as strings)."""
    return digest(dumps_canonical(list(details)))


# --- entry kinds ----------------------------------------------------------------------------


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(kind: type) -> tuple[str, ...]:
    """The fields of an entry class, in declaration order (read once per class)."""
    names = _FIELD_NAMES.get(kind)
    if names is None:
        names = _FIELD_NAMES[kind] = tuple(f.name for f in fields(kind))
    return names


class _Entry:
    """Behaviour shared by every kind: validation on construction, canonical encoding."""

    __slots__ = ()
    KIND: ClassVar[str]
    SCHEMA: ClassVar[Mapping[str, Rule]]

    def __post_init__(self) -> None:
        integer("at", getattr(self, "at"))  # noqa: B009 - declared by every subclass
        for name, rule in self.SCHEMA.items():
            rule(name, getattr(self, name))
        self._check()

    def _check(self) -> None:
        """Cross-field rules of a kind."""

    def to_json_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"v": VERSION, "kind": self.KIND}
        for name in _field_names(type(self)):
            obj[name] = getattr(self, name)
        return obj

    def to_canonical(self) -> bytes:
        return dumps_canonical(self.to_json_object()).encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenIssued(_Entry):
    """An access token or ID token issued, or a refresh token rotated. For ``refresh_rotation``
    ``jti`` is the digest of the new refresh token (refresh tokens are opaque secrets)."""

    KIND: ClassVar[str] = "token_issued"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "jti": identifier,
        "token_kind": one_of("access_token", "id_token", "refresh_rotation"),
        "client_id": identifier,
        "sub": nullable(pseudonym),
        "scope": scope,
        "authorization_details": nullable(digest_value),
        "anchor_id": nullable(identifier),
        "anchor_set_id": nullable(identifier),
        "acr": nullable(identifier),
        "exp": integer,
    }
    at: int
    jti: str
    token_kind: str
    client_id: str
    sub: str | None
    scope: str
    authorization_details: str | None
    anchor_id: str | None
    anchor_set_id: str | None
    acr: str | None
    exp: int

    def _check(self) -> None:
        if self.token_kind == "refresh_rotation":  # noqa: S105 - a kind name, not a secret
            digest_value("jti", self.jti)


@dataclass(frozen=True, slots=True, kw_only=True)
class TokenRevoked(_Entry):
    """A token (by ``jti``) or a whole grant (by ``grant`` digest) revoked; exactly one is set."""

    KIND: ClassVar[str] = "token_revoked"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "jti": nullable(identifier),
        "grant": nullable(digest_value),
        "reason": code,
    }
    at: int
    jti: str | None
    grant: str | None
    reason: str

    def _check(self) -> None:
        if (self.jti is None) == (self.grant is None):
            raise EntryError("bad_value", "jti", "exactly one of jti and grant")


@dataclass(frozen=True, slots=True, kw_only=True)
class ReuseDetected(_Entry):
    """A one-time artefact presented twice; the grant (digest) it belongs to is revoked."""

    KIND: ClassVar[str] = "reuse_detected"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "what": one_of("code", "refresh_token"),
        "grant": digest_value,
    }
    at: int
    what: str
    grant: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Login(_Entry):
    """A login at an anchor: ``ok`` (``reason`` null) or ``failed`` with a reason code. A
    successful login at a bank branch's counter is a :class:`LoginInPerson` instead."""

    KIND: ClassVar[str] = "login"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "anchor_id": identifier,
        "outcome": one_of("ok", "failed"),
        "reason": nullable(code),
        "holder": nullable(pseudonym),
    }
    at: int
    anchor_id: str
    outcome: str
    reason: str | None
    holder: str | None

    def _check(self) -> None:
        if (self.outcome == "failed") != (self.reason is not None):
            raise EntryError("bad_value", "reason", "a reason code exactly when failed")


def null(name: str, value: object) -> None:
    """Always ``null``: a member a kind shares with another kind where it has a value."""
    if value is not None:
        raise EntryError("bad_value", name, "always null in this kind")


@dataclass(frozen=True, slots=True, kw_only=True)
class LoginInPerson(_Entry):
    """A successful login at a bank branch's counter terminal (added to version 1 as a new kind,
    docs/AUDIT-FORMAT.md §1.2): the members of a successful ``login`` (``outcome`` ``ok``,
    ``reason`` null, the holder's pseudonym), so a reader of ``login`` entries reads it the same
    way, plus ``branch`` (the terminal client's declared branch id) and ``operator`` (the staff
    operator, a pseudonym keyed over branch and staff id). A login that fails at the counter is
    a ``login`` entry like any other failure."""

    KIND: ClassVar[str] = "login_in_person"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "anchor_id": identifier,
        "outcome": one_of("ok"),
        "reason": null,
        "holder": pseudonym,
        "branch": identifier,
        "operator": pseudonym,
    }
    at: int
    anchor_id: str
    outcome: str
    reason: None
    holder: str
    branch: str
    operator: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision(_Entry):
    """An authorization decision."""

    KIND: ClassVar[str] = "decision"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "decision_id": identifier,
        "result": one_of("allowed", "denied"),
        "reason": code,
        "anchor_set_id": nullable(identifier),
    }
    at: int
    decision_id: str
    result: str
    reason: str
    anchor_set_id: str | None


# The operation types of ``oauth.authorization_details`` and the currencies of
# ``domain.money.MINOR_UNITS``, written out: this module is the format's reference and depends on
# nothing of the service, and a value added to either list changes what ``decision_operation``
# accepts, which is a format decision (docs/AUDIT-FORMAT.md §1.2), not a side effect of adding an
# operation type or a currency. Tests check that the lists agree.
OPERATIONS = ("account_link", "funding", "standing_funding", "value_transfer")
CURRENCIES = ("AUD", "CAD", "CHF", "CNY", "EUR", "GBP", "HKD", "JPY", "KRW", "SEK", "SGD", "USD")
_AMOUNT_OPERATIONS = frozenset({"funding", "standing_funding", "value_transfer"})


def positive(name: str, value: object) -> None:
    """An integer ``1 … 2^53−1`` (an amount in minor units)."""
    integer(name, value)
    if value == 0:
        raise EntryError("bad_value", name, "must be at least 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionOperation(_Entry):
    """What a ``decision`` decided on (added to version 1 as a new kind, docs/AUDIT-FORMAT.md
    §1.2): written right after the ``decision`` with the same ``decision_id``, in the same
    transaction. ``operation`` is the authorization_details type; ``currency`` and ``amount``
    (minor units) the movement's amount (a transfer's or funding's instructed amount, a standing
    authorization's ``max_amount``), null for an account link; ``action`` ``link`` or
    ``unlink`` for an account link, null otherwise. No account, link or party: amounts without
    parties."""

    KIND: ClassVar[str] = "decision_operation"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "decision_id": identifier,
        "operation": one_of(*OPERATIONS),
        "currency": nullable(one_of(*CURRENCIES)),
        "amount": nullable(positive),
        "action": nullable(one_of("link", "unlink")),
    }
    at: int
    decision_id: str
    operation: str
    currency: str | None
    amount: int | None
    action: str | None

    def _check(self) -> None:
        if self.operation in _AMOUNT_OPERATIONS:
            if self.currency is None or self.amount is None:
                raise EntryError("bad_value", "amount", "a movement names its currency and amount")
            if self.action is not None:
                raise EntryError("bad_value", "action", "null except for an account link")
        else:
            if self.currency is not None or self.amount is not None:
                raise EntryError("bad_value", "amount", "null for an account link")
            if self.action is None:
                raise EntryError("bad_value", "action", "an account link is link or unlink")


@dataclass(frozen=True, slots=True, kw_only=True)
class OperatorChange(_Entry):
    """An operator action: ``what`` (e.g. anchor, client, signing_key), its ``id``, ``action``
    (e.g. added, suspended, removed, rotated)."""

    KIND: ClassVar[str] = "operator_change"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "what": code,
        "id": identifier,
        "action": code,
    }
    at: int
    what: str
    id: str
    action: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Refusal(_Entry):
    """A request refused at the PAR or token endpoint (added to version 1 as a new kind).

    ``client_id`` is the authenticated client, or the registered client a failed authentication
    named; null when no registered client can be named (never text chosen by the caller).
    ``grant_type`` is a supported grant type of a token request, else null; always null at PAR.
    ``error`` is the OAuth error code answered, ``reason`` the stable code of the check that
    refused (``oauth.errors.OAuthError.reason``)."""

    KIND: ClassVar[str] = "refusal"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "endpoint": one_of("par", "token"),
        "client_id": nullable(identifier),
        "grant_type": nullable(code),
        "error": code,
        "reason": code,
    }
    at: int
    endpoint: str
    client_id: str | None
    grant_type: str | None
    error: str
    reason: str

    def _check(self) -> None:
        if self.endpoint == "par" and self.grant_type is not None:
            raise EntryError("bad_value", "grant_type", "null at the par endpoint")


_REASON_COUNT = re.compile(r"([a-z][a-z0-9_]{0,63})=([1-9][0-9]{0,15})")
MAX_REASON_COUNTS = 64


def reason_counts(name: str, value: object) -> None:
    """How many of each reason: ``code=count`` pairs separated by single spaces, codes in
    ascending order and each once, counts positive decimal integers without leading zeros
    (``kb_nonce_mismatch=3 wallet_declined=2997``); at most :data:`MAX_REASON_COUNTS` pairs."""
    parse_reason_counts(name, value)


def parse_reason_counts(name: str, value: object) -> dict[str, int]:
    """The counts of a ``reason_counts`` value, validated (see :func:`reason_counts`)."""
    text = _string(name, value)
    pairs = text.split(" ")
    if len(pairs) > MAX_REASON_COUNTS:
        raise EntryError("bad_value", name, f"at most {MAX_REASON_COUNTS} reasons")
    counts: dict[str, int] = {}
    for pair in pairs:
        match = _REASON_COUNT.fullmatch(pair)
        if match is None:
            raise EntryError("bad_value", name, "expected space-separated code=count pairs")
        reason, count = match.group(1), int(match.group(2))
        if counts and reason <= max(counts):
            raise EntryError("bad_value", name, "reasons must be unique and in ascending order")
        integer(name, count)
        counts[reason] = count
    return counts


def format_reason_counts(counts: Mapping[str, int]) -> str:
    """The ``reason_counts`` text of ``counts`` (reasons sorted; zero counts left out)."""
    return " ".join(f"{reason}={count}" for reason, count in sorted(counts.items()) if count)


@dataclass(frozen=True, slots=True, kw_only=True)
class Omitted(_Entry):
    """Entries of kind ``what`` that were *not* recorded in ``[since, until)`` because an
    anonymous budget was spent, counted by reason (added to version 1 as a new kind; written
    once per window, docs/AUDIT-FORMAT.md §1.7). ``count`` is the sum of ``reasons``."""

    KIND: ClassVar[str] = "omitted"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "what": code,
        "since": integer,
        "until": integer,
        "count": integer,
        "reasons": reason_counts,
    }
    at: int
    what: str
    since: int
    until: int
    count: int
    reasons: str

    def _check(self) -> None:
        if self.until <= self.since:
            raise EntryError("bad_value", "until", "the window must end after it starts")
        if self.count < 1 or self.count != sum(
            parse_reason_counts("reasons", self.reasons).values()
        ):
            raise EntryError("bad_value", "count", "the sum of the reasons' counts, at least 1")


MAX_CLAIM_NAMES = 16


def claim_names(name: str, value: object) -> None:
    """Claim *names* (never values): codes separated by single spaces, ascending, each once,
    at most :data:`MAX_CLAIM_NAMES` (``birthdate family_name given_name``)."""
    names = _string(name, value).split(" ")
    if len(names) > MAX_CLAIM_NAMES:
        raise EntryError("bad_value", name, f"at most {MAX_CLAIM_NAMES} claim names")
    for item in names:
        if not _CODE.fullmatch(item):
            raise EntryError("bad_value", name, "expected space-separated claim names")
    if names != sorted(set(names)):
        raise EntryError("bad_value", name, "claim names must be unique and in ascending order")


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityJoin(_Entry):
    """An identity joined a holder with proof, or an operator undid that (added to version 1 as
    a new kind, docs/AUDIT-FORMAT.md §1.8). ``joined``: ``rule`` of ``anchor_set_id`` matched
    ``claims`` (names only) against the holder's identity at ``matched_anchor_id``; ``new_holder``
    is null. ``unjoined``: the identity left ``holder`` for ``new_holder``; rule, set, matched
    anchor and claims are null. Identities and holders are pseudonyms."""

    KIND: ClassVar[str] = "identity_join"
    SCHEMA: ClassVar[Mapping[str, Rule]] = {
        "action": one_of("joined", "unjoined"),
        "identity": pseudonym,
        "anchor_id": identifier,
        "holder": pseudonym,
        "new_holder": nullable(pseudonym),
        "rule": nullable(identifier),
        "anchor_set_id": nullable(identifier),
        "matched_anchor_id": nullable(identifier),
        "claims": nullable(claim_names),
    }
    at: int
    action: str
    identity: str
    anchor_id: str
    holder: str
    new_holder: str | None
    rule: str | None
    anchor_set_id: str | None
    matched_anchor_id: str | None
    claims: str | None

    def _check(self) -> None:
        proof = (self.rule, self.anchor_set_id, self.matched_anchor_id, self.claims)
        if self.action == "joined":
            if any(part is None for part in proof) or self.new_holder is not None:
                raise EntryError("bad_value", "rule", "a join names its proof and no new holder")
        elif any(part is not None for part in proof) or self.new_holder is None:
            raise EntryError("bad_value", "new_holder", "an unjoin names the new holder only")


Entry = (
    TokenIssued
    | TokenRevoked
    | ReuseDetected
    | Login
    | LoginInPerson
    | Decision
    | DecisionOperation
    | OperatorChange
    | Refusal
    | Omitted
    | IdentityJoin
)

_KINDS: dict[str, type[Entry]] = {
    cls.KIND: cls
    for cls in (
        TokenIssued,
        TokenRevoked,
        ReuseDetected,
        Login,
        LoginInPerson,
        Decision,
        DecisionOperation,
        OperatorChange,
        Refusal,
        Omitted,
        IdentityJoin,
    )
}
KINDS = tuple(_KINDS)


def entry_from_mapping(data: Mapping[str, Any]) -> Entry:
    """Build an entry from a decoded JSON object (member order irrelevant), validating it."""
    for name, value in data.items():
        if isinstance(value, float):
            raise EntryError("float", name)
        if isinstance(value, bool) or (value is not None and not isinstance(value, str | int)):
            raise EntryError("bad_type", name, "only strings, integers and null")
    version = data.get("v")
    if type(version) is not int or version != VERSION:
        raise EntryError("unsupported_version", "v", repr(version))
    kind = data.get("kind")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EntryError("unknown_kind", "kind", repr(kind))
    expected = {"at", *cls.SCHEMA}
    for name in data:
        if name not in expected and name not in ("v", "kind"):
            raise EntryError("unknown_field", name)
    for name in sorted(expected):
        if name not in data:
            raise EntryError("missing_field", name)
    return cls(**{name: data[name] for name in expected})


def parse_entry(data: bytes) -> Entry:
    """Parse canonical entry bytes; anything else (other encodings of the same entry included)
    raises :class:`EntryError`."""
    if not isinstance(data, bytes):
        raise EntryError("not_bytes")
    if len(data) > MAX_ENTRY_BYTES:
        raise EntryError("too_large")
    try:
        decoded = loads(data, max_depth=1, max_bytes=MAX_ENTRY_BYTES)
    except StrictJSONError as exc:
        raise EntryError("not_json", detail=str(exc)) from exc
    if not isinstance(decoded, dict):
        raise EntryError("not_object")
    entry = entry_from_mapping(decoded)
    if entry.to_canonical() != data:
        raise EntryError("not_canonical")
    return entry
