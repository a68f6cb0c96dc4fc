"""The one place anchor material (status lists, JWKS, CRLs, OCSP, upstream providers) is fetched
from the network: a port with limits. Concrete fetchers refuse private/loopback targets unless
configured to allow them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class FetchError(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}" if detail else reason)


class Fetcher(Protocol):
    def get(self, url: str, *, accept: str, max_bytes: int) -> bytes:
        """GET ``url``; raise FetchError on refusal, timeout, non-200, or size overrun."""
        ...

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
        """POST ``body`` to ``url`` (OCSP, an upstream provider's PAR and token endpoints) with the
        same limits; never cached. Raises FetchError as :meth:`get` does."""
        ...

    def get_authorized(
        self, url: str, *, accept: str, max_bytes: int, headers: Mapping[str, str]
    ) -> bytes:
        """GET with request headers (an access token for an upstream UserInfo); never cached."""
        ...
