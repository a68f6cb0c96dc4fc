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


def authorization_header() -> str | None:
    values = request.headers.getlist("Authorization")
    if len(values) > 1:
        raise InvalidRequest("more than one Authorization header")
    return values[0] if values else None


def dpop_headers() -> list[str]:
    return request.headers.getlist("DPoP")
