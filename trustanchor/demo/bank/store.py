"""The demo bank's own state (no Flask): its accounts as registered at the service, the pairwise
subjects of its customers, browser sessions, pending authorizations and the operations it ran.
SQLAlchemy Core, tables prefixed ``bank_`` in the parties' database.

Secrets are kept as digests: a session cookie's value never reaches the database (its SHA-256
does). A pending authorization (``state``, PKCE verifier, nonce) is consumed by one conditional
UPDATE, so a replayed callback finds nothing, and only from the browser session that started it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)

from trustanchor.clock import Clock
from trustanchor.digests import equal, sha256_hex
from trustanchor.randomness import Randomness

metadata = MetaData()

bank_accounts = Table(
    "bank_accounts",
    metadata,
    Column("reference", String(64), primary_key=True),  # the bank's own account reference
    Column("owner", String(64), nullable=False),  # the demo person's id
    Column("kind", String(16), nullable=False),
    Column("account_id", String(64), nullable=False, unique=True),  # the service's acc_… id
    Column("registered_at", BigInteger, nullable=False),
)

bank_customers = Table(
    "bank_customers",
    metadata,
    Column("sub", String(255), primary_key=True),  # pairwise subject at the service
    Column("person_id", String(64), nullable=False),
    Column("first_seen", BigInteger, nullable=False),
)

bank_sessions = Table(
    "bank_sessions",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column("csrf", String(64), nullable=False),
    Column("person_id", String(64)),
    Column("sub", String(255)),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# The ID token of a signed-in session's latest authorization at the service: the bank's
# ``id_token_hint`` for "sign out everywhere" (RP-Initiated Logout). A table of its own, so that a
# parties database made before it keeps working (create_all adds missing tables only).
bank_session_hints = Table(
    "bank_session_hints",
    metadata,
    Column("id_digest", String(64), primary_key=True),
    Column("id_token", Text, nullable=False),
)

bank_pending = Table(
    "bank_pending",
    metadata,
    Column("state", String(128), primary_key=True),
    Column("session_digest", String(64), nullable=False),
    Column("purpose", String(16), nullable=False),  # login | link | transfer | funding
    Column("nonce", String(128), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("scope", String(255), nullable=False),
    Column("payload", Text, nullable=False),  # JSON: what the operation asked for
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("consumed_at", BigInteger),
)

bank_operations = Table(
    "bank_operations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(64), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("purpose", String(16), nullable=False),  # link | transfer | funding | standing
    Column("outcome", String(16), nullable=False),  # allowed | denied | failed
    Column("reason", String(64)),  # denied: the policy's reason code
    Column("message", String(255)),  # failed: what went wrong (no secrets)
    Column("requested", Text, nullable=False),  # JSON
    Column("approved", Text),  # JSON: the token's authorization_details
    Column("anchor_set", String(128)),
    Column("ledger_status", Integer),
    Column("ledger_answer", Text),  # JSON
)

# A standing authorization of automatic top-ups ("Automatic top-up") the bank holds for a
# customer: the DPoP key its refresh token is bound to (PKCS#8 PEM: the token must outlive the bank
# process, so the key does too) and the latest refresh token (rotated at every movement, by one
# conditional update). Both are secrets a real bank keeps in its key store; the demo bank keeps
# them here, next to the person's record, and never shows or logs them. ``state``: the pending
# authorization that asks for it, until the person comes back.
bank_standing = Table(
    "bank_standing",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("person_id", String(64), nullable=False),
    Column("state", String(128), unique=True),  # while pending
    Column("status", String(16), nullable=False),  # pending | active | ended
    Column("dpop_key", Text, nullable=False),
    Column("refresh_token", Text),
    Column("granted", Text),  # JSON: the granted standing_funding entry
    Column("standing_id", String(64)),
    Column("link_id", String(64)),
    Column("expires_at", BigInteger),
    Column("created_at", BigInteger, nullable=False),
    Column("ended_at", BigInteger),
    Column("ended_reason", String(64)),
)

PURPOSES = ("login", "link", "transfer", "funding", "standing")
PAYMENTS = ("transfer", "funding")  # executed at the ledger once the service allowed them


@dataclass(frozen=True, slots=True)
class Session:
    id_digest: str
    csrf: str
    person_id: str | None
    sub: str | None
    expires_at: int

    @property
    def signed_in(self) -> bool:
        return self.person_id is not None and self.sub is not None

    def csrf_ok(self, submitted: str | None) -> bool:
        return isinstance(submitted, str) and equal(submitted, self.csrf)


@dataclass(frozen=True, slots=True)
class Pending:
    state: str
    session_digest: str
    purpose: str
    nonce: str
    code_verifier: str
    scope: str
    payload: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class RegisteredAccount:
    reference: str
    owner: str
    kind: str
    account_id: str


@dataclass(frozen=True, slots=True)
class Operation:
    id: int
    person_id: str
    at: int
    purpose: str
    outcome: str
    reason: str | None
    message: str | None
    requested: Mapping[str, Any]
    approved: list[dict[str, Any]] | None
    anchor_set: str | None
    ledger_status: int | None
    ledger_answer: Mapping[str, Any] | None

    @property
    def state(self) -> str:
        """What happened, in one word. ``allowed`` | ``denied`` | ``failed`` (the service's
        decision) for a link; for a payment the service allowed, what the ledger did:
        ``executed``, ``ledger_refused`` (it answered with a refusal), ``ledger_silent`` (it
        did not answer: the bank cannot know whether the money moved) or ``ledger_not_asked``.
        An allowed payment is never reported as done before the ledger says so."""
        if self.purpose not in PAYMENTS or self.outcome != "allowed":
            return self.outcome
        if self.ledger_answer is None:
            return "ledger_not_asked"
        if self.ledger_status in (200, 201):
            return "executed"
        if self.ledger_status is None or self.ledger_status == 0:
            return "ledger_silent"
        return "ledger_refused"

    @property
    def ledger_reason(self) -> str | None:
        """The ledger's reason code for a refusal (syntax-checked: it is shown on a page)."""
        if self.state != "ledger_refused" or self.ledger_answer is None:
            return None
        reason = self.ledger_answer.get("reason") or self.ledger_answer.get("error")
        if not isinstance(reason, str) or not 0 < len(reason) <= 64 or not reason.isascii():
            return None
        return reason if reason.replace("_", "").isalnum() else None


