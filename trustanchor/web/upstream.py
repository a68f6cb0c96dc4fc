"""The upstream OpenID Provider login's routes (anchor kind ``oidc``, services/upstream_login.py):
the login page's form starts it, the provider sends the browser back to the anchor's own redirect
URI, and the provider reads our client key's public half for ``private_key_jwt``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, jsonify, redirect, request

from trustanchor.services import upstream_login
from trustanchor.web.blueprints import current_services, no_store
from trustanchor.web.cookies import browser_secret
from trustanchor.web.interaction import _open_form

blueprint = Blueprint("upstream", __name__)
# The redirect to the provider carries a fresh state; the callback a code: never cached.
blueprint.after_request(no_store)


@blueprint.post("/interaction/<interaction_id>/upstream")
def start(interaction_id: str) -> Any:
    """The person chose an upstream provider on the login page (CSRF-checked form of the
    browser holding the interaction)."""
    services = current_services()
    current = _open_form(interaction_id)
    location = upstream_login.begin(services, current, request.form.get("anchor", ""))
    return redirect(location, code=303)


@blueprint.get("/upstream/<anchor_id>/callback")
def callback(anchor_id: str) -> Any:
    """The provider's authorization response (refusals: the interaction pages' one handler)."""
    services = current_services()
    location = upstream_login.callback(
        services,
        anchor_id,
        {name: request.args.getlist(name) for name in request.args},
        browser_secret(),
    )
    return redirect(location, code=303)


@blueprint.get("/upstream/<anchor_id>/jwks.json")
def jwks(anchor_id: str) -> Any:
    """Our client key's public JWKS for this provider's registration (never the private part)."""
    document = upstream_login.public_jwks(current_services(), anchor_id)
    if document is None:
        abort(404)
    return jsonify(document)
