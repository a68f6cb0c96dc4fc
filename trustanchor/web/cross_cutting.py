"""What every stack serving a machine endpoint must do besides the endpoint's own work.

The Flask app does these in ``before_request``, ``after_request`` and its error handlers
(``trustanchor.web.app``, ``trustanchor.web.errors``), and ``trustanchor.web.serving`` does the
body read before either stack runs. A route served without Flask (``trustanchor.web.token_route``)
must do each of them the same way. tests/flows/test_token_stacks.py asserts every behaviour
listed here on both stacks and fails when one has no such test; a behaviour marked ``pending``
does not exist on either stack yet, and the issue named adds it to both (with its test).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Behaviour:
    id: str
    description: str
    pending: str | None = None  # the issue that adds it, while it exists on no stack


BEHAVIOURS: tuple[Behaviour, ...] = (
    Behaviour(
        "body_limit",
        "a body over limits.max_body_bytes (declared or streamed) is refused: 413 invalid_request",
    ),
    Behaviour(
        "body_deadline",
        "a body not complete within the body deadline is refused with 408 and Connection: close "
        "before any app code runs",
    ),
    Behaviour(
        "nul_refusal", "a NUL character in the path, query or form is refused: 400 invalid_request"
    ),
    Behaviour(
        "oauth_error",
        "a refusal is the JSON OAuth error of web/errors.py: same status, body, WWW-Authenticate "
        "and DPoP-Nonce headers",
    ),
    Behaviour("storage_unavailable", "a storage failure is answered 503 temporarily_unavailable"),
    Behaviour("unexpected_failure", "any other failure is logged and answered 500 server_error"),
    Behaviour("no_store", "every answer carries Cache-Control: no-store and Pragma: no-cache"),
    Behaviour(
        "security_headers", "every answer carries the security headers of trustanchor.web.app"
    ),
    Behaviour("dpop_nonce", "with dpop.require_nonce, every answer hands out a fresh DPoP-Nonce"),
    Behaviour(
        "refusal_audit",
        "a refused token request is recorded as an audit refusal entry, within the anonymous "
        "refusal budget (services/refusals.py), and a refusal before parsing is not recorded",
    ),
    Behaviour(
        "audit_integrator", "the audit integrator is kept running (ensure_running per request)"
    ),
    Behaviour(
        "request_id",
        "every answer carries X-Request-Id: the request's own when short and safe, else a new "
        "random one; every log line written while handling it carries the same id",
    ),
    Behaviour(
        "metrics",
        "with metrics.token set, every answered request is counted and timed by method, route "
        "template and status (trustanchor.web.metrics)",
    ),
)


def ids(*, pending: bool = False) -> tuple[str, ...]:
    """The behaviours that exist (``pending=False``) or are still to be built."""
    return tuple(b.id for b in BEHAVIOURS if (b.pending is not None) == pending)
