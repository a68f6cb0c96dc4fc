"""Whether this process can serve (``/readyz``), and the audit log's state for the metrics.

Ready means: the database answers (a read of the audit checkpoints: the schema is there, not
just a connection); a signing key signs now (``SigningKeyStore.current``); the audit key is
loaded under the log's origin and signs; and the audit integrator is not stalled: no committed
audit entry has waited longer than ``audit.stall_after`` seconds (by the injected clock) for a
signed checkpoint. That last check reads the database, so it sees every process's integrator:
an idle log signs no new checkpoint and is not stalled, while entries left pending are.

A failed check is named by a fixed code; what went wrong is logged for the operator (the
exception's class, never its message: a database error can carry the connection URL).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trustanchor.services.container import Services
from trustanchor.storage import audit_tree

log = logging.getLogger("trustanchor.health")

CHECKS = ("database", "signing_key", "audit_key", "audit_integrator")


@dataclass(frozen=True, slots=True)
class AuditState:
    """The audit log as stored: its signed size, when that checkpoint was signed (None: no
    checkpoint yet) and when the oldest entry still awaiting one was appended (None: none)."""

    tree_size: int
    checkpoint_at: int | None
    oldest_pending_at: int | None


@dataclass(frozen=True, slots=True)
class Readiness:
    checks: dict[str, str]  # check → "ok" | "failed" | "skipped"

    @property
    def ready(self) -> bool:
        return all(result == "ok" for result in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.checks.items() if result != "ok"]


def audit_state(services: Services) -> AuditState:
    """Two indexed reads (raises StorageUnavailable or a driver error when the database does
    not answer)."""
    with services.db.reader() as conn:
        latest = audit_tree.latest_checkpoint(conn)
        pending = audit_tree.oldest_pending_at(conn)
    if latest is None:
        return AuditState(0, None, pending)
    return AuditState(latest.size, latest.created_at, pending)


def readiness(services: Services) -> Readiness:
    checks = dict.fromkeys(CHECKS, "failed")
    now = services.clock.now()
    try:
        state = audit_state(services)
    except Exception as exc:  # any failure to read means not ready
        log.warning("readiness: the database did not answer (%s)", exc.__class__.__name__)
        checks["audit_integrator"] = "skipped"
    else:
        checks["database"] = "ok"
        waited = 0 if state.oldest_pending_at is None else now - state.oldest_pending_at
        if waited <= services.settings.audit.stall_after:
            checks["audit_integrator"] = "ok"
        else:
            log.warning("readiness: an audit entry has waited %d s for a checkpoint", waited)
    try:
        services.keys.current()
        checks["signing_key"] = "ok"
    except Exception as exc:
        log.warning("readiness: no signing key signs now (%s)", exc.__class__.__name__)
    try:
        key = services.audit_key
        if key.name != services.settings.audit_origin or services.audit.origin != key.name:
            raise ValueError("the audit key is not the log's")
        key.sign(b"trustanchor readiness")
        checks["audit_key"] = "ok"
    except Exception as exc:
        log.warning("readiness: the audit key cannot sign (%s)", exc.__class__.__name__)
    return Readiness(checks)
