"""Authorization request URLs that hand a wallet our request *by reference*.

OpenID4VP 1.0 sections 5 and 8 (Wallet Invocation): the URL carries only ``client_id`` and
``request_uri`` (plus ``request_uri_method`` when the wallet may POST its metadata and a
``wallet_nonce``). Everything else lives in the signed Request Object fetched from ``request_uri``,
so the QR code stays small and nothing that matters can be altered in transit: a wallet uses only
the parameters inside the Request Object, and its ``client_id`` must equal the one in this URL.

The wallet is invoked through its authorization endpoint, which is configurable because
ecosystems differ: the custom scheme ``openid4vp://`` (the specification's static configuration),
``haip-vp://`` (the High Assurance Interoperability Profile), or an ``https`` universal/app link of
a particular wallet. The same-device link and the cross-device QR code may use different
endpoints, hence :func:`wallet_links`.

Values are percent-encoded with nothing left "safe" (``:`` and ``/`` inside ``request_uri`` are
encoded, as in the specification's examples), so the result round-trips through any URL parser.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

REQUEST_URI_METHODS = frozenset({"get", "post"})
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# Schemes that must never be used to "invoke a wallet": they run code, read local files, or
# are not TLS-protected.
_FORBIDDEN_SCHEMES = frozenset(
    {"about", "blob", "data", "file", "ftp", "http", "javascript", "vbscript", "ws", "wss"}
)
_MAX_URL = 2048
_MAX_CLIENT_ID = 512


class LinkError(ValueError):
    """A URL or parameter cannot be used in a wallet invocation. ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


@dataclass(frozen=True, slots=True)
class WalletLinks:
    """What the wallet page shows: a link to tap on the phone, and the text of the QR code."""

    same_device: str
    qr_content: str


@dataclass(frozen=True, slots=True)
class WalletRequestParams:
    client_id: str
    request_uri: str
    request_uri_method: str | None


def wallet_request_url(
    scheme_or_base: str,
    *,
    client_id: str,
    request_uri: str,
    request_uri_method: str | None = None,
    allow_http_loopback: bool = False,
) -> str:
    """``<wallet endpoint>?client_id=…&request_uri=…[&request_uri_method=…]``.

    ``scheme_or_base`` is ``openid4vp://`` (or ``openid4vp:``), another custom scheme, or an
    ``https`` URL without query or fragment. ``request_uri`` must be ``https``; plain ``http`` on a
    loopback host only with ``allow_http_loopback`` (local demos).
    """
    base = _wallet_endpoint(scheme_or_base, allow_http_loopback=allow_http_loopback)
    check_client_id(client_id)
    check_https_url(request_uri, what="request_uri", allow_http_loopback=allow_http_loopback)
    params = [("client_id", client_id), ("request_uri", request_uri)]
    if request_uri_method is not None:
        if request_uri_method not in REQUEST_URI_METHODS:
            raise LinkError("invalid_request_uri_method", "request_uri_method is 'get' or 'post'")
        params.append(("request_uri_method", request_uri_method))
    url = base + "?" + urlencode(params, quote_via=quote, safe="")
    if len(url) > _MAX_URL:
        raise LinkError("too_long", "the wallet URL exceeds 2048 characters")
    return url


def wallet_links(
    *,
    same_device_base: str,
    qr_base: str,
    client_id: str,
    request_uri: str,
    request_uri_method: str | None = None,
    allow_http_loopback: bool = False,
) -> WalletLinks:
    """Both invocation URLs for one wallet transaction (same ``request_uri``)."""
    common: dict[str, Any] = {
        "client_id": client_id,
        "request_uri": request_uri,
        "request_uri_method": request_uri_method,
        "allow_http_loopback": allow_http_loopback,
    }
    return WalletLinks(
        same_device=wallet_request_url(same_device_base, **common),
        qr_content=wallet_request_url(qr_base, **common),
    )


