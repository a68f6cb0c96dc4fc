"""What every blueprint needs: the request's services, and ``no-store`` for answers that carry
tokens, sessions or state that changes (the APIs, the auditor and self-service pages)."""

from __future__ import annotations

from flask import g
from werkzeug.wrappers import Response

from trustanchor.services.container import Services


def current_services() -> Services:
    services: Services = g.services
    return services


def no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response
