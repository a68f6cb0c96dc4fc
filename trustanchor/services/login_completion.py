"""The end every login method shares: a verified identity becomes the interaction's login.

A login method (``wallet_login``: OpenID4VP; ``certificate_login``: the X.509 challenge;
``upstream_login``: an upstream OpenID Provider) consumes its login transaction, verifies what it
received against *that anchor* and then calls :func:`finish` with the
:class:`~trustanchor.domain.identity.VerifiedIdentity`. Here, and only here:

- the identity is admitted (``identity_joining.admit``): a known identity logs in as its holder; a
  step-up must be the person already logged in (their identity, or a new one a join rule proves
  to be theirs);
- the interaction moves ``login`` → ``consent`` through the seam (one conditional UPDATE);
- the transaction's outcome is set with the digest of a fresh one-time response code for the
  same-device return;
- the login is audited in the same database transaction.

A refusal (:class:`LoginRefused`) is recorded on the transaction and audited through
:func:`fail`, which every method also uses for its own failures; :func:`consume_malformed` uses
up the transaction a malformed answer names, and :func:`same_device_return` honours the response
code once, in the browser bound to the interaction, whatever the method.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trustanchor.audit.entries import Entry
from trustanchor.digests import equal, secret_digest
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.assurance import acr_for
from trustanchor.domain.identity import Authentication, VerifiedIdentity
from trustanchor.log_setup import clipped
from trustanchor.services import audit_trail, identity_joining, interaction, login_failures
from trustanchor.services.container import Services
from trustanchor.storage import identities_repo, wallet_repo
from trustanchor.storage.wallet_repo import LoginMethod

log = logging.getLogger("trustanchor.login")


class LoginRefused(Exception):
    """The verified identity may not finish this login; ``reason`` is a stable code (shown in
    words on the login page, audited)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class Presence:
    """How the person was present at this login: on their own device (``remote``), or at a
    bank branch's counter terminal (``in_person``) with the branch and the staff operator."""

    channel: str = "remote"
    details: dict[str, str] = field(default_factory=dict)


REMOTE = Presence()


def finish(
    services: Services,
    *,
    transaction_id: str,
    interaction_id: str,
    step_up: dict[str, Any] | None,
    earlier_authentication: dict[str, Any] | None,
    anchor: Anchor,
    verified: VerifiedIdentity,
    at: int,
    presence: Presence = REMOTE,
    device: interaction.LoginDevice = "other",
) -> str:
    """Admit ``verified`` as the login of the interaction; return the one-time response code for
    the same-device return (its digest is stored). ``device`` says where the answer arrived:
    ``"this"`` only when the request carrying it came from the browser holding the interaction
    (an upstream provider's callback); an answer posted by a wallet or card app is ``"other"``
    until its same-device return (:func:`same_device_return`). Raises LoginRefused (the failure
    is already recorded and audited) when the identity may not log in here or the interaction
    no longer waits for a login."""
    branch, operator = _in_person(presence)  # a malformed presence fails before any write
    earlier_holder = (
        str(earlier_authentication["holder_id"])
        if step_up is not None and earlier_authentication is not None
        else None
    )
    try:
        with services.db.transaction() as conn:
            identity = identity_joining.admit(
                conn, services, verified, step_up_holder=earlier_holder, at=at
            )
    except identity_joining.JoinRefused as refused:
        if refused.reason == "join_needs_claims" and step_up is not None:
            with services.db.transaction() as conn:
                identity_joining.ask_again(conn, interaction_id, step_up, refused, at=at)
        fail(services, transaction_id, refused.reason, "step-up not joined", anchor_id=anchor.id)
        raise LoginRefused(refused.reason) from refused
    with services.db.transaction() as conn:
        authentication = Authentication(
            holder_id=identity.holder_id,
            identity_id=identity.id,
            anchor_id=anchor.id,
            acr=acr_for(verified.assurance_level),
            amr=verified.amr,
            auth_time=at,
            trust_framework=verified.trust_framework,
            evidence=verified.evidence,
            channel=presence.channel,
            in_person=dict(presence.details),
            signed_operations=verified.signed_operations,
        )
        moved = interaction.login_finished(
            conn,
            interaction_id,
            authentication,
            transaction_id=transaction_id,
            device=device,
            at=at,
        )
        response_code = services.randomness.token(32)
        wallet_repo.set_outcome(
            conn,
            transaction_id,
            {"status": "ok", "response_code": secret_digest(response_code)}
            if moved
            else {"status": "failed", "reason": "interaction_gone"},
        )
        holder = audit_trail.holder_pseudonym(services.secrets.pairwise, identity.holder_id)
        if not moved:
            entry: Entry = audit_trail.login_failed(
                at=at, anchor_id=anchor.id, reason="interaction_gone"
            )
        elif branch is not None and operator is not None:
            # In person (services/counter_login.py): the identity and the audit entry (its own
            # kind, login_in_person) record the branch and the staff operator, the log as a
            # pseudonym (audit_trail.operator_pseudonym).
            identities_repo.record_in_person(
                conn, identity.id, branch=branch, operator=operator, at=at
            )
            entry = audit_trail.login_in_person(
                at=at,
                anchor_id=anchor.id,
                holder=holder,
                branch=branch,
                operator=audit_trail.operator_pseudonym(
                    services.secrets.pairwise, branch, operator
                ),
            )
        else:
            entry = audit_trail.login_ok(at=at, anchor_id=anchor.id, holder=holder)
        audit_trail.record(conn, entry)
    log.info("login through anchor %s: %s", anchor.id, "ok" if moved else "interaction gone")
    services.metrics.login(anchor.kind, anchor.id, "ok" if moved else "interaction_gone")
    if not moved:
        raise LoginRefused("interaction_gone")
    return response_code


