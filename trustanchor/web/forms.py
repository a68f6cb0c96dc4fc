"""Reading protocol requests: form bodies (as lists, so repeats are visible), the Authorization
header, DPoP headers.

The Flask functions (``form_body``, ``authorization_header``…) read werkzeug's request; the
framework-free ones below them say what those read, so that a route served without Flask
(``trustanchor.web.token_route``) reads a request the same way: the media type as werkzeug's
``request.mimetype`` takes it, a form body as werkzeug's URL-encoded form parser decodes it,
header fields split as the Flask side splits them."""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from urllib.parse import quote, unquote

from flask import request

from trustanchor.oauth.errors import InvalidRequest
from trustanchor.oauth.params import FormData

FORM_TYPE = "application/x-www-form-urlencoded"


def form_body() -> FormData:
    require_form_type(request.mimetype)
    return {key: request.form.getlist(key) for key in request.form}


def query() -> FormData:
    return {key: request.args.getlist(key) for key in request.args}


def authorization_headers() -> list[str]:
    """Every Authorization header field (see :func:`header_fields`)."""
    return header_fields(request.headers.getlist("Authorization"))


def authorization_header() -> str | None:
    return only_authorization(authorization_headers())


def dpop_headers() -> list[str]:
    """Every DPoP header field of the request, one proof each (see :func:`header_fields`)."""
    return header_fields(request.headers.getlist("DPoP"))


def target_path() -> str:
    """The request's path as a URI path, to compare with a DPoP proof's ``htu``: the octets of
    PATH_INFO (PEP 3333: the decoded path as latin-1 text), percent-encoded but for unreserved
    characters and ``/``. ``request.path`` is text decoded from UTF-8: a path naming other
    octets, or any non-ASCII character, could never equal an ``htu`` (which is ASCII)."""
    raw = str(request.environ.get("PATH_INFO", "")).encode("latin-1", "replace")
    return quote(raw, safe="/")


# -- framework-free: the same reading of raw values ----------------------------------------------


def require_form_type(mimetype: str) -> None:
    """A protocol form must be sent as ``application/x-www-form-urlencoded``."""
    if mimetype != FORM_TYPE:
        raise InvalidRequest(f"the request body must be {FORM_TYPE}")


def mimetype(content_type: str | None) -> str:
    """werkzeug's ``request.mimetype`` of a Content-Type value: what comes before the first
    ``;``, without surrounding spaces and tabs, lower-cased (``""`` without the header)."""
    if content_type is None:
        return ""
    return content_type.partition(";")[0].strip(" \t").lower()


def header_fields(values: Iterable[str]) -> list[str]:
    """Every field of a header given as its (possibly comma-folded) values.

    WSGI servers fold repeated header lines into one value joined by commas (RFC 9110 §5.3), so
    two ``DPoP`` lines arrive as ``"<jws>,<jws>"``. A compact JWS never contains a comma, and
    none of the Authorization schemes we accept (Basic, Bearer, DPoP) allows one in its
    credentials, so splitting restores the fields: RFC 9449 §4.3's "not more than one DPoP
    header" check sees them, instead of a confusing "malformed proof"."""
    return [part.strip() for value in values for part in value.split(",")]


def only_authorization(fields: list[str]) -> str | None:
    """The one Authorization field, None without one; two are invalid_request."""
    if len(fields) > 1:
        raise InvalidRequest("more than one Authorization header")
    return fields[0] if fields else None


def _requote(error: UnicodeError) -> tuple[str, int]:
    """Percent-encoded bytes that are not UTF-8 stay percent-encoded (werkzeug's
    ``werkzeug.url_quote`` codec error handler, which ``request.form`` and ``request.args``
    decode with)."""
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return quote(error.object[error.start : error.end], safe=""), error.end


_REQUOTE = "trustanchor.url_requote"
codecs.register_error(_REQUOTE, _requote)


def parse_query(raw: str) -> list[tuple[str, str]]:
    """The name/value pairs of URL-encoded text, as werkzeug reads them: blank values kept,
    ``+`` a space, invalid UTF-8 left percent-encoded. Exactly
    ``urllib.parse.parse_qsl(raw, keep_blank_values=True, errors=...)`` (a property test holds
    them equal), without its per-call argument coercion: it runs on every token request."""
    pairs: list[tuple[str, str]] = []
    for pair in raw.split("&"):
        if not pair:
            continue
        name, _, value = pair.partition("=")
        pairs.append((_unquote_plus(name), _unquote_plus(value)))
    return pairs


def _unquote_plus(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    if "%" in text:
        text = unquote(text, errors=_REQUOTE)
    return text


def urlencoded_form(body: bytes) -> dict[str, list[str]]:
    """An ``application/x-www-form-urlencoded`` body as :func:`form_body` returns it: every
    value of every name, names in order of first appearance. A body that is not UTF-8 is an
    empty form (werkzeug's parser fails silently on it)."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        return {}
    form: dict[str, list[str]] = {}
    for name, value in parse_query(text):
        values = form.get(name)
        if values is None:
            form[name] = [value]
        else:
            values.append(value)
    return form
