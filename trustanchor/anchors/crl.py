"""CRL revocation source (being written): fails closed until implemented."""

from __future__ import annotations

from cryptography import x509

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.fetcher import Fetcher
from trustanchor.anchors.revocation import CrlSettings


class CrlChecker:
    def __init__(self, settings: CrlSettings, *, fetcher: Fetcher) -> None:
        self._settings = settings
        self._fetcher = fetcher

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, *, at: int) -> None:
        raise AnchorFailure("revocation_unavailable", "CRL checking not implemented yet")
