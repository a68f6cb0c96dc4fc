"""The Flask application factory. Only the web layer knows about HTTP; everything it does is a
call into trustanchor.services."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from trustanchor.anchors.fetcher import Fetcher
from trustanchor.clock import Clock
from trustanchor.config import Settings, load_settings
from trustanchor.randomness import Randomness
from trustanchor.services.container import Services, build_services
from trustanchor.storage.database import StorageUnavailable
from trustanchor.web import errors, interaction, oauth_endpoints, pages, wallet, wellknown

log = logging.getLogger("trustanchor.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
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
) -> Flask:
    if services is None:
        settings = settings or load_settings()
        services = build_services(settings, clock=clock, randomness=randomness, fetcher=fetcher)
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=services.settings.limits.max_body_bytes,
        MAX_FORM_MEMORY_SIZE=services.settings.limits.max_body_bytes,
        MAX_FORM_PARTS=200,
        JSON_SORT_KEYS=False,
        TRUSTANCHOR=services,
    )
    app.extensions["trustanchor"] = services
    wellknown.prepare(app, services)
    for blueprint in (
        wellknown.blueprint,
        oauth_endpoints.blueprint,
        interaction.blueprint,
        wallet.blueprint,
        pages.blueprint,
    ):
        app.register_blueprint(blueprint)
    errors.install(app)

    @app.before_request
    def _bind() -> None:
        g.services = services

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value.format(form_action=_form_action(services)))
        if request.path.startswith(("/token", "/par", "/introspect", "/revoke", "/userinfo")):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.errorhandler(StorageUnavailable)
    def _storage(exc: StorageUnavailable) -> Any:
        log.error("storage unavailable: %s", exc)
        return errors.oauth_or_page(503, "temporarily_unavailable", "errors.unavailable")

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Any:
        return errors.http_error(exc)

    return app


def _form_action(services: Services) -> str:
    # The consent form redirects to the client's registered redirect URI (any https origin).
    del services
    return "https: http://127.0.0.1:* http://localhost:*"
