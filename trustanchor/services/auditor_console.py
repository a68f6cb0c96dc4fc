"""The auditor console's login: a first-party client of this service, logging people in through
the same path every client uses (``services.first_party_login``).

The console is the built-in OAuth client :data:`CLIENT_ID` with its callback at
:data:`CALLBACK_PATH`. From the redeemed grant the console knows the holder; the holder's
**auditor reference** is the holder pseudonym the audit log's login entries carry. A console
session (id stored as a digest) is created for anyone who logs in; whether they may read anything
is decided on every request by looking the reference up among the designated auditors
(``services.auditors``).

The entries page's filters (:func:`parse_filter`, :func:`find_entries`) and sentences
(:func:`describe`) are here too: docs/AUDIT-FORMAT.md §4.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from sqlalchemy import ColumnElement, Connection, and_, or_, select

from trustanchor.audit.entries import KINDS
from trustanchor.config.settings import Settings
from trustanchor.secrets_store import ServiceSecrets
from trustanchor.services import audit_stats, audit_trail, first_party_login, log_check
from trustanchor.services.container import Services
from trustanchor.services.first_party_login import ClientKey, LoginStart
from trustanchor.services.first_party_login import LoginRefused as LoginRefused
from trustanchor.storage import auditors_repo
from trustanchor.storage.auditors_repo import SessionAccess
from trustanchor.storage.database import Database
from trustanchor.storage.grants_repo import Grant
from trustanchor.storage.tables import audit_leaves
from trustanchor.strict_json import StrictJSONError, loads

CLIENT_ID = "trustanchor-auditor-console"
CALLBACK_PATH = "/auditor/callback"
CLIENT_NAME = {"en": "trustanchor auditor console", "ja": "trustanchor 監査コンソール"}
SCOPE = first_party_login.SCOPE

ConsoleUnavailable = first_party_login.ClientUnavailable
ConsoleKey = ClientKey


class _ConsoleSessions:
    """Console sessions are kept under the holder's auditor reference, not the holder id."""

    def create(
        self,
        services: Services,
        conn: Connection,
        session_id: str,
        grant: Grant,
        *,
        now: int,
        expires_at: int,
    ) -> None:
        assert grant.holder_id is not None  # first_party_login checked it
        auditors_repo.create_session(
            conn,
            session_id,
            audit_trail.holder_pseudonym(services.secrets.pairwise, grant.holder_id),
            grant.id,
            now=now,
            expires_at=expires_at,
        )

    def end(self, conn: Connection, session_id: str, *, now: int) -> bool:
        return auditors_repo.end_session(conn, session_id, now=now)


CLIENT = first_party_login.FirstPartyClient(
    client_id=CLIENT_ID,
    callback_path=CALLBACK_PATH,
    client_name=CLIENT_NAME,
    context="auditor-console",
    title="auditor console",
    session_lifetime=lambda settings: settings.auditor_console.session_lifetime,
    sessions=_ConsoleSessions(),
)


@dataclass(frozen=True, slots=True)
class LoggedIn:
    session_id: str  # to hand to the browser (cookie); stored only as a digest
    holder_ref: str


def console_key(settings: Settings, secrets: ServiceSecrets) -> ClientKey:
    return first_party_login.client_key(settings, secrets, CLIENT)


def callback_url(settings: Settings) -> str:
    return first_party_login.callback_url(settings, CLIENT)


def client_declaration(settings: Settings, secrets: ServiceSecrets) -> dict[str, Any]:
    return first_party_login.client_declaration(settings, secrets, CLIENT)


def register_client(
    settings: Settings, db: Database, secrets: ServiceSecrets, *, now: int
) -> list[str]:
    return first_party_login.register_client(settings, db, secrets, CLIENT, now=now)


def begin_login(services: Services, *, language: str) -> LoginStart:
    return first_party_login.begin_login(services, CLIENT, language=language)


def finish_login(
    services: Services, params: Mapping[str, list[str]], *, bound_state: str | None
) -> LoggedIn:
    logged_in = first_party_login.finish_login(services, CLIENT, params, bound_state=bound_state)
    assert logged_in.grant.holder_id is not None
    holder_ref = audit_trail.holder_pseudonym(services.secrets.pairwise, logged_in.grant.holder_id)
    return LoggedIn(logged_in.session_id, holder_ref)


