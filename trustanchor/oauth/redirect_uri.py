"""Redirect URIs: what may be registered, and exact matching of a requested one.

Matching is plain string equality with a registered value (RFC 9700 §4.1.3, FAPI 2.0): no
normalisation of case, percent-encoding, trailing slashes, dot-segments or query order. Anything a
normaliser would forgive is a difference an attacker could exploit (open redirectors, path
confusion), so the only safe rule is "byte-for-byte one of the registered strings".

Registration is where the strictness belongs: absolute ``https`` URIs without fragment or
wildcards; plain ``http`` only for loopback hosts (native apps in development, RFC 8252 §7.3) and
never in production.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

from trustanchor.domain.clients import Client
from trustanchor.oauth.errors import InvalidRequest

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
MAX_URI_LENGTH = 2000


def match_redirect_uri(client: Client, requested: object) -> str:
    """The registered redirect URI equal to ``requested``, else :class:`InvalidRequest`.

    The error is a plain 400: the caller must not redirect anywhere with it, because the URI that
    failed to match is, by definition, not one we may send the user agent to.
    """
    if requested is None:
        raise InvalidRequest("redirect_uri is required", reason="redirect_uri_missing")
    if not isinstance(requested, str):
        raise InvalidRequest("redirect_uri must be a single string", reason="redirect_uri_missing")
    for registered in client.redirect_uris:
        if requested == registered:
            return registered
    raise InvalidRequest(
        "redirect_uri does not match a registered redirect URI",
        log_detail=f"client {client.client_id}: unregistered redirect_uri",
        reason="redirect_uri_unregistered",
    )


def check_registered_uri(uri: object, *, production: bool) -> str:
    """``uri`` if it may be registered as a redirect URI, else ``ValueError(reason)``."""
    if not isinstance(uri, str) or not uri:
        raise ValueError("must be a non-empty string")
    if len(uri) > MAX_URI_LENGTH:
        raise ValueError(f"longer than {MAX_URI_LENGTH} characters")
    if not uri.isascii() or any(ch <= " " or ch == "\x7f" for ch in uri):
        raise ValueError("must be ASCII without spaces or control characters")
    if "#" in uri:
        raise ValueError("must not contain a fragment")
    if "*" in uri:
        raise ValueError("must not contain wildcards")
    if "\\" in uri:
        raise ValueError("must not contain backslashes")
    parts = urlsplit(uri)
    if parts.scheme not in ("https", "http") or not uri.startswith(parts.scheme + "://"):
        raise ValueError("must be an absolute https URI (scheme in lower case)")
    if "@" in parts.netloc:
        raise ValueError("must not contain user information")
    host = parts.hostname
    if not host:
        raise ValueError("must name a host")
    try:
        parts.port  # noqa: B018 - parsing the port validates it
    except ValueError as exc:
        raise ValueError("has an invalid port") from exc
    if parts.scheme == "http":
        if host not in LOOPBACK_HOSTS:
            raise ValueError("must use https (http is only for 127.0.0.1, [::1] or localhost)")
        if production:
            raise ValueError("http loopback redirect URIs are not allowed in production")
    for segment in parts.path.split("/"):
        if unquote(segment) in (".", ".."):
            raise ValueError("must not contain dot-segments")
    return uri


def is_safe_registered_uri(uri: object, *, production: bool) -> bool:
    """Predicate form of :func:`check_registered_uri` (for filters and assertions)."""
    try:
        check_registered_uri(uri, production=production)
    except ValueError:
        return False
    return True


def redirect_host(uri: str) -> str:
    """The host of a registered redirect URI, lower case (the default sector identifier)."""
    host = urlsplit(uri).hostname
    if not host:
        raise ValueError("redirect URI without host")
    return host.lower()