@dataclass(frozen=True, slots=True)
class Standing:
    """An automatic top-up the bank holds for a customer (see ``bank_standing``)."""

    id: int
    person_id: str
    status: str
    dpop_key: bytes
    refresh_token: str | None
    granted: Mapping[str, Any] | None
    standing_id: str | None
    link_id: str | None
    expires_at: int | None
    ended_reason: str | None

    def active(self, at: int) -> bool:
        return (
            self.status == "active"
            and self.refresh_token is not None
            and self.expires_at is not None
            and at < self.expires_at
        )


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


class BankStore:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        randomness: Randomness,
        *,
        session_lifetime: int = 3600,
        pending_lifetime: int = 600,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.randomness = randomness
        self.session_lifetime = session_lifetime
        self.pending_lifetime = pending_lifetime

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    # -- sessions -----------------------------------------------------------------------------

    def new_session(self) -> tuple[str, Session]:
        """A fresh anonymous session; the cookie value (returned once) and the session."""
        cookie = self.randomness.token(32)
        now = self.clock.now()
        session = Session(
            sha256_hex(cookie), self.randomness.token(24), None, None, now + self.session_lifetime
        )
        with self.engine.begin() as conn:
            conn.execute(delete(bank_sessions).where(bank_sessions.c.expires_at <= now))
            live = select(bank_sessions.c.id_digest)
            conn.execute(
                delete(bank_session_hints).where(bank_session_hints.c.id_digest.not_in(live))
            )
            _insert_session(conn, session, now)
        return cookie, session

    def session(self, cookie: str | None) -> Session | None:
        if not cookie or len(cookie) > 128:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                select(bank_sessions).where(
                    bank_sessions.c.id_digest == sha256_hex(cookie),
                    bank_sessions.c.expires_at > self.clock.now(),
                )
            ).first()
        if row is None:
            return None
        return Session(row.id_digest, row.csrf, row.person_id, row.sub, row.expires_at)

    def sign_in(
        self, session: Session, person_id: str, sub: str, *, id_token: str | None = None
    ) -> tuple[str, Session]:
        """Replace ``session`` by a new signed-in one (a new cookie: no session fixation);
        ``id_token``: the sign-in's ID token, kept as the session's logout hint."""
        cookie = self.randomness.token(32)
        now = self.clock.now()
        fresh = Session(
            sha256_hex(cookie),
            self.randomness.token(24),
            person_id,
            sub,
            now + self.session_lifetime,
        )
        with self.engine.begin() as conn:
            _delete_session(conn, session.id_digest)
            _insert_session(conn, fresh, now)
            if id_token is not None:
                conn.execute(
                    bank_session_hints.insert().values(id_digest=fresh.id_digest, id_token=id_token)
                )
        return cookie, fresh

    def remember_id_token(self, session: Session, id_token: str) -> None:
        """The latest ID token the service issued in ``session`` (its SSO session may have
        changed since the sign-in: a step-up at a transfer)."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(bank_session_hints).where(
                    bank_session_hints.c.id_digest == session.id_digest
                )
            )
            conn.execute(
                bank_session_hints.insert().values(id_digest=session.id_digest, id_token=id_token)
            )

    def end_session(self, session: Session) -> str | None:
        """End ``session``; its logout hint (the latest ID token), if it had one."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(bank_session_hints.c.id_token).where(
                    bank_session_hints.c.id_digest == session.id_digest
                )
            ).first()
            _delete_session(conn, session.id_digest)
        return None if row is None else str(row.id_token)

    # -- pending authorizations ---------------------------------------------------------------

    def save_pending(
        self,
        session: Session,
        *,
        purpose: str,
        state: str,
        nonce: str,
        code_verifier: str,
        scope: str,
        payload: Mapping[str, Any],
    ) -> None:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}")
        now = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(delete(bank_pending).where(bank_pending.c.expires_at <= now))
            conn.execute(
                bank_pending.insert().values(
                    state=state,
                    session_digest=session.id_digest,
                    purpose=purpose,
                    nonce=nonce,
                    code_verifier=code_verifier,
                    scope=scope,
                    payload=_json(dict(payload)),
                    created_at=now,
                    expires_at=now + self.pending_lifetime,
                    consumed_at=None,
                )
            )

    def consume_pending(self, state: str | None, session: Session) -> Pending | None:
        """The pending authorization for ``state``, consumed now; None when there is none for
        this session, it expired, or it was consumed already (one statement decides)."""
        if not state or len(state) > 128:
            return None
        now = self.clock.now()
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(bank_pending)
                .where(
                    bank_pending.c.state == state,
                    bank_pending.c.session_digest == session.id_digest,
                    bank_pending.c.consumed_at.is_(None),
                    bank_pending.c.expires_at > now,
                )
                .values(consumed_at=now)
            )
            if taken.rowcount != 1:
                return None
            row = conn.execute(select(bank_pending).where(bank_pending.c.state == state)).one()
        return Pending(
            state=row.state,
            session_digest=row.session_digest,
            purpose=row.purpose,
            nonce=row.nonce,
            code_verifier=row.code_verifier,
            scope=row.scope,
            payload=json.loads(row.payload),
        )

    # -- customers and accounts ---------------------------------------------------------------

    def remember_subject(self, sub: str, person_id: str) -> bool:
        """Record that the service's pairwise ``sub`` is ``person_id``; False when the bank
        already knows this ``sub`` as someone else."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(bank_customers.c.person_id).where(bank_customers.c.sub == sub)
            ).first()
            if row is not None:
                return bool(row.person_id == person_id)
            conn.execute(
                bank_customers.insert().values(
                    sub=sub, person_id=person_id, first_seen=self.clock.now()
                )
            )
            return True

    def person_for(self, sub: str) -> str | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(bank_customers.c.person_id).where(bank_customers.c.sub == sub)
            ).first()
        return None if row is None else str(row.person_id)

    def record_account(self, reference: str, *, owner: str, kind: str, account_id: str) -> bool:
        """Remember the service's id for one of the bank's accounts. The service's answer is
        authoritative: a different id than the one on file (the service's database was made
        anew) replaces it. True when something was written."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(bank_accounts.c.account_id).where(bank_accounts.c.reference == reference)
            ).first()
            if row is not None and row.account_id == account_id:
                return False
            if row is not None:
                conn.execute(delete(bank_accounts).where(bank_accounts.c.reference == reference))
            conn.execute(
                bank_accounts.insert().values(
                    reference=reference,
                    owner=owner,
                    kind=kind,
                    account_id=account_id,
                    registered_at=self.clock.now(),
                )
            )
            return True

    def accounts(self) -> dict[str, RegisteredAccount]:
        """Every registered account by the bank's reference."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(bank_accounts)).all()
        return {
            r.reference: RegisteredAccount(r.reference, r.owner, r.kind, r.account_id) for r in rows
        }

    # -- operations ---------------------------------------------------------------------------

    def record_operation(
        self,
        *,
        person_id: str,
        purpose: str,
        outcome: str,
        requested: Mapping[str, Any],
        reason: str | None = None,
        message: str | None = None,
        approved: list[dict[str, Any]] | None = None,
        anchor_set: str | None = None,
    ) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                bank_operations.insert().values(
                    person_id=person_id,
                    at=self.clock.now(),
                    purpose=purpose,
                    outcome=outcome,
                    reason=reason,
                    message=message[:255] if message else None,
                    requested=_json(dict(requested)),
                    approved=_json(approved) if approved is not None else None,
                    anchor_set=anchor_set,
                )
            )
            key = result.inserted_primary_key
            return int(key[0]) if key is not None else 0

    def record_ledger_answer(
        self, operation_id: int, status: int, answer: Mapping[str, Any]
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(bank_operations)
                .where(bank_operations.c.id == operation_id)
                .values(ledger_status=status, ledger_answer=_json(dict(answer)))
            )

    def operation(self, operation_id: int, person_id: str) -> Operation | None:
        """One operation of ``person_id`` (None for anyone else's)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(bank_operations).where(
                    bank_operations.c.id == operation_id, bank_operations.c.person_id == person_id
                )
            ).first()
        return None if row is None else _operation(row)

    def operations(self, person_id: str, limit: int = 10) -> list[Operation]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(bank_operations)
                .where(bank_operations.c.person_id == person_id)
                .order_by(bank_operations.c.id.desc())
                .limit(limit)
            ).all()
        return [_operation(row) for row in rows]

    # -- automatic top-ups (standing authorizations) -------------------------------------------

    def save_standing_request(self, person_id: str, state: str, dpop_key: bytes) -> None:
        """The key of a standing authorization being asked for (``state``: its PAR's)."""
        now = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(
                delete(bank_standing).where(
                    bank_standing.c.status == "pending",
                    bank_standing.c.created_at <= now - self.pending_lifetime,
                )
            )
            conn.execute(
                bank_standing.insert().values(
                    person_id=person_id,
                    state=state,
                    status="pending",
                    dpop_key=dpop_key.decode("ascii"),
                    created_at=now,
                )
            )

    def standing_request(self, state: str, person_id: str) -> Standing | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(bank_standing).where(
                    bank_standing.c.state == state,
                    bank_standing.c.person_id == person_id,
                    bank_standing.c.status == "pending",
                )
            ).first()
        return None if row is None else _standing(row)

    def activate_standing(
        self, standing_row: int, *, refresh_token: str, granted: Mapping[str, Any]
    ) -> None:
        """The person approved: keep the refresh token and the granted entry; the person's
        earlier automatic top-ups are replaced (the bank holds one per person)."""
        with self.engine.begin() as conn:
            row = conn.execute(
                select(bank_standing.c.person_id).where(bank_standing.c.id == standing_row)
            ).one()
            conn.execute(
                update(bank_standing)
                .where(
                    bank_standing.c.person_id == row.person_id,
                    bank_standing.c.status == "active",
                )
                .values(status="ended", ended_at=self.clock.now(), ended_reason="replaced")
            )
            conn.execute(
                update(bank_standing)
                .where(bank_standing.c.id == standing_row)
                .values(
                    status="active",
                    state=None,
                    refresh_token=refresh_token,
                    granted=_json(dict(granted)),
                    standing_id=str(granted["standing_authorization_id"]),
                    link_id=str(granted["link_id"]),
                    expires_at=int(granted["expires_at"]),
                )
            )

    def drop_standing_request(self, standing_row: int) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(bank_standing).where(
                    bank_standing.c.id == standing_row, bank_standing.c.status == "pending"
                )
            )

    def active_standing(self, person_id: str) -> Standing | None:
        """The person's automatic top-up, while it is active (and not past its end)."""
        now = self.clock.now()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(bank_standing)
                .where(bank_standing.c.person_id == person_id, bank_standing.c.status == "active")
                .order_by(bank_standing.c.id.desc())
            ).first()
        if row is None:
            return None
        standing = _standing(row)
        return standing if standing.active(now) else None

    def rotate_standing(self, standing_row: int, spent: str, fresh: str) -> bool:
        """Replace the spent refresh token by the new one (only if ``spent`` is still the one
        on file: one conditional update)."""
        with self.engine.begin() as conn:
            done = conn.execute(
                update(bank_standing)
                .where(
                    bank_standing.c.id == standing_row,
                    bank_standing.c.refresh_token == spent,
                )
                .values(refresh_token=fresh)
            )
            return done.rowcount == 1

    def end_standing(self, standing_row: int, reason: str) -> None:
        """The automatic top-up is over (stopped, or the service says it ended): its refresh
        token is forgotten."""
        with self.engine.begin() as conn:
            conn.execute(
                update(bank_standing)
                .where(bank_standing.c.id == standing_row, bank_standing.c.status != "ended")
                .values(
                    status="ended",
                    refresh_token=None,
                    dpop_key="",
                    ended_at=self.clock.now(),
                    ended_reason=reason[:64],
                )
            )