def access(services: Services, session_id: str | None) -> SessionAccess | None:
    """The live session behind the cookie with its current designation, or None (no cookie,
    unknown, expired or ended)."""
    if not first_party_login.well_formed_session(session_id):
        return None
    assert session_id is not None
    with services.db.reader() as conn:
        return auditors_repo.session_access(conn, session_id, now=services.clock.now())


def well_formed_session(session_id: str | None) -> bool:
    return first_party_login.well_formed_session(session_id)


def csrf_token(services: Services, session_id: str) -> str:
    return first_party_login.csrf_token(services, CLIENT, session_id)


def csrf_ok(services: Services, session_id: str | None, sent: str | None) -> bool:
    return first_party_login.csrf_ok(services, CLIENT, session_id, sent)


def logout(services: Services, session_id: str | None) -> None:
    first_party_login.logout(services, CLIENT, session_id)


def check_log(services: Services) -> log_check.LogCheck:
    """The console's stored-log check: incremental from the last verified checkpoint
    (``services.log_check``; the whole-log check is ``trustanchor audit replay``). Raises
    ``log_check.LogCheckFailed``."""
    return log_check.check(services)


# --- the entries page: filters and sentences -----------------------------------------------
#
# The entries page lists log entries newest first, optionally filtered by kind, outcome and
# period (query parameters, docs/AUDIT-FORMAT.md §4.2). Each entry is shown as a sentence built
# only from what the entry holds (plus the operator's public names of anchors and anchor sets,
# looked up by the web layer), with its canonical text one click away (§4.1).

_SHOWN_FIRST = (
    "decision",
    "decision_operation",
    "login",
    "login_in_person",
    "token_issued",
    "token_revoked",
    "reuse_detected",
    "refusal",
    "operator_change",
    "identity_join",
    "omitted",
)
ENTRY_KINDS: tuple[str, ...] = (
    *(kind for kind in _SHOWN_FIRST if kind in KINDS),
    *(kind for kind in KINDS if kind not in _SHOWN_FIRST),
)
"""Every entry kind (docs/AUDIT-FORMAT.md §1.2), in the order the filter form lists them."""
OUTCOMES: tuple[str, ...] = ("allowed", "denied", "succeeded", "failed", "refused")
"""Outcome of an entry: ``allowed`` / ``denied`` (policy ``decision``), ``succeeded`` /
``failed`` (``login``, ``login_in_person``; ``omitted`` summarises failed logins), ``refused``
(``refusal`` at PAR or token). Other kinds have no outcome and are left out by an outcome
filter."""

FILTER_PARAMETERS = ("kind", "outcome", "from", "to")
MAX_SCANNED = audit_stats.MAX_SCANNED
"""Most log entries (by tree index) one page of a filtered listing looks at."""
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DAY = 86_400


