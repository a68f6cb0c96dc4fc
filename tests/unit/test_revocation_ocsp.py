"""OCSP revocation source of x509 anchors (trustanchor/anchors/ocsp.py).

The responder side is a small OCSP responder written here with pyca's ``OCSPResponseBuilder``
(independent of the code under test): it parses the request we POST and answers it, echoing the
nonce unless told otherwise. It answers through the InMemoryFetcher (which records every POST)
and once through a real local HTTP server and the real HttpFetcher. Everything but a fresh,
correctly signed ``good`` for our very CertID and nonce must fail closed."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID
from support.credentials import InMemoryFetcher
from support.jpki import Issued, TestPKI, leaf_key_usage, make_ca

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.http_fetcher import HttpFetcher, HttpFetcherSettings
from trustanchor.anchors.revocation import (
    OcspSettings,
    RevocationChecker,
    build_checker,
    parse_revocation_settings,
)
from trustanchor.clock import FixedClock
from trustanchor.randomness import SequenceRandomness

NOW = 1_800_000_000
RESPONDER = "https://ocsp.jpki.example/"


def _instant(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate(now=NOW, label="revocation-ocsp")


@pytest.fixture(scope="module")
def leaf(pki: TestPKI) -> Issued:
    return pki.leaf("authentication", label="ocsp-holder")


def delegate(
    pki: TestPKI,
    *,
    label: str = "ocsp-responder",
    issuer: Issued | None = None,
    eku: bool = True,
    not_after: int | None = None,
    key_bits: int = 2048,
) -> Issued:
    """A delegated responder certificate issued by the authentication CA (or ``issuer``)."""
    extras: list[tuple[x509.ExtensionType, bool]] = []
    if eku:
        extras.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False))
    extras.append((x509.OCSPNoCheck(), False))
    return pki.leaf(
        "authentication",
        label=label,
        issuer=issuer or pki.authentication_ca,
        policy_oid=None,
        key_usage=leaf_key_usage(non_repudiation=False),
        not_after=not_after,
        key_bits=key_bits,
        extra_extensions=extras,
    )


@dataclass
class Responder:
    """Answers an OCSP request for the certificate/issuer pair it is told about."""

    cert: Issued
    issuer: Issued
    status: ocsp.OCSPCertStatus = ocsp.OCSPCertStatus.GOOD
    signer: Issued | None = None  # default: the issuer itself
    include: tuple[Issued, ...] | None = None  # certificates carried (default: delegate's)
    by_key_hash: bool = True
    this_update: int = NOW - 60
    next_update: int | None = NOW + 3600
    nonce: bytes | str | None = "echo"  # "echo": the request's nonce; None: no nonce
    serial: int | None = None  # answer about another serial
    hash_alg: hashes.HashAlgorithm | None = None  # default: the request's
    unsuccessful: ocsp.OCSPResponseStatus | None = None
    seen: list[ocsp.OCSPRequest] = field(default_factory=list)

    def __call__(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        self.seen.append(request)
        if self.unsuccessful is not None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(self.unsuccessful).public_bytes(
                serialization.Encoding.DER
            )
        subject = self.cert.cert
        if self.serial is not None:
            subject = self.cert_with_serial(self.serial)
        signer = self.signer or self.issuer
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=subject,
            issuer=self.issuer.cert,
            algorithm=self.hash_alg or request.hash_algorithm,
            cert_status=self.status,
            this_update=_instant(self.this_update),
            next_update=_instant(self.next_update) if self.next_update is not None else None,
            revocation_time=_instant(NOW - 3600)
            if self.status == ocsp.OCSPCertStatus.REVOKED
            else None,
            revocation_reason=x509.ReasonFlags.key_compromise
            if self.status == ocsp.OCSPCertStatus.REVOKED
            else None,
        )
        encoding = (
            ocsp.OCSPResponderEncoding.HASH if self.by_key_hash else ocsp.OCSPResponderEncoding.NAME
        )
        builder = builder.responder_id(encoding, signer.cert)
        carried = (
            self.include
            if self.include is not None
            else ((signer,) if signer is not self.issuer else ())
        )
        if carried:
            builder = builder.certificates([c.cert for c in carried])
        nonce = request_nonce(request) if self.nonce == "echo" else self.nonce
        if isinstance(nonce, bytes):
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(signer.key, hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)

    def cert_with_serial(self, serial: int) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(self.cert.cert.subject)
            .issuer_name(self.issuer.cert.subject)
            .public_key(self.cert.cert.public_key())  # type: ignore[arg-type]
            .serial_number(serial)
            .not_valid_before(self.cert.cert.not_valid_before_utc)
            .not_valid_after(self.cert.cert.not_valid_after_utc)
            .sign(self.issuer.key, hashes.SHA256())
        )


def request_nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        return request.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


@dataclass
class ResponderFetcher(InMemoryFetcher):
    """The InMemoryFetcher (records POSTs) whose POST answers come from a live responder."""

    responder: Callable[[bytes], bytes] | None = None

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
        if self.responder is not None and url == RESPONDER:
            self.serve(url, self.responder(body))
        return super().post(
            url, body=body, content_type=content_type, accept=accept, max_bytes=max_bytes
        )


def checker(fetcher: Any, **extra: Any) -> RevocationChecker:
    settings = parse_revocation_settings({"source": "ocsp", "responder_url": RESPONDER, **extra})
    return build_checker(settings, fetcher=fetcher, randomness=SequenceRandomness("ocsp"))


def answered_by(responder: Responder, **extra: Any) -> tuple[RevocationChecker, ResponderFetcher]:
    fetcher = ResponderFetcher(responder=responder)
    return checker(fetcher, **extra), fetcher


def refused(
    check: RevocationChecker, leaf: Issued, *, at: int = NOW, reason: str = "revocation_unavailable"
) -> AnchorFailure:
    assert leaf.issuer is not None
    with pytest.raises(AnchorFailure) as caught:
        check.check(leaf.cert, leaf.issuer.cert, at=at)
    assert caught.value.reason == reason, caught.value
    return caught.value


def passes(check: RevocationChecker, leaf: Issued, *, at: int = NOW) -> None:
    assert leaf.issuer is not None
    check.check(leaf.cert, leaf.issuer.cert, at=at)


# -- the answer -------------------------------------------------------------------------------


def test_good_from_the_issuer_passes_and_the_request_is_what_a_responder_expects(
    pki: TestPKI, leaf: Issued
) -> None:
    responder = Responder(leaf, pki.authentication_ca)
    check, fetcher = answered_by(responder)
    passes(check, leaf)
    [(url, content_type, body)] = fetcher.posts
    assert (url, content_type) == (RESPONDER, "application/ocsp-request")
    request = ocsp.load_der_ocsp_request(body)
    assert request.serial_number == leaf.serial
    assert isinstance(request.hash_algorithm, hashes.SHA1)  # the RFC 5019 CertID
    nonce = request_nonce(request)
    assert nonce is not None and len(nonce) == 32
    assert fetcher.requests == [(RESPONDER, "application/ocsp-response", 65536)]


def test_every_check_sends_a_fresh_nonce(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca)
    check, _ = answered_by(responder)
    passes(check, leaf)
    passes(check, leaf)
    first, second = (request_nonce(r) for r in responder.seen)
    assert first != second


def test_a_responder_named_by_name_is_accepted(pki: TestPKI, leaf: Issued) -> None:
    passes(answered_by(Responder(leaf, pki.authentication_ca, by_key_hash=False))[0], leaf)


def test_sha256_cert_ids_when_the_anchor_says_so(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca)
    passes(answered_by(responder, cert_id_hash="sha256")[0], leaf)
    assert isinstance(responder.seen[0].hash_algorithm, hashes.SHA256)


def test_revoked_is_revoked(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, status=ocsp.OCSPCertStatus.REVOKED)
    refused(answered_by(responder)[0], leaf, reason="certificate_revoked")


def test_unknown_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, status=ocsp.OCSPCertStatus.UNKNOWN)
    failure = refused(answered_by(responder)[0], leaf)
    assert "unknown" in failure.detail


def test_an_answer_about_another_serial_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, serial=leaf.serial + 1)
    refused(answered_by(responder)[0], leaf)


def test_an_answer_with_another_cert_id_hash_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, hash_alg=hashes.SHA256())
    refused(answered_by(responder)[0], leaf)


# -- who signed it ----------------------------------------------------------------------------


def test_a_delegated_responder_with_the_ocsp_signing_eku_is_accepted(
    pki: TestPKI, leaf: Issued
) -> None:
    responder = Responder(leaf, pki.authentication_ca, signer=delegate(pki))
    passes(answered_by(responder)[0], leaf)


def test_a_delegated_responder_without_the_eku_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    signer = delegate(pki, label="ocsp-no-eku", eku=False)
    failure = refused(answered_by(Responder(leaf, pki.authentication_ca, signer=signer))[0], leaf)
    assert "OCSP-signing" in failure.detail


def test_a_responder_certificate_from_another_ca_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    other = TestPKI.generate(now=NOW, label="revocation-ocsp-other")
    signer = delegate(other, label="ocsp-other-ca")
    failure = refused(answered_by(Responder(leaf, pki.authentication_ca, signer=signer))[0], leaf)
    assert "not issued by" in failure.detail


def test_a_responder_certificate_from_the_sibling_ca_fails_closed(
    pki: TestPKI, leaf: Issued
) -> None:
    """Issued under the same root, but by the signature CA: it cannot speak for the
    authentication CA's certificates."""
    signer = delegate(pki, label="ocsp-sibling", issuer=pki.signature_ca)
    refused(answered_by(Responder(leaf, pki.authentication_ca, signer=signer))[0], leaf)


