"""The concrete Fetcher: HTTPS GET (and POST) with limits, an address policy, and a small TTL cache.

Why not ``urllib.request.urlopen``: it resolves the host itself and follows redirects, so a check
of the resolved address made beforehand can be bypassed (DNS rebinding: the name resolves to a
public address for the check and to 127.0.0.1 for the connection; or a 302 to an internal URL).
We therefore parse URLs with ``urllib.parse``, resolve the host once, check *every* address, and
open the connection to the checked address with ``http.client`` (TLS still verifies the
certificate against the host name). Redirects are not followed: a 3xx is a failure.

Policy:
- ``https`` only; plain ``http`` only for hosts named in ``http_hosts`` (tests, local demos);
- the host must resolve only to globally routable addresses, unless it is named in
  ``private_hosts`` (loopback, private, link-local, CGNAT, reserved, multicast are refused);
- the response must be 200, at most ``max_bytes`` (checked against Content-Length and enforced
  while reading), within ``timeout`` seconds per socket operation and ``deadline`` overall;
- successful bodies are cached in memory for ``cache_ttl`` seconds of the injected clock.

The overall deadline uses ``time.monotonic``: it is an I/O guard, not a validity decision, so it
does not come from the injected Clock (which only drives the cache).
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from trustanchor.anchors.fetcher import FetchError
from trustanchor.clock import Clock

Resolver = Callable[[str, int], list[str]]
_CHUNK = 16384
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class HttpFetcherSettings:
    timeout: float = 5.0  # seconds per socket operation
    deadline: float = 10.0  # seconds for the whole request
    cache_ttl: int = 300  # seconds; 0 disables the cache
    cache_entries: int = 128
    http_hosts: frozenset[str] = field(default_factory=frozenset)  # plain http allowed
    private_hosts: frozenset[str] = field(default_factory=frozenset)  # non-global IPs allowed
    user_agent: str = "trustanchor-fetcher/1"


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (A and AAAA)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast only. IPv4-mapped/-compatible IPv6 is judged as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return is_public(mapped)
    return address.is_global and not address.is_multicast


class HttpFetcher:
    """Fetcher port over HTTPS. Thread-safe enough for its purpose: the cache is a plain dict
    and a lost race only costs one extra fetch."""

    def __init__(
        self,
        *,
        clock: Clock,
        settings: HttpFetcherSettings | None = None,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._clock = clock
        self._settings = settings or HttpFetcherSettings()
        self._resolver = resolver
        self._ssl_context = ssl_context  # built on first https fetch: loading CAs is slow
        self._cache: OrderedDict[tuple[str, str], tuple[int, bytes]] = OrderedDict()

    def _tls(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def get(self, url: str, *, accept: str, max_bytes: int) -> bytes:
        key = (url, accept)
        cached = self._cache.get(key)
        if cached is not None:
            expires_at, body = cached
            if self._clock.now() < expires_at and len(body) <= max_bytes:
                return body
            self._cache.pop(key, None)
        body = self._fetch(url, accept=accept, max_bytes=max_bytes)
        if self._settings.cache_ttl > 0:
            self._cache[key] = (self._clock.now() + self._settings.cache_ttl, body)
            while len(self._cache) > self._settings.cache_entries:
                self._cache.popitem(last=False)
        return body

    def post(
        self,
        url: str,
        *,
        body: bytes,
        content_type: str,
        accept: str,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """POST ``body`` (an OCSP request, a token or PAR request to an upstream provider) under
        the same address policy and limits as :meth:`get`; never cached. ``headers`` (e.g. a
        DPoP proof) are added to the request."""
        return self._fetch(
            url,
            accept=accept,
            max_bytes=max_bytes,
            body=body,
            content_type=content_type,
            extra_headers=headers,
        )

    def get_authorized(
        self, url: str, *, accept: str, max_bytes: int, headers: Mapping[str, str]
    ) -> bytes:
        """GET with request headers (an upstream provider's UserInfo with its access token);
        never cached, since the answer belongs to the credential sent."""
        return self._fetch(url, accept=accept, max_bytes=max_bytes, extra_headers=headers)

    def _fetch(
        self,
        url: str,
        *,
        accept: str,
        max_bytes: int,
        body: bytes | None = None,
        content_type: str | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> bytes:
        scheme, host, port, target = self._target(url)
        address = self._checked_address(host, port)
        settings = self._settings
        connection: http.client.HTTPConnection
        if scheme == "https":
            connection = _PinnedHTTPSConnection(host, port, address, settings.timeout, self._tls())
        else:
            connection = _PinnedHTTPConnection(host, port, address, settings.timeout)
        deadline = time.monotonic() + settings.deadline
        try:
            headers = {
                "Accept": accept,
                "User-Agent": settings.user_agent,
                "Accept-Encoding": "identity",
            }
            if body is not None:
                headers["Content-Type"] = content_type or "application/octet-stream"
            for name, value in (extra_headers or {}).items():
                if any(ch in name + value for ch in "\r\n\0"):
                    raise FetchError("invalid_header", name)
                headers[name] = value
            method = "GET" if body is None else "POST"
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
            # A POST may also be answered 201 (RFC 9126: a PAR endpoint's "201 Created"; H4b).
            if response.status != 200 and not (body is not None and response.status == 201):
                raise FetchError("http_status", f"{response.status} from {host}")
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise FetchError("too_large", f"Content-Length {length} > {max_bytes}")
            return _read_bounded(response, max_bytes, deadline)
        except FetchError:
            raise
        except TimeoutError as exc:
            raise FetchError("timeout", host) from exc
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError("network", f"{host}: {exc.__class__.__name__}") from exc
        finally:
            connection.close()

    def _target(self, url: str) -> tuple[str, str, int, str]:
        if not isinstance(url, str) or len(url) > 2048 or not url.isascii():
            raise FetchError("invalid_url", "not a short ASCII URL")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise FetchError("invalid_url", str(exc)) from exc
        if parts.scheme not in ("https", "http"):
            raise FetchError("refused_scheme", f"{parts.scheme or 'no'} scheme")
        host = (parts.hostname or "").lower()
        if not host or parts.username is not None or parts.password is not None:
            raise FetchError("invalid_url", "missing host or credentials in URL")
        if parts.scheme == "http" and host not in self._settings.http_hosts:
            raise FetchError("refused_scheme", f"plain http to {host}")
        default_port = 443 if parts.scheme == "https" else 80
        if any(ch in url for ch in " \r\n\t"):
            raise FetchError("invalid_url", "whitespace in URL")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return parts.scheme, host, port or default_port, target

    def _checked_address(self, host: str, port: int) -> str:
        try:
            literal: IPAddress | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [
                    ipaddress.ip_address(a.split("%", 1)[0]) for a in self._resolver(host, port)
                ]
            except (OSError, ValueError, UnicodeError) as exc:
                raise FetchError("dns", f"{host}: {exc.__class__.__name__}") from exc
        if not addresses:
            raise FetchError("dns", f"{host} has no address")
        if host not in self._settings.private_hosts:
            refused = [str(a) for a in addresses if not is_public(a)]
            if refused:
                raise FetchError("refused_address", f"{host} resolves to {refused[0]}")
        return str(addresses[0])


def _read_bounded(response: http.client.HTTPResponse, max_bytes: int, deadline: float) -> bytes:
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            raise FetchError("timeout", "response not complete before the deadline")
        chunk = response.read(min(_CHUNK, max_bytes + 1 - total))
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > max_bytes:
            raise FetchError("too_large", f"body exceeds {max_bytes} bytes")
        chunks.append(chunk)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Plain HTTP to an already checked address (Host header still names the host)."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an already checked address; the certificate is verified for the host name."""

    def __init__(
        self, host: str, port: int, address: str, timeout: float, context: ssl.SSLContext
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        try:
            self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise
