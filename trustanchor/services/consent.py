"""Consent: the person sees who logged in and what the client asks, then approves or denies; the
parked request resumes with the finished authentication and becomes an authorization code (or
``access_denied``).

The SSO session follows the interaction seam's rules (``services/interaction.py``): it starts only
from a login finished in this interaction whose answer reached this browser (never from a QR code
answered on another device, which may have been relayed) and approved here, never from a deny;
a login in this interaction ends the browser's previous session either way; every such login gets
a new session (new secret, new ``sid``) and ends the browser's previous one. A login taken over
from the SSO session needs that session to be still alive, of the same holder, when the person
approves. "Not you?" abandons the interaction and ends the SSO session the login came from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Connection

from trustanchor.domain.anchors import Anchor
from trustanchor.domain.clients import Client
from trustanchor.domain.identity import Authentication
from trustanchor.oauth import authorization_response
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.oauth.claims_release import requested_claim_names
from trustanchor.oauth.pairwise import pairwise_subject
from trustanchor.policy.decision import StepUp
from trustanchor.services import audit_trail, counter_login, decisions, interaction
from trustanchor.services.container import Services
from trustanchor.services.grant_details import GrantDetails
from trustanchor.services.interaction import Interaction, InteractionGone, InteractionRefused
from trustanchor.storage import grants_repo, identities_repo, sessions_repo

__all__ = ["InteractionGone"]  # raised here, defined by the seam


class StepUpAtBranchOnly(InteractionRefused):
    """The decision asks for an in-person login and this request's client is not a branch
    counter terminal: logging in again here can never be in person (only a counter terminal's
    own request can make such a login, services/counter_login.py), so the person is sent to a
    branch instead of round a loop that cannot succeed."""

    reason = "step_up_at_branch"


REFERENCE_LENGTH = 8


@dataclass(frozen=True, slots=True)
class LoggedIn:
    """Who logged in, as the consent page leads with it (beside the anchor that verified them):
    a partly masked verified name where the anchor gave one, and a short reference (the start of
    the holder's pseudonym in the audit log)."""

    masked_name: str | None
    reference: str


@dataclass(frozen=True, slots=True)
class ConsentView:
    interaction_id: str
    client: Client
    request: AuthorizationRequest
    authentication: Authentication
    anchor: Anchor | None
    claim_names: tuple[str, ...]
    logged_in: LoggedIn
    outcome: decisions.Outcome | None = None  # policy decisions on links and transfers
    # The decision's step-up can be made from this request (a "log in again" button makes
    # sense); False when it must be made in person and the client is no counter terminal.
    step_up_here: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    redirect_url: str
    new_session: str | None  # the new SSO session's cookie secret, when one started


def masked_name(claims: dict[str, Any] | Any) -> str | None:
    """Family name and the given name's first letter ("Yamada H.", "山田 花…"): enough for the
    person to recognise themselves, little for someone reading over a shoulder."""
    family = claims.get("family_name") if hasattr(claims, "get") else None
    given = claims.get("given_name") if hasattr(claims, "get") else None
    family = family.strip() if isinstance(family, str) else ""
    given = given.strip() if isinstance(given, str) else ""
    if not family and not given:
        return None
    initial = ""
    if given:
        first = given[0]
        initial = f"{first}." if first.isascii() else f"{first}…"
    return " ".join(part for part in (family, initial) if part)


def _client(services: Services, current: Interaction) -> Client:
    client = services.clients.get(current.client_id)
    if client is None:
        raise InteractionGone(current.id)
    return client


def step_up_possible(client: Client, needed: StepUp) -> bool:
    """Whether logging in again for this client's request can satisfy ``needed``: any step-up
    can, except an in-person one, which only a branch counter terminal's request can give."""
    return not needed.in_person or counter_login.is_counter_terminal(client)


def _outcome(
    services: Services, conn: Connection, current: Interaction, at: int
) -> decisions.Outcome | None:
    assert current.authentication is not None
    if not decisions.needs_decision(current.request.operations):
        return None
    return decisions.decide(
        services,
        conn,
        current.request.operations,
        current.authentication,
        client_id=current.client_id,
        at=at,
        fresh_login=current.fresh_login,
    )


def view(services: Services, current: Interaction) -> ConsentView:
    at = services.clock.now()
    if current.state != "consent" or current.authentication is None:
        raise InteractionGone(current.id)
    client = _client(services, current)
    authentication = current.authentication
    with services.db.reader() as conn:
        outcome = _outcome(services, conn, current, at)
        identity = identities_repo.get(conn, authentication.identity_id)
    anchor = services.anchors.get(authentication.anchor_id)
    pseudonym = audit_trail.holder_pseudonym(services.secrets.pairwise, authentication.holder_id)
    return ConsentView(
        interaction_id=current.id,
        client=client,
        request=current.request,
        authentication=authentication,
        anchor=anchor,
        claim_names=requested_claim_names(current.request.scope, current.request.claims),
        logged_in=LoggedIn(
            masked_name=masked_name(identity.claims) if identity is not None else None,
            reference=pseudonym[:REFERENCE_LENGTH],
        ),
        outcome=outcome,
        step_up_here=outcome is not None
        and outcome.step_up is not None
        and step_up_possible(client, outcome.step_up),
    )


def step_up(services: Services, current: Interaction) -> None:
    """The person chose to log in again because the decision asked for a stronger login: the
    interaction goes back to login, limited to anchors of the named set at the named level.
    An in-person step-up for a client that is no counter terminal is refused
    (:class:`StepUpAtBranchOnly`), the interaction left as it was."""
    at = services.clock.now()
    if current.state != "consent" or current.authentication is None:
        raise InteractionGone(current.id)
    with services.db.transaction() as conn:
        outcome = _outcome(services, conn, current, at)
        needed = outcome.step_up if outcome is not None else None
        if needed is None:
            raise InteractionGone(current.id)  # nothing to step up to (any more)
        if not step_up_possible(_client(services, current), needed):
            raise StepUpAtBranchOnly(current.id)
        requirement = {
            "anchor_set_id": needed.anchor_set_id,
            "assurance": needed.assurance,
            "max_age": needed.max_age,
            # Only when asked, so step-ups stored before dynamic linking keep their shape.
            **({"dynamic_linking": True} if needed.dynamic_linking else {}),
        }
        if not interaction.step_up_asked(conn, current.id, requirement, at=at):
            raise InteractionGone(current.id)


class _CountedMeanwhile(Exception):
    """A parallel approval used up a cumulative limit between this decision's reading of the
    window totals and its counting: the transaction is rolled back and the decision made again
    (it then sees the new totals)."""


DECISION_ATTEMPTS = 3


def decide(
    services: Services, current: Interaction, *, approve: bool, session_id: str | None
) -> Decision:
    """Finish consent. ``session_id`` is the browser's SSO cookie secret, if any."""
    for _ in range(DECISION_ATTEMPTS):
        try:
            return _decide_once(services, current, approve=approve, session_id=session_id)
        except _CountedMeanwhile:
            continue
    raise InteractionGone(current.id)  # fail closed: the limit kept moving under us


def _decide_once(
    services: Services, current: Interaction, *, approve: bool, session_id: str | None
) -> Decision:
    at = services.clock.now()
    settings = services.settings
    if current.authentication is None:
        raise InteractionGone(current.id)
    authentication = current.authentication
    client = _client(services, current)
    with services.db.transaction() as conn:
        outcome = _outcome(services, conn, current, at)
        policy_denial = outcome.denial if outcome is not None else None
        if policy_denial is not None:
            approve = False  # the policy said no: nothing the person clicked changes that
        elif (
            approve and outcome is not None and not decisions.count(services, conn, outcome, at=at)
        ):
            # Counted at the moment of approval, before anything else is written: a refusal
            # rolls this transaction back and the decision is made again.
            raise _CountedMeanwhile
        session = sessions_repo.get(conn, session_id, now=at) if session_id else None
        if (
            approve
            and current.login_via == "sso"
            and (session is None or session.holder_id != authentication.holder_id)
        ):
            # The login came from an SSO session that has since ended (logout) or belongs to
            # someone else now: nobody has logged in for this request any more.
            raise InteractionGone(current.id)
        finished = interaction.consent_finished(conn, current.id, approved=approve, at=at)
        if finished is None or finished.authentication != authentication:
            raise InteractionGone(current.id)
        request = finished.request
        if outcome is not None and (approve or policy_denial is not None):
            decisions.record(conn, outcome, at=at)  # the decision that took effect, audited
            for item in outcome.decisions:  # reason: the engine's closed list of codes
                services.metrics.decision(item.decision.result, item.decision.reason)
        if not approve:
            return Decision(
                authorization_response.error(
                    request.redirect_uri,
                    error="access_denied",
                    description=f"denied by policy: {policy_denial.decision.reason}"
                    if policy_denial is not None
                    else "the person declined the request",
                    state=request.state,
                    issuer=settings.issuer,
                ),
                None,  # a deny never starts an SSO session
            )
        new_session = None
        sid = session.sid if session is not None and current.login_via == "sso" else None
        # A login finished in this browser: a new session (new secret, new sid) carries it,
        # never the earlier person or auth_time; the browser's previous session ends.
        if current.login_via != "sso" and session_id and session is not None:
            sessions_repo.end(conn, session_id, now=at)
        # An in-person login was made in a bank branch's counter terminal, whose browser serves
        # every customer of the counter: it never starts an SSO session there (the next
        # customer would be offered this one's login). services/counter_login.py.
        # A login whose answer reached this browser only through the status poll (a QR code
        # answered from a phone) starts none either: nothing tells the person's own screen from
        # one a QR code was relayed from, and a session would give a relaying attacker's
        # browser every later request below the step-up rules (docs/HOLDER-INTEGRITY.md,
        # "Relay"). ``finished`` is the row as the conditional UPDATE left it.
        # A branch counter terminal's request never starts one either, whatever the login
        # (an upstream login finished in the terminal's browser is "this" device): the next
        # customer would be offered this one's login by another client.
        if finished.login_here and authentication.channel != "in_person" and client.branch is None:
            new_session = services.randomness.token(32)
            sid = services.randomness.token(16)
            sessions_repo.create(
                conn,
                new_session,
                sid=sid,
                holder_id=authentication.holder_id,
                # Without the operations this login's presentation signed: they belong to this
                # request (docs/DYNAMIC-LINKING.md), never to a later one taken over from SSO.
                authentication=replace(authentication, signed_operations=()).to_json(),
                now=at,
                expires_at=at + settings.interaction.session_lifetime,
            )
        grant_id = services.randomness.token(16)
        details = GrantDetails(
            scope=request.scope,
            claims=request.claims,
            # As granted: a funding entry names the link it moves over.
            authorization_details=outcome.granted_details()
            if outcome is not None
            else request.authorization_details,
            authentication=authentication,
            subject=pairwise_subject(
                services.secrets.pairwise, client.sector_identifier, authentication.holder_id
            ),
            nonce=request.nonce,
            anchor_set_id=outcome.anchor_set_id if outcome is not None else None,
            sid=sid,
        )
        grants_repo.create_grant(
            conn,
            grant_id,
            client.client_id,
            authentication.holder_id,
            details.to_json(),
            now=at,
            expires_at=outcome.grant_expires_at(at + settings.tokens.refresh_token_lifetime)
            if outcome is not None
            else at + settings.tokens.refresh_token_lifetime,
        )
        if outcome is not None:
            decisions.carry_out(conn, outcome, authentication, grant_id=grant_id, at=at)
        code = services.randomness.token(32)
        binding: dict[str, Any] = {
            "redirect_uri": request.redirect_uri,
            "code_challenge": request.code_challenge,
            "dpop_jkt": request.dpop_jkt,
        }
        grants_repo.store_code(
            conn,
            code,
            grant_id,
            client.client_id,
            binding,
            now=at,
            expires_at=at + settings.tokens.authorization_code_lifetime,
        )
    return Decision(
        authorization_response.success(
            request.redirect_uri, code=code, state=request.state, issuer=settings.issuer
        ),
        new_session,
    )


@dataclass(frozen=True, slots=True)
class Abandoned:
    redirect_url: str
    session_ended: bool  # the browser's SSO session ended too ("not you?" on an SSO login)


def cancel(
    services: Services, current: Interaction, *, not_me: bool = False, session_id: str | None
) -> Abandoned:
    """The person gave up before logging in, or did not recognise the login shown at consent
    ("not you? start again"): access_denied to the client, so it can start again. When the
    unrecognised login came from the SSO session, that session ends as well: the next person
    at a shared computer must not inherit it."""
    at = services.clock.now()
    ended = False
    with services.db.transaction() as conn:
        finished = interaction.abandoned(conn, current.id, at=at)
        if finished is None:
            raise InteractionGone(current.id)
        if not_me and finished.login_via == "sso" and session_id:
            ended = sessions_repo.end(conn, session_id, now=at)
    return Abandoned(
        authorization_response.error(
            finished.request.redirect_uri,
            error="access_denied",
            description="the person did not recognise the login"
            if not_me
            else "the person cancelled the login",
            state=finished.request.state,
            issuer=services.settings.issuer,
        ),
        ended,
    )