def test_an_expired_responder_certificate_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    signer = delegate(pki, label="ocsp-expired", not_after=NOW - 1)
    failure = refused(answered_by(Responder(leaf, pki.authentication_ca, signer=signer))[0], leaf)
    assert "not valid" in failure.detail


def test_a_responder_with_a_short_rsa_key_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    signer = delegate(pki, label="ocsp-rsa-1024", key_bits=1024)
    failure = refused(answered_by(Responder(leaf, pki.authentication_ca, signer=signer))[0], leaf)
    assert "2048" in failure.detail


def test_a_response_signed_with_another_key_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    """The responder id names the issuer (by name), the signature is someone else's."""
    impostor = make_ca(
        "ocsp impostor", now=NOW, subject=pki.authentication_ca.cert.subject, key_label="ocsp:x"
    )
    responder = Responder(
        leaf, pki.authentication_ca, signer=impostor, by_key_hash=False, include=()
    )
    failure = refused(answered_by(responder)[0], leaf)
    assert "signature" in failure.detail


def test_a_responder_carrying_no_certificate_of_its_own_fails_closed(
    pki: TestPKI, leaf: Issued
) -> None:
    responder = Responder(leaf, pki.authentication_ca, signer=delegate(pki), include=())
    refused(answered_by(responder)[0], leaf)


