"""Hashing helpers shared by protocol code: base64url, SHA-256 digests, constant-time compare."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

_B64URL_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_URLSAFE_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str) -> bytes:
    """Strict base64url (no padding, URL-safe alphabet only). Checked and decoded by byte
    operations in C (JWS segments and Disclosures are decoded on every credential
    verification): deleting every alphabet byte must leave nothing."""
    if not isinstance(data, str) or not data.isascii() or len(data) % 4 == 1:
        raise ValueError("not base64url")
    raw = data.encode("ascii")
    if raw.translate(None, _B64URL_ALPHABET):
        raise ValueError("not base64url")
    return binascii.a2b_base64(raw.translate(_URLSAFE_TO_STANDARD) + b"=" * (-len(raw) % 4))


def sha256_b64url(data: str | bytes) -> str:
    raw = data.encode("ascii") if isinstance(data, str) else data
    return b64url_encode(hashlib.sha256(raw).digest())


def sha256_hex(data: str | bytes) -> str:
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return hashlib.sha256(raw).hexdigest()


def secret_digest(value: str) -> str:
    """Storage key for a one-time secret (code, refresh token, request_uri): never store it raw."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison of two secrets."""
    ab = a.encode("utf-8") if isinstance(a, str) else a
    bb = b.encode("utf-8") if isinstance(b, str) else b
    return hmac.compare_digest(ab, bb)


def keyed_digest(key: bytes, *parts: str) -> str:
    """HMAC-SHA256 over ``parts`` joined unambiguously, base64url."""
    mac = hmac.new(key, digestmod=hashlib.sha256)
    for part in parts:
        encoded = part.encode("utf-8")
        mac.update(len(encoded).to_bytes(4, "big"))
        mac.update(encoded)
    return b64url_encode(mac.digest())
