"""What every blueprint needs: the request's services, and ``no-store`` for answers that carry
tokens, sessions or state that changes (the APIs, the interaction and wallet pages, the auditor and
self-service pages)."""

from __future__ import annotations

from flask import g
from werkzeug.wrappers import Response

from trustanchor.services.container import Services


def current_services() -> Services:
    services: Services = g.services
    return services


def no_store(response: Response) -> Response:
    """``Cache-Control: no-store`` and ``Pragma: no-cache`` (for HTTP/1.0 caches): registered as
    ``after_request`` on every blueprint whose pages or answers are about one person or one
    interaction (interaction, wallet, /my, /auditor, logout, the APIs), so that no shared or
    browser cache keeps them and the back button does not show them again."""
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