def _in_person(presence: Presence) -> tuple[str | None, str | None]:
    """(branch, operator) of an in-person presence, (None, None) for a remote one."""
    if presence.channel == "remote":
        return None, None
    branch, operator = presence.details.get("branch"), presence.details.get("operator")
    if presence.channel != "in_person" or not branch or not operator:
        raise ValueError("an in-person presence names its branch and operator")
    return branch, operator


def fail(
    services: Services,
    transaction_id: str,
    reason: str,
    detail: str,
    *,
    anchor_id: str | None = None,
) -> None:
    """Record a failed outcome. With ``anchor_id`` (a response endpoint, where each transaction
    is consumed exactly once) the failed login is audited in the same transaction; without it
    (a fetch repeatable by anyone holding the request URI) it is not, so the log cannot be
    flooded through a public endpoint."""

    # the detail may quote what the response carried (a header member): bounded
    log.info("login failed at login transaction: reason=%s detail=%s", reason, clipped(detail))
    with services.db.transaction() as conn:
        wallet_repo.set_outcome(conn, transaction_id, {"status": "failed", "reason": reason})
        if anchor_id is not None:
            # Recorded, or counted for its window's summary when an anonymous first-party
            # flow has spent the budget (services/login_failures.py).
            login_failures.record(
                services,
                conn,
                transaction_id=transaction_id,
                anchor_id=anchor_id,
                reason=reason,
                at=services.clock.now(),
            )
    _count_failure(services, anchor_id, reason)


def _count_failure(services: Services, anchor_id: str | None, reason: str) -> None:
    """A failed login in the metrics: by the anchor's kind and id when the service knows the
    anchor (never an id it does not know: labels stay bounded), and the stable reason code."""
    anchor = services.anchors.get(anchor_id) if anchor_id is not None else None
    if anchor is None:
        services.metrics.login("unknown", "unknown", reason)
    else:
        services.metrics.login(anchor.kind, anchor.id, reason)


def consume_malformed(
    services: Services, form: Mapping[str, Any], at: int, *, method: LoginMethod, reason: str
) -> None:
    """A malformed answer still uses up the transaction of ``method`` its (single,
    well-formed) ``state`` names, and the person learns that the answer was not understood
    (``reason``, audited once like every consumed transaction's outcome)."""
    try:
        states = form.get("state")
    except Exception:  # not a form at all
        return
    if not isinstance(states, list | tuple) or len(states) != 1 or not isinstance(states[0], str):
        return
    if not interaction.well_formed_id(states[0]):
        return
    with services.db.transaction() as conn:
        tx = wallet_repo.consume(conn, states[0], now=at, method=method)
    if tx is not None:
        fail(services, tx.id, reason, "malformed direct_post", anchor_id=tx.anchor_id)


def same_device_return(
    services: Services,
    transaction_id: str,
    response_code: str | None,
    *,
    browser_secret: str | None,
    method: LoginMethod,
    refused: type[interaction.InteractionRefused],
) -> str | None:
    """The app sent the person back with the ``response_code`` that :func:`finish` made for a
    transaction of ``method``. Returns the interaction to resume when this browser holds its
    secret (the login then counts as made in this browser: it may start an SSO session at
    consent), None when the person is on another device. Either way the code is used up, once:
    the browser that started the login continues by its status poll, without an SSO session.
    Raises ``refused`` otherwise: unknown transaction, another method's, no or a wrong code, or
    a code already used."""
    at = services.clock.now()
    if not interaction.well_formed_id(transaction_id):
        raise refused(transaction_id)
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, transaction_id, method=method)
    stored = tx.outcome.get("response_code") if tx and tx.outcome else None
    if (
        tx is None
        or not isinstance(stored, str)
        or not response_code
        or not equal(secret_digest(response_code), stored)
    ):
        raise refused(transaction_id)
    window_end = at + services.settings.interaction.lifetime
    if not services.replay.first_use(f"{method}_response_code", tx.id, window_end):
        raise refused(transaction_id)
    if not interaction.held_by(services, tx.interaction_id, browser_secret):
        # Used up here too: a link opened on the phone and then forwarded to whoever showed
        # the QR code must not make their login local (attack session of 2026-12-07).
        return None
    with services.db.transaction() as conn:
        interaction.answer_returned(conn, tx.interaction_id, tx.id)
    return tx.interaction_id
