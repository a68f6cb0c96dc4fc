"""Which failed logins the audit log records, and the summaries of those it leaves out.

Every wallet transaction consumed with a failure is audited as a ``login`` entry (``failed``,
with its reason) in the transaction that records the outcome (services/wallet_login.py). Entries
are permanent, and some failures cost an anonymous caller nothing: start a login on one of this
service's own pages (the auditor console, the holders' page: the built-in first-party clients),
or press an intermediary's public "log in" button, which makes it push a request for whoever
pressed it; choose an anchor, answer "no" from a script posing as the wallet.

The rule (docs/AUDIT-FORMAT.md §1.7):

- A failure that concerns a credential which verified (:data:`BUDGETED_REASONS` does not hold
  its reason: revoked, expired, suspended, someone else's in a step-up, an identity join
  refused, …) is always recorded, whoever started the flow. So is any reason this module does
  not know: a new reason is recorded until it is classified here, never silently dropped.
- The rest, failures any caller can produce without holding a valid credential and its key
  (declined or errored wallet answers, malformed ones, presentations whose issuer signature does
  not verify, key-binding proofs that are missing, unsigned or made for another nonce: a copy of
  someone's earlier presentation), spend a budget: in flows of the built-in clients the
  per-process anonymous budget shared with anonymous refusals
  (``services.refusals.RefusalBudget``); in flows a registered intermediary started, that
  intermediary's own budget of the same size (``Services.client_login_budgets``), so a flood
  through one intermediary's button neither fills the log nor crowds out anyone else's
  failures. A failure whose flow cannot be traced (its interaction is gone) is recorded. Beyond
  the budget they
  are counted, per window of :data:`WINDOW` seconds and reason, in ``audit_omissions`` (in the
  failure's own transaction), and the first failure after a window closes writes one
  ``omitted`` entry with that window's counts by reason. Nothing disappears silently: every
  failure is in the log, or counted in a summary, or (until its window is summarised) in the
  table; and each one is in the operator log.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection, select

from trustanchor.services import audit_trail, auditor_console, my_links
from trustanchor.services.container import Services
from trustanchor.services.refusals import RefusalBudget
from trustanchor.storage import audit_omissions_repo
from trustanchor.storage.tables import interactions, wallet_transactions

log = logging.getLogger("trustanchor.audit")

WHAT = "login"
"""The kind of the entries this module may leave out (the ``what`` of its summaries)."""

WINDOW = 600
"""Seconds per summary window: at most one ``omitted`` entry per window (docs §1.7)."""

FIRST_PARTY_CLIENTS = frozenset({auditor_console.CLIENT_ID, my_links.CLIENT_ID})
"""The built-in clients (services/first_party_login.py): flows nobody registered started."""

BUDGETED_REASONS = frozenset(
    {
        # services/wallet_login.py: the wallet's answer, before any credential is looked at
        "wallet_declined",
        "wallet_error",
        "wallet_refused_transaction_data",  # an error answer: invalid_transaction_data
        "wallet_response_invalid",
        "interaction_gone",
        "anchor_suspended",
        "anchor_unknown",
        # anchors/sd_jwt.py + sd_jwt_vc.py: refused before the issuer's signature verified
        "presentation_too_large",
        "too_many_disclosures",
        "malformed_presentation",
        "malformed_credential",
        "issuer_alg_not_allowed",
        "wrong_credential_typ",
        "unknown_issuer_key",
        "issuer_signature_invalid",
        # a verified credential, but no proof that the presenter holds its key for this login
        # (a replayed or copied presentation): the key-binding checks up to the nonce
        "key_binding_missing",
        "kb_malformed",
        "kb_wrong_typ",
        "kb_signature_invalid",
        "kb_nonce_mismatch",
        # services/upstream_login.py (H4b): an upstream provider's answer before an ID token
        # proves this login (declined, errors, mix-up, RFC 9207 iss, the code exchange, an ID
        # token that is not the provider's or not for this login attempt)
        "upstream_declined",
        "upstream_error",
        "upstream_mix_up",
        "upstream_token_failed",
        "response_issuer_mismatch",
        "response_issuer_missing",
        "id_token_malformed",
        "id_token_too_large",
        "id_token_encrypted",
        "id_token_alg_not_allowed",
        "id_token_wrong_typ",
        "id_token_signature_invalid",
        "unknown_provider_key",
        "id_token_nonce_mismatch",
    }
)


def budget_for(services: Services, reason: str, client_id: str | None) -> RefusalBudget | None:
    """The budget a failure with ``reason`` in a flow started by ``client_id`` spends (None:
    recorded unconditionally, a verified credential's failure or an untraceable flow)."""
    if reason not in BUDGETED_REASONS or client_id is None:
        return None
    if client_id in FIRST_PARTY_CLIENTS:
        return services.refusal_budget
    return services.client_login_budgets.of(client_id)


def flow_client_id(conn: Connection, transaction_id: str) -> str | None:
    """The client whose authorization request the wallet transaction serves (None if its
    interaction is gone: then nobody can be shown to be unaccountable, and it is recorded)."""
    found = conn.execute(
        select(interactions.c.client_id)
        .select_from(
            wallet_transactions.join(
                interactions, wallet_transactions.c.interaction_id == interactions.c.id
            )
        )
        .where(wallet_transactions.c.id == transaction_id)
    ).scalar()
    return None if found is None else str(found)


def window_start(at: int) -> int:
    return at - at % WINDOW


def record(
    services: Services,
    conn: Connection,
    *,
    transaction_id: str,
    anchor_id: str,
    reason: str,
    at: int,
) -> bool:
    """Audit the failed login of wallet transaction ``transaction_id`` inside ``conn``'s
    transaction, or count it for its window's summary when the budget is spent (see the module
    docstring). Writes the summaries of windows that closed before ``at``. Returns whether the
    failure itself was recorded."""
    current = window_start(at)
    summarise_closed(conn, at=at, before=current)
    budget = budget_for(services, reason, flow_client_id(conn, transaction_id))
    if budget is not None:
        admitted, dropped = budget.admit(at, WHAT)
        if not admitted:
            audit_omissions_repo.count(conn, what=WHAT, window_start=current, reason=reason)
            if dropped == 1 or dropped % 1000 == 0:
                log.warning(
                    "audit: failed logins without a verified credential exceed a budget; %d "
                    "not recorded one by one so far (counted in the window's 'omitted' entry)",
                    dropped,
                )
            return False
        if dropped:
            log.warning(
                "audit: %d failed logins without a verified credential were counted, not "
                "recorded one by one",
                dropped,
            )
    audit_trail.record(conn, audit_trail.login_failed(at=at, anchor_id=anchor_id, reason=reason))
    return True


def summarise_closed(conn: Connection, *, at: int, before: int) -> int:
    """Write one ``omitted`` entry for each window of left-out failures that starts before
    ``before``, and forget its counts; returns how many entries were written."""
    closed = audit_omissions_repo.take_closed(conn, what=WHAT, before=before)
    for since, counts in sorted(closed.items()):
        audit_trail.record(
            conn,
            audit_trail.omitted(at=at, what=WHAT, since=since, until=since + WINDOW, counts=counts),
        )
    return len(closed)