def _standing(row: Any) -> Standing:
    return Standing(
        id=row.id,
        person_id=row.person_id,
        status=row.status,
        dpop_key=str(row.dpop_key).encode("ascii"),
        refresh_token=row.refresh_token,
        granted=json.loads(row.granted) if row.granted is not None else None,
        standing_id=row.standing_id,
        link_id=row.link_id,
        expires_at=row.expires_at,
        ended_reason=row.ended_reason,
    )


def _operation(row: Any) -> Operation:
    return Operation(
        id=row.id,
        person_id=row.person_id,
        at=row.at,
        purpose=row.purpose,
        outcome=row.outcome,
        reason=row.reason,
        message=row.message,
        requested=json.loads(row.requested),
        approved=json.loads(row.approved) if row.approved is not None else None,
        anchor_set=row.anchor_set,
        ledger_status=row.ledger_status,
        ledger_answer=json.loads(row.ledger_answer) if row.ledger_answer is not None else None,
    )


def _delete_session(conn: Connection, id_digest: str) -> None:
    conn.execute(delete(bank_session_hints).where(bank_session_hints.c.id_digest == id_digest))
    conn.execute(delete(bank_sessions).where(bank_sessions.c.id_digest == id_digest))


def _insert_session(conn: Connection, session: Session, now: int) -> None:
    conn.execute(
        bank_sessions.insert().values(
            id_digest=session.id_digest,
            csrf=session.csrf,
            person_id=session.person_id,
            sub=session.sub,
            created_at=now,
            expires_at=session.expires_at,
        )
    )