def parse_wallet_request_url(url: str, *, allow_http_loopback: bool = False) -> WalletRequestParams:
    """The wallet side (demo wallet): read ``client_id``/``request_uri`` back, strictly.

    Each parameter at most once; inline request parameters (``request``, ``dcql_query`` …) are
    ignored, as a wallet must use only the Request Object when ``request_uri`` is present.
    """
    if not isinstance(url, str) or len(url) > _MAX_URL:
        raise LinkError("malformed", "not a wallet URL")
    query = urlsplit(url).query
    try:
        params = parse_qs(
            query, keep_blank_values=True, strict_parsing=bool(query), max_num_fields=32
        )
    except ValueError as exc:
        raise LinkError("malformed", "query string does not parse") from exc
    for name in ("client_id", "request_uri", "request_uri_method"):
        if len(params.get(name, [])) > 1:
            raise LinkError("repeated_parameter", f"{name} appears more than once")
    client_id = params.get("client_id", [""])[0]
    request_uri = params.get("request_uri", [""])[0]
    method = params.get("request_uri_method", [None])[0]
    check_client_id(client_id)
    check_https_url(request_uri, what="request_uri", allow_http_loopback=allow_http_loopback)
    if method is not None and method not in REQUEST_URI_METHODS:
        raise LinkError("invalid_request_uri_method", "request_uri_method is 'get' or 'post'")
    return WalletRequestParams(client_id, request_uri, method)


def check_client_id(client_id: Any) -> str:
    """A Client Identifier we can put in a URL and a JWT: printable ASCII, no spaces."""
    if (
        not isinstance(client_id, str)
        or not 0 < len(client_id) <= _MAX_CLIENT_ID
        or not all("!" <= ch <= "~" for ch in client_id)
    ):
        raise LinkError("invalid_client_id", "client_id must be 1-512 printable ASCII characters")
    return client_id


def check_https_url(value: Any, *, what: str, allow_http_loopback: bool = False) -> str:
    """An absolute ``https`` URL with a host, no user info and no fragment.

    ``http`` is accepted only for ``localhost``/loopback addresses and only when asked for.
    """
    if not isinstance(value, str) or not value or len(value) > _MAX_URL:
        raise LinkError("invalid_url", f"{what} must be a URL of at most {_MAX_URL} characters")
    if not all("!" <= ch <= "~" for ch in value):
        raise LinkError("invalid_url", f"{what} must be printable ASCII without spaces")
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError as exc:
        raise LinkError("invalid_url", f"{what} does not parse") from exc
    if not host or "@" in parts.netloc or parts.fragment or "#" in value:
        raise LinkError("invalid_url", f"{what} needs a host, and no user info or fragment")
    if parts.scheme == "https":
        return value
    if parts.scheme == "http" and allow_http_loopback and _is_loopback(host):
        return value
    raise LinkError("insecure_url", f"{what} must use https")


def _wallet_endpoint(value: Any, *, allow_http_loopback: bool) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_URL:
        raise LinkError("invalid_wallet_endpoint", "wallet endpoint must be a non-empty string")
    scheme, sep, rest = value.partition(":")
    if not sep or not _SCHEME.fullmatch(scheme):
        raise LinkError("invalid_wallet_endpoint", "wallet endpoint needs a URI scheme")
    lowered = scheme.lower()
    if lowered in ("https", "http"):
        check_https_url(value, what="wallet endpoint", allow_http_loopback=allow_http_loopback)
        if "?" in value:
            raise LinkError("invalid_wallet_endpoint", "wallet endpoint must not carry a query")
        return value
    if lowered in _FORBIDDEN_SCHEMES:
        raise LinkError("invalid_wallet_endpoint", f"scheme {scheme!r} cannot invoke a wallet")
    if not all("!" <= ch <= "~" for ch in rest) or "?" in rest or "#" in rest:
        raise LinkError("invalid_wallet_endpoint", "wallet endpoint must not carry a query")
    # "openid4vp:" (the specification's authorization_endpoint) and "openid4vp://" are one thing.
    return f"{scheme}://" if rest in ("", "//") else value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


__all__ = [
    "REQUEST_URI_METHODS",
    "LinkError",
    "WalletLinks",
    "WalletRequestParams",
    "check_client_id",
    "check_https_url",
    "parse_wallet_request_url",
    "wallet_links",
    "wallet_request_url",
]
