"""Strict JWK handling: public keys only, sane sizes, points on the curve, RFC 7638 thumbprints."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from trustanchor.digests import b64url_decode, b64url_encode
from trustanchor.jose.errors import JoseError

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | rsa.RSAPublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey

PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_CURVES: dict[str, tuple[ec.EllipticCurve, int]] = {
    "P-256": (ec.SECP256R1(), 32),
    "P-384": (ec.SECP384R1(), 48),
    "P-521": (ec.SECP521R1(), 66),
}
_ALG_FOR_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}
MIN_RSA_BITS = 2048
MAX_RSA_BITS = 4096


def public_key_from_jwk(jwk: Any) -> PublicKey:
    """Import a public JWK, refusing private material, symmetric keys, odd sizes and bad points."""
    if not isinstance(jwk, dict):
        raise JoseError("invalid_jwk", "not a JSON object")
    if PRIVATE_MEMBERS & jwk.keys():
        raise JoseError("invalid_jwk", "contains private key material")
    kty = jwk.get("kty")
    try:
        if kty == "EC":
            return _ec_key(jwk)
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519":
                raise JoseError("invalid_jwk", "unsupported OKP curve")
            raw = _member(jwk, "x")
            if len(raw) != 32:
                raise JoseError("invalid_jwk", "bad Ed25519 key length")
            return ed25519.Ed25519PublicKey.from_public_bytes(raw)
        if kty == "RSA":
            n_raw = _member(jwk, "n")
            e_raw = _member(jwk, "e")
            if len(n_raw) * 8 > MAX_RSA_BITS + 8 or len(e_raw) > 4:
                raise JoseError("invalid_jwk", "RSA key too large")
            n = int.from_bytes(n_raw, "big")
            e = int.from_bytes(e_raw, "big")
            if not MIN_RSA_BITS <= n.bit_length() <= MAX_RSA_BITS:
                raise JoseError("invalid_jwk", "RSA modulus must be 2048 to 4096 bits")
            if e < 3 or e % 2 == 0:
                raise JoseError("invalid_jwk", "bad RSA exponent")
            return rsa.RSAPublicNumbers(e, n).public_key()
    except JoseError:
        raise
    except ValueError as exc:
        raise JoseError("invalid_jwk", "key material rejected") from exc
    raise JoseError("invalid_jwk", "unsupported kty")


def _member(jwk: dict[str, Any], name: str) -> bytes:
    value = jwk.get(name)
    if not isinstance(value, str) or len(value) > 1024:
        raise JoseError("invalid_jwk", f"member {name} missing or malformed")
    try:
        return b64url_decode(value)
    except ValueError as exc:
        raise JoseError("invalid_jwk", f"member {name} is not base64url") from exc


# Imported EC public keys by their exact (crv, x, y) text: a wallet's holder key (SD-JWT VC
# ``cnf.jwk``) or DPoP key is imported on every proof it signs, and the import (base64url,
# the point-on-curve check) is a pure function of those three strings. Only keys that passed
# every check are stored, so a hit is the verdict the import would give again; a key object
# is immutable and knows nothing of where it came from (which anchor, which request), so
# nothing but the key material decides what it verifies. Bounded: emptied when full (a flood
# of new keys only makes imports uncached). dict get/set/clear are atomic under the GIL.
EC_KEY_CACHE_SIZE = 1024
_ec_keys: dict[tuple[str, str, str], ec.EllipticCurvePublicKey] = {}


def _ec_key(jwk: dict[str, Any]) -> ec.EllipticCurvePublicKey:
    crv = jwk.get("crv")
    if not isinstance(crv, str) or crv not in _CURVES:
        raise JoseError("invalid_jwk", "unsupported curve")
    x_text, y_text = jwk.get("x"), jwk.get("y")
    if isinstance(x_text, str) and isinstance(y_text, str):
        cached = _ec_keys.get((crv, x_text, y_text))
        if cached is not None:
            return cached
    curve, size = _CURVES[crv]
    x = _member(jwk, "x")
    y = _member(jwk, "y")
    if len(x) != size or len(y) != size:
        raise JoseError("invalid_jwk", "bad coordinate length")
    # Raises ValueError for points that are not on the curve.
    key = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), curve
    ).public_key()
    if len(_ec_keys) >= EC_KEY_CACHE_SIZE:
        _ec_keys.clear()
    _ec_keys[(crv, jwk["x"], jwk["y"])] = key
    return key


def clear_key_cache() -> None:
    """Forget every imported EC key (tests; benchmarks of the uncached import)."""
    _ec_keys.clear()


def public_jwk(key: PublicKey | PrivateKey) -> dict[str, str]:
    """The public JWK (required members only) of a key."""
    public = key.public_key() if hasattr(key, "public_key") else key
    if isinstance(public, ec.EllipticCurvePublicKey):
        numbers = public.public_numbers()
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}[public.curve.name]
        size = _CURVES[crv][1]
        return {
            "kty": "EC",
            "crv": crv,
            "x": b64url_encode(numbers.x.to_bytes(size, "big")),
            "y": b64url_encode(numbers.y.to_bytes(size, "big")),
        }
    if isinstance(public, ed25519.Ed25519PublicKey):
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": b64url_encode(raw)}
    if isinstance(public, rsa.RSAPublicKey):
        rn = public.public_numbers()
        return {
            "kty": "RSA",
            "n": b64url_encode(rn.n.to_bytes((rn.n.bit_length() + 7) // 8, "big")),
            "e": b64url_encode(rn.e.to_bytes((rn.e.bit_length() + 7) // 8, "big")),
        }
    raise JoseError("invalid_jwk", "unsupported key type")


_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise JoseError("invalid_jwk", "cannot compute thumbprint")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url_encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def key_fits_alg(key: PublicKey, alg: str) -> bool:
    """Whether ``alg`` is the algorithm this key is meant for (no cross-type confusion)."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        crv = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}.get(key.curve.name)
        return crv is not None and _ALG_FOR_CURVE[crv] == alg
    if isinstance(key, ed25519.Ed25519PublicKey):
        return alg in ("EdDSA", "Ed25519")
    if isinstance(key, rsa.RSAPublicKey):
        return alg in ("PS256", "PS384", "PS512", "RS256", "RS384", "RS512")
    return False


def keys_from_jwks(jwks: Any) -> dict[str, PublicKey]:
    """Import every key of a JWKS document. Keys without a kid are named by their thumbprint."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise JoseError("invalid_jwks", "not a JWKS document")
    if len(jwks["keys"]) > 32:
        raise JoseError("invalid_jwks", "too many keys")
    result: dict[str, PublicKey] = {}
    for entry in jwks["keys"]:
        if not isinstance(entry, dict):
            raise JoseError("invalid_jwks", "key is not an object")
        if entry.get("use", "sig") != "sig":
            continue
        key = public_key_from_jwk(entry)
        kid = entry.get("kid")
        result[kid if isinstance(kid, str) and kid else thumbprint(entry)] = key
    return result
