"""Turning what the services do into audit entries, and appending them in the same transaction.

The builders take service data (grant details, anchors, holder ids) and produce entries that
hold only digests and pseudonyms (docs/AUDIT-FORMAT.md):

- a user's subject is the pairwise ``sub`` the client already received (grant details
  ``subject``), so the log links a token to nobody the client could not already link it to;
- a holder (login) is recorded as an HMAC of the internal holder id under the pairwise secret,
  never the id itself: the log is public to auditors, the holder table is not;
- grants, refresh tokens and authorization_details are recorded as SHA-256 digests.

:func:`record` is the one place an entry is written. Any database failure of the append is
:class:`StorageUnavailable` (503 at the edge): the caller's transaction rolls back, so an
issuance never commits without its leaf, and a client learns to retry rather than seeing a 500.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

from trustanchor.audit.entries import (
    Entry,
    EntryError,
    Login,
    LoginInPerson,
    Omitted,
    OperatorChange,
    Refusal,
    ReuseDetected,
    TokenIssued,
    TokenRevoked,
    authorization_details_digest,
    code,
    digest,
    format_reason_counts,
    identifier,
)
from trustanchor.digests import keyed_digest
from trustanchor.domain.identity import Authentication
from trustanchor.storage import audit_repo
from trustanchor.storage.anchors_repo import Change
from trustanchor.storage.database import Database, StorageUnavailable

HOLDER_CONTEXT = "audit-holder"
OPERATOR_CONTEXT = "audit-operator"
UNCLASSIFIED = "unclassified"


def record(conn: Connection, entry: Entry) -> None:
    """Append ``entry`` inside the caller's transaction; a failed append is StorageUnavailable.

    Every DBAPI error counts (a missing or renamed table is a ProgrammingError on PostgreSQL,
    not an OperationalError): whatever stops the leaf from being written must stop the work it
    records, and the client should retry later rather than see a server error."""
    try:
        audit_repo.append(conn, entry)
    except DBAPIError as exc:
        raise StorageUnavailable(f"audit append failed: {exc.__class__.__name__}") from exc


def holder_pseudonym(pairwise_secret: bytes, holder_id: str) -> str:
    """The holder as the log shows it: HMAC-SHA256 under the pairwise secret, base64url."""
    return keyed_digest(pairwise_secret, HOLDER_CONTEXT, holder_id)


def operator_pseudonym(pairwise_secret: bytes, branch_id: str, operator: str) -> str:
    """A counter terminal's staff operator as the log shows it: HMAC-SHA256 under the pairwise
    secret over the branch id and the staff id, base64url. Staff ids are the bank's
    identifiers of its employees, not the customer's personal data, but they are short and
    guessable and the log is read by auditors outside the bank: the raw id stays in the
    service's own identities table, and the service operator computes this value for an auditor
    who asks about a given branch and staff id."""
    return keyed_digest(pairwise_secret, OPERATOR_CONTEXT, branch_id, operator)


def details_digest(details: Sequence[dict[str, Any]]) -> str | None:
    return authorization_details_digest(details) if details else None


def token_issued(
    *,
    at: int,
    kind: str,
    jti: str,
    client_id: str,
    sub: str | None,
    scope: Sequence[str],
    authorization_details: Sequence[dict[str, Any]] = (),
    authentication: Authentication | None = None,
    anchor_set_id: str | None = None,
    exp: int,
) -> TokenIssued:
    """An access token, ID token or refresh token (``refresh_rotation``, ``jti`` = digest of
    the new refresh token, see :func:`refresh_token_issued`)."""
    return TokenIssued(
        at=at,
        jti=jti,
        token_kind=kind,
        client_id=client_id,
        sub=sub,
        scope=" ".join(scope),
        authorization_details=details_digest(authorization_details),
        anchor_id=authentication.anchor_id if authentication is not None else None,
        anchor_set_id=anchor_set_id,
        acr=authentication.acr if authentication is not None else None,
        exp=exp,
    )


def refresh_token_issued(
    *,
    at: int,
    refresh_token: str,
    client_id: str,
    sub: str,
    scope: Sequence[str],
    authorization_details: Sequence[dict[str, Any]],
    authentication: Authentication | None,
    exp: int,
    anchor_set_id: str | None = None,
) -> TokenIssued:
    """A refresh token handed out (at code redemption or rotation), by the digest of its value:
    the same digest the refresh-token table stores, never the token."""
    return token_issued(
        at=at,
        kind="refresh_rotation",
        jti=digest(refresh_token),
        client_id=client_id,
        sub=sub,
        scope=scope,
        authorization_details=authorization_details,
        authentication=authentication,
        anchor_set_id=anchor_set_id,
        exp=exp,
    )


def reuse_detected(*, at: int, what: str, grant_id: str) -> ReuseDetected:
    """``what``: ``code`` or ``refresh_token``; the grant (family) revoked, by digest."""
    return ReuseDetected(at=at, what=what, grant=digest(grant_id))


def grant_revoked(*, at: int, grant_id: str, reason: str) -> TokenRevoked:
    return TokenRevoked(at=at, jti=None, grant=digest(grant_id), reason=reason)


def token_revoked(*, at: int, jti: str, reason: str) -> TokenRevoked:
    return TokenRevoked(at=at, jti=jti, grant=None, reason=reason)


def login_ok(*, at: int, anchor_id: str, holder: str) -> Login:
    """``holder``: from :func:`holder_pseudonym`, never the raw holder id."""
    return Login(at=at, anchor_id=anchor_id, outcome="ok", reason=None, holder=holder)


def login_in_person(
    *, at: int, anchor_id: str, holder: str, branch: str, operator: str
) -> LoginInPerson:
    """A successful login at a branch counter: ``holder`` from :func:`holder_pseudonym`,
    ``branch`` the terminal client's declared branch id, ``operator`` from
    :func:`operator_pseudonym` (never the raw staff id)."""
    return LoginInPerson(
        at=at,
        anchor_id=anchor_id,
        outcome="ok",
        reason=None,
        holder=holder,
        branch=branch,
        operator=operator,
    )


def login_failed(*, at: int, anchor_id: str, reason: str) -> Login:
    """Reasons are the stable codes of ``AnchorFailure`` and the login service; one that is not
    code-shaped (a code passed through from a library) is recorded as ``unclassified`` rather
    than failing the request that records the failure."""
    try:
        code("reason", reason)
    except EntryError:
        reason = UNCLASSIFIED
    return Login(at=at, anchor_id=anchor_id, outcome="failed", reason=reason, holder=None)


def omitted(*, at: int, what: str, since: int, until: int, counts: Mapping[str, int]) -> Omitted:
    """The summary of the entries of kind ``what`` left out in ``[since, until)``, by reason
    (services/login_failures.py); a reason that is not code-shaped counts as ``unclassified``."""
    merged: dict[str, int] = {}
    for reason, count in counts.items():
        key = _code_or_unclassified(reason)
        merged[key] = merged.get(key, 0) + count
    return Omitted(
        at=at,
        what=what,
        since=since,
        until=until,
        count=sum(merged.values()),
        reasons=format_reason_counts(merged),
    )


def refusal(
    *,
    at: int,
    endpoint: str,
    client_id: str | None,
    grant_type: str | None,
    error: str,
    reason: str,
) -> Refusal:
    """A refused PAR or token request. Values come from the request path, so a value without
    its shape is not allowed to fail the recording: a ``client_id`` that is not an identifier
    (an odd registered id) becomes null, a code that is not code-shaped ``unclassified``. The
    caller passes only a registered client id and a supported grant type (services/refusals.py)."""
    if client_id is not None:
        try:
            identifier("client_id", client_id)
        except EntryError:
            client_id = None
    return Refusal(
        at=at,
        endpoint=endpoint,
        client_id=client_id,
        grant_type=grant_type,
        error=_code_or_unclassified(error),
        reason=_code_or_unclassified(reason),
    )


def _code_or_unclassified(value: str) -> str:
    try:
        code("code", value)
    except EntryError:
        return UNCLASSIFIED
    return value


def operator_change(*, at: int, what: str, id: str, action: str) -> OperatorChange:
    return OperatorChange(at=at, what=what, id=id, action=action)


_STATUS_ACTIONS = {"active": "resumed", "suspended": "suspended", "retired": "retired"}


def anchor_registry_changes(*, at: int, changes: Sequence[Change]) -> list[OperatorChange]:
    """The operator_change entries for what ``AnchorRepository.apply`` wrote (nothing for
    unchanged items): an anchor or set ``added``; a set ``policy_changed`` (its version went
    up) or ``updated`` (names only); an anchor ``updated`` (settings, names, level or set
    memberships) and/or ``suspended`` / ``retired`` / ``resumed`` when its status changed."""
    entries: list[OperatorChange] = []
    for change in changes:
        actions: list[str] = []
        if change.action == "created":
            actions.append("added")
        elif change.action == "updated" and change.subject == "anchor_set":
            actions.append("policy_changed" if change.policy_changed else "updated")
        elif change.action == "updated":
            if change.details_changed:
                actions.append("updated")
            if change.new_status is not None:
                actions.append(_STATUS_ACTIONS[change.new_status])
        entries.extend(
            operator_change(at=at, what=change.subject, id=change.id, action=action)
            for action in actions
        )
    return entries


def signing_key_ref(kid: str) -> str:
    """How a token signing key appears in ``operator_change`` entries: the digest of its kid.

    Kids are RFC 7638 thumbprints, 43 base64url characters: the shape of a raw secret, which the
    identifier rule refuses on purpose. An auditor matches an entry by hashing the ``kid`` of a
    published key (``digest(kid)``, SHA-256 hex)."""
    return digest(kid)


def record_operator_change(db: Database, *, at: int, what: str, id: str, action: str) -> None:
    """Record an operator change in a transaction of its own, for changes whose repository
    commits by itself (anchor status, client removal) or that live outside the database (signing
    keys on disk): written right after the change, so a failure here is reported to the
    operator, who re-runs nothing but must know the log misses the entry."""
    with db.transaction() as conn:
        record(conn, operator_change(at=at, what=what, id=id, action=action))