def test_configured_responder_certificates_pin_the_delegate(pki: TestPKI, leaf: Issued) -> None:
    pinned, other = delegate(pki), delegate(pki, label="ocsp-responder-2")
    responder = Responder(leaf, pki.authentication_ca, signer=other)
    refused(answered_by(responder, responder_certificates=[pinned.pem])[0], leaf)
    responder = Responder(leaf, pki.authentication_ca, signer=pinned, include=())
    passes(answered_by(responder, responder_certificates=[pinned.pem])[0], leaf)


def test_a_pinned_responder_still_needs_the_eku(pki: TestPKI, leaf: Issued) -> None:
    pinned = delegate(pki, label="ocsp-pinned-no-eku", eku=False)
    responder = Responder(leaf, pki.authentication_ca, signer=pinned, include=())
    refused(answered_by(responder, responder_certificates=[pinned.pem])[0], leaf)


# -- freshness --------------------------------------------------------------------------------


def test_a_stale_response_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, this_update=NOW - 7200, next_update=NOW - 1)
    failure = refused(answered_by(responder)[0], leaf)
    assert "stale" in failure.detail


def test_a_response_from_the_future_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, this_update=NOW + 61, next_update=NOW + 7200)
    refused(answered_by(responder)[0], leaf)
    responder = Responder(leaf, pki.authentication_ca, this_update=NOW + 59, next_update=NOW + 7200)
    passes(answered_by(responder)[0], leaf)  # within clock_skew (60)


def test_without_next_update_max_age_bounds_the_response(pki: TestPKI, leaf: Issued) -> None:
    fresh = Responder(leaf, pki.authentication_ca, this_update=NOW - 3599, next_update=None)
    passes(answered_by(fresh)[0], leaf)
    old = Responder(leaf, pki.authentication_ca, this_update=NOW - 3600, next_update=None)
    refused(answered_by(old)[0], leaf)
    passes(answered_by(old, max_age=7200)[0], leaf)


# -- nonce ------------------------------------------------------------------------------------


def test_a_nonce_mismatch_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, nonce=b"\x00" * 32)
    failure = refused(answered_by(responder)[0], leaf)
    assert "nonce mismatch" in failure.detail


def test_a_missing_nonce_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, nonce=None)
    failure = refused(answered_by(responder)[0], leaf)
    assert "nonce not echoed" in failure.detail


def test_without_nonce_none_is_sent_or_required(pki: TestPKI, leaf: Issued) -> None:
    responder = Responder(leaf, pki.authentication_ca, nonce=None)
    fetcher = ResponderFetcher(responder=responder)
    settings = parse_revocation_settings(
        {"source": "ocsp", "responder_url": RESPONDER, "nonce": False}
    )
    passes(build_checker(settings, fetcher=fetcher, randomness=None), leaf)
    assert request_nonce(responder.seen[0]) is None


# -- malformed, unsuccessful, unreachable -----------------------------------------------------


@pytest.mark.parametrize(
    "body", [b"", b"garbage", b"\x30\x03\x0a\x01\x00"], ids=["empty", "text", "truncated"]
)
def test_a_malformed_response_fails_closed(leaf: Issued, body: bytes) -> None:
    fetcher = ResponderFetcher()
    fetcher.serve(RESPONDER, body)
    failure = refused(checker(fetcher), leaf)
    assert "malformed" in failure.detail


