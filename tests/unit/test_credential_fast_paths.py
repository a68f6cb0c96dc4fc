"""The cheaper paths of credential verification (issue 13, second pass) give the verdicts of
the ones they replaced: ``strict_json.loads`` straight from the C scanner and its duplicate
member hook against the earlier ``JSONDecoder.decode`` with a walking hook (under
hypothesis, on documents with repeated members, whitespace, trailing data and arbitrary
text); ``jws.der_signature`` against ``encode_dss_signature``; the EC key import cache against
the uncached import; the evidence time against ``strftime``; the evidence digest and
``sd_hash`` computed in one pass against the separate hashes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor import strict_json
from trustanchor.anchors.base import AnchorFailure
from trustanchor.anchors.sd_jwt_vc import _iso8601
from trustanchor.digests import b64url_decode, b64url_encode
from trustanchor.echo import echoable
from trustanchor.jose import jwk
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jws import der_signature
from trustanchor.strict_json import StrictJSONError

# -- strict JSON ------------------------------------------------------------------------------


def _walking_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:  # the key named only when echoable (attack report F2)
            raise StrictJSONError(
                f"duplicate member {key!r}" if echoable(key) else "duplicate member"
            )
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise StrictJSONError(f"non-standard number {name}")


_EARLIER = json.JSONDecoder(object_pairs_hook=_walking_object, parse_constant=_reject_constant)


def earlier_loads(data: str | bytes, *, max_depth: int = 16, max_bytes: int = 1 << 20) -> Any:
    """strict_json.loads as it was before this change (decode with a walking hook)."""
    if len(data) > max_bytes:
        raise StrictJSONError("JSON document too large")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise StrictJSONError("JSON is not UTF-8") from exc
    strict_json._check_depth(data, max_depth)
    try:
        return _EARLIER.decode(data)
    except StrictJSONError:
        raise
    except (ValueError, RecursionError) as exc:
        raise StrictJSONError("malformed JSON") from exc


def outcome(loads: Any, data: str | bytes, max_depth: int) -> tuple[str, str]:
    try:
        return ("value", repr(loads(data, max_depth=max_depth)))  # repr: member order too
    except StrictJSONError as exc:
        return ("refused", str(exc))


_WHITESPACE = st.sampled_from(["", " ", "\n", "\t", "\r\n ", "  "])
_KEYS = st.sampled_from(["a", "b", "_sd", "...", "", "é", "\\u0061", '\\"'])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
).map(json.dumps)
_RAW_SCALARS = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "1e999", "01", "1.", "tru", '"\\ud800"']
)


def _members(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """An object's text from (key, value) pairs, keys possibly repeated, with whitespace."""
    pair = st.tuples(_KEYS, children, _WHITESPACE)
    return st.lists(pair, max_size=5).map(
        lambda pairs: "{" + ",".join(f'{w}"{k}"{w}:{w}{v}' for k, v, w in pairs) + "}"
    )


_DOCUMENTS = st.recursive(
    st.one_of(_SCALARS, _RAW_SCALARS),
    lambda children: st.one_of(
        _members(children),
        st.lists(children, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
    ),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None)
@given(
    _WHITESPACE,
    _DOCUMENTS,
    _WHITESPACE,
    st.sampled_from(["", "x", "{}", ",", "]", '"a"']),
    st.integers(1, 6),
    st.booleans(),
)
def test_strict_json_keeps_its_verdicts_on_documents(
    before: str, document: str, after: str, extra: str, max_depth: int, as_bytes: bool
) -> None:
    text = before + document + after + extra
    data: str | bytes = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert outcome(strict_json.loads, data, max_depth) == outcome(earlier_loads, data, max_depth)


@settings(max_examples=600, deadline=None)
@given(
    st.text(alphabet='{}[]":,0123456789.eE+-nultrfasNIiy \t\n\\ab', max_size=40), st.integers(1, 8)
)
def test_strict_json_keeps_its_verdicts_on_arbitrary_text(text: str, max_depth: int) -> None:
    assert outcome(strict_json.loads, text, max_depth) == outcome(earlier_loads, text, max_depth)


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ('{"a":1,"b":2,"a":3}', "duplicate member 'a'"),
        ('{"a":{"b":1,"b":1}}', "duplicate member 'b'"),
        ('[{"x":1,"y":2,"y":3,"x":4}]', "duplicate member 'y'"),
        (' {"a":1,"a":2}', "duplicate member 'a'"),
        ('{"a\\n2026":1,"a\\n2026":2}', "duplicate member"),
        ('{"' + "k" * 41 + '":1,"' + "k" * 41 + '":2}', "duplicate member"),
        ('{"a":1} {"a":1,"a":2}', "malformed JSON"),
        ('{"a":NaN}', "non-standard number NaN"),
        ("[[[[[1]]]]]", "JSON nested too deeply"),
        ("", "malformed JSON"),
        ('{"a":1}x', "malformed JSON"),
    ],
)
def test_strict_json_refusals_are_named_as_before(text: str, refusal: str) -> None:
    with pytest.raises(StrictJSONError) as caught:
        strict_json.loads(text, max_depth=4)
    assert str(caught.value) == refusal


