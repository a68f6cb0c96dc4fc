"""OCSP revocation source (being written): fails closed until implemented."""

from __future__ import annotations

from cryptography import x509

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.fetcher import Fetcher
from trustanchor.anchors.revocation import OcspSettings
from trustanchor.randomness import Randomness


class OcspChecker:
    def __init__(
        self, settings: OcspSettings, *, fetcher: Fetcher, randomness: Randomness | None
    ) -> None:
        self._settings = settings
        self._fetcher = fetcher
        self._randomness = randomness

    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, *, at: int) -> None:
        raise AnchorFailure("revocation_unavailable", "OCSP checking not implemented yet")
