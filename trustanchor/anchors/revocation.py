"""Revocation of an ``x509`` anchor's certificates: one port, several sources, all fail closed.

pyca/cryptography's path validation checks no revocation at all, so this is our own code. A
certificate login asks the anchor's :class:`RevocationChecker` about the leaf (with the
certificate that issued it, from the validated chain) at the login instant. The checker returns
only when it *knows* the certificate is not revoked at that instant; otherwise it raises
``AnchorFailure("certificate_revoked", ...)`` or ``AnchorFailure("revocation_unavailable", ...)``
(stale, badly signed, out of scope, unreachable, oversize, garbage, unknown: anything unclear).

Sources, chosen per anchor by ``revocation.source`` in the anchor's settings:

``crl`` (trustanchor/anchors/crl.py)
    Certificate Revocation Lists fetched through the Fetcher from the configured URLs only (never
    from a certificate's CRL Distribution Points or AIA). Stored form::

        {"source": "crl", "crl_urls": ["https://ca.example/auth.crl"],
         "max_crl_bytes": 1048576, "refresh_before": 300, "clock_skew": 60}

    ``crl_urls`` (required, 1..16 http(s) URLs, distinct): every URL is fetched and its CRL
    matched to the certificate's issuer by issuer name and signature; ``max_crl_bytes`` (default
    1048576, at most 64 MiB) bounds each download; ``refresh_before`` (default 300 seconds, at
    most 86400) is how long before a CRL's ``nextUpdate`` we start asking for its successor;
    keep it at least the HttpFetcher's ``cache_ttl`` (also 300 by default) and below the CRLs'
    validity period (crl.py explains why). ``clock_skew`` (default 60, at most 300) is how far
    in the future a CRL's ``thisUpdate`` may be: a CA signs a CRL "now" by its own clock, which
    may run a little ahead of ours, and a CRL fetched during a login may have been made in a later
    second than the login's instant. ``nextUpdate`` gets no such tolerance (fail closed).

``ocsp`` (trustanchor/anchors/ocsp.py)
    An OCSP responder (RFC 6960), asked by POST for every check. Stored form::

        {"source": "ocsp", "responder_url": "https://ocsp.ca.example", "nonce": true,
         "max_age": 3600, "cert_id_hash": "sha1", "clock_skew": 60,
         "max_response_bytes": 65536, "responder_certificates": ["-----BEGIN CERTIFICATE..."]}

    ``responder_url`` (required, http(s)); ``nonce`` (default true: send an RFC 8954 nonce of
    32 random bytes and require it echoed; set false only for responders that serve pre-signed
    responses); ``max_age`` (default 3600 seconds: how long after ``thisUpdate`` a response that
    has no ``nextUpdate`` is accepted); ``cert_id_hash`` (``sha1`` default, or ``sha256``: the
    hash naming the issuer in the CertID — an identifier, not a signature, see ocsp.py);
    ``clock_skew`` (default 60, at most 300: how far in the future ``thisUpdate`` may be);
    ``max_response_bytes`` (default 65536); ``responder_certificates`` (optional list of PEM
    certificates: when given, a delegated responder must be one of these, and they are also
    considered when a response carries no certificate; each is still checked to be issued by
    the certificate's issuer with the OCSP-signing EKU and valid at the instant).

Every other field, or another ``source``, is refused with ``ValueError("field: message")``.

A platform operator's API (the way real JPKI revocation data reaches approved verifiers and
platform operators) plugs into the same port: a third source, e.g. ``{"source": "platform",
"endpoint": "https://...", "jwks": {...}}``, whose checker sends the issuer name and serial of
the certificate through ``Fetcher.post`` (authenticated with ``headers=``), verifies the
operator's *signed* answer with the configured keys, checks that the answer names that very
issuer and serial, its freshness against ``at`` and (with a nonce) its binding to our request,
and maps it to return / ``certificate_revoked`` / ``revocation_unavailable`` exactly as the two
implemented sources do. It is not implemented; ``source: platform`` is refused today.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from cryptography import x509

from trustanchor.anchors.fetcher import Fetcher
from trustanchor.randomness import Randomness

REASONS: dict[str, str] = {
    "certificate_revoked": "Your certificate has been revoked.",
    "revocation_unavailable": "We could not check whether your certificate is still valid.",
}

DEFAULT_MAX_CRL_BYTES = 1048576
MAX_MAX_CRL_BYTES = 64 * 1024 * 1024
DEFAULT_REFRESH_BEFORE = 300
MAX_REFRESH_BEFORE = 86400
MAX_CRL_URLS = 16
DEFAULT_OCSP_MAX_AGE = 3600
DEFAULT_OCSP_CLOCK_SKEW = 60
MAX_OCSP_CLOCK_SKEW = 300
DEFAULT_CRL_CLOCK_SKEW = 60
MAX_CRL_CLOCK_SKEW = 300
DEFAULT_MAX_OCSP_BYTES = 65536
MAX_MAX_OCSP_BYTES = 1048576
CertIdHash = Literal["sha1", "sha256"]
CERT_ID_HASHES: tuple[CertIdHash, ...] = ("sha1", "sha256")


class RevocationChecker(Protocol):
    def check(self, certificate: x509.Certificate, issuer: x509.Certificate, *, at: int) -> None:
        """Return only if ``certificate`` (issued by ``issuer``) is known not revoked at ``at``;
        raise AnchorFailure ``certificate_revoked`` or ``revocation_unavailable`` otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class CrlSettings:
    crl_urls: tuple[str, ...]
    max_crl_bytes: int = DEFAULT_MAX_CRL_BYTES
    refresh_before: int = DEFAULT_REFRESH_BEFORE
    clock_skew: int = DEFAULT_CRL_CLOCK_SKEW
    source: Literal["crl"] = "crl"


