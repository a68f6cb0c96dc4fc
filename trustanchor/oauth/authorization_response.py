"""Authorization responses (RFC 6749 §4.1.2) with ``iss`` (RFC 9207) on every one, success or
error. Only ever built for a redirect URI that was matched against the client's registration."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def redirect_with(redirect_uri: str, params: dict[str, str | None]) -> str:
    parts = urlsplit(redirect_uri)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query += [(k, v) for k, v in params.items() if v is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def success(redirect_uri: str, *, code: str, state: str | None, issuer: str) -> str:
    return redirect_with(redirect_uri, {"code": code, "state": state, "iss": issuer})


def error(
    redirect_uri: str, *, error: str, description: str | None, state: str | None, issuer: str
) -> str:
    return redirect_with(
        redirect_uri,
        {"error": error, "error_description": description, "state": state, "iss": issuer},
    )