@pytest.mark.parametrize(
    "status",
    [
        ocsp.OCSPResponseStatus.MALFORMED_REQUEST,
        ocsp.OCSPResponseStatus.INTERNAL_ERROR,
        ocsp.OCSPResponseStatus.TRY_LATER,
        ocsp.OCSPResponseStatus.SIG_REQUIRED,
        ocsp.OCSPResponseStatus.UNAUTHORIZED,
    ],
)
def test_an_unsuccessful_status_fails_closed(
    pki: TestPKI, leaf: Issued, status: ocsp.OCSPResponseStatus
) -> None:
    responder = Responder(leaf, pki.authentication_ca, unsuccessful=status)
    failure = refused(answered_by(responder)[0], leaf)
    assert "response status" in failure.detail


def test_an_unreachable_responder_fails_closed(leaf: Issued) -> None:
    failure = refused(checker(ResponderFetcher()), leaf)
    assert "unreachable" in failure.detail


def test_an_oversize_response_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    check, _ = answered_by(Responder(leaf, pki.authentication_ca), max_response_bytes=200)
    refused(check, leaf)


def test_a_certificate_of_another_issuer_is_refused_without_asking(
    pki: TestPKI, leaf: Issued
) -> None:
    check, fetcher = answered_by(Responder(leaf, pki.authentication_ca))
    with pytest.raises(AnchorFailure) as caught:
        check.check(leaf.cert, pki.signature_ca.cert, at=NOW)
    assert caught.value.reason == "revocation_unavailable"
    assert fetcher.posts == []


# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults(pki: TestPKI) -> None:
    settings = parse_revocation_settings({"source": "ocsp", "responder_url": RESPONDER})
    assert settings == OcspSettings(responder_url=RESPONDER)
    assert (settings.nonce, settings.max_age, settings.cert_id_hash) == (True, 3600, "sha1")


def test_a_nonce_needs_randomness() -> None:
    settings = parse_revocation_settings({"source": "ocsp", "responder_url": RESPONDER})
    with pytest.raises(ValueError, match=r"^nonce: "):
        build_checker(settings, fetcher=InMemoryFetcher(), randomness=None)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"source": "ocsp"}, "responder_url"),
        ({"source": "ocsp", "responder_url": "ldap://x"}, "responder_url"),
        ({"source": "ocsp", "responder_url": RESPONDER, "nonce": "yes"}, "nonce"),
        ({"source": "ocsp", "responder_url": RESPONDER, "max_age": 0}, "max_age"),
        ({"source": "ocsp", "responder_url": RESPONDER, "cert_id_hash": "md5"}, "cert_id_hash"),
        ({"source": "ocsp", "responder_url": RESPONDER, "clock_skew": 3600}, "clock_skew"),
        (
            {"source": "ocsp", "responder_url": RESPONDER, "responder_certificates": ["x"]},
            "responder_certificates",
        ),
        ({"source": "ocsp", "responder_url": RESPONDER, "crl_urls": []}, "crl_urls"),
    ],
)
def test_settings_refusals_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_revocation_settings(raw)
    assert str(caught.value).startswith(f"{field}: ")


# -- through a real HTTP server and the real HttpFetcher --------------------------------------


class _OcspHandler(BaseHTTPRequestHandler):
    responder: ClassVar[Callable[[bytes], bytes] | None] = None
    hits: ClassVar[list[tuple[str, str | None, str | None]]] = []

    def do_POST(self) -> None:
        type(self).hits.append(
            (self.path, self.headers.get("Content-Type"), self.headers.get("Accept"))
        )
        length = int(self.headers.get("Content-Length") or 0)
        request = self.rfile.read(length)
        responder = type(self).responder
        assert responder is not None
        body = responder(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ocsp_server() -> Iterator[str]:
    _OcspHandler.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _OcspHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/ocsp"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_over_http_good_then_revoked(ocsp_server: str, pki: TestPKI, leaf: Issued) -> None:
    local = HttpFetcherSettings(
        http_hosts=frozenset({"127.0.0.1"}), private_hosts=frozenset({"127.0.0.1"})
    )
    fetcher = HttpFetcher(clock=FixedClock(NOW), settings=local)
    settings = parse_revocation_settings({"source": "ocsp", "responder_url": ocsp_server})
    check = build_checker(settings, fetcher=fetcher, randomness=SequenceRandomness("http"))
    responder = Responder(leaf, pki.authentication_ca, signer=delegate(pki))
    _OcspHandler.responder = responder
    passes(check, leaf)
    responder.status = ocsp.OCSPCertStatus.REVOKED
    refused(check, leaf, reason="certificate_revoked")  # POSTs are never cached
    assert (
        _OcspHandler.hits
        == [("/ocsp", "application/ocsp-request", "application/ocsp-response")] * 2
    )