@dataclass(frozen=True, slots=True)
class OcspSettings:
    responder_url: str
    nonce: bool = True
    max_age: int = DEFAULT_OCSP_MAX_AGE
    cert_id_hash: CertIdHash = "sha1"
    clock_skew: int = DEFAULT_OCSP_CLOCK_SKEW
    max_response_bytes: int = DEFAULT_MAX_OCSP_BYTES
    responder_certificates: tuple[x509.Certificate, ...] = ()
    source: Literal["ocsp"] = "ocsp"


RevocationSettings = CrlSettings | OcspSettings

_CRL_FIELDS = frozenset({"source", "crl_urls", "max_crl_bytes", "refresh_before", "clock_skew"})
_OCSP_FIELDS = frozenset(
    {
        "source",
        "responder_url",
        "nonce",
        "max_age",
        "cert_id_hash",
        "clock_skew",
        "max_response_bytes",
        "responder_certificates",
    }
)


def parse_revocation_settings(raw: Mapping[str, Any]) -> RevocationSettings:
    """Validate the stored form (see the module docstring); ValueError names the field."""
    if not isinstance(raw, Mapping):
        raise ValueError("revocation: must be a mapping")
    source = raw.get("source")
    if source == "crl":
        _refuse_unknown(raw, _CRL_FIELDS, "crl")
        return _crl_settings(raw)
    if source == "ocsp":
        _refuse_unknown(raw, _OCSP_FIELDS, "ocsp")
        return _ocsp_settings(raw)
    raise ValueError("source: must be crl or ocsp")


def build_checker(
    settings: RevocationSettings, *, fetcher: Fetcher, randomness: Randomness | None
) -> RevocationChecker:
    """The checker for one anchor. OCSP with ``nonce`` needs ``randomness``."""
    if isinstance(settings, CrlSettings):
        from trustanchor.anchors.crl import CrlChecker

        return CrlChecker(settings, fetcher=fetcher)
    from trustanchor.anchors.ocsp import OcspChecker

    if settings.nonce and randomness is None:
        raise ValueError("nonce: an OCSP nonce needs injected randomness")
    return OcspChecker(settings, fetcher=fetcher, randomness=randomness)


def _refuse_unknown(raw: Mapping[str, Any], known: frozenset[str], source: str) -> None:
    unknown = sorted(str(name) for name in set(raw) - known)
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown setting for revocation source {source}")


def _crl_settings(raw: Mapping[str, Any]) -> CrlSettings:
    urls = raw.get("crl_urls")
    if not isinstance(urls, list | tuple) or not urls:
        raise ValueError("crl_urls: must be a non-empty list of URLs")
    if len(urls) > MAX_CRL_URLS:
        raise ValueError(f"crl_urls: at most {MAX_CRL_URLS} URLs")
    for url in urls:
        _url(url, "crl_urls")
    if len(set(urls)) != len(urls):
        raise ValueError("crl_urls: URLs must be distinct")
    return CrlSettings(
        crl_urls=tuple(urls),
        max_crl_bytes=_int(raw, "max_crl_bytes", DEFAULT_MAX_CRL_BYTES, 1, MAX_MAX_CRL_BYTES),
        refresh_before=_int(raw, "refresh_before", DEFAULT_REFRESH_BEFORE, 0, MAX_REFRESH_BEFORE),
        clock_skew=_int(raw, "clock_skew", DEFAULT_CRL_CLOCK_SKEW, 0, MAX_CRL_CLOCK_SKEW),
    )


def _ocsp_settings(raw: Mapping[str, Any]) -> OcspSettings:
    nonce = raw.get("nonce", True)
    if not isinstance(nonce, bool):
        raise ValueError("nonce: must be true or false")
    cert_id_hash = raw.get("cert_id_hash", "sha1")
    if cert_id_hash not in CERT_ID_HASHES:
        raise ValueError("cert_id_hash: must be sha1 or sha256")
    return OcspSettings(
        responder_url=_url(raw.get("responder_url"), "responder_url"),
        nonce=nonce,
        max_age=_int(raw, "max_age", DEFAULT_OCSP_MAX_AGE, 1, 7 * 86400),
        cert_id_hash=cert_id_hash,
        clock_skew=_int(raw, "clock_skew", DEFAULT_OCSP_CLOCK_SKEW, 0, MAX_OCSP_CLOCK_SKEW),
        max_response_bytes=_int(
            raw, "max_response_bytes", DEFAULT_MAX_OCSP_BYTES, 1, MAX_MAX_OCSP_BYTES
        ),
        responder_certificates=_certificates(raw.get("responder_certificates", [])),
    )


def _url(value: Any, name: str) -> str:
    if (
        not isinstance(value, str)
        or not value.startswith(("https://", "http://"))
        or len(value) > 2048
        or not value.isascii()
        or any(ch in value for ch in " \r\n\t")
    ):
        raise ValueError(f"{name}: must be http(s) URLs of at most 2048 ASCII characters")
    return value


def _int(raw: Mapping[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name}: must be an integer from {low} to {high}")
    return value


def _certificates(value: Any) -> tuple[x509.Certificate, ...]:
    if not isinstance(value, list | tuple):
        raise ValueError("responder_certificates: must be a list of PEM certificates")
    certificates = []
    for index, pem in enumerate(value):
        if not isinstance(pem, str) or "-----BEGIN CERTIFICATE-----" not in pem:
            raise ValueError(f"responder_certificates: entry {index} is not a PEM certificate")
        try:
            certificates.append(x509.load_pem_x509_certificate(pem.encode("ascii")))
        except (ValueError, UnicodeError) as exc:
            raise ValueError(f"responder_certificates: entry {index} does not parse") from exc
    return tuple(certificates)
