"""Reading protocol requests: form bodies (as lists, so repeats are visible), the Authorization
header, DPoP headers."""

from __future__ import annotations

from flask import request

from trustanchor.oauth.errors import InvalidRequest
from trustanchor.oauth.params import FormData

FORM_TYPE = "application/x-www-form-urlencoded"


def form_body() -> FormData:
    if request.mimetype != FORM_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_TYPE}")
    return {key: request.form.getlist(key) for key in request.form}


def query() -> FormData:
    return {key: request.args.getlist(key) for key in request.args}


def authorization_headers() -> list[str]:
    """Every Authorization header field. Folded repeats (``"Bearer a, Bearer b"``, see
    :func:`dpop_headers`) are split again: none of the schemes we accept (Basic, Bearer, DPoP)
    allows a comma in its credentials, so a comma always means a second field."""
    return [
        part.strip()
        for value in request.headers.getlist("Authorization")
        for part in value.split(",")
    ]


def authorization_header() -> str | None:
    values = authorization_headers()
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    return values[0] if values else None


def dpop_headers() -> list[str]:
    """Every DPoP header field of the request, one proof each.

    WSGI servers fold repeated header lines into one value joined by commas (RFC 9110 §5.3), so
    two ``DPoP`` lines arrive as ``"<jws>,<jws>"``. A compact JWS never contains a comma, so
    splitting restores the fields and RFC 9449 §4.3's "not more than one DPoP header" check sees
    them, instead of a confusing "malformed proof".
    """
    return [part.strip() for value in request.headers.getlist("DPoP") for part in value.split(",")]
