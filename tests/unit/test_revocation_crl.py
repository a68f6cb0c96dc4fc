"""CRL revocation source of x509 anchors (trustanchor/anchors/crl.py) and the revocation settings.

Real CRLs made with pyca's builders by the test JPKI (tests/support/jpki.py), served through the
InMemoryFetcher (which records every request) and, at the end, by a real local HTTP server through
the real HttpFetcher with its own TTL cache. Every refusal must be ``revocation_unavailable`` (or
``certificate_revoked``): the checker never answers "fine" without a fresh, signed, in-scope CRL
of the certificate's issuer."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from support.credentials import InMemoryFetcher
from support.jpki import Issued, TestPKI, make_ca, rsa_key

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.http_fetcher import HttpFetcher, HttpFetcherSettings
from trustanchor.anchors.revocation import (
    REASONS,
    CrlSettings,
    RevocationChecker,
    build_checker,
    parse_revocation_settings,
)
from trustanchor.clock import FixedClock

NOW = 1_800_000_000
URL = "https://crl.jpki.example/authentication.crl"
SIGNATURE_URL = "https://crl.jpki.example/signature.crl"


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate(now=NOW, label="revocation-crl")


@pytest.fixture(scope="module")
def leaf(pki: TestPKI) -> Issued:
    return pki.leaf("authentication", label="crl-holder")


def checker(fetcher: Any, *, urls: tuple[str, ...] = (URL,), **extra: Any) -> RevocationChecker:
    settings = parse_revocation_settings({"source": "crl", "crl_urls": list(urls), **extra})
    return build_checker(settings, fetcher=fetcher, randomness=None)


def refused(
    check: RevocationChecker, leaf: Issued, *, at: int = NOW, reason: str = "revocation_unavailable"
) -> AnchorFailure:
    assert leaf.issuer is not None
    with pytest.raises(AnchorFailure) as caught:
        check.check(leaf.cert, leaf.issuer.cert, at=at)
    assert caught.value.reason == reason, caught.value
    assert reason in REASONS
    return caught.value


def passes(check: RevocationChecker, leaf: Issued, *, at: int = NOW) -> None:
    assert leaf.issuer is not None
    check.check(leaf.cert, leaf.issuer.cert, at=at)


def serving(*pairs: tuple[str, bytes]) -> InMemoryFetcher:
    fetcher = InMemoryFetcher()
    for url, body in pairs:
        fetcher.serve(url, body)
    return fetcher


# -- the answer -------------------------------------------------------------------------------


def test_a_certificate_not_on_a_fresh_signed_crl_passes(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, revoked=[leaf.serial + 1, leaf.serial + 2])
    fetcher = serving((URL, crl))
    passes(checker(fetcher), leaf)
    assert fetcher.requests == [(URL, "application/pkix-crl", 1048576)]


def test_a_serial_on_the_crl_is_revoked(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, revoked=[leaf.serial + 1, leaf.serial])
    failure = refused(checker(serving((URL, crl))), leaf, reason="certificate_revoked")
    assert str(leaf.serial) not in failure.detail  # no certificate identifiers in the log


def test_a_certificate_on_hold_is_revoked(pki: TestPKI, leaf: Issued) -> None:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.authentication_ca.cert.subject)
        .last_update(_instant(NOW - 60))
        .next_update(_instant(NOW + 3600))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(leaf.serial)
            .revocation_date(_instant(NOW - 60))
            .add_extension(x509.CRLReason(x509.ReasonFlags.certificate_hold), critical=False)
            .build()
        )
    )
    crl = builder.sign(pki.authentication_ca.key, hashes.SHA256())
    der = crl.public_bytes(serialization.Encoding.DER)
    refused(checker(serving((URL, der))), leaf, reason="certificate_revoked")


def test_a_pem_crl_is_read_as_well(pki: TestPKI, leaf: Issued) -> None:
    der = pki.crl(pki.authentication_ca, revoked=[leaf.serial])
    pem = x509.load_der_x509_crl(der).public_bytes(serialization.Encoding.PEM)
    refused(checker(serving((URL, pem))), leaf, reason="certificate_revoked")


def test_each_configured_url_is_matched_to_its_issuer_by_name(pki: TestPKI, leaf: Issued) -> None:
    signature_leaf = pki.leaf("signature", label="crl-holder")
    fetcher = serving(
        (SIGNATURE_URL, pki.crl(pki.signature_ca, revoked=[leaf.serial, signature_leaf.serial])),
        (URL, pki.crl(pki.authentication_ca)),
    )
    check = checker(fetcher, urls=(SIGNATURE_URL, URL))
    passes(check, leaf)  # its serial is on the *other* issuer's CRL only
    refused(check, signature_leaf, reason="certificate_revoked")
    assert sorted(url for url, _, _ in fetcher.requests) == [URL, SIGNATURE_URL]


def test_only_configured_urls_are_fetched_never_the_certificates_distribution_point(
    pki: TestPKI,
) -> None:
    pointer = x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier("https://attacker.example/empty.crl")],
                None,
                None,
                None,
            )
        ]
    )
    leaf = pki.leaf("authentication", label="crl-dp", extra_extensions=[(pointer, False)])
    fetcher = serving(
        ("https://attacker.example/empty.crl", pki.crl(pki.authentication_ca)),
    )
    refused(checker(fetcher), leaf)  # URL unreachable; the certificate's pointer is not used
    assert [url for url, _, _ in fetcher.requests] == [URL]


# -- fail closed: freshness -------------------------------------------------------------------


def test_a_stale_crl_past_next_update_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, this_update=NOW - 86400, next_update=NOW - 1)
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "stale" in failure.detail


def test_a_crl_whose_next_update_is_the_instant_is_already_stale(
    pki: TestPKI, leaf: Issued
) -> None:
    crl = pki.crl(pki.authentication_ca, this_update=NOW - 86400, next_update=NOW)
    refused(checker(serving((URL, crl))), leaf)


def test_a_crl_not_yet_valid_beyond_the_clock_skew_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, this_update=NOW + 61, next_update=NOW + 86400)
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "not yet valid" in failure.detail


def test_a_crl_made_a_moment_after_the_login_instant_is_used(pki: TestPKI, leaf: Issued) -> None:
    """A CA signs its CRL "now" by its clock; fetched during a login, it may carry a later second
    than the login's instant (the demo met this at a second boundary): within ``clock_skew``
    (default 60 s) it is current."""
    crl = pki.crl(pki.authentication_ca, this_update=NOW + 1, next_update=NOW + 86400)
    checker(serving((URL, crl))).check(leaf.cert, pki.authentication_ca.cert, at=NOW)


def test_a_crl_without_next_update_is_refused(pki: TestPKI, leaf: Issued) -> None:
    crl = _without_next_update(pki.crl(pki.authentication_ca), pki.authentication_ca.key)
    assert x509.load_der_x509_crl(crl).next_update_utc is None
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "nextUpdate" in failure.detail


# -- fail closed: who signed it ---------------------------------------------------------------


def test_a_badly_signed_crl_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, signing_key=rsa_key("crl:forger"))
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "signature" in failure.detail


def test_a_crl_signed_by_another_ca_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    other = TestPKI.generate(now=NOW, label="revocation-crl-other")
    refused(checker(serving((URL, other.crl(other.authentication_ca)))), leaf)


def test_a_crl_of_another_ca_under_the_same_name_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    impostor = make_ca(
        "impostor", now=NOW, subject=pki.authentication_ca.cert.subject, key_label="impostor"
    )
    crl = pki.crl(impostor)  # issuer name of the real CA, signature of the impostor's key
    assert x509.load_der_x509_crl(crl).issuer == leaf.cert.issuer
    refused(checker(serving((URL, crl))), leaf)


def test_a_crl_with_the_wrong_issuer_name_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, issuer_name=pki.signature_ca.cert.subject)
    refused(checker(serving((URL, crl))), leaf)


def test_a_sha1_signed_crl_is_refused(pki: TestPKI, leaf: Issued) -> None:
    crl = _resigned(pki.crl(pki.authentication_ca), pki.authentication_ca.key, sha1=True)
    assert isinstance(x509.load_der_x509_crl(crl).signature_hash_algorithm, hashes.SHA1)
    refused(checker(serving((URL, crl))), leaf)


def test_an_rsa_pss_crl_is_accepted(pki: TestPKI, leaf: Issued) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.authentication_ca.cert.subject)
        .last_update(_instant(NOW - 60))
        .next_update(_instant(NOW + 3600))
        .add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(leaf.serial)
            .revocation_date(_instant(NOW - 60))
            .build()
        )
        .sign(pki.authentication_ca.key, hashes.SHA256(), rsa_padding=pss)  # type: ignore[arg-type]
    )
    der = crl.public_bytes(serialization.Encoding.DER)
    refused(checker(serving((URL, der))), leaf, reason="certificate_revoked")


def test_an_rsa_pss_sha1_signed_crl_is_refused(pki: TestPKI, leaf: Issued) -> None:
    crl = _resigned(pki.crl(pki.authentication_ca), pki.authentication_ca.key, pss_sha1=True)
    parsed = x509.load_der_x509_crl(crl)
    assert isinstance(parsed.signature_hash_algorithm, hashes.SHA1)
    assert parsed.is_signature_valid(pki.authentication_ca.cert.public_key())  # type: ignore[arg-type]
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "SHA-1" in failure.detail


def test_an_issuer_not_allowed_to_sign_crls_is_refused(pki: TestPKI) -> None:
    no_crl_sign = x509.KeyUsage(
        digital_signature=False,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    ca = make_ca(
        "no-crl-sign CA", now=NOW, issuer=pki.root, key_label="no-crl-sign", key_usage=no_crl_sign
    )
    leaf = pki.leaf("authentication", label="no-crl-sign", issuer=ca)
    refused(checker(serving((URL, pki.crl(ca)))), leaf)


def test_a_certificate_of_another_issuer_is_refused(pki: TestPKI, leaf: Issued) -> None:
    """Asked with the wrong issuer certificate, a fresh CRL of *that* issuer proves nothing."""
    fetcher = serving(
        (URL, pki.crl(pki.authentication_ca)), (SIGNATURE_URL, pki.crl(pki.signature_ca))
    )
    with pytest.raises(AnchorFailure) as caught:
        checker(fetcher, urls=(URL, SIGNATURE_URL)).check(leaf.cert, pki.signature_ca.cert, at=NOW)
    assert caught.value.reason == "revocation_unavailable"


# -- fail closed: the network and the bytes ---------------------------------------------------


def test_an_unreachable_crl_fails_closed(leaf: Issued) -> None:
    failure = refused(checker(InMemoryFetcher()), leaf)
    assert "fetch failed (network)" in failure.detail


def test_an_oversize_crl_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, revoked=range(1, 200))
    fetcher = serving((URL, crl))
    failure = refused(checker(fetcher, max_crl_bytes=len(crl) - 1), leaf)
    assert "too_large" in failure.detail
    assert fetcher.requests == [(URL, "application/pkix-crl", len(crl) - 1)]


@pytest.mark.parametrize(
    "body",
    [b"", b"not a crl", b"\x30\x03\x02\x01\x00", b"-----BEGIN X509 CRL-----\nAAAA\n"],
    ids=["empty", "text", "short-der", "bad-pem"],
)
def test_garbage_fails_closed(leaf: Issued, body: bytes) -> None:
    failure = refused(checker(serving((URL, body))), leaf)
    assert "not a CRL" in failure.detail


def test_a_crl_with_a_duplicated_extension_fails_closed(pki: TestPKI, leaf: Issued) -> None:
    crl = _resigned(
        pki.crl(pki.authentication_ca), pki.authentication_ca.key, duplicate_extension=True
    )
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "not a CRL (DuplicateExtension)" in failure.detail


# -- fail closed: scope -----------------------------------------------------------------------


def _idp(**flags: Any) -> x509.IssuingDistributionPoint:
    values: dict[str, Any] = {
        "full_name": None,
        "relative_name": None,
        "only_contains_user_certs": False,
        "only_contains_ca_certs": False,
        "only_some_reasons": None,
        "indirect_crl": False,
        "only_contains_attribute_certs": False,
    }
    values.update(flags)
    return x509.IssuingDistributionPoint(**values)


def test_a_delta_crl_is_refused(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, extensions=[(x509.DeltaCRLIndicator(1), True)])
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "delta CRL" in failure.detail


def test_a_base_crl_announcing_deltas_is_refused(pki: TestPKI, leaf: Issued) -> None:
    freshest = x509.FreshestCRL(
        [
            x509.DistributionPoint(
                [x509.UniformResourceIdentifier("https://crl.jpki.example/delta.crl")],
                None,
                None,
                None,
            )
        ]
    )
    crl = pki.crl(pki.authentication_ca, extensions=[(freshest, False)])
    refused(checker(serving((URL, crl))), leaf)


def test_an_indirect_crl_is_refused(pki: TestPKI, leaf: Issued) -> None:
    crl = pki.crl(pki.authentication_ca, extensions=[(_idp(indirect_crl=True), True)])
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "indirect CRL" in failure.detail


@pytest.mark.parametrize(
    "flags",
    [
        {"only_contains_ca_certs": True},
        {"only_contains_attribute_certs": True},
        {"only_some_reasons": frozenset({x509.ReasonFlags.key_compromise})},
        {"full_name": [x509.UniformResourceIdentifier("https://crl.jpki.example/part1.crl")]},
    ],
    ids=["ca-certs-only", "attribute-certs-only", "some-reasons", "partitioned"],
)
def test_a_crl_whose_scope_excludes_the_certificate_is_refused(
    pki: TestPKI, leaf: Issued, flags: dict[str, Any]
) -> None:
    crl = pki.crl(pki.authentication_ca, extensions=[(_idp(**flags), True)])
    refused(checker(serving((URL, crl))), leaf)


def test_a_crl_of_user_certificates_covers_the_card_certificate(pki: TestPKI, leaf: Issued) -> None:
    idp = _idp(only_contains_user_certs=True)
    crl = pki.crl(pki.authentication_ca, revoked=[leaf.serial], extensions=[(idp, True)])
    refused(checker(serving((URL, crl))), leaf, reason="certificate_revoked")


def test_a_crl_of_user_certificates_does_not_cover_a_ca(pki: TestPKI) -> None:
    ca_leaf = pki.leaf("authentication", label="crl-ca-leaf", ca=True, path_length=0)
    idp = _idp(only_contains_user_certs=True)
    crl = pki.crl(pki.authentication_ca, extensions=[(idp, True)])
    refused(checker(serving((URL, crl))), ca_leaf)


def test_an_unknown_critical_crl_extension_is_refused(pki: TestPKI, leaf: Issued) -> None:
    unknown = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.55555.9.9"), b"\x05\x00"
    )
    crl = pki.crl(pki.authentication_ca, extensions=[(unknown, True)])
    failure = refused(checker(serving((URL, crl))), leaf)
    assert "unknown critical extension" in failure.detail


def test_an_unknown_non_critical_crl_extension_is_ignored(pki: TestPKI, leaf: Issued) -> None:
    unknown = x509.UnrecognizedExtension(
        x509.ObjectIdentifier("1.3.6.1.4.1.55555.9.9"), b"\x05\x00"
    )
    crl = pki.crl(pki.authentication_ca, extensions=[(unknown, False)])
    passes(checker(serving((URL, crl))), leaf)


# -- caching ----------------------------------------------------------------------------------


def test_the_crl_is_reused_until_the_refresh_window_before_next_update(
    pki: TestPKI, leaf: Issued
) -> None:
    next_update = NOW + 7200
    fetcher = serving((URL, pki.crl(pki.authentication_ca, next_update=next_update)))
    check = checker(fetcher, refresh_before=300)
    for at in (NOW, NOW + 600, NOW + 3600, next_update - 301):
        passes(check, leaf, at=at)
    assert len(fetcher.requests) == 1
    passes(check, leaf, at=next_update - 300)  # the refresh window: the Fetcher is asked again
    assert len(fetcher.requests) == 2


def test_a_crl_past_next_update_is_fetched_again_and_its_successor_used(
    pki: TestPKI, leaf: Issued
) -> None:
    next_update = NOW + 3600
    fetcher = serving((URL, pki.crl(pki.authentication_ca, next_update=next_update)))
    check = checker(fetcher, refresh_before=0)
    passes(check, leaf)
    successor = pki.crl(
        pki.authentication_ca,
        revoked=[leaf.serial],
        this_update=next_update - 60,
        next_update=next_update + 86400,
        crl_number=2,
    )
    fetcher.serve(URL, successor)
    refused(check, leaf, at=next_update, reason="certificate_revoked")
    assert len(fetcher.requests) == 2
    refused(check, leaf, at=next_update + 10, reason="certificate_revoked")
    assert len(fetcher.requests) == 2  # the successor is cached in turn


def test_the_same_stale_bytes_again_fail_closed(pki: TestPKI, leaf: Issued) -> None:
    """What a caching Fetcher hands back after nextUpdate is judged by its own nextUpdate."""
    next_update = NOW + 3600
    fetcher = serving((URL, pki.crl(pki.authentication_ca, next_update=next_update)))
    check = checker(fetcher)
    passes(check, leaf)
    refused(check, leaf, at=next_update + 1)
    refused(check, leaf, at=next_update + 2)
    assert len(fetcher.requests) == 3  # asked every time, never used


def test_a_failed_refresh_keeps_the_crl_while_it_is_valid(pki: TestPKI, leaf: Issued) -> None:
    next_update = NOW + 3600
    fetcher = serving((URL, pki.crl(pki.authentication_ca, next_update=next_update)))
    check = checker(fetcher, refresh_before=600)
    passes(check, leaf)
    del fetcher.bodies[URL]
    passes(check, leaf, at=next_update - 1)  # refresh failed; still valid
    refused(check, leaf, at=next_update)  # now stale and nothing newer


def test_a_replayed_older_crl_does_not_replace_the_newer_one(pki: TestPKI, leaf: Issued) -> None:
    older = pki.crl(pki.authentication_ca, this_update=NOW - 7200, next_update=NOW + 86400)
    newer = pki.crl(
        pki.authentication_ca,
        revoked=[leaf.serial],
        this_update=NOW - 60,
        next_update=NOW + 3600,
        crl_number=2,
    )
    fetcher = serving((URL, newer))
    check = checker(fetcher, refresh_before=600)
    refused(check, leaf, reason="certificate_revoked")
    fetcher.serve(URL, older)  # an attacker on the (plain http) path replays the old list
    refused(check, leaf, at=NOW + 3000, reason="certificate_revoked")
    assert len(fetcher.requests) == 2


def test_a_forged_crl_is_not_kept_until_its_claimed_next_update(pki: TestPKI, leaf: Issued) -> None:
    forged = pki.crl(
        pki.authentication_ca, next_update=NOW + 365 * 86400, signing_key=rsa_key("crl:forger")
    )
    fetcher = serving((URL, forged))
    check = checker(fetcher)
    refused(check, leaf)
    fetcher.serve(URL, pki.crl(pki.authentication_ca, revoked=[leaf.serial]))
    refused(check, leaf, at=NOW + 1, reason="certificate_revoked")
    assert len(fetcher.requests) == 2


def test_a_crl_is_parsed_once_and_verified_once(
    pki: TestPKI, leaf: Issued, monkeypatch: pytest.MonkeyPatch
) -> None:
    import trustanchor.anchors.crl as crl_module

    parses: list[int] = []
    original = crl_module._parse

    def counting(body: bytes) -> Any:
        parses.append(len(body))
        return original(body)

    monkeypatch.setattr(crl_module, "_parse", counting)
    fetcher = serving((URL, pki.crl(pki.authentication_ca, next_update=NOW + 3600)))
    check = checker(fetcher, refresh_before=3000)
    for at in range(NOW, NOW + 1000, 100):  # inside and then inside the refresh window
        passes(check, leaf, at=at)
    assert len(parses) == 1
    assert len(fetcher.requests) > 1


# -- settings ---------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    settings = parse_revocation_settings({"source": "crl", "crl_urls": [URL]})
    assert settings == CrlSettings(crl_urls=(URL,), max_crl_bytes=1048576, refresh_before=300)


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"source": "crl"}, "crl_urls"),
        ({"source": "crl", "crl_urls": []}, "crl_urls"),
        ({"source": "crl", "crl_urls": "https://a.example/x.crl"}, "crl_urls"),
        ({"source": "crl", "crl_urls": ["ftp://a.example/x.crl"]}, "crl_urls"),
        ({"source": "crl", "crl_urls": [URL, URL]}, "crl_urls"),
        ({"source": "crl", "crl_urls": [URL], "max_crl_bytes": 0}, "max_crl_bytes"),
        ({"source": "crl", "crl_urls": [URL], "max_crl_bytes": True}, "max_crl_bytes"),
        ({"source": "crl", "crl_urls": [URL], "refresh_before": -1}, "refresh_before"),
        ({"source": "crl", "crl_urls": [URL], "refresh_before": "300"}, "refresh_before"),
        ({"source": "crl", "crl_urls": [URL], "responder_url": URL}, "responder_url"),
        ({"source": "crl", "crl_urls": [URL], "use_crl_dp": True}, "use_crl_dp"),
        ({"source": "platform", "endpoint": URL}, "source"),
        ({"crl_urls": [URL]}, "source"),
    ],
)
def test_settings_refusals_name_the_field(raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_revocation_settings(raw)
    assert str(caught.value).startswith(f"{field}: ")


# -- through a real HTTP server and the real HttpFetcher --------------------------------------


class _CrlHandler(BaseHTTPRequestHandler):
    body: ClassVar[bytes] = b""
    hits: ClassVar[list[tuple[str, str | None]]] = []

    def do_GET(self) -> None:
        type(self).hits.append((self.path, self.headers.get("Accept")))
        body = type(self).body
        self.send_response(200 if self.path == "/authentication.crl" else 404)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def crl_server() -> Iterator[str]:
    _CrlHandler.hits = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _CrlHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/authentication.crl"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _http_fetcher(clock: FixedClock) -> HttpFetcher:
    local = HttpFetcherSettings(
        cache_ttl=300,
        http_hosts=frozenset({"127.0.0.1"}),
        private_hosts=frozenset({"127.0.0.1"}),
    )
    return HttpFetcher(clock=clock, settings=local)


def test_over_http_a_revoked_serial_is_found(crl_server: str, pki: TestPKI, leaf: Issued) -> None:
    _CrlHandler.body = pki.crl(pki.authentication_ca, revoked=[leaf.serial])
    clock = FixedClock(NOW)
    refused(checker(_http_fetcher(clock), urls=(crl_server,)), leaf, reason="certificate_revoked")
    assert _CrlHandler.hits == [("/authentication.crl", "application/pkix-crl")]


def test_over_http_the_fetchers_cache_never_makes_a_stale_crl_count(
    crl_server: str, pki: TestPKI, leaf: Issued
) -> None:
    """HttpFetcher keeps bodies 300 s. With refresh_before 300 the checker asks again from
    nextUpdate - 300; a stale body the Fetcher still hands out after nextUpdate is refused, and
    a real fetch follows once the Fetcher's entry expires."""
    next_update = NOW + 3600
    _CrlHandler.body = pki.crl(pki.authentication_ca, next_update=next_update)
    clock = FixedClock(NOW)
    check = checker(_http_fetcher(clock), urls=(crl_server,), refresh_before=300)

    def at(instant: int) -> int:
        clock.set(instant)
        return instant

    passes(check, leaf, at=at(NOW))
    passes(check, leaf, at=at(next_update - 400))  # cached by us: no request
    assert len(_CrlHandler.hits) == 1
    passes(check, leaf, at=at(next_update - 250))  # refresh window: real fetch, same CRL
    assert len(_CrlHandler.hits) == 2
    _CrlHandler.body = pki.crl(  # the CA publishes late, after the last real fetch
        pki.authentication_ca,
        revoked=[leaf.serial],
        this_update=next_update - 100,
        next_update=next_update + 86400,
        crl_number=2,
    )
    refused(check, leaf, at=at(next_update + 10))  # the Fetcher's cached stale copy: refused
    assert len(_CrlHandler.hits) == 2
    refused(check, leaf, at=at(next_update + 60), reason="certificate_revoked")
    assert len(_CrlHandler.hits) == 3  # the Fetcher's entry expired: a real fetch


