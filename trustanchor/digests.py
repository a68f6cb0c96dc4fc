"""Hashing helpers shared by protocol code: base64url, SHA-256 digests, constant-time compare."""

from __future__ import annotations

import base64
import hashlib
import hmac


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(data: str) -> bytes:
    """Strict base64url (no padding, URL-safe alphabet only)."""
    if not isinstance(data, str) or "=" in data or not data.isascii():
        raise ValueError("not base64url")
    for ch in data:
        if not (ch.isalnum() or ch in "-_"):
            raise ValueError("not base64url")
    if len(data) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


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
