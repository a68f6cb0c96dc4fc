"""Discovery documents and the JWKS."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, g

from trustanchor.oauth import discovery
from trustanchor.services.container import Services

blueprint = Blueprint("wellknown", __name__)
_DOC_KEY = "trustanchor.discovery"


def build_document(services: Services) -> dict[str, Any]:
    frameworks: list[str] = []
    claims: list[str] = []
    for anchor in services.anchors.list():
        tf = anchor.settings.get("trust_framework")
        if isinstance(tf, str) and tf not in frameworks:
            frameworks.append(tf)
        mapping = anchor.settings.get("claims")
        if isinstance(mapping, dict):
            claims += [c for c in mapping if c not in claims]
    doc = discovery.metadata(
        services.settings,
        services.endpoints,
        trust_frameworks=frameworks,
        claims=claims,
        demo_secret_auth=services.settings.service.mode != "production",
    )
    discovery.validate(doc)
    return doc


def prepare(app: Flask, services: Services) -> None:
    app.extensions[_DOC_KEY] = json.dumps(build_document(services))


def _json(body: str, *, max_age: int) -> Response:
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


@blueprint.get("/.well-known/openid-configuration")
@blueprint.get("/.well-known/oauth-authorization-server")
def metadata() -> Response:
    from flask import current_app

    return _json(current_app.extensions[_DOC_KEY], max_age=300)


@blueprint.get("/jwks")
def jwks() -> Response:
    services: Services = g.services
    return _json(json.dumps(services.keys.jwks(services.clock.now())), max_age=60)