def test_over_http_a_successor_published_ahead_is_picked_up_before_next_update(
    crl_server: str, pki: TestPKI, leaf: Issued
) -> None:
    next_update = NOW + 3600
    _CrlHandler.body = pki.crl(pki.authentication_ca, next_update=next_update)
    clock = FixedClock(NOW)
    check = checker(_http_fetcher(clock), urls=(crl_server,), refresh_before=300)
    passes(check, leaf, at=NOW)
    _CrlHandler.body = pki.crl(
        pki.authentication_ca,
        revoked=[leaf.serial],
        this_update=next_update - 600,
        next_update=next_update + 86400,
        crl_number=2,
    )
    clock.set(next_update - 300)
    refused(check, leaf, at=next_update - 300, reason="certificate_revoked")
    clock.set(next_update + 1)
    refused(check, leaf, at=next_update + 1, reason="certificate_revoked")
    assert len(_CrlHandler.hits) == 2


# -- DER surgery for CRLs pyca's builder refuses to make --------------------------------------


def _instant(epoch: int) -> Any:
    import datetime

    return datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _elements(data: bytes) -> list[bytes]:
    """The TLV elements of a DER SEQUENCE's content."""
    out, offset = [], 0
    while offset < len(data):
        first = data[offset + 1]
        if first < 0x80:
            start, length = offset + 2, first
        else:
            count = first & 0x7F
            start = offset + 2 + count
            length = int.from_bytes(data[offset + 2 : start], "big")
        out.append(data[offset : start + length])
        offset = start + length
    return out


