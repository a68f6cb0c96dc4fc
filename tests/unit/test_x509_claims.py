"""Claims from a signature certificate and the electronic_signature evidence
(trustanchor/anchors/x509_claims.py), on certificates made by the test JPKI."""

from __future__ import annotations

import pytest
from cryptography import x509
from support.jpki import (
    OID_ADDRESS,
    OID_BIRTHDATE,
    OID_GENDER,
    OID_NAME,
    SIGNATURE_CLAIMS,
    TestPKI,
    other_names,
)

from trustanchor.anchors.x509_claims import ClaimsError, evidence, map_claims, other_name_values
from trustanchor.anchors.x509_settings import ClaimSource

NOW = 1_800_000_000
SOURCES = {
    claim: ClaimSource(other_name=x509.ObjectIdentifier(source.split(":", 1)[1]))
    for claim, source in SIGNATURE_CLAIMS.items()
}


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI.generate(now=NOW, label="claims")


def signature_cert(pki: TestPKI, **values: str) -> x509.Certificate:
    attributes = {
        OID_NAME: values.get("name", "山田 太郎"),
        OID_GENDER: values.get("gender", "1"),
        OID_BIRTHDATE: values.get("birthdate", "19800102"),
        OID_ADDRESS: values.get("address", "東京都千代田区霞が関1-1-1"),
    }
    return pki.leaf("signature", label="claims", attributes=attributes).cert


def test_the_four_attributes_map_to_oidc_claims(pki: TestPKI) -> None:
    cert = signature_cert(pki)
    assert map_claims(cert, SOURCES) == {
        "name": "山田 太郎",
        "family_name": "山田",
        "given_name": "太郎",
        "gender": "male",
        "birthdate": "1980-01-02",
        "address": {"formatted": "東京都千代田区霞が関1-1-1"},
    }


@pytest.mark.parametrize(
    "name, parts",
    [
        ("佐藤\u3000花子", ("佐藤", "花子")),
        ("佐藤 花子", ("佐藤", "花子")),
        ("Smith John Paul", ("Smith", "John Paul")),
        ("佐藤\u3000 花子", ("佐藤", "花子")),
        ("佐藤花子", None),
        ("佐藤 ", None),
        (" 花子", None),
    ],
)
def test_names_split_at_the_first_space_only_when_two_parts(
    pki: TestPKI, name: str, parts: tuple[str, str] | None
) -> None:
    claims = map_claims(signature_cert(pki, name=name), SOURCES)
    assert claims["name"] == name
    if parts is None:
        assert "family_name" not in claims and "given_name" not in claims
    else:
        assert (claims["family_name"], claims["given_name"]) == parts


@pytest.mark.parametrize("code, gender", [("1", "male"), ("2", "female"), ("3", None), ("9", None)])
def test_gender_codes(pki: TestPKI, code: str, gender: str | None) -> None:
    claims = map_claims(signature_cert(pki, gender=code), SOURCES)
    assert claims.get("gender") == gender


@pytest.mark.parametrize(
    "value", ["1980-01-02", "19800230", "1980010", "１９８００１０２", "abcdefgh"]
)
def test_birth_dates_that_are_no_date_make_the_certificate_unreadable(
    pki: TestPKI, value: str
) -> None:
    with pytest.raises(ClaimsError) as caught:
        map_claims(signature_cert(pki, birthdate=value), SOURCES)
    assert caught.value.reason == "certificate_attributes_unreadable"


def test_a_missing_attribute_is_refused_not_skipped(pki: TestPKI) -> None:
    cert = pki.leaf("signature", label="partial", attributes={OID_NAME: "山田 太郎"}).cert
    with pytest.raises(ClaimsError, match=r"no (birthdate|gender|address)"):
        map_claims(cert, SOURCES)


def test_other_names_must_be_well_formed_utf8_strings(pki: TestPKI) -> None:
    def cert_with(value: bytes) -> x509.Certificate:
        san = [x509.OtherName(OID_NAME, value)]
        return pki.leaf("signature", label="odd", san=san).cert

    # (pyca itself refuses to build or parse an otherName value that is not one DER element,
    # so lengths beyond the value or in a long form are not reachable here.)
    for bad in (
        b"\x13\x03abc",  # PrintableString, not UTF8String
        b"\x0c\x02\xff\xfe",  # not UTF-8
        b"\x0c\x00",  # empty
        b"\x0c\x02a\x07",  # control character
        b"\x30\x05\x0c\x03abc",  # a SEQUENCE around it
    ):
        with pytest.raises(ClaimsError):
            other_name_values(cert_with(bad))
    assert other_name_values(cert_with(b"\x0c\x03abc")) == {OID_NAME: "abc"}


def test_an_attribute_present_twice_is_refused(pki: TestPKI) -> None:
    twice = other_names({OID_NAME: "山田 太郎"}) + other_names({OID_NAME: "別人 次郎"})
    cert = pki.leaf("signature", label="twice", san=twice).cert
    with pytest.raises(ClaimsError, match="twice"):
        other_name_values(cert)


def test_evidence_element(pki: TestPKI) -> None:
    cert = signature_cert(pki)
    assert evidence(cert, at=NOW) == {
        "type": "electronic_signature",
        "signature_type": "jpki",
        "issuer": "CN=claims Signature CA,O=Trustanchor Test JPKI,C=JP",
        "serial_number": f"{cert.serial_number:x}",
        "created_at": "2027-01-15T08:00:00Z",
    }
