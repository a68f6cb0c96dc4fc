"""The OpenAPI 3.1 description of the service's JSON APIs besides OAuth and OpenID Connect
(accounts, links, admin, audit), served at ``/openapi.json``.

The description is a package data file (``web/openapi.json``), kept true by
tests/flows/test_openapi.py (validated, cross-checked with the routes, and fuzzed against a live
server with schemathesis). Served with this service's issuer as its server and token URL."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from flask import Blueprint, Response, current_app

from trustanchor import __version__
from trustanchor.services.container import Services
from trustanchor.web.blueprints import current_services

PATH = "/openapi.json"
MAX_AGE = 300
_KEY = "trustanchor.openapi"

blueprint = Blueprint("openapi", __name__)


def packaged() -> dict[str, Any]:
    """The description as the package ships it (no ``servers``: the issuer is the server)."""
    text = resources.files("trustanchor.web").joinpath("openapi.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def document(services: Services) -> dict[str, Any]:
    """The description as served: this issuer as the server, its token endpoint as the
    client_credentials token URL, the package version."""
    served = packaged()
    served["info"]["version"] = __version__
    served["servers"] = [{"url": services.settings.issuer}]
    flows = served["components"]["securitySchemes"]["clientCredentials"]["flows"]
    flows["clientCredentials"]["tokenUrl"] = services.endpoints.token
    return served


@blueprint.get(PATH)
def openapi_document() -> Response:
    body = current_app.extensions.get(_KEY)
    if body is None:
        body = json.dumps(document(current_services()), ensure_ascii=False)
        current_app.extensions[_KEY] = body
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={MAX_AGE}"
    return response