class FilterRefused(ValueError):
    """A filter parameter that is not acceptable: ``parameter`` names it, ``reason`` is one of
    ``repeated``, ``unknown_kind``, ``unknown_outcome``, ``bad_date``, ``empty_period``."""

    def __init__(self, parameter: str, reason: str) -> None:
        super().__init__(f"{parameter}: {reason}")
        self.parameter = parameter
        self.reason = reason


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Which entries to list: any of ``kinds`` (empty: every kind), any of ``outcomes`` (empty:
    any, including none), recorded on or after day ``since`` and on or before day ``until``
    (UTC calendar days, inclusive)."""

    kinds: tuple[str, ...] = ()
    outcomes: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None

    @property
    def active(self) -> bool:
        return bool(self.kinds or self.outcomes or self.since or self.until)

    def query(self) -> list[tuple[str, str]]:
        """The filter as query parameters (for links that keep it), in a fixed order."""
        params = [("kind", kind) for kind in self.kinds]
        params += [("outcome", outcome) for outcome in self.outcomes]
        if self.since is not None:
            params.append(("from", self.since.isoformat()))
        if self.until is not None:
            params.append(("to", self.until.isoformat()))
        return params

    @property
    def start(self) -> int | None:
        """First second of the period (POSIX, UTC)."""
        return None if self.since is None else _epoch_day(self.since)

    @property
    def end(self) -> int | None:
        """First second after the period."""
        return None if self.until is None else _epoch_day(self.until) + _DAY


def _epoch_day(day: date) -> int:
    return (day - date(1970, 1, 1)).days * _DAY


def parse_filter(params: Mapping[str, Sequence[str]]) -> EntryFilter:
    """The filter named by the query ``params`` (name → every value given). ``kind`` and
    ``outcome`` may repeat (each value known, duplicates dropped, listed in the canonical order);
    ``from`` and ``to`` are ``YYYY-MM-DD`` dates from 1970 on, each at most once, an empty
    value meaning not set (what an empty date field of a form sends). Raises
    :class:`FilterRefused`."""
    kinds = _choices(params, "kind", ENTRY_KINDS, "unknown_kind")
    outcomes = _choices(params, "outcome", OUTCOMES, "unknown_outcome")
    since = _date(params, "from")
    until = _date(params, "to")
    if since is not None and until is not None and until < since:
        raise FilterRefused("to", "empty_period")
    return EntryFilter(kinds, outcomes, since, until)


def _choices(
    params: Mapping[str, Sequence[str]], name: str, known: tuple[str, ...], reason: str
) -> tuple[str, ...]:
    given = [value for value in params.get(name, ()) if value != ""]
    for value in given:
        if value not in known:
            raise FilterRefused(name, reason)
    return tuple(value for value in known if value in given)


def _date(params: Mapping[str, Sequence[str]], name: str) -> date | None:
    values = params.get(name, ())
    if len(values) > 1:
        raise FilterRefused(name, "repeated")
    if not values or values[0] == "":
        return None
    text = values[0]
    if not text.isascii() or not _DATE.fullmatch(text):
        raise FilterRefused(name, "bad_date")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise FilterRefused(name, "bad_date") from None
    if day.year < 1970:
        raise FilterRefused(name, "bad_date")
    return day


def outcome_of(data: Mapping[str, object]) -> str | None:
    """The outcome (:data:`OUTCOMES`) of a decoded entry, or None for a kind without one. The
    SQL of :func:`find_entries` selects exactly the entries this gives each outcome."""
    kind = data.get("kind")
    if kind == "decision" and data.get("result") in ("allowed", "denied"):
        return str(data["result"])
    if kind == "login_in_person" or (kind == "login" and data.get("outcome") == "ok"):
        return "succeeded"
    if kind == "omitted" or (kind == "login" and data.get("outcome") == "failed"):
        return "failed"
    if kind == "refusal":
        return "refused"
    return None


# Entries are stored as their canonical text (sorted members, no whitespace), in which a member
# and its value appear exactly as written here; a string value cannot contain this text (its
# quotes would be escaped).
_KIND = audit_leaves.c.kind
_TEXT = audit_leaves.c.entry
_OUTCOME_SQL = {
    "allowed": and_(_KIND == "decision", _TEXT.contains('"result":"allowed"', autoescape=True)),
    "denied": and_(_KIND == "decision", _TEXT.contains('"result":"denied"', autoescape=True)),
    "succeeded": or_(
        and_(_KIND == "login", _TEXT.contains('"outcome":"ok"', autoescape=True)),
        _KIND == "login_in_person",
    ),
    "failed": or_(
        and_(_KIND == "login", _TEXT.contains('"outcome":"failed"', autoescape=True)),
        _KIND == "omitted",
    ),
    "refused": _KIND == "refusal",
}


@dataclass(frozen=True, slots=True)
class ListedEntry:
    index: int
    text: str  # the canonical entry, as stored and hashed into the tree
    leaf_hash: str  # hex


@dataclass(frozen=True, slots=True)
class EntriesPage:
    """One page of the listing: ``rows`` newest first, all below ``end``; the indexes
    ``[searched_from, end)`` were looked at. ``older``: the ``before`` of the next older page
    (None: nothing older can match); ``newer``: the ``before`` of the next newer page (None:
    none, or the next newer page is the latest)."""

    rows: tuple[ListedEntry, ...]
    size: int
    end: int
    searched_from: int
    older: int | None
    newer: int | None
    scan_limited: bool  # fewer rows than a page because the search stopped at MAX_SCANNED


def find_entries(
    db: Database,
    entry_filter: EntryFilter,
    *,
    size: int,
    before: int | None,
    per_page: int,
    max_scanned: int = MAX_SCANNED,
) -> EntriesPage:
    """The newest ``per_page`` entries matching ``entry_filter`` with an index below ``before``
    (default: the checkpoint's ``size``), looking at no more than ``max_scanned`` indexes."""
    end = size if before is None else min(before, size)
    low = max(0, end - max_scanned)
    conditions = _conditions(entry_filter)
    with db.reader() as conn:
        found = conn.execute(
            select(audit_leaves.c.tree_index, _TEXT, audit_leaves.c.leaf_hash)
            .where(audit_leaves.c.tree_index >= low, audit_leaves.c.tree_index < end, *conditions)
            .order_by(audit_leaves.c.tree_index.desc())
            .limit(per_page + 1)
        ).all()
        newer = _newer(conn, conditions, end, size, per_page, max_scanned)
    rows = tuple(ListedEntry(int(r.tree_index), r.entry, r.leaf_hash) for r in found[:per_page])
    if len(found) > per_page:
        older: int | None = rows[-1].index
        searched_from = rows[-1].index
    else:
        older = low if low > 0 else None
        searched_from = low
    return EntriesPage(
        rows=rows,
        size=size,
        end=end,
        searched_from=searched_from,
        older=older,
        newer=newer,
        scan_limited=len(found) <= per_page and low > 0,
    )


def _conditions(entry_filter: EntryFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if entry_filter.kinds:
        conditions.append(_KIND.in_(entry_filter.kinds))
    if entry_filter.outcomes:
        conditions.append(or_(*(_OUTCOME_SQL[outcome] for outcome in entry_filter.outcomes)))
    if entry_filter.start is not None:
        conditions.append(audit_leaves.c.created_at >= entry_filter.start)
    if entry_filter.end is not None:
        conditions.append(audit_leaves.c.created_at < entry_filter.end)
    return conditions


def _newer(
    conn: Connection,
    conditions: list[ColumnElement[bool]],
    end: int,
    size: int,
    per_page: int,
    max_scanned: int,
) -> int | None:
    """The ``before`` of the page just newer than one ending at ``end``: after the
    ``per_page``-th matching entry from ``end`` on, or None when fewer remain (the newer page is
    then the latest)."""
    if end >= size:
        return None
    indexes = conn.execute(
        select(audit_leaves.c.tree_index)
        .where(
            audit_leaves.c.tree_index >= end,
            audit_leaves.c.tree_index < min(size, end + max_scanned),
            *conditions,
        )
        .order_by(audit_leaves.c.tree_index)
        .limit(per_page + 1)
    ).all()
    if len(indexes) <= per_page:
        return None
    return int(indexes[per_page - 1].tree_index) + 1


# What a value in a sentence is, so the page can show it for people: ``reason`` (a reason code,
# translated when the console knows it), ``anchor`` / ``anchor_set`` (an id, shown by its
# registered name), ``label`` (a code translated under the group named by ``group``),
# ``pseudonym`` / ``digest`` (shortened, in full in the raw entry), ``time`` (POSIX seconds),
# ``reasons`` (reason counts), ``claims`` (claim names), ``id`` (an identifier as is),
# ``number``, ``amount`` (minor units of ``currency``, written for the viewer's language),
# ``phrase`` (a nested :class:`Sentence`, the operation a decision was about).
ValueKind = Literal[
    "reason",
    "anchor",
    "anchor_set",
    "label",
    "pseudonym",
    "digest",
    "time",
    "reasons",
    "claims",
    "id",
    "number",
    "amount",
    "phrase",
]


@dataclass(frozen=True, slots=True)
class Value:
    kind: ValueKind
    raw: str | int
    group: str = ""  # for ``label``: the catalog group of the code
    currency: str = ""  # for ``amount``: the ISO 4217 code of ``raw`` minor units
    phrase: Sentence | None = None  # for ``phrase``


@dataclass(frozen=True, slots=True)
class Sentence:
    """An entry in words: text ``key`` (under ``auditor.sentence.``) with ``values``, followed
    by ``clauses`` (more sentences, each a fact the entry holds)."""

    key: str
    values: Mapping[str, Value] = field(default_factory=dict)
    clauses: tuple[Sentence, ...] = ()


@dataclass(frozen=True, slots=True)
class DescribedEntry:
    index: int
    text: str  # canonical entry
    leaf_hash: str
    kind: str | None  # None: not readable as an entry
    at: int | None
    outcome: str | None
    sentence: Sentence


def _decoded(text: str) -> dict[str, Any] | None:
    try:
        data = loads(text.encode("utf-8"), max_depth=1)
    except StrictJSONError:
        return None
    return data if isinstance(data, dict) else None


def describe_listed(
    entry: ListedEntry, operation: Mapping[str, object] | None = None
) -> DescribedEntry:
    """One listed entry as a sentence; a ``decision`` with its ``decision_operation`` entry
    (decoded) reads as the operation decided (:func:`describe`)."""
    data = _decoded(entry.text)
    if data is None:
        return DescribedEntry(
            entry.index, entry.text, entry.leaf_hash, None, None, None, Sentence("unreadable")
        )
    at = data.get("at")
    kind = data.get("kind")
    return DescribedEntry(
        index=entry.index,
        text=entry.text,
        leaf_hash=entry.leaf_hash,
        kind=kind if isinstance(kind, str) else None,
        at=at if type(at) is int else None,
        outcome=outcome_of(data),
        sentence=describe(data, operation),
    )


def describe_page(db: Database, page: EntriesPage) -> tuple[DescribedEntry, ...]:
    """The page's entries as sentences, each ``decision`` joined with its ``decision_operation``
    (:func:`operations_of`), which may be on the page, on another or filtered out."""
    decisions: dict[int, tuple[str, int]] = {}
    for row in page.rows:
        data = _decoded(row.text)
        if data is not None and data.get("kind") == "decision":
            decision_id, at = data.get("decision_id"), data.get("at")
            if isinstance(decision_id, str) and type(at) is int:
                decisions[row.index] = (decision_id, at)
    operations = operations_of(db, decisions, size=page.size)
    return tuple(describe_listed(row, operations.get(row.index)) for row in page.rows)


def operations_of(
    db: Database, decisions: Mapping[int, tuple[str, int]], *, size: int
) -> dict[int, dict[str, Any]]:
    """The ``decision_operation`` entry of each ``decision`` (tree index → (decision id, at)),
    by tree index of the decision: the first one under the checkpoint's ``size`` that comes
    after the decision with the same ``decision_id`` and ``at``. The service writes it right
    after the decision in the same transaction (docs/AUDIT-FORMAT.md §1.2); it is looked up by
    the leaves' reference column rather than taken from the next index, because appends of
    parallel transactions can come between the two. A decision without one (written before the
    kind existed) is not joined."""
    if not decisions:
        return {}
    with db.reader() as conn:
        found = conn.execute(
            select(audit_leaves.c.tree_index, _TEXT)
            .where(
                audit_leaves.c.ref.in_(sorted({ref for ref, _ in decisions.values()})),
                _KIND == "decision_operation",
                audit_leaves.c.tree_index < size,
            )
            .order_by(audit_leaves.c.tree_index)
        ).all()
    candidates = [(int(r.tree_index), data) for r in found if (data := _decoded(r.entry))]
    joined: dict[int, dict[str, Any]] = {}
    for index, (decision_id, at) in decisions.items():
        for candidate_index, data in candidates:
            if (
                candidate_index > index
                and data.get("decision_id") == decision_id
                and data.get("at") == at
            ):
                joined[index] = data
                break
    return joined


def describe(data: Mapping[str, object], operation: Mapping[str, object] | None = None) -> Sentence:
    """The sentence for a decoded entry, from its members only. A kind this version does not
    know, or an entry missing what its kind needs, gets the generic sentence naming its kind.
    A ``decision`` given its ``decision_operation`` entry names the operation and its amount
    ("Transfer of JPY 5,000 allowed in …"); without it, or when that entry is not readable,
    it reads as a decision alone."""
    kind = data.get("kind")
    if kind == "decision" and operation is not None:
        try:
            return _decision(_Members(data), _operation_phrase(_Members(operation)))
        except _Missing:
            pass
    describer = _DESCRIBERS.get(kind) if isinstance(kind, str) else None
    try:
        if describer is not None:
            return describer(_Members(data))
    except _Missing:
        pass
    shown = kind if isinstance(kind, str) and kind else "?"
    return Sentence("other", {"kind": Value("id", shown)})


class _Missing(Exception):
    pass


class _Members:
    def __init__(self, data: Mapping[str, object]) -> None:
        self._data = data

    def text(self, name: str) -> str:
        value = self._data.get(name)
        if not isinstance(value, str) or value == "":
            raise _Missing(name)
        return value

    def optional(self, name: str) -> str | None:
        value = self._data.get(name)
        if value is None:
            return None
        if not isinstance(value, str) or value == "":
            raise _Missing(name)
        return value

    def words(self, name: str) -> str:
        """A string member that may be empty (a scope)."""
        value = self._data.get(name)
        if not isinstance(value, str):
            raise _Missing(name)
        return value

    def number(self, name: str) -> int:
        value = self._data.get(name)
        if type(value) is not int:
            raise _Missing(name)
        return value


def _v(kind: ValueKind, raw: str | int, group: str = "") -> Value:
    return Value(kind, raw, group)


def _decision(m: _Members, operation: Sentence | None = None) -> Sentence:
    """A decision in words: "Authorization allowed in *set*", or with the operation decided
    on, "Transfer of JPY 5,000 allowed in *set*"."""
    result = m.text("result")
    anchor_set = m.optional("anchor_set_id")
    if result not in ("allowed", "denied"):
        raise _Missing("result")
    reason = m.text("reason")
    values = {"reason": _v("reason", reason)} if result == "denied" else {}
    if anchor_set is not None:
        values["anchor_set"] = _v("anchor_set", anchor_set)
    if operation is not None:
        values["operation"] = Value("phrase", "", phrase=operation)
    key = ("operation" if operation is not None else "decision") + f"_{result}"
    key += "" if anchor_set is not None else "_no_set"
    return Sentence(
        key, values, (Sentence("decision_id", {"id": _v("id", m.text("decision_id"))}),)
    )


_AMOUNT_OPERATIONS = ("value_transfer", "funding", "standing_funding")


def _operation_phrase(m: _Members) -> Sentence:
    """What a ``decision_operation`` entry says was decided on, as a phrase: "Transfer of
    JPY 5,000", "Standing authorization for up to JPY 50,000", "Account link"."""
    operation = m.text("operation")
    if operation == "account_link":
        action = m.text("action")
        if action not in ("link", "unlink"):
            raise _Missing("action")
        return Sentence(f"operation_account_link_{action}")
    if operation in _AMOUNT_OPERATIONS:
        amount = Value("amount", m.number("amount"), currency=m.text("currency"))
        return Sentence(f"operation_{operation}", {"amount": amount})
    raise _Missing("operation")


def _decision_operation(m: _Members) -> Sentence:
    """The entry alone (its decision on another page, or filtered out): the operation, and the
    decision it belongs to."""
    return Sentence(
        "operation_decided",
        {"operation": Value("phrase", "", phrase=_operation_phrase(m))},
        (Sentence("decision_id", {"id": _v("id", m.text("decision_id"))}),),
    )


def _token_issued(m: _Members) -> Sentence:
    token_kind = m.text("token_kind")
    if token_kind not in ("access_token", "id_token", "refresh_rotation"):
        raise _Missing("token_kind")
    clauses: list[Sentence] = []
    scope = m.words("scope")
    if scope:
        clauses.append(Sentence("scope", {"scope": _v("id", scope)}))
    anchor = m.optional("anchor_id")
    if anchor is not None:
        clauses.append(Sentence("login_at", {"anchor": _v("anchor", anchor)}))
    anchor_set = m.optional("anchor_set_id")
    if anchor_set is not None:
        clauses.append(Sentence("under_set", {"anchor_set": _v("anchor_set", anchor_set)}))
    if m.optional("authorization_details") is not None:
        clauses.append(
            Sentence("with_details", {"digest": _v("digest", m.text("authorization_details"))})
        )
    subject = m.optional("sub")
    if subject is not None:
        clauses.append(Sentence("subject", {"sub": _v("pseudonym", subject)}))
    clauses.append(Sentence("expires", {"exp": _v("time", m.number("exp"))}))
    client = _v("id", m.text("client_id"))
    return Sentence(f"token_issued_{token_kind}", {"client": client}, tuple(clauses))


def _token_revoked(m: _Members) -> Sentence:
    reason = _v("reason", m.text("reason"))
    grant = m.optional("grant")
    if grant is not None:
        return Sentence("token_revoked_grant", {"grant": _v("digest", grant), "reason": reason})
    return Sentence("token_revoked_token", {"jti": _v("id", m.text("jti")), "reason": reason})


def _reuse_detected(m: _Members) -> Sentence:
    what = m.text("what")
    if what not in ("code", "refresh_token"):
        raise _Missing("what")
    return Sentence(f"reuse_detected_{what}", {"grant": _v("digest", m.text("grant"))})


def _login(m: _Members) -> Sentence:
    anchor = _v("anchor", m.text("anchor_id"))
    outcome = m.text("outcome")
    if outcome == "failed":
        return Sentence(
            "login_failed", {"anchor": anchor, "reason": _v("reason", m.text("reason"))}
        )
    if outcome != "ok":
        raise _Missing("outcome")
    holder = m.optional("holder")
    clauses = () if holder is None else (Sentence("holder", {"holder": _v("pseudonym", holder)}),)
    return Sentence("login_ok", {"anchor": anchor}, clauses)


def _login_in_person(m: _Members) -> Sentence:
    return Sentence(
        "login_in_person",
        {"anchor": _v("anchor", m.text("anchor_id")), "branch": _v("id", m.text("branch"))},
        (
            Sentence("holder", {"holder": _v("pseudonym", m.text("holder"))}),
            Sentence("operator", {"operator": _v("pseudonym", m.text("operator"))}),
        ),
    )


# How an operator change's id is shown: a key or a person by digest, an anchor or anchor set by
# its registered name; anything else as it is.
_ID_KINDS: dict[str, ValueKind] = {
    "signing_key": "digest",
    "auditor": "digest",
    "anchor": "anchor",
    "anchor_set": "anchor_set",
}


def _operator_change(m: _Members) -> Sentence:
    what = m.text("what")
    ident = m.text("id")
    return Sentence(
        "operator_change",
        {
            "what": _v("label", what, "what"),
            "id": _v(_ID_KINDS.get(what, "id"), ident),
            "action": _v("label", m.text("action"), "action"),
        },
    )


def _refusal(m: _Members) -> Sentence:
    values = {
        "endpoint": _v("label", m.text("endpoint"), "endpoint"),
        "error": _v("id", m.text("error")),
        "reason": _v("reason", m.text("reason")),
    }
    client = m.optional("client_id")
    if client is not None:
        values["client"] = _v("id", client)
    grant_type = m.optional("grant_type")
    clauses = (
        ()
        if grant_type is None
        else (Sentence("grant_type", {"grant_type": _v("id", grant_type)}),)
    )
    return Sentence("refusal" if client is not None else "refusal_no_client", values, clauses)


def _omitted(m: _Members) -> Sentence:
    return Sentence(
        "omitted",
        {
            "count": _v("number", m.number("count")),
            "what": _v("label", m.text("what"), "omitted_what"),
            "since": _v("time", m.number("since")),
            "until": _v("time", m.number("until")),
            "reasons": _v("reasons", m.text("reasons")),
        },
    )


def _identity_join(m: _Members) -> Sentence:
    action = m.text("action")
    values = {
        "identity": _v("pseudonym", m.text("identity")),
        "anchor": _v("anchor", m.text("anchor_id")),
        "holder": _v("pseudonym", m.text("holder")),
    }
    if action == "joined":
        values |= {
            "rule": _v("id", m.text("rule")),
            "anchor_set": _v("anchor_set", m.text("anchor_set_id")),
            "matched_anchor": _v("anchor", m.text("matched_anchor_id")),
            "claims": _v("claims", m.text("claims")),
        }
        return Sentence("identity_joined", values)
    if action == "unjoined":
        values["new_holder"] = _v("pseudonym", m.text("new_holder"))
        return Sentence("identity_unjoined", values)
    raise _Missing("action")


_DESCRIBERS: dict[str, Callable[[_Members], Sentence]] = {
    "decision": _decision,
    "decision_operation": _decision_operation,
    "token_issued": _token_issued,
    "token_revoked": _token_revoked,
    "reuse_detected": _reuse_detected,
    "login": _login,
    "login_in_person": _login_in_person,
    "operator_change": _operator_change,
    "refusal": _refusal,
    "omitted": _omitted,
    "identity_join": _identity_join,
}
