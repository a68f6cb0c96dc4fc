"""Our own client key for each upstream OpenID Provider (``private_key_jwt``).

One private JWK per ``oidc`` anchor under ``<keys_dir>/upstream/<anchor-id>.private.jwk`` (mode
0600 in a 0700 directory), made by ``trustanchor init`` when missing. A key per provider, not the
token signing key: a provider that learns (or leaks) our client assertions can never replay them
at another provider, and rotating the token keys never breaks a registration at a provider. Its
public half is served at ``<issuer>/upstream/<anchor-id>/jwks.json`` for the provider's
registration. The private part is never put in an exception, a repr or a log line.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from trustanchor.digests import b64url_decode, b64url_encode
from trustanchor.jose.jwk import PrivateKey, public_jwk, thumbprint

UPSTREAM_DIR = "upstream"
SUPPORTED_ALGS = ("ES256", "RS256", "PS256")
_ANCHOR_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class UpstreamKeyError(Exception):
    """The key file is missing, unreadable or not a key for its algorithm (never names key
    material)."""


@dataclass(frozen=True, slots=True)
class UpstreamClientKey:
    anchor_id: str
    kid: str
    alg: str
    private_key: PrivateKey = field(repr=False)

    def public_jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.public_jwk()]}


def key_path(keys_dir: str | Path, anchor_id: str) -> Path:
    if not _ANCHOR_ID.fullmatch(anchor_id) or anchor_id in (".", ".."):
        raise UpstreamKeyError(f"anchor id {anchor_id!r} cannot name a key file")
    return Path(keys_dir) / UPSTREAM_DIR / f"{anchor_id}.private.jwk"


def ensure(keys_dir: str | Path, anchor_id: str, *, alg: str) -> bool:
    """Create the anchor's key when it has none; True when one was created. An existing key of
    another algorithm is an error (the provider registered the old one)."""
    path = key_path(keys_dir, anchor_id)
    if path.exists():
        existing = load(keys_dir, anchor_id)
        if existing.alg != alg:
            raise UpstreamKeyError(
                f"{path} holds a {existing.alg} key but the anchor needs {alg}: move it away to "
                "make a new one (and register the new JWKS at the provider)"
            )
        return False
    private = _new_key(alg)
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(_private_jwk(private, alg), fh)
        fh.write("\n")
    return True


def load(keys_dir: str | Path, anchor_id: str) -> UpstreamClientKey:
    path = key_path(keys_dir, anchor_id)
    try:
        jwk = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise UpstreamKeyError(f"{path}: no key for upstream anchor {anchor_id}") from exc
    except (OSError, ValueError):
        raise UpstreamKeyError(f"{path}: unreadable key file") from None  # no key bytes in a trace
    if not isinstance(jwk, dict) or jwk.get("alg") not in SUPPORTED_ALGS:
        raise UpstreamKeyError(f"{path}: not a private JWK of a supported algorithm")
    try:
        private = _import_private(jwk)
    except (KeyError, TypeError, ValueError):
        raise UpstreamKeyError(f"{path}: the private JWK is malformed") from None
    alg = str(jwk["alg"])
    if (alg == "ES256") != isinstance(private, ec.EllipticCurvePrivateKey):
        raise UpstreamKeyError(f"{path}: the key does not fit {alg}")
    return UpstreamClientKey(anchor_id, thumbprint(public_jwk(private)), alg, private)


def _new_key(alg: str) -> PrivateKey:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg in ("RS256", "PS256"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise UpstreamKeyError(f"unsupported client assertion algorithm {alg}")


def _int(value: int, size: int | None = None) -> str:
    length = size if size is not None else max(1, (value.bit_length() + 7) // 8)
    return b64url_encode(value.to_bytes(length, "big"))


def _private_jwk(private: PrivateKey, alg: str) -> dict[str, str]:
    public = public_jwk(private)
    kid = thumbprint(public)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        d = _int(private.private_numbers().private_value, 32)
        return {**public, "d": d, "kid": kid, "alg": alg, "use": "sig"}
    assert isinstance(private, rsa.RSAPrivateKey)
    n = private.private_numbers()
    return {
        **public,
        "d": _int(n.d),
        "p": _int(n.p),
        "q": _int(n.q),
        "dp": _int(n.dmp1),
        "dq": _int(n.dmq1),
        "qi": _int(n.iqmp),
        "kid": kid,
        "alg": alg,
        "use": "sig",
    }


def _num(jwk: dict[str, Any], name: str) -> int:
    value = jwk[name]
    if not isinstance(value, str):
        raise TypeError(name)
    return int.from_bytes(b64url_decode(value), "big")


def _import_private(jwk: dict[str, Any]) -> PrivateKey:
    if jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
        private = ec.derive_private_key(_num(jwk, "d"), ec.SECP256R1())
        numbers = private.public_key().public_numbers()
        if numbers.x != _num(jwk, "x") or numbers.y != _num(jwk, "y"):
            raise ValueError("public part does not match")
        return private
    if jwk.get("kty") == "RSA":
        public = rsa.RSAPublicNumbers(_num(jwk, "e"), _num(jwk, "n"))
        return rsa.RSAPrivateNumbers(
            _num(jwk, "p"),
            _num(jwk, "q"),
            _num(jwk, "d"),
            _num(jwk, "dp"),
            _num(jwk, "dq"),
            _num(jwk, "qi"),
            public,
        ).private_key()
    raise ValueError("unsupported key type")
