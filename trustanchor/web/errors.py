"""Turning refusals into responses: JSON error bodies for protocol endpoints, an error page for
people. Never a 500 for bad input, never a redirect to an unverified URI."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, make_response, request
from werkzeug.exceptions import HTTPException

from trustanchor.oauth.errors import (
    InvalidDpopProof,
    InvalidToken,
    OAuthError,
    UseDpopNonce,
)
from trustanchor.web.rendering import render_page

log = logging.getLogger("trustanchor.web")

API_PREFIXES = (
    "/token",
    "/par",
    "/introspect",
    "/revoke",
    "/userinfo",
    "/wallet/",
    "/.well-known",
    "/jwks",
    "/schemas/",
    "/audit/",
    "/accounts",
    "/links",
    "/admin/",
)
RESOURCE_PREFIXES = ("/userinfo",)


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIXES) or request.path.endswith("/status")


def oauth_error_response(exc: OAuthError) -> Response:
    log.info("refused %s %s: %s (%s)", request.method, request.path, exc.error, exc.log_detail)
    resource = request.path.startswith(RESOURCE_PREFIXES)
    status = exc.status
    response = jsonify(exc.body())
    if isinstance(exc, UseDpopNonce):
        response.headers["DPoP-Nonce"] = exc.nonce
        status = 401 if resource else 400
        if resource:
            response.headers["WWW-Authenticate"] = 'DPoP error="use_dpop_nonce"'
    elif resource and isinstance(exc, InvalidToken | InvalidDpopProof):
        status = 401
        scheme = (
            "DPoP"
            if (request.headers.get("Authorization", "").lower().startswith("dpop"))
            else "Bearer"
        )
        response.headers["WWW-Authenticate"] = (
            f'{scheme} error="{exc.error}", algs="{_dpop_algs()}"'
            if scheme == "DPoP"
            else f'{scheme} error="{exc.error}"'
        )
    elif exc.status == 401 and request.headers.get("Authorization", "").lower().startswith("basic"):
        response.headers["WWW-Authenticate"] = 'Basic realm="trustanchor"'
    response.status_code = status
    return response


def _dpop_algs() -> str:
    """RFC 9449 §7.1: the algs parameter lists the proof algorithms we accept (configured)."""
    services = current_app.extensions["trustanchor"]
    return " ".join(services.settings.dpop.allowed_algs)


def oauth_or_page(status: int, error: str, message_key: str) -> Any:
    if is_api_request():
        response = jsonify({"error": error})
        response.status_code = status
        return response
    return render_page("error.html", status=status, message_key=message_key)


def http_error(exc: HTTPException) -> Any:
    status = exc.code or 500
    if status == 413:
        return oauth_or_page(413, "invalid_request", "errors.too_large")
    if status == 405:
        # RFC 9110 §15.5.6: a 405 must list the methods the resource does support.
        response = make_response(oauth_or_page(405, "invalid_request", "errors.method"))
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response
    if status == 404:
        return oauth_or_page(404, "not_found", "errors.not_found")
    if status >= 500:
        return oauth_or_page(status, "server_error", "errors.unavailable")
    return oauth_or_page(status, "invalid_request", "errors.invalid_request")


def install(app: Flask) -> None:
    app.register_error_handler(OAuthError, _handle_oauth_error)


def _handle_oauth_error(exc: OAuthError) -> Any:
    if is_api_request():
        return oauth_error_response(exc)
    return render_page(
        "error.html",
        status=exc.status,
        message_key="errors.invalid_request",
        detail=exc.description,
    )
