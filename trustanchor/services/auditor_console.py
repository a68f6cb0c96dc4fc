"""The auditor console's login: a first-party client of this service, logging people in through
the same path every client uses (``services.first_party_login``).

The console is the built-in OAuth client :data:`CLIENT_ID` with its callback at
:data:`CALLBACK_PATH`. From the redeemed grant the console knows the holder; the holder's
**auditor reference** is the holder pseudonym the audit log's login entries carry. A console
session (id stored as a digest) is created for anyone who logs in; whether they may read anything
is decided on every request by looking the reference up among the designated auditors
(``services.auditors``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection

from trustanchor.config.settings import Settings
from trustanchor.secrets_store import ServiceSecrets
from trustanchor.services import audit_trail, first_party_login, log_check
from trustanchor.services.container import Services
from trustanchor.services.first_party_login import ClientKey, LoginStart
from trustanchor.services.first_party_login import LoginRefused as LoginRefused
from trustanchor.storage import auditors_repo
from trustanchor.storage.auditors_repo import SessionAccess
from trustanchor.storage.database import Database
from trustanchor.storage.grants_repo import Grant

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
