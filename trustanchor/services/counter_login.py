"""The face-to-face channel of certificate login: a bank branch's counter terminal submits the
card's answer on the person's behalf (docs/CERTIFICATE-LOGIN.md, "At a bank branch").

The terminal is a confidential client registered with a branch role (``trustanchor_branch``,
oauth/client_metadata.py). It starts the interaction itself (its own PAR and ``/authorize`` in
the terminal's browser), the person chooses the certificate anchor on the login page, the
terminal reads the card and POSTs the challenge answer to ``/certificate/counter-response`` with
the same fields as the card app (``state``, ``authentication``, ``signature``, or ``error``)
plus ``staff_operator`` and its own client authentication (``private_key_jwt``, checked exactly
as at the token endpoint: oauth/client_auth.py). The login is then recorded as made in person:
the identity (``identities.in_person``), the audit ``login`` entry and the authentication the
policy and the tokens see name the branch and the staff operator.

Order of the checks, and why the transaction is safe from strangers. Everything that concerns
the *caller* is checked before anything touches the login transaction: client authentication
(a failure is 401 ``invalid_client`` / 400 ``invalid_request``), the branch role
(400 ``unauthorized_client``), a well-formed ``staff_operator`` and ``state`` (400
``invalid_request``), and that the transaction's interaction was started by this very client
(400 ``invalid_request``, ``counter_client_mismatch``). A post that fails any of these consumes
nothing, so neither an unauthenticated caller nor another registered client (a terminal of
another bank, an intermediary) can burn a login that is not theirs; the interaction's client
never changes, so reading it before the consume is not a check-then-act race. Only then does
``certificate_login.receive`` consume the transaction (one conditional UPDATE) and verify the
answer, with ``on_behalf_of`` = this client, which it checks again against the interaction it
consumed. From there on the rules are the card app's: the first answer that names a
transaction uses it up, whatever the outcome.

What this cannot prove: that the card was at the counter. A dishonest terminal can relay an
answer made elsewhere; the branch role is a contract with the bank (docs/POLICY.md,
"Channels").
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from trustanchor.domain.clients import Client
from trustanchor.oauth.errors import InvalidRequest, UnauthorizedClient
from trustanchor.oauth.params import FormData
from trustanchor.services import certificate_login, interaction, login_completion
from trustanchor.services.container import Services
from trustanchor.storage import interactions_repo, wallet_repo

log = logging.getLogger("trustanchor.login")

IN_PERSON = "in_person"
STAFF_OPERATOR = "staff_operator"
# The bank's opaque staff id: recorded as is in the service's identities table and, as a keyed
# pseudonym, in the audit log (services/audit_trail.operator_pseudonym). No spaces, no '@': it
# is an employee number, not a name or an address.
_STAFF_OPERATOR = re.compile(r"[A-Za-z0-9._-]{1,64}")
COUNTER_CLIENT_MISMATCH = "counter_client_mismatch"


def receive(services: Services, form: FormData, *, authorization: str | None) -> dict[str, str]:
    """A counter terminal's answer. Returns the JSON body of a 200 answer (the same-device
    ``redirect_uri``, which works in the terminal's browser holding the interaction). Raises
    an :class:`~trustanchor.oauth.errors.OAuthError` when the caller is refused (nothing
    consumed), or ``certificate_login.CertificateRequestRefused`` when the answer is."""
    at = services.clock.now()
    client = services.client_auth.authenticate(form, authorization, at=at, allow_public=False)
    branch_id = _branch_of(client)
    operator = _staff_operator(form)
    state = _state(form)
    _check_interaction_client(services, state, client, at)
    log.info(
        "counter terminal %s (branch %s) answers for a certificate login",
        client.client_id,
        branch_id,
    )
    return certificate_login.receive(
        services,
        form,
        presence=login_completion.Presence(
            channel=IN_PERSON, details={"branch": branch_id, "operator": operator}
        ),
        on_behalf_of=client.client_id,
    )


def is_counter_terminal(client: Client) -> bool:
    """Whether ``client`` may act at a counter, so that a login for its requests can be made in
    person: the branch role is declared only for confidential private_key_jwt clients (checked
    again: a stored row could be edited)."""
    return (
        client.branch is not None
        and client.auth_method == "private_key_jwt"
        and not client.is_public
    )


def _branch_of(client: Client) -> str:
    """The branch of a client that may act at a counter (:func:`is_counter_terminal`)."""
    if client.branch is None or not is_counter_terminal(client):
        raise UnauthorizedClient(
            "this client is not registered as a branch counter terminal",
            log_detail=f"client {client.client_id} has no branch role",
            reason="branch_role_missing",
        )
    return client.branch.branch_id


def _staff_operator(form: Mapping[str, list[str]]) -> str:
    values = form.get(STAFF_OPERATOR)
    if values is None or len(values) != 1 or not _STAFF_OPERATOR.fullmatch(values[0]):
        raise InvalidRequest(
            "staff_operator is required once: 1 to 64 of A-Z, a-z, 0-9, '.', '_', '-'",
            reason="staff_operator_invalid",
        )
    return values[0]


def _state(form: Mapping[str, list[str]]) -> str:
    values = form.get("state")
    if values is None or len(values) != 1 or not interaction.well_formed_id(values[0]):
        raise InvalidRequest("state is required once", reason="state_invalid")
    return values[0]


def _check_interaction_client(services: Services, state: str, client: Client, at: int) -> None:
    """Refuse, consuming nothing, a transaction whose interaction another client started. An
    unknown, expired or used transaction is left to ``certificate_login.receive``, which answers
    it as for the card app."""
    with services.db.reader() as conn:
        tx = wallet_repo.get(conn, state, method=certificate_login.METHOD)
        row = interactions_repo.get(conn, tx.interaction_id, now=at) if tx is not None else None
    if row is not None and row.client_id != client.client_id:
        log.warning(
            "counter terminal %s answered for another client's login transaction; refused",
            client.client_id,
        )
        raise InvalidRequest(
            "this login was not started by this counter terminal",
            log_detail=f"interaction of client {row.client_id}",
            reason=COUNTER_CLIENT_MISMATCH,
        )
