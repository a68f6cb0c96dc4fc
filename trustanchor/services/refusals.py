"""Audit ``refusal`` entries for refused PAR and token requests (docs/AUDIT-FORMAT.md §1.2, §1.5).

The endpoint services wrap their work: when it raises an :class:`OAuthError`, the failed work
has already rolled back (or committed what must stand, such as a reuse revocation and its
``reuse_detected`` leaf), and :func:`record` appends the refusal in a transaction of its own.
The refusal is answered whatever happens here: a refusal entry that cannot be written is an
operator error in the log, never a different answer to the client (the request was refused
either way, so nothing can be issued without its leaf).

What is not a refusal: ``use_dpop_nonce`` (a normal round trip of RFC 9449 §8, the client
retries with the nonce) and ``temporarily_unavailable`` (the service, not the request, failed).

Flooding: anyone can make the token endpoint refuse a request, and every entry is permanent.
Refusals of requests that no confidential client authenticated (unknown or absent client, a
failed authentication, a public client, which only names itself) therefore share a per-process
budget (:class:`RefusalBudget`, ``BURST`` entries, refilled at ``PER_SECOND``) with the login
failures no registered party caused (services/login_failures.py); beyond it they are not
recorded and the operator log says how many were left out. Refusals of authenticated
confidential clients are always recorded. Refusals before the request is parsed (a body over
the size limit, a wrong content type, two Authorization headers) are answered by the web layer
and never reach this module: they name no client and concern no token, and recording them would
give anonymous callers the cheapest way to grow the log.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from trustanchor.audit.entries import EntryError
from trustanchor.domain.clients import Client
from trustanchor.oauth.errors import OAuthError, TemporarilyUnavailable, UseDpopNonce
from trustanchor.oauth.params import FormData
from trustanchor.services import audit_trail
from trustanchor.storage.database import StorageUnavailable

if TYPE_CHECKING:
    from trustanchor.services.container import Services

log = logging.getLogger("trustanchor.audit")

# Per process; docs/AUDIT-FORMAT.md §1.5 states these numbers.
BURST = 100
PER_SECOND = 1
_NOT_REFUSALS = (UseDpopNonce, TemporarilyUnavailable)


@dataclass
class Attempt:
    """One request at ``endpoint`` (``par`` or ``token``) received at ``at``; ``client`` is set
    by the endpoint as soon as client authentication succeeded."""

    endpoint: str
    at: int
    client: Client | None = None


class ClientBudgets:
    """One :class:`RefusalBudget` per registered client, made on first use (at most one per
    registered client: ids come from stored interactions). Thread-safe; one per process."""

    def __init__(self, burst: int = BURST, per_second: int = PER_SECOND) -> None:
        self._burst = burst
        self._per_second = per_second
        self._budgets: dict[str, RefusalBudget] = {}
        self._lock = threading.Lock()

    def of(self, client_id: str) -> RefusalBudget:
        with self._lock:
            budget = self._budgets.get(client_id)
            if budget is None:
                budget = self._budgets[client_id] = RefusalBudget(self._burst, self._per_second)
            return budget


class RefusalBudget:
    """The anonymous audit budget: a token bucket over whole seconds of the injected clock,
    ``burst`` entries at once, ``per_second`` more each second. Thread-safe; one per process
    (``Services.refusal_budget``), shared by everything anyone can make the service record:
    refusals of unauthenticated requests (``what="refusal"``, this module) and login failures in
    flows no registered party started (``what="login"``, services/login_failures.py). One
    bucket bounds their sum; the count of entries left out is kept per ``what``."""

    def __init__(self, burst: int = BURST, per_second: int = PER_SECOND) -> None:
        if burst < 1 or per_second < 0:
            raise ValueError("a refusal budget needs burst >= 1 and per_second >= 0")
        self._burst = burst
        self._per_second = per_second
        self._available = burst
        self._last: int | None = None
        self._dropped: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, now: int, what: str = "refusal") -> tuple[bool, int]:
        """Spend one entry of kind ``what`` at ``now``. Returns ``(admitted, dropped)``: when
        admitted, how many entries of that kind were refused since the last one admitted (to
        report once); when not, how many have been refused in a row, this one included."""
        with self._lock:
            if self._last is None or now > self._last:
                elapsed = 0 if self._last is None else now - self._last
                self._available = min(self._burst, self._available + elapsed * self._per_second)
                self._last = now
            if self._available > 0:
                self._available -= 1
                return True, self._dropped.pop(what, 0)
            dropped = self._dropped[what] = self._dropped.get(what, 0) + 1
            return False, dropped


def supported_value(form: FormData, name: str, supported: tuple[str, ...]) -> str | None:
    """The request's single value of ``name`` if it is one of ``supported``, else None: only a
    value the service defines is ever recorded, never what the caller typed."""
    values = form.get(name)
    if values is None or len(values) != 1 or values[0] not in supported:
        return None
    return values[0]


def record(
    services: Services, attempt: Attempt, exc: OAuthError, *, grant_type: str | None = None
) -> None:
    """Append the refusal of ``attempt`` (see the module docstring for what is left out)."""
    if isinstance(exc, _NOT_REFUSALS):
        return
    client = attempt.client
    if client is None or client.is_public:
        admitted, dropped = services.refusal_budget.admit(attempt.at)
        if not admitted:
            if dropped == 1 or dropped % 1000 == 0:
                log.warning(
                    "audit: refusals of unauthenticated requests exceed %d/s; %d not recorded "
                    "so far (each is still in this log as a refused request)",
                    PER_SECOND,
                    dropped,
                )
            return
        if dropped:
            log.warning("audit: %d refusals of unauthenticated requests were not recorded", dropped)
    try:
        entry = audit_trail.refusal(
            at=attempt.at,
            endpoint=attempt.endpoint,
            client_id=client.client_id if client is not None else exc.client_id,
            grant_type=grant_type,
            error=exc.error,
            reason=exc.reason,
        )
        with services.db.transaction() as conn:
            audit_trail.record(conn, entry)
    except (StorageUnavailable, SQLAlchemyError, EntryError) as failure:
        log.error(
            "audit: the refusal at %s (%s, reason %s) was answered but NOT recorded in the audit "
            "log: %s",
            attempt.endpoint,
            exc.error,
            exc.reason,
            failure.__class__.__name__,
        )