def _content(element: bytes) -> bytes:
    return b"".join(_elements_of(element))


def _elements_of(sequence: bytes) -> list[bytes]:
    first = sequence[1]
    start = 2 if first < 0x80 else 2 + (first & 0x7F)
    return _elements(sequence[start:])


def _sequence(parts: list[bytes]) -> bytes:
    content = b"".join(parts)
    return b"\x30" + _der_length(len(content)) + content


_SHA256_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")
_SHA1_RSA = bytes.fromhex("300d06092a864886f70d0101050500")
_PSS_SHA1 = bytes.fromhex("300d06092a864886f70d01010a3000")  # RSASSA-PSS, default (SHA-1) params


def _resigned(
    der: bytes,
    key: Any,
    *,
    sha1: bool = False,
    pss_sha1: bool = False,
    drop_next_update: bool = False,
    duplicate_extension: bool = False,
) -> bytes:
    """Re-sign a CRL's TBSCertList by hand (RSA PKCS#1 v1.5, or PSS with SHA-1) after editing
    it."""
    assert isinstance(key, rsa.RSAPrivateKey)
    tbs, _, _ = _elements_of(der)
    parts = _elements_of(tbs)
    algorithm = _PSS_SHA1 if pss_sha1 else _SHA1_RSA if sha1 else _SHA256_RSA
    assert parts[1] == _SHA256_RSA
    parts[1] = algorithm
    if drop_next_update:
        assert parts[4][0] in (0x17, 0x18)  # UTCTime / GeneralizedTime: nextUpdate
        del parts[4]
    if duplicate_extension:
        assert parts[-1][0] == 0xA0  # [0] EXPLICIT crlExtensions
        [extensions] = _elements_of(parts[-1])
        listed = _elements_of(extensions)
        wrapped = _sequence([*listed, listed[0]])
        parts[-1] = b"\xa0" + _der_length(len(wrapped)) + wrapped
    new_tbs = _sequence(parts)
    hash_alg: hashes.HashAlgorithm = hashes.SHA1() if sha1 or pss_sha1 else hashes.SHA256()  # noqa: S303
    if pss_sha1:
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA1()), salt_length=20)  # noqa: S303
        signature = key.sign(new_tbs, pss, hash_alg)
    else:
        signature = key.sign(new_tbs, padding.PKCS1v15(), hash_alg)
    bit_string = b"\x03" + _der_length(len(signature) + 1) + b"\x00" + signature
    return _sequence([new_tbs, algorithm, bit_string])


def _without_next_update(der: bytes, key: Any) -> bytes:
    return _resigned(der, key, drop_next_update=True)
