"""The Flask application factory. Only the web layer knows about HTTP; everything it does is a
call into trustanchor.services."""

from __future__ import annotations

import io
import logging
import weakref
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from trustanchor.anchors.fetcher import Fetcher
from trustanchor.clock import Clock
from trustanchor.config import Settings, load_settings
from trustanchor.log_setup import (
    REQUEST_ID_BYTES,
    REQUEST_ID_HEADER,
    acceptable_request_id,
    request_id,
)
from trustanchor.oauth.errors import InvalidRequest
from trustanchor.randomness import Randomness
from trustanchor.services.audit_log import AuditIntegrator
from trustanchor.services.container import Services, build_services
from trustanchor.storage.database import StorageUnavailable
from trustanchor.web import (
    accounts_api,
    admin_api,
    audit_api,
    auditor_console,
    certificate,
    counter,
    end_session,
    errors,
    health,
    interaction,
    my_links,
    oauth_endpoints,
    openapi,
    pages,
    upstream,
    wallet,
    wellknown,
)
from trustanchor.web.serving import REQUEST_ID_ENVIRON

log = logging.getLogger("trustanchor.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; "  # the wallet page's completion poll (static/poll.js)
        "form-action 'self' {form_action}; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    clock: Clock | None = None,
    randomness: Randomness | None = None,
    fetcher: Fetcher | None = None,
    audit_integrator: bool = True,
) -> Flask:
    """The WSGI app. ``audit_integrator=False`` leaves integrating audit leaves to the caller
    (tests that call ``services.audit.integrate_pending()`` themselves)."""
    if services is None:
        settings = settings or load_settings()
        services = build_services(settings, clock=clock, randomness=randomness, fetcher=fetcher)
    app = errors.ServiceFlask(__name__)  # its failure log bounds the path
    app.config.update(
        MAX_CONTENT_LENGTH=services.settings.limits.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=services.settings.limits.max_body_bytes,
        MAX_FORM_PARTS=200,
        JSON_SORT_KEYS=False,
    )
    app.extensions["trustanchor"] = services
    wellknown.prepare(app, services)
    for blueprint in (
        wellknown.blueprint,
        oauth_endpoints.blueprint,
        interaction.blueprint,
        wallet.blueprint,
        certificate.blueprint,
        counter.blueprint,  # /certificate/counter-response: branch counter terminals
        upstream.blueprint,
        pages.blueprint,
        audit_api.blueprint,
        auditor_console.blueprint,
        accounts_api.blueprint,
        admin_api.blueprint,
        openapi.blueprint,  # /openapi.json: the APIs above, described
        my_links.blueprint,
        end_session.blueprint,
        health.blueprint,  # /healthz, /readyz, /metrics
    ):
        app.register_blueprint(blueprint)
    errors.install(app)

    integrator = _start_audit_integrator(app, services) if audit_integrator else None
    health.install(app, services)  # request metrics, when metrics.token is set

    @app.before_request
    def _bind() -> None:
        _bind_request_id(services)
        g.services = services
        if integrator is not None:
            integrator.ensure_running()  # after a fork (pre-loading servers), in the worker
        _limit_body(services.settings.limits.max_body_bytes)
        _refuse_nul()

    nonces = services.settings.dpop.require_nonce
    headers = security_headers(services)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if request.path.startswith(("/token", "/par", "/introspect", "/revoke", "/userinfo")):
            response.headers["Cache-Control"] = "no-store"
            response.headers["Pragma"] = "no-cache"  # RFC 6749 §5.1, for HTTP/1.0 caches
            if nonces and "DPoP-Nonce" not in response.headers and request.path in _DPOP_PATHS:
                # RFC 9449 §8.2: hand out the next nonce with every answer.
                response.headers["DPoP-Nonce"] = services.dpop.issue_nonce(services.clock.now())
        elif nonces and "DPoP-Nonce" not in response.headers and _dpop_protected(request.path):
            # The DPoP-protected APIs too, success included (issue 14): a client keeps a nonce
            # that is still fresh and never pays a use_dpop_nonce round trip for an old one.
            response.headers["DPoP-Nonce"] = services.dpop.issue_nonce(services.clock.now())
        if "request_id" in g:
            response.headers[REQUEST_ID_HEADER] = g.request_id
        return response

    @app.teardown_request
    def _unbind(exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            request_id.reset(token)

    @app.errorhandler(StorageUnavailable)
    def _storage(exc: StorageUnavailable) -> Any:
        log.error("storage unavailable: %s", exc)
        return errors.oauth_or_page(503, "temporarily_unavailable", "errors.unavailable")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        return errors.http_error(exc)

    return app


def security_headers(services: Services) -> dict[str, str]:
    """The headers every answer carries (the lean /token route sets the same ones)."""
    return {
        name: value.format(form_action=_form_action(services))
        for name, value in SECURITY_HEADERS.items()
    }


def _start_audit_integrator(app: Flask, services: Services) -> AuditIntegrator:
    """One background integrator per process (it stops when the app is garbage-collected or
    the interpreter exits; ``app.extensions["trustanchor.audit_integrator"].stop()`` stops it
    at once)."""
    integrator = AuditIntegrator(
        services.audit, interval_ms=services.settings.audit.checkpoint_interval_ms
    )
    integrator.start()
    app.extensions["trustanchor.audit_integrator"] = integrator
    weakref.finalize(app, integrator.request_stop)
    return integrator


_DPOP_PATHS = frozenset({"/token", "/par", "/userinfo"})
# The DPoP-protected resource APIs (machine clients: accounts, links, audit log, admin); every
# answer under them hands out the next nonce when dpop.require_nonce is on.
DPOP_PROTECTED_PREFIXES = ("/accounts", "/links", "/audit", "/admin")


def _dpop_protected(path: str) -> bool:
    return any(
        path == prefix or path.startswith(prefix + "/") for prefix in DPOP_PROTECTED_PREFIXES
    )


def _bind_request_id(services: Services) -> None:
    """The request's id (trustanchor.log_setup): the one trustanchor.web.serving gave it, else
    (another WSGI server) its own acceptable X-Request-Id or a new one, set for its log lines
    until the request ends."""
    rid = request.environ.get(REQUEST_ID_ENVIRON)
    if rid is None:
        rid = acceptable_request_id(request.headers.get(REQUEST_ID_HEADER))
        if rid is None:
            rid = services.randomness.token(REQUEST_ID_BYTES)
        g.request_id_token = request_id.set(rid)
    g.request_id = rid


def _limit_body(limit: int) -> None:
    """Refuse a body beyond ``limit`` before any view runs (413, on every route).

    A declared Content-Length is checked without reading anything. A streamed (chunked) body is
    read here, at most ``limit + 1`` bytes: werkzeug's own limit for streams silently truncates
    the body at the limit instead of refusing it, and a truncated form is a different request
    (``scope=openid profile`` cut to ``scope=openid pro``).
    """
    length = request.content_length
    if length is not None:
        if length > limit:
            raise RequestEntityTooLarge()
        return
    if not request.environ.get("wsgi.input_terminated"):
        return  # no length, not streamed: werkzeug reads nothing
    stream = request.environ["wsgi.input"]
    data = bytearray()
    while len(data) <= limit:
        chunk = stream.read(limit + 1 - len(data))
        if not chunk:
            break
        data += chunk
    if len(data) > limit:
        raise RequestEntityTooLarge()
    request.environ["wsgi.input"] = io.BytesIO(bytes(data))


def _refuse_nul() -> None:
    """No NUL character in the path, query or form: no protocol value or page field needs one,
    and PostgreSQL refuses them in text, which would turn a lookup into a 500."""
    if "\x00" in request.path:
        raise InvalidRequest("the request path contains a NUL character")
    for params in (request.args, request.form):
        for name, value in params.items(multi=True):
            if "\x00" in name or "\x00" in value:
                raise InvalidRequest("a parameter contains a NUL character")


def _form_action(services: Services) -> str:
    """Where forms may lead: the consent form's answer redirects to the client's registered
    redirect URI, which is https in production (loopback http is allowed only outside it)."""
    if services.settings.is_production:
        return "https:"
    # No http://[::1]:* here: CSP host sources cannot name an IPv6 address (Chromium ignores
    # such a source with a console error), so a [::1] redirect URI is not reachable by form.
    return "https: http://127.0.0.1:* http://localhost:*"
