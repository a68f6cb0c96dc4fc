"""Protocol endpoints: PAR, authorization, token, userinfo, introspection, revocation."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, make_response, redirect, request

from trustanchor.services import authorize, introspection, par, revocation, token, userinfo
from trustanchor.web.blueprints import current_services
from trustanchor.web.cookies import browser_secret, sso_session_id
from trustanchor.web.forms import (
    authorization_header,
    authorization_headers,
    dpop_headers,
    form_body,
    query,
)
from trustanchor.web.interaction import bind_browser
from trustanchor.web.rendering import render_page

blueprint = Blueprint("oauth", __name__)


@blueprint.post("/par")
def pushed_authorization_request() -> Any:
    pushed = par.push(
        current_services(),
        form_body(),
        authorization=authorization_header(),
        dpop_headers=dpop_headers(),
    )
    response = jsonify({"request_uri": pushed.request_uri, "expires_in": pushed.expires_in})
    response.status_code = 201
    return response


@blueprint.get("/authorize")
def authorization() -> Any:
    services = current_services()
    try:
        outcome = authorize.start(
            services,
            query(),
            session_id=sso_session_id(),
            browser_secret=browser_secret(),
        )
    except authorize.AuthorizeErrorPage as exc:
        return render_page(
            "error.html",
            status=400,
            message_key="errors.invalid_request_uri"
            if exc.error.error == "invalid_request_uri"
            else "errors.invalid_request",
            detail=exc.error.description,
        )
    if isinstance(outcome, authorize.Redirect):
        return redirect(outcome.url, code=303)
    response = redirect(services.endpoints.interaction(outcome.interaction_id), code=303)
    bind_browser(response, services, outcome.browser_secret)
    return response


@blueprint.post("/token")
def token_endpoint() -> Any:
    result = token.token(
        current_services(),
        form_body(),
        authorization=authorization_header(),
        dpop_headers=dpop_headers(),
    )
    return jsonify(result.body)


@blueprint.route("/userinfo", methods=["GET", "POST"])
def userinfo_endpoint() -> Any:
    token_in_request = "access_token" in request.args or (
        request.mimetype == "application/x-www-form-urlencoded" and "access_token" in request.form
    )
    claims = userinfo.userinfo(
        current_services(),
        authorization=authorization_headers(),
        dpop_headers=dpop_headers(),
        method=request.method,
        token_in_request=token_in_request,
    )
    return jsonify(claims)


@blueprint.post("/introspect")
def introspection_endpoint() -> Any:
    return jsonify(
        introspection.introspect(
            current_services(), form_body(), authorization=authorization_header()
        )
    )


@blueprint.post("/revoke")
def revocation_endpoint() -> Response:
    revocation.revoke(current_services(), form_body(), authorization=authorization_header())
    return make_response("", 200)
