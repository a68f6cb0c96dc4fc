"""Discovery documents, the JWKS and the authorization_details JSON Schemas."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, g, request

from trustanchor.oauth import discovery
from trustanchor.oauth.authorization_details import supported_types, type_schema
from trustanchor.services import end_session
from trustanchor.services.container import Services

blueprint = Blueprint("wellknown", __name__)
_DOC_KEY = "trustanchor.discovery"
_SCHEMAS_KEY = "trustanchor.authorization_details_schemas"
SCHEMA_MAX_AGE = 86400  # the schemas change only with a release


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
    # OpenID Connect RP-Initiated Logout 1.0 §2.1 (no front- or back-channel logout: not claimed).
    doc["end_session_endpoint"] = services.endpoints.url(end_session.PATH)
    discovery.validate(doc)
    return doc


def build_schemas(services: Services) -> dict[str, str]:
    """Each supported type's JSON Schema as served: the packaged file plus ``$id``, the URL
    discovery names for it."""
    bodies: dict[str, str] = {}
    for name in supported_types():
        schema = {
            "$id": services.endpoints.authorization_details_schema(name),
            **type_schema(name),
        }
        bodies[name] = json.dumps(schema, indent=2, ensure_ascii=False) + "\n"
    return bodies


def prepare(app: Flask, services: Services) -> None:
    app.extensions[_DOC_KEY] = json.dumps(build_document(services))
    app.extensions[_SCHEMAS_KEY] = build_schemas(services)


def _json(body: str, *, max_age: int) -> Response:
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


@blueprint.get("/.well-known/openid-configuration")
@blueprint.get("/.well-known/oauth-authorization-server")
def metadata() -> Response:
    return _json(current_app.extensions[_DOC_KEY], max_age=300)


@blueprint.get("/schemas/<type_name>.json")
def authorization_details_schema(type_name: str) -> Response:
    body = current_app.extensions[_SCHEMAS_KEY].get(type_name)
    if body is None:
        abort(404)
    response = Response(body, mimetype="application/schema+json")
    response.headers["Cache-Control"] = f"public, max-age={SCHEMA_MAX_AGE}"
    response.add_etag()
    response.make_conditional(request)  # 304 when If-None-Match names this ETag
    return response


@blueprint.get("/jwks")
def jwks() -> Response:
    services: Services = g.services
    return _json(json.dumps(services.keys.jwks(services.clock.now())), max_age=60)