def test_strict_json_accepts_surrounding_whitespace_as_before() -> None:
    assert strict_json.loads(' \n{"a": [1, 2]}\t ') == {"a": [1, 2]}


# -- DER signatures ---------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([32, 48, 66]), st.data())
def test_der_signature_is_encode_dss_signature(size: int, data: st.DataObject) -> None:
    part = st.one_of(
        st.binary(min_size=size, max_size=size),
        st.integers(0, size).flatmap(
            lambda zeros: st.binary(min_size=size - zeros, max_size=size - zeros).map(
                lambda rest: b"\0" * zeros + rest
            )
        ),
        st.sampled_from([b"\0" * size, b"\xff" * size, b"\x80" + b"\0" * (size - 1)]),
    )
    r, s = data.draw(part), data.draw(part)
    expected = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
    assert der_signature(r + s, size) == expected


# -- the EC key import cache ------------------------------------------------------------------


def _ec_jwk(curve: ec.EllipticCurve | None = None) -> dict[str, str]:
    private = ec.generate_private_key(curve or ec.SECP256R1())
    return jwk.public_jwk(private.public_key())


def _import(value: Any) -> tuple[str, Any]:
    try:
        key = jwk.public_key_from_jwk(value)
    except JoseError as exc:
        return ("refused", exc.detail)
    return ("key", key.public_numbers())  # type: ignore[union-attr]


def test_a_cached_key_is_the_key_the_import_gives() -> None:
    jwk.clear_key_cache()
    value = _ec_jwk()
    first = jwk.public_key_from_jwk(value)
    again = jwk.public_key_from_jwk(dict(value))
    assert again is first
    assert again.public_numbers() == first.public_numbers()  # type: ignore[union-attr]


def test_the_cache_never_skips_the_checks_before_the_material() -> None:
    jwk.clear_key_cache()
    value = _ec_jwk()
    jwk.public_key_from_jwk(value)
    private = dict(value, d=b64url_encode(b"\x01" * 32))
    with pytest.raises(JoseError, match="private"):
        jwk.public_key_from_jwk(private)
    for other in ({**value, "kty": "OKP"}, {**value, "kty": "RSA"}, {**value, "crv": "P-384"}):
        with pytest.raises(JoseError):
            jwk.public_key_from_jwk(other)


def test_refused_keys_are_not_cached() -> None:
    jwk.clear_key_cache()
    value = _ec_jwk()
    y = bytearray(b64url_decode(value["y"]))
    y[-1] ^= 1  # no longer on the curve
    off_curve = dict(value, y=b64url_encode(bytes(y)))
    for _ in range(2):
        with pytest.raises(JoseError):
            jwk.public_key_from_jwk(off_curve)
    assert len(jwk._ec_keys) == 0


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_cold_and_warm_imports_agree(data: st.DataObject) -> None:
    base = _ec_jwk(data.draw(st.sampled_from([ec.SECP256R1(), ec.SECP384R1()])))
    mutated = dict(base)
    member = data.draw(st.sampled_from(["x", "y", "crv", None]))
    if member is not None:
        mutated[member] = data.draw(
            st.one_of(
                st.sampled_from(["P-256", "P-384", "P-521", "", "AA", base["x"], base["y"]]),
                st.text(alphabet="ABCDEFabcdef0123456789-_=+/", max_size=70),
            )
        )
    jwk.clear_key_cache()
    cold = _import(mutated)
    warm = _import(mutated)
    assert cold == warm
    jwk.clear_key_cache()
    jwk.public_key_from_jwk(base)
    assert _import(mutated) == cold  # a cached neighbour changes nothing either


def test_the_cache_is_bounded() -> None:
    jwk.clear_key_cache()
    for _ in range(jwk.EC_KEY_CACHE_SIZE + 5):
        jwk.public_key_from_jwk(_ec_jwk())
        assert len(jwk._ec_keys) <= jwk.EC_KEY_CACHE_SIZE
    jwk.clear_key_cache()


# -- evidence time ----------------------------------------------------------------------------


def _earlier_iso8601(epoch: int) -> str:
    try:
        return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "refused"


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.integers(-62_135_596_900, 253_402_300_900),
        st.integers(-30_610_224_100, -30_610_223_900),  # the year 1000 boundary
        st.integers(),
    )
)
def test_evidence_time_is_strftime(epoch: int) -> None:
    try:
        ours = _iso8601(epoch)
    except AnchorFailure as exc:
        assert exc.reason == "malformed_credential"
        ours = "refused"
    assert ours == _earlier_iso8601(epoch)
