"""A direct compact-JWS encoder for the token endpoint's hot path.

PyJWT's ``jwt.encode`` copies the claims, builds and serialises the header, looks the algorithm
up and prepares the key on every call; ``bench/jws_signing.py`` measures what that costs next to
this encoder and the bare pyca signature. :class:`CompactSigner` is bound to one private key: the
protected header (exactly ``alg``, ``kid``, ``typ``) is serialised and base64url-encoded once per
``typ`` and kept, so a token costs one ``json.dumps`` of the claims, two base64url encodings and
the signature.

Only the algorithms the signing keystore issues keys for are supported (``ES256`` with a P-256
key, ``EdDSA`` with an Ed25519 key); anything else is refused when the signer is made. The claims
are serialised as compact JSON (``separators=(",", ":")``) in UTF-8 without ASCII escaping, in the
dict's insertion order; NaN and infinities are refused (they are not JSON). ``trustanchor.jose.jws
.sign`` (PyJWT) stays the general-purpose signer for every other caller.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PrivateKey

SUPPORTED_ALGS = frozenset({"ES256", "EdDSA"})
_ES256_SIZE = 32  # bytes of r and of s for P-256 (RFC 7518 section 3.4)
_ECDSA_SHA256 = ec.ECDSA(hashes.SHA256())
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)
_urlsafe_b64encode = base64.urlsafe_b64encode


def b64url(data: bytes) -> bytes:
    """base64url without padding (RFC 7515 section 2), as ASCII bytes."""
    return _urlsafe_b64encode(data).rstrip(b"=")


def encode_json(value: Any) -> bytes:
    """Compact JSON in UTF-8 (no ASCII escaping); NaN and infinities are refused."""
    try:
        return _JSON.encode(value).encode("utf-8")
    except (TypeError, ValueError) as exc:  # unserialisable value, NaN, lone surrogate
        raise JoseError("invalid_payload", "claims are not serialisable as JSON") from exc


class CompactSigner:
    """Signs compact JWS with one private key, the protected header cached per ``typ``."""

    __slots__ = ("_alg", "_headers", "_key", "_kid", "_sign")

    def __init__(self, key: PrivateKey, *, alg: str, kid: str) -> None:
        if alg == "ES256":
            if not (
                isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP256R1)
            ):
                raise JoseError("unsupported", "ES256 needs a P-256 private key")
            ec_key = key

            def sign(data: bytes) -> bytes:
                r, s = decode_dss_signature(ec_key.sign(data, _ECDSA_SHA256))
                return r.to_bytes(_ES256_SIZE, "big") + s.to_bytes(_ES256_SIZE, "big")

        elif alg == "EdDSA":
            if not isinstance(key, ed25519.Ed25519PrivateKey):
                raise JoseError("unsupported", "EdDSA needs an Ed25519 private key")
            sign = key.sign
        else:
            raise JoseError("unsupported", f"alg {alg!r} is not supported by the direct encoder")
        if not isinstance(kid, str) or not kid:
            raise JoseError("unsupported", "kid must be a non-empty string")
        self._key = key
        self._alg = alg
        self._kid = kid
        self._sign = sign
        self._headers: dict[str, bytes] = {}

    @property
    def alg(self) -> str:
        return self._alg

    @property
    def kid(self) -> str:
        return self._kid

    def header_segment(self, typ: str) -> bytes:
        """The encoded protected header for ``typ`` followed by ``.`` (made once, then kept)."""
        segment = self._headers.get(typ)
        if segment is None:
            header = {"alg": self._alg, "kid": self._kid, "typ": typ}
            segment = b64url(encode_json(header)) + b"."
            self._headers[typ] = segment
        return segment

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        """The compact JWS of ``claims`` (a JSON object) with header ``{alg, kid, typ}``."""
        if not isinstance(claims, Mapping):
            raise JoseError("invalid_payload", "claims must be a JSON object")
        payload = claims if isinstance(claims, dict) else dict(claims)
        signing_input = self.header_segment(typ) + b64url(encode_json(payload))
        return (signing_input + b"." + b64url(self._sign(signing_input))).decode("ascii")


__all__ = ["SUPPORTED_ALGS", "CompactSigner", "b64url", "encode_json"]
