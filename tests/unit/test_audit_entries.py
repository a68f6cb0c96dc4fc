"""The canonical audit entry format: encoding, strict parsing, and no secrets or personal data."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor.audit import merkle
from trustanchor.audit.entries import (
    KINDS,
    Decision,
    DecisionOperation,
    Entry,
    EntryError,
    IdentityJoin,
    Login,
    LoginInPerson,
    Omitted,
    OperatorChange,
    Refusal,
    ReuseDetected,
    TokenIssued,
    TokenRevoked,
    authorization_details_digest,
    digest,
    entry_from_mapping,
    parse_entry,
)
from trustanchor.digests import keyed_digest, secret_digest
from trustanchor.randomness import SystemRandomness

T0 = 1_700_000_000
GRANT = digest("grant-1")
SUB = keyed_digest(b"k" * 32, "pairwise-v1", "https://rp.example", "holder-1")
HOLDER = keyed_digest(b"a" * 32, "audit-holder-v1", "holder-1")


def examples() -> list[Entry]:
    """One entry of every kind (nullable fields both set and unset across the list)."""
    return [
        TokenIssued(
            at=T0,
            jti="Jx0b2Qk9c1yQm3XyHq2Lrw",
            token_kind="access_token",
            client_id="shop-1",
            sub=SUB,
            scope="openid payments",
            authorization_details=authorization_details_digest([{"type": "payment"}]),
            anchor_id="eu-wallet",
            anchor_set_id="eu-high",
            acr="urn:trustanchor:acr:high",
            exp=T0 + 300,
        ),
        TokenIssued(
            at=T0,
            jti=digest("new-refresh-token"),
            token_kind="refresh_rotation",
            client_id="auditor",
            sub=None,
            scope="",
            authorization_details=None,
            anchor_id=None,
            anchor_set_id=None,
            acr=None,
            exp=T0 + 86400,
        ),
        TokenRevoked(at=T0, jti="Jx0b2Qk9c1yQm3XyHq2Lrw", grant=None, reason="client_request"),
        TokenRevoked(at=T0, jti=None, grant=GRANT, reason="refresh_token_reuse"),
        ReuseDetected(at=T0, what="code", grant=GRANT),
        Login(at=T0, anchor_id="eu-wallet", outcome="ok", reason=None, holder=HOLDER),
        Login(
            at=T0, anchor_id="x509-ca", outcome="failed", reason="certificate_revoked", holder=None
        ),
        Decision(
            at=T0,
            decision_id="d-0001",
            result="denied",
            reason="anchor_suspended",
            anchor_set_id=None,
        ),
        OperatorChange(at=T0, what="anchor", id="eu-wallet", action="suspended"),
        Refusal(
            at=T0,
            endpoint="token",
            client_id="bank",
            grant_type="authorization_code",
            error="invalid_grant",
            reason="code_reused",
        ),
        Refusal(
            at=T0,
            endpoint="par",
            client_id=None,
            grant_type=None,
            error="invalid_client",
            reason="unknown_client",
        ),
        Omitted(
            at=T0,
            what="login",
            since=T0 - 600,
            until=T0,
            count=3000,
            reasons="kb_nonce_mismatch=3 wallet_declined=2997",
        ),
        IdentityJoin(
            at=T0,
            action="joined",
            identity=keyed_digest(b"a" * 32, "audit-identity", "identity-2"),
            anchor_id="jp-national-id",
            holder=HOLDER,
            new_holder=None,
            rule="name-and-birthdate",
            anchor_set_id="jp-cbdc",
            matched_anchor_id="jp-bank-ekyc",
            claims="birthdate family_name given_name",
        ),
        # At a branch counter (last, so the indexes above hold).
        LoginInPerson(
            at=T0,
            anchor_id="jpki",
            outcome="ok",
            reason=None,
            holder=HOLDER,
            branch="tokyo-marunouchi",
            operator=keyed_digest(b"a" * 32, "audit-operator", "counter-1", "S-0042"),
        ),
        # What a decision decided on (after the kinds above, so their indexes hold).
        DecisionOperation(
            at=T0,
            decision_id="d-0001",
            operation="value_transfer",
            currency="JPY",
            amount=5000,
            action=None,
        ),
        DecisionOperation(
            at=T0,
            decision_id="d-0002",
            operation="account_link",
            currency=None,
            amount=None,
            action="unlink",
        ),
    ]


ALL = examples()


def replaced(entry: Entry, **changes: object) -> Entry:
    """``dataclasses.replace`` (which re-runs validation) with values of any type."""
    original: Any = entry
    return dataclasses.replace(original, **changes)  # type: ignore[no-any-return]


def refused(data: bytes) -> EntryError:
    with pytest.raises(EntryError) as info:
        parse_entry(data)
    return info.value


def as_dict(entry: Entry) -> dict[str, Any]:
    return json.loads(entry.to_canonical())  # type: ignore[no-any-return]


# --- canonical encoding -------------------------------------------------------------------------


def test_every_kind_has_an_example() -> None:
    assert {e.KIND for e in ALL} == set(KINDS)


@pytest.mark.parametrize("entry", ALL, ids=lambda e: e.KIND)
def test_round_trip(entry: Entry) -> None:
    data = entry.to_canonical()
    assert parse_entry(data) == entry
    assert parse_entry(data).to_canonical() == data


def test_canonical_bytes_are_the_documented_ones() -> None:
    # docs/AUDIT-FORMAT.md shows this entry and its leaf hash; changing either is a new version.
    entry = Login(
        at=T0, anchor_id="x509-ca", outcome="failed", reason="certificate_revoked", holder=None
    )
    expected = (
        b'{"anchor_id":"x509-ca","at":1700000000,"holder":null,"kind":"login",'
        b'"outcome":"failed","reason":"certificate_revoked","v":1}'
    )
    assert entry.to_canonical() == expected
    leaf = "955548da1bc896fae86a2a1ba22c3456e93de05bf71115968dba3b739a68e767"
    assert hashlib.sha256(b"\x00" + expected).hexdigest() == leaf
    assert merkle.leaf_hash(expected).hex() == leaf


@pytest.mark.parametrize("entry", ALL, ids=lambda e: e.KIND)
def test_encoding_is_sorted_compact_utf8_json(entry: Entry) -> None:
    data = entry.to_canonical()
    obj = json.loads(data)
    assert list(obj) == sorted(obj)
    assert (
        data == json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )
    assert obj["v"] == 1 and obj["kind"] == entry.KIND and obj["at"] == T0


@pytest.mark.parametrize("entry", ALL, ids=lambda e: e.KIND)
def test_member_order_at_input_is_irrelevant(entry: Entry) -> None:
    members = list(as_dict(entry).items())
    for seed in range(5):
        random.Random(seed).shuffle(members)
        assert entry_from_mapping(dict(members)).to_canonical() == entry.to_canonical()


def test_non_ascii_identifiers_are_encoded_raw_in_nfc() -> None:
    entry = OperatorChange(at=T0, what="client", id="café-shop", action="added")
    assert b'"id":"caf\xc3\xa9-shop"' in entry.to_canonical()
    assert parse_entry(entry.to_canonical()) == entry


def test_refusal_canonical_bytes_are_the_documented_ones() -> None:
    # docs/AUDIT-FORMAT.md §1.2 shows this entry and its leaf hash.
    expected = (
        b'{"at":1700000000,"client_id":"bank","endpoint":"token","error":"invalid_grant",'
        b'"grant_type":"authorization_code","kind":"refusal","reason":"code_reused","v":1}'
    )
    assert ALL[9].to_canonical() == expected
    leaf = "a32d5c27ddc30e4d5bc99e0d9672dffc9b50c348bd4e3f1add82742f6d8b75f0"
    assert merkle.leaf_hash(expected).hex() == leaf
    assert parse_entry(expected) == ALL[9]


# --- strict parsing -----------------------------------------------------------------------------

LOGIN = ALL[6].to_canonical()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (LOGIN.replace(b",", b", "), "not_canonical"),
        (LOGIN + b"\n", "not_canonical"),
        (b"\xef\xbb\xbf" + LOGIN, "not_json"),
        (LOGIN.replace(b"x509-ca", b"x509\\u002dca"), "not_canonical"),
        (LOGIN.replace(b"1700000000", b"1700000000.0"), "float"),
        (LOGIN.replace(b"1700000000", b"1.7e9"), "float"),
        (LOGIN.replace(b"1700000000", b"-1"), "bad_value"),
        (LOGIN.replace(b"1700000000", b"9007199254740992"), "bad_value"),
        (LOGIN.replace(b"1700000000", b'"1700000000"'), "bad_type"),
        (LOGIN.replace(b"null", b"true"), "bad_type"),
        (LOGIN.replace(b"null", b"[]"), "not_json"),
        (LOGIN.replace(b'"v":1', b'"v":2'), "unsupported_version"),
        (LOGIN.replace(b'"v":1', b'"v":"1"'), "unsupported_version"),
        (LOGIN.replace(b'"v":1', b'"v":true'), "bad_type"),
        (LOGIN.replace(b'"login"', b'"logout"'), "unknown_kind"),
        (LOGIN.replace(b'"holder":null,', b""), "missing_field"),
        (LOGIN.replace(b'"holder":null,', b'"holder":null,"name":"x",'), "unknown_field"),
        (LOGIN.replace(b'"at":1700000000,', b'"at":1700000000,"at":1,'), "not_json"),
        (b"[]", "not_object"),
        (b"", "not_json"),
        (b"\xff", "not_json"),
        (b"{" + b" " * 9000 + b"}", "too_large"),
        (LOGIN.replace(b"x509-ca", "x509-cafe\u0301".encode()), "not_nfc"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_non_canonical_or_invalid_input_is_refused(data: bytes, reason: str) -> None:
    assert refused(data).reason == reason


def test_reordered_members_are_refused_by_the_byte_parser() -> None:
    obj = as_dict(ALL[6])
    reordered = json.dumps(dict(reversed(list(obj.items()))), separators=(",", ":")).encode()
    assert refused(reordered).reason == "not_canonical"
    assert entry_from_mapping(json.loads(reordered)) == ALL[6]


def test_constructors_validate_too() -> None:
    with pytest.raises(EntryError) as info:
        Decision(at=1.5, decision_id="d", result="allowed", reason="ok", anchor_set_id=None)  # type: ignore[arg-type]
    assert info.value.reason == "float"
    with pytest.raises(EntryError) as info:
        Decision(at=True, decision_id="d", result="allowed", reason="ok", anchor_set_id=None)
    assert info.value.reason == "bad_type"
    with pytest.raises(EntryError) as info:
        Decision(at=T0, decision_id="d", result="maybe", reason="ok", anchor_set_id=None)
    assert (info.value.reason, info.value.field) == ("bad_value", "result")


def test_cross_field_rules() -> None:
    base = ALL[0]
    with pytest.raises(EntryError) as info:
        replaced(base, token_kind="refresh_rotation")  # jti is not a digest
    assert info.value.field == "jti"
    with pytest.raises(EntryError):
        TokenRevoked(at=T0, jti=None, grant=None, reason="x")
    with pytest.raises(EntryError):
        TokenRevoked(at=T0, jti="abc", grant=GRANT, reason="x")
    with pytest.raises(EntryError):
        Login(at=T0, anchor_id="a", outcome="failed", reason=None, holder=None)
    with pytest.raises(EntryError):
        Login(at=T0, anchor_id="a", outcome="ok", reason="bad_signature", holder=None)


# --- digests ------------------------------------------------------------------------------------


def test_digest_is_sha256_hex_and_equals_the_stored_secret_digest() -> None:
    assert digest("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert digest("refresh-token-value") == secret_digest("refresh-token-value")


def test_authorization_details_digest_ignores_member_order() -> None:
    a = authorization_details_digest([{"type": "payment", "amount": "10", "currency": "EUR"}])
    b = authorization_details_digest([{"currency": "EUR", "amount": "10", "type": "payment"}])
    assert a == b and len(a) == 64
    assert a != authorization_details_digest(
        [{"type": "payment", "amount": "11", "currency": "EUR"}]
    )


# --- SECURITY-CASES: entries hold no raw tokens, codes, or personal data ------------------------

# Every field of every kind, by shape. A new field fails this test until it is classified here.
SHAPES: dict[str, str] = {
    "at": "integer",
    "exp": "integer",
    "jti": "identifier",
    "client_id": "identifier",
    "anchor_id": "identifier",
    "anchor_set_id": "identifier",
    "acr": "identifier",
    "decision_id": "identifier",
    "id": "identifier",
    "authorization_details": "digest",
    "grant": "digest",
    "sub": "pseudonym",
    "holder": "pseudonym",
    "scope": "scope",
    "token_kind": "enum",
    "what": "code",
    "outcome": "enum",
    "result": "enum",
    "reason": "code",
    "action": "code",
    "endpoint": "enum",
    "grant_type": "code",
    "error": "code",
    "since": "integer",
    "until": "integer",
    "count": "integer",
    "reasons": "reason_counts",
    "identity": "pseudonym",
    "new_holder": "pseudonym",
    "rule": "identifier",
    "matched_anchor_id": "identifier",
    "claims": "claim_names",
    "branch": "identifier",
    "operator": "pseudonym",
    "operation": "enum",
    "currency": "enum",
    "amount": "integer",
}

RAW_SECRET = SystemRandomness().token(32)  # the shape of codes, refresh tokens, request_uris
JWT = (
    "eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJhbGljZSJ9."
    "MEUCIQDg6Kq1y6bq2uI4Y8S0Gkq4p9w2r3vVdZfWm0a8nLJx1gIgX4"
)
PERSONAL = ["alice@example.com", "Alice Example", "DE89 3704 0044 0532 0130 00", "Müller, Jörg"]


def test_every_field_has_a_declared_shape() -> None:
    for entry in ALL:
        for f in dataclasses.fields(entry):
            assert f.name in SHAPES, f"{entry.KIND}.{f.name} has no declared shape"


# What the shapes cannot exclude, stated exactly: a pseudonym is an HMAC output (43 base64url
# characters), the same shape as a random 32-byte token, so deriving it is the caller's duty
# (oauth.pairwise, digests.keyed_digest); a scope is a list of words, so what keeps names out is
# that only granted scope values from the configured list are recorded.
RESIDUAL = {
    ("pseudonym", RAW_SECRET),
    ("scope", "Alice Example"),
    ("scope", "DE89 3704 0044 0532 0130 00"),
}


@pytest.mark.parametrize("entry", ALL, ids=lambda e: e.KIND)
def test_no_field_can_carry_a_raw_token_jwt_or_personal_data(entry: Entry) -> None:
    candidates: list[object] = [RAW_SECRET, JWT, *PERSONAL, 1.5, True, [RAW_SECRET], {"t": JWT}]
    accepted: set[tuple[str, object]] = set()
    for f in dataclasses.fields(entry):
        for value in candidates:
            try:
                replaced(entry, **{f.name: value})
            except EntryError:
                continue
            accepted.add((SHAPES[f.name], value))
    assert accepted <= RESIDUAL, accepted - RESIDUAL


def test_scope_refuses_secret_jwt_and_address_tokens() -> None:
    for value in (
        f"openid {RAW_SECRET}",
        f"openid {JWT}",
        "openid alice@example.com",
        "a  b",
        " a",
    ):
        with pytest.raises(EntryError):
            replaced(ALL[0], scope=value)


@pytest.mark.parametrize("field", ["authorization_details", "grant"])
def test_digest_fields_take_only_sha256_hex(field: str) -> None:
    entry = ALL[0] if field == "authorization_details" else ALL[4]
    for value in (
        RAW_SECRET,
        GRANT.upper(),
        GRANT[:-1],
        GRANT + "0",
        "grant-1",
        "0" * 40,
    ):
        with pytest.raises(EntryError):
            replaced(entry, **{field: value})


def test_identifiers_refuse_long_base64url_and_whitespace_but_take_short_ids() -> None:
    base = ALL[8]
    assert replaced(base, id=SystemRandomness().token(16))  # a jti-sized id is fine
    for value in (RAW_SECRET, "a" * 43, "x" * 256, "", "tab\tid", "zero\u200bwidth", "a\u00a0b"):
        with pytest.raises(EntryError):
            replaced(base, id=value)


def test_refusal_client_id_refuses_free_text_from_the_request() -> None:
    """A refusal records only a registered client id, and the shape backs that up: a name, an
    address, a pasted secret or assertion never fits the client_id field."""
    base = ALL[9]
    for value in (
        "Alice Example",
        "alice@example.com",
        "bank\n",
        "bank\u0000",
        RAW_SECRET,
        JWT,
        "x" * 256,
        "",
    ):
        with pytest.raises(EntryError) as info:
            replaced(base, client_id=value)
        assert info.value.field == "client_id"
    assert replaced(base, client_id=None).client_id is None


def test_refusal_codes_and_endpoint_are_closed() -> None:
    base = ALL[9]
    for name, value in (
        ("endpoint", "authorize"),
        ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
        ("grant_type", "Authorization_Code"),
        ("error", "invalid grant"),
        ("reason", "the code was reused"),
        ("reason", None),
        ("error", None),
    ):
        with pytest.raises(EntryError) as info:
            replaced(base, **{name: value})
        assert info.value.field == name


def test_refusal_at_par_has_no_grant_type() -> None:
    with pytest.raises(EntryError) as info:
        replaced(ALL[10], grant_type="authorization_code")
    assert info.value.field == "grant_type"


# --- hypothesis ---------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_only_raise_entry_error(data: bytes) -> None:
    with contextlib.suppress(EntryError):
        parse_entry(data)


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)


@settings(max_examples=500)
@given(
    st.dictionaries(
        st.sampled_from([*SHAPES, "v", "kind", "extra"]),
        st.one_of(JSON_SCALARS, st.sampled_from([1, *KINDS, GRANT, SUB, "ok", "failed"])),
    )
)
def test_arbitrary_objects_only_raise_entry_error(obj: dict[str, Any]) -> None:
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )
    with contextlib.suppress(EntryError):
        entry = parse_entry(data)
        assert entry.to_canonical() == data


IDENT = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-._:/", min_size=1, max_size=40)
HEX = st.binary(min_size=32, max_size=32).map(lambda b: hashlib.sha256(b).hexdigest())


@settings(max_examples=300)
@given(
    at=st.integers(min_value=0, max_value=(1 << 53) - 1),
    exp=st.integers(min_value=0, max_value=(1 << 53) - 1),
    jti=IDENT,
    client_id=IDENT,
    scope=st.lists(st.sampled_from(["openid", "payments", "audit", "a:b"]), max_size=4).map(
        " ".join
    ),
    details=st.one_of(st.none(), HEX),
    anchor=st.one_of(st.none(), IDENT),
)
def test_generated_token_entries_round_trip(
    at: int,
    exp: int,
    jti: str,
    client_id: str,
    scope: str,
    details: str | None,
    anchor: str | None,
) -> None:
    entry = TokenIssued(
        at=at,
        jti=jti,
        token_kind="id_token",
        client_id=client_id,
        sub=SUB,
        scope=scope,
        authorization_details=details,
        anchor_id=anchor,
        anchor_set_id=anchor,
        acr=None,
        exp=exp,
    )
    data = entry.to_canonical()
    assert parse_entry(data) == entry
    assert entry_from_mapping(dict(reversed(list(json.loads(data).items())))).to_canonical() == data
