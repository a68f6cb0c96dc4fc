"""``POST /token`` without Flask (issue 13): the token endpoint answered from the ASGI request
that :class:`~trustanchor.web.serving.WsgiOverAsgi` has already read, in the same app pool.

It does what the Flask stack does for this one route, in the same order, and nothing else:

1. ``before_request`` (``trustanchor.web.app``): keep the audit integrator running; refuse a body
   over ``limits.max_body_bytes`` (413, from a declared ``Content-Length`` alone, else from the
   body); refuse a NUL character in the path, query or form (400);
2. the view (``oauth_endpoints.token_endpoint``): the form as ``forms.form_body`` reads it (only
   ``application/x-www-form-urlencoded``, every value of every name), the Authorization and
   DPoP header fields as ``forms.authorization_header`` / ``forms.dpop_headers`` read them, then
   ``services.token.token`` and its JSON body as ``jsonify`` writes it;
3. the error handlers (``trustanchor.web.errors``): an ``OAuthError`` answered by the same
   builder, ``StorageUnavailable`` as 503 ``temporarily_unavailable``, anything unexpected as
   500 ``server_error``;
4. ``after_request``: the security headers, ``Cache-Control: no-store``, ``Pragma: no-cache``,
   with ``dpop.require_nonce``, a fresh ``DPoP-Nonce``, and ``X-Request-Id`` (the id
   :class:`~trustanchor.web.serving.WsgiOverAsgi` gave the request and set for its log lines);
5. the request metrics (``trustanchor.web.health.install`` on the Flask side): counted and
   timed as ``POST /token`` with its status, through children bound once
   (:class:`~trustanchor.web.metrics.RouteMeter`).

The request is read as the WSGI app would see it through ``serving.wsgi_environ``: header
names with an underscore dropped, repeated lines joined with commas. Three request shapes are left
to Flask (the handler returns None): a ``multipart/form-data`` body (Flask parses it for the NUL
check before refusing its type, with its own part limits), a ``Transfer-Encoding`` header
(werkzeug's reading of a streamed length) and a body of more than :data:`MAX_FIELDS` fields or
:data:`MAX_ESCAPES` percent-escapes; none is a request a token client sends.

``trustanchor.web.cross_cutting`` lists these behaviours; tests/flows/test_token_stacks.py holds
both stacks to each of them and compares their answers. This module must not import Flask.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from time import perf_counter
from typing import Protocol

from trustanchor.log_setup import clipped
from trustanchor.oauth.errors import InvalidRequest, OAuthError
from trustanchor.services import token
from trustanchor.services.container import Services
from trustanchor.storage.database import StorageUnavailable
from trustanchor.web.errors import (
    STORAGE_UNAVAILABLE,
    ErrorAnswer,
    api_error_answer,
    json_bytes,
    oauth_error_answer,
)
from trustanchor.web.forms import (
    FORM_TYPE,
    header_fields,
    mimetype,
    only_authorization,
    parse_query,
    require_form_type,
    urlencoded_form,
)
from trustanchor.web.metrics import route_meter
from trustanchor.web.serving import Answer, LeanHandler, LeanRequest, environ_headers

log = logging.getLogger("trustanchor.web")

PATH = "/token"
MAX_FIELDS = 64
"""A body of more fields than this is left to Flask: no token request has more than about
a dozen, and decoding thousands (a 64 KB body of invalid percent-escapes costs some 50 ms) would
hold the event loop this route may run on (``service.token_on_loop``); in a request thread the
loop still gets its turns."""
MAX_ESCAPES = 1024
"""Likewise a body of more percent-escapes than this (one value of 21,800 invalid escapes costs
some 27 ms to decode; a token request's authorization_details, URL-encoded JSON, a few hundred)."""
_JSON = b"application/json"
_PLAIN_INT = re.compile(r"-?[0-9]+", re.ASCII)  # werkzeug's Content-Length syntax


class Integrator(Protocol):
    def ensure_running(self) -> None: ...


class _TooLarge(Exception):
    """The body is over the limit (werkzeug's RequestEntityTooLarge on the Flask side)."""


class TokenRoute:
    """The lean ``POST /token`` handler (a :data:`~trustanchor.web.serving.LeanHandler`).

    ``security_headers``: the headers ``trustanchor.web.app`` sets on every answer, with their
    values as configured; ``integrator``: the app's audit integrator, if it runs one."""

    def __init__(
        self,
        services: Services,
        *,
        security_headers: Mapping[str, str],
        integrator: Integrator | None,
    ) -> None:
        self._services = services
        self._integrator = integrator
        # the request counter and latency histogram of POST /token, bound once (None: off)
        self._meter = route_meter(services, "POST", PATH)
        self._limit = services.settings.limits.max_body_bytes
        self._nonces = services.settings.dpop.require_nonce
        self._algs = " ".join(services.settings.dpop.allowed_algs)
        self._security = [
            (name.lower(), name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in security_headers.items()
        ]

    def __call__(self, request: LeanRequest) -> Answer | None:
        meter = self._meter
        if meter is None:  # metrics off
            return self._answer(request)
        started = perf_counter()
        answer = self._answer(request)
        if answer is not None:  # a request left to Flask is counted there
            meter.observe(answer[0], perf_counter() - started)
        return answer

    def _answer(self, request: LeanRequest) -> Answer | None:
        headers = environ_headers(request.headers)
        try:
            return self._handle(request, headers)
        except OAuthError as exc:
            answer = oauth_error_answer(
                exc,
                method=request.method,
                path=request.path,
                authorization=headers.get("HTTP_AUTHORIZATION", ""),
                dpop_algs=self._dpop_algs,
            )
        except _TooLarge:
            answer = api_error_answer(413)
        except StorageUnavailable as exc:
            log.error("storage unavailable: %s", exc)
            answer = STORAGE_UNAVAILABLE
        except Exception:
            log.exception("Exception on %s [%s]", clipped(request.path), clipped(request.method))
            answer = api_error_answer(500)
        return self._respond(request, answer.status, json_bytes(answer.body), answer)

    def _dpop_algs(self) -> str:
        return self._algs

    def _handle(self, request: LeanRequest, headers: dict[str, str]) -> Answer | None:
        if "HTTP_TRANSFER_ENCODING" in headers:
            return None
        media_type = mimetype(headers.get("CONTENT_TYPE"))
        if media_type == "multipart/form-data":
            return None
        body = request.body
        if body.count(b"&") >= MAX_FIELDS or body.count(b"%") > MAX_ESCAPES:
            return None  # parsed in a request thread, not on the event loop
        # before_request, in its order
        if self._integrator is not None:
            self._integrator.ensure_running()
        length = _content_length(headers.get("CONTENT_LENGTH"))
        if (length if length is not None else len(body)) > self._limit:
            raise _TooLarge
        if "\x00" in request.path:
            raise InvalidRequest("the request path contains a NUL character")
        # _refuse_nul reads the query, then the form, then looks for NULs in both
        query = parse_query(request.query_string.decode()) if request.query_string else []
        form: dict[str, list[str]] = {}
        if media_type == FORM_TYPE:
            if len(body) > self._limit:  # a declared length under the real one
                raise _TooLarge
            form = urlencoded_form(body)
        if _has_nul(query) or any(
            "\x00" in name or any("\x00" in value for value in values)
            for name, values in form.items()
        ):
            raise InvalidRequest("a parameter contains a NUL character")
        # the view
        require_form_type(media_type)
        authorization = headers.get("HTTP_AUTHORIZATION")
        dpop = headers.get("HTTP_DPOP")
        result = token.token(
            self._services,
            form,
            authorization=only_authorization(
                header_fields([authorization]) if authorization is not None else []
            ),
            dpop_headers=header_fields([dpop]) if dpop is not None else [],
        )
        return self._respond(request, 200, json_bytes(result.body), None)

    def _respond(
        self, request: LeanRequest, status: int, body: bytes, error: ErrorAnswer | None
    ) -> Answer:
        """The answer with the headers Flask would send: jsonify's, the error's own, then
        ``after_request``'s (the last one the request's id, which serving gave it)."""
        lines = [(b"content-type", _JSON), (b"content-length", str(len(body)).encode("ascii"))]
        names = {"content-type", "content-length"}
        if error is not None:
            for name, value in error.headers:
                lines.append((name.lower().encode("latin-1"), value.encode("latin-1")))
                names.add(name.lower())
        for lower, raw_name, raw_value in self._security:
            if lower not in names:  # setdefault
                lines.append((raw_name, raw_value))
        lines.append((b"cache-control", b"no-store"))
        lines.append((b"pragma", b"no-cache"))
        if self._nonces and "dpop-nonce" not in names:
            nonce = self._services.dpop.issue_nonce(self._services.clock.now())
            lines.append((b"dpop-nonce", nonce.encode("latin-1")))
        lines.append((b"x-request-id", request.request_id.encode("ascii")))
        return status, lines, body


def lean_routes(
    services: Services,
    *,
    security_headers: Mapping[str, str],
    integrator: Integrator | None,
) -> dict[tuple[str, str], LeanHandler]:
    """The routes served without Flask when ``service.lean_token_endpoint`` is on."""
    if not services.settings.service.lean_token_endpoint:
        return {}
    route = TokenRoute(services, security_headers=security_headers, integrator=integrator)
    return {("POST", PATH): route}


def _content_length(value: str | None) -> int | None:
    """werkzeug's ``request.content_length`` without Transfer-Encoding: None without the
    header, 0 when it is not a plain integer, never negative."""
    if value is None:
        return None
    value = value.strip(" \t")
    if _PLAIN_INT.fullmatch(value) is None:
        return 0
    return max(0, int(value))


def _has_nul(pairs: list[tuple[str, str]]) -> bool:
    return any("\x00" in name or "\x00" in value for name, value in pairs)
