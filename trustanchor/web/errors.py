"""Turning refusals into responses: JSON error bodies for protocol endpoints, an error page for
people. Never a 500 for bad input, never a redirect to an unverified URI."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from flask import Flask, Response, current_app, jsonify, make_response, request
from werkzeug.exceptions import HTTPException

from trustanchor.log_setup import clipped
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


DETAIL_CLIP = 400  # characters of a refusal's log detail (it may quote the request)


class ServiceFlask(Flask):
    """Flask, logging an unexpected failure with the request's path bounded
    (``log_setup.clipped``), as the lean /token route does."""

    def log_exception(
        self, exc_info: tuple[type, BaseException, TracebackType] | tuple[None, None, None]
    ) -> None:
        self.logger.error(
            "Exception on %s [%s]",
            clipped(request.path),
            clipped(request.method),
            exc_info=exc_info,
        )


def is_api_request() -> bool:
    return request.path.startswith(API_PREFIXES) or request.path.endswith("/status")


def oauth_error_response(exc: OAuthError) -> Response:
    answer = oauth_error_answer(
        exc,
        method=request.method,
        path=request.path,
        authorization=request.headers.get("Authorization", ""),
        dpop_algs=_dpop_algs,
    )
    response = jsonify(answer.body)
    for name, value in answer.headers:
        response.headers[name] = value
    response.status_code = answer.status
    return response


# -- framework-free: what an answer holds, for Flask and for routes served without it ---------


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """An error answer of a protocol endpoint: status, JSON body and the headers of the error
    itself (the headers every answer gets are added by whoever sends it)."""

    status: int
    body: dict[str, str]
    headers: tuple[tuple[str, str], ...] = ()


def oauth_error_answer(
    exc: OAuthError,
    *,
    method: str,
    path: str,
    authorization: str,
    dpop_algs: Callable[[], str],
) -> ErrorAnswer:
    """The answer to a refused protocol request at ``path``, logged. ``authorization``: the
    request's Authorization header as it arrived (``""`` without one); ``dpop_algs``: the
    configured proof algorithms, space-separated (only asked for when the answer names them)."""
    log.info(
        "refused %s %s: %s (%s)",
        clipped(method),
        clipped(path),
        exc.error,
        clipped(exc.log_detail, DETAIL_CLIP),
    )
    resource = path.startswith(RESOURCE_PREFIXES)
    status = exc.status
    headers: list[tuple[str, str]] = []
    if isinstance(exc, UseDpopNonce):
        headers.append(("DPoP-Nonce", exc.nonce))
        status = 401 if resource else 400
        if resource:
            headers.append(("WWW-Authenticate", 'DPoP error="use_dpop_nonce"'))
    elif resource and isinstance(exc, InvalidToken | InvalidDpopProof):
        status = 401
        scheme = "DPoP" if authorization.lower().startswith("dpop") else "Bearer"
        headers.append(
            (
                "WWW-Authenticate",
                f'{scheme} error="{exc.error}", algs="{dpop_algs()}"'
                if scheme == "DPoP"
                else f'{scheme} error="{exc.error}"',
            )
        )
    elif exc.status == 401 and authorization.lower().startswith("basic"):
        headers.append(("WWW-Authenticate", 'Basic realm="trustanchor"'))
    return ErrorAnswer(status, exc.body(), tuple(headers))


def http_error_code(status: int) -> str:
    """The OAuth error code of an HTTP-level refusal answered to an API request (413 body too
    large, 405, 404, 5xx; anything else invalid_request)."""
    if status == 404:
        return "not_found"
    if status >= 500:
        return "server_error"
    return "invalid_request"


STORAGE_UNAVAILABLE = ErrorAnswer(503, {"error": "temporarily_unavailable"})


def api_error_answer(status: int) -> ErrorAnswer:
    """What :func:`oauth_or_page` answers an API request for an HTTP-level refusal."""
    return ErrorAnswer(status, {"error": http_error_code(status)})


def json_bytes(value: Any) -> bytes:
    """The body Flask's ``jsonify`` writes outside debug mode (its default JSON provider:
    ASCII-only, keys sorted, compact, one newline at the end), for JSON-native values."""
    return (
        json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":")) + "\n"
    ).encode("utf-8")


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
        return oauth_or_page(413, http_error_code(413), "errors.too_large")
    if status == 405:
        # RFC 9110 §15.5.6: a 405 must list the methods the resource does support.
        response = make_response(oauth_or_page(405, http_error_code(405), "errors.method"))
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        return response
    if status == 404:
        return oauth_or_page(404, http_error_code(404), "errors.not_found")
    if status >= 500:
        return oauth_or_page(status, http_error_code(status), "errors.unavailable")
    return oauth_or_page(status, http_error_code(status), "errors.invalid_request")


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
