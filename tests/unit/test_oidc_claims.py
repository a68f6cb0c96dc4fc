"""From a validated upstream ID token (and UserInfo) to a VerifiedIdentity
(anchors/oidc_claims.py): identities keyed by (issuer, sub), plain and verified claims, the
returned acr mapped to our levels, UserInfo's sub."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from support.upstream_tokens import (
    ACCESS_TOKEN,
    AT,
    DROP,
    ISSUER,
    NONCE,
    UpstreamOP,
    anchor,
    provider,
    settings,
)

from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.id_token import IdTokenClaims
from trustanchor.anchors.oidc_claims import (
    REASONS,
    check_userinfo_subject,
    issuer_qualified_subject,
    level_for_acr,
    parse_userinfo,
    verified_identity,
)
from trustanchor.digests import sha256_hex
from trustanchor.domain.identity import VerifiedIdentity

PERSON = {
    "name": "山田 太郎",
    "family_name": "山田",
    "given_name": "太郎",
    "birthdate": "1990-04-01",
    "gender": "male",
    "address": {"formatted": "東京都千代田区千代田1-1", "country": "JP"},
}


@pytest.fixture(scope="module")
def op() -> UpstreamOP:
    return UpstreamOP()


def identity(
    op: UpstreamOP,
    token: str,
    *,
    userinfo: dict[str, Any] | None = None,
    required: tuple[str, ...] = (),
    level: Any = "high",
    **setting_overrides: Any,
) -> VerifiedIdentity:
    rp = provider(op, level=level, **setting_overrides)
    claims = rp.validate_id_token(token, nonce=NONCE, at=AT, access_token=ACCESS_TOKEN)
    return verified_identity(
        rp.anchor,
        rp.settings,
        claims,
        raw_id_token=token,
        userinfo=userinfo,
        required_claims=required,
        at=AT,
    )


def test_plain_claims_in_the_id_token_become_the_identity(op: UpstreamOP) -> None:
    token = op.id_token(**PERSON)
    found = identity(op, token, required=("name", "birthdate"))
    assert dict(found.claims) == PERSON
    assert found.anchor_id == "ekyc-bank"
    assert found.subject == issuer_qualified_subject(ISSUER, "pairwise-7f3a")
    assert found.assurance_level == "high"  # acr aal3
    assert found.amr == ("hwk", "pin")
    assert found.trust_framework == "jp_aml"
    assert found.expires_at is None and found.verified_at == AT
    assert found.evidence_digest == sha256_hex(token)
    assert dict(found.evidence) == {}


def test_userinfo_fills_in_what_the_id_token_lacks(op: UpstreamOP) -> None:
    token = op.id_token(name="ID Token Name")
    userinfo = {"sub": "pairwise-7f3a", "name": "UserInfo Name", "birthdate": "1990-04-01"}
    found = identity(op, token, userinfo=userinfo)
    assert dict(found.claims) == {"name": "ID Token Name", "birthdate": "1990-04-01"}


def test_a_missing_required_claim_is_refused(op: UpstreamOP) -> None:
    with pytest.raises(AnchorFailure) as caught:
        identity(op, op.id_token(name="Taro"), required=("name", "address"))
    assert caught.value.reason == "missing_claims" and caught.value.detail == "address"


# -- SECURITY-CASES.md: identities are keyed by (issuer, sub), never by sub alone ----------------


def test_identities_are_keyed_by_issuer_and_sub_never_sub_alone() -> None:
    """The same ``sub`` from two providers is two people: two subjects."""
    bank = UpstreamOP(issuer="https://op.bank.example")
    agency = UpstreamOP(issuer="https://auth.digital-agency.example")
    same_sub = "user-0001"
    at_bank = identity(bank, bank.id_token(sub=same_sub))
    at_agency = identity(agency, agency.id_token(sub=same_sub))
    assert at_bank.subject != at_agency.subject
    assert same_sub not in at_bank.subject and same_sub not in at_agency.subject
    assert at_bank.subject == issuer_qualified_subject("https://op.bank.example", same_sub)


def test_the_issuer_qualified_subject_is_unambiguous_and_fits_the_column() -> None:
    # naive concatenation would make these two pairs one subject
    assert issuer_qualified_subject("https://a.example/x", "y") != issuer_qualified_subject(
        "https://a.example/", "xy"
    )
    assert issuer_qualified_subject("https://a.example", '","') != issuer_qualified_subject(
        'https://a.example","', ""
    )
    longest = issuer_qualified_subject("https://" + "a" * 2000 + ".example", "s" * 255)
    assert len(longest) <= 255 and longest.startswith("oidc:")
    # stable: the same pair always yields the same subject (no salt, no randomness)
    assert issuer_qualified_subject(ISSUER, "s") == "oidc:" + sha256_hex(
        json.dumps([ISSUER, "s"]).replace(" ", "")
    )


# -- the returned acr ---------------------------------------------------------------------------


def test_the_returned_acr_is_mapped_to_our_level(op: UpstreamOP) -> None:
    assert identity(op, op.id_token(acr="aal2")).assurance_level == "substantial"
    assert identity(op, op.id_token(acr="aal3")).assurance_level == "high"


def test_a_missing_acr_means_the_floor_level(op: UpstreamOP) -> None:
    found = identity(op, op.id_token(acr=DROP), floor_assurance_level="substantial")
    assert found.assurance_level == "substantial"
    assert identity(op, op.id_token(acr=DROP)).assurance_level == "low"


def test_an_unknown_acr_means_the_floor_level_and_is_logged(
    op: UpstreamOP, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="trustanchor.anchors.oidc_claims"):
        found = identity(op, op.id_token(acr="urn:example:loa:99"))
    assert found.assurance_level == "low"
    assert "urn:example:loa:99" in caplog.text and "pairwise-7f3a" not in caplog.text


def test_the_level_is_never_above_the_anchors_declared_level() -> None:
    """Settings refuse a mapping above the anchor's level; should an anchor be lowered after its
    settings were parsed, the mapping is capped at the mapping step too."""
    with pytest.raises(ValueError, match=r"acr_levels\.aal3: high is above"):
        settings(level="substantial")
    parsed = settings(level="high")
    lowered = anchor(level="substantial")
    assert level_for_acr(parsed, lowered, "aal3") == "substantial"
    assert level_for_acr(parsed, lowered, None) == "low"


# -- verified_claims (OpenID Connect for Identity Assurance) -------------------------------------

EVIDENCE = {
    "type": "electronic_signature",
    "signature_type": "jpki_signature_certificate",
    "issuer": {"name": "J-LIS"},
}


def element(trust_framework: str, **claims: Any) -> dict[str, Any]:
    return {
        "verification": {"trust_framework": trust_framework, "evidence": [EVIDENCE]},
        "claims": claims,
    }


def test_verified_claims_under_our_trust_framework_become_the_identity(op: UpstreamOP) -> None:
    token = op.id_token(
        verified_claims=element(
            "jp_aml", family_name="山田", given_name="太郎", birthdate="1990-04-01"
        ),
        name="plain name",
    )
    found = identity(op, token, verified_claims=["family_name", "given_name", "birthdate"])
    assert dict(found.claims) == {
        "name": "plain name",
        "family_name": "山田",
        "given_name": "太郎",
        "birthdate": "1990-04-01",
    }
    assert dict(found.evidence) == EVIDENCE


def test_verified_claims_under_another_trust_framework_are_ignored(op: UpstreamOP) -> None:
    token = op.id_token(verified_claims=element("eidas", birthdate="1970-01-01"))
    found = identity(op, token, verified_claims=["birthdate"])
    assert "birthdate" not in found.claims and dict(found.evidence) == {}


def test_a_verified_claim_is_never_taken_from_a_plain_claim(op: UpstreamOP) -> None:
    token = op.id_token(birthdate="1970-01-01")
    with pytest.raises(AnchorFailure) as caught:
        identity(op, token, required=("birthdate",), verified_claims=["birthdate"])
    assert caught.value.reason == "missing_claims"


def test_several_verified_claims_elements_only_ours_count(op: UpstreamOP) -> None:
    token = op.id_token(
        verified_claims=[
            element("eidas", birthdate="1970-01-01"),
            element("jp_aml", birthdate="1990-04-01"),
        ]
    )
    assert identity(op, token, verified_claims=["birthdate"]).claims["birthdate"] == "1990-04-01"


@pytest.mark.parametrize(
    "value",
    [
        [],
        "verified",
        [1],
        {"verification": "jp_aml", "claims": {}},
        {"verification": {"trust_framework": "jp_aml"}},
        [element("jp_aml", birthdate="x")] * 9,
    ],
)
def test_malformed_verified_claims_are_refused(op: UpstreamOP, value: Any) -> None:
    with pytest.raises(AnchorFailure) as caught:
        identity(op, op.id_token(verified_claims=value), verified_claims=["birthdate"])
    assert caught.value.reason == "verified_claims_malformed"


def test_verified_claims_from_userinfo(op: UpstreamOP) -> None:
    userinfo = {
        "sub": "pairwise-7f3a",
        "verified_claims": element("jp_aml", birthdate="1990-04-01"),
    }
    found = identity(op, op.id_token(), userinfo=userinfo, verified_claims=["birthdate"])
    assert found.claims["birthdate"] == "1990-04-01" and dict(found.evidence) == EVIDENCE


# -- UserInfo ----------------------------------------------------------------------------------


def validated(op: UpstreamOP) -> IdTokenClaims:
    return provider(op).validate_id_token(op.id_token(), nonce=NONCE, at=AT)


def test_userinfo_sub_must_equal_the_id_tokens(op: UpstreamOP) -> None:
    claims = validated(op)
    assert parse_userinfo(b'{"sub": "pairwise-7f3a", "name": "T"}', id_token=claims, max_bytes=4096)
    for body in (b'{"sub": "someone-else"}', b'{"name": "no sub"}', b'{"sub": ["pairwise-7f3a"]}'):
        with pytest.raises(AnchorFailure) as caught:
            parse_userinfo(body, id_token=claims, max_bytes=4096)
        assert caught.value.reason == "userinfo_subject_mismatch"
    with pytest.raises(AnchorFailure) as caught:
        identity(op, op.id_token(), userinfo={"sub": "someone-else", "name": "Mallory"})
    assert caught.value.reason == "userinfo_subject_mismatch"


@pytest.mark.parametrize(
    "body", [b"[]", b"{", b'{"sub": "a", "sub": "b"}', b"eyJhbGciOi.x.y", b"x" * 5000]
)
def test_a_userinfo_that_is_not_strict_json_is_refused(op: UpstreamOP, body: bytes) -> None:
    with pytest.raises(AnchorFailure) as caught:
        parse_userinfo(body, id_token=validated(op), max_bytes=4096)
    assert caught.value.reason == "userinfo_malformed"
    assert caught.value.reason in REASONS


def test_check_userinfo_subject_is_exact(op: UpstreamOP) -> None:
    claims = validated(op)
    check_userinfo_subject({"sub": "pairwise-7f3a"}, claims)
    with pytest.raises(AnchorFailure):
        check_userinfo_subject({"sub": "pairwise-7f3a "}, claims)


def test_an_id_token_of_another_provider_is_not_mapped_for_this_anchor(op: UpstreamOP) -> None:
    claims = validated(op)
    other = settings("https://other-op.example")
    with pytest.raises(AnchorFailure) as caught:
        verified_identity(
            anchor("https://other-op.example"),
            other,
            claims,
            raw_id_token="x",
            userinfo=None,
            required_claims=(),
            at=AT,
        )
    assert caught.value.reason == "id_token_wrong_issuer"
