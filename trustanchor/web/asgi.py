"""ASGI entry point of ``trustanchor serve``: ``trustanchor.web.asgi:app`` (settings from
$TRUSTANCHOR_CONFIG). The Flask app behind :class:`~trustanchor.web.serving.WsgiOverAsgi`, so
that request bodies are read under a deadline without holding a thread (see serving.py); with
``service.lean_token_endpoint``, ``POST /token`` is answered without Flask
(:mod:`trustanchor.web.token_route`)."""

import logging

from trustanchor.config import load_settings
from trustanchor.log_setup import configure_logging
from trustanchor.web.app import create_app, security_headers
from trustanchor.web.serving import BodyDeadline, WsgiOverAsgi, threads_per_worker
from trustanchor.web.token_route import lean_routes

_settings = load_settings()
configure_logging(_settings.logging.format, _settings.logging.level)  # unless granian did
_flask = create_app(_settings)
_services = _flask.extensions["trustanchor"]
_limits = _services.settings.limits
app = WsgiOverAsgi(
    _flask,
    threads=_services.settings.service.threads
    or threads_per_worker(_services.db.dialect, group_commit=_services.db.group is not None),
    deadline=BodyDeadline(
        initial=_limits.body_read_timeout,
        maximum=_limits.body_read_timeout_max,
        min_rate=_limits.min_body_rate,
        max_bytes=_limits.max_body_bytes,
    ),
    lean_routes=lean_routes(
        _services,
        security_headers=security_headers(_services),
        integrator=_flask.extensions.get("trustanchor.audit_integrator"),
    ),
    randomness=_services.randomness,
    lean_on_loop=_services.db.group is not None and _services.settings.service.token_on_loop,
    waiting_bodies=_limits.waiting_bodies_per_worker,
)
if _services.db.group is not None:
    _services.db.group.in_flight = lambda: app.in_flight
    # The client registry's first load reads and parses every client (about a second with the
    # most it holds): here, at start, rather than in a first /token request on the event loop.
    try:
        _services.clients.get("")
    except Exception as exc:  # a warm-up: requests fail closed on the same error, and retry
        logging.getLogger("trustanchor.web").warning(
            "the client registry could not be loaded at start (%s); requests will try again",
            exc.__class__.__name__,
        )
