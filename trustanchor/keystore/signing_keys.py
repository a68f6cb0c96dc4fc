"""Signing keys on disk under ``<keys_dir>/signing/``.

Each key is a PKCS#8 PEM file readable only by its owner, named by its kid (the RFC 7638
thumbprint). ``keys.json`` beside them records, per kid, the algorithm, when it was created, when
it was retired and whether it was generated for a demo. The newest key that is not retired signs;
retired keys stay in the JWKS for ``key_retention`` seconds so tokens they signed still verify.

Keys are parsed once when the store is opened: nothing on the request path touches the disk.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from trustanchor.jose.jwk import PrivateKey, PublicKey, public_jwk, thumbprint

SIGNING_DIR = "signing"
INDEX = "keys.json"


class KeyStoreError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    alg: str
    created_at: int
    retired_at: int | None
    demo: bool
    private_key: PrivateKey

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}


class SigningKeyStore:
    def __init__(self, keys: list[SigningKey], *, retention: int) -> None:
        self._keys = sorted(keys, key=lambda k: (k.created_at, k.kid))
        self._by_kid = {k.kid: k for k in self._keys}
        self._retention = retention

    @classmethod
    def open(cls, keys_dir: str | Path, *, retention: int) -> SigningKeyStore:
        directory = Path(keys_dir) / SIGNING_DIR
        index = _read_index(directory)
        keys: list[SigningKey] = []
        for entry in index:
            pem_path = directory / f"{entry['kid']}.pem"
            try:
                loaded = serialization.load_pem_private_key(pem_path.read_bytes(), password=None)
            except FileNotFoundError as exc:
                raise KeyStoreError(f"{pem_path}: private key file missing") from exc
            if not isinstance(loaded, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
                raise KeyStoreError(f"{pem_path}: unsupported key type")
            keys.append(
                SigningKey(
                    kid=entry["kid"],
                    alg=entry["alg"],
                    created_at=int(entry["created_at"]),
                    retired_at=entry.get("retired_at"),
                    demo=bool(entry.get("demo", False)),
                    private_key=loaded,
                )
            )
        return cls(keys, retention=retention)

    def current(self) -> SigningKey:
        active = [k for k in self._keys if k.retired_at is None]
        if not active:
            raise KeyStoreError("no active signing key: run `trustanchor keys generate`")
        return active[-1]

    def get(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def all(self) -> list[SigningKey]:
        return list(self._keys)

    def published(self, now: int) -> list[SigningKey]:
        """Keys in the JWKS: the active ones and the retired ones still within retention."""
        return [
            k for k in self._keys if k.retired_at is None or k.retired_at + self._retention > now
        ]

    def jwks(self, now: int) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in reversed(self.published(now))]}

    def verification_key(self, kid: str, now: int) -> PublicKey | None:
        key = self._by_kid.get(kid)
        if key is None or key not in self.published(now):
            return None
        return key.public_key

    @property
    def has_demo_keys(self) -> bool:
        return any(k.demo for k in self.published_or_active())

    def published_or_active(self) -> list[SigningKey]:
        return [k for k in self._keys if k.retired_at is None]


def _fits(private: PrivateKey, alg: str) -> bool:
    if alg == "ES256":
        return isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(
            private.curve, ec.SECP256R1
        )
    return alg == "EdDSA" and isinstance(private, ed25519.Ed25519PrivateKey)


def _read_index(directory: Path) -> list[dict[str, Any]]:
    path = directory / INDEX
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise KeyStoreError(f"{path}: malformed key index")
    return data


def _write_index(directory: Path, entries: list[dict[str, Any]]) -> None:
    tmp = directory / (INDEX + ".tmp")
    tmp.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, directory / INDEX)


def new_private_key(alg: str) -> PrivateKey:
    """A fresh private key for ``alg``, in memory only (see :func:`generate_key`)."""
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    if alg == "EdDSA":
        return ed25519.Ed25519PrivateKey.generate()
    raise KeyStoreError(f"unsupported signing algorithm {alg}")


def key_id(private: PrivateKey) -> str:
    """The kid a key gets: the RFC 7638 thumbprint of its public JWK."""
    return thumbprint(public_jwk(private))


def active_kids(keys_dir: str | Path) -> list[str]:
    """Kids of the keys that are not retired, oldest first (what :func:`rotate` retires)."""
    return [
        e["kid"] for e in _read_index(Path(keys_dir) / SIGNING_DIR) if e.get("retired_at") is None
    ]


def generate_key(
    keys_dir: str | Path, *, alg: str, now: int, demo: bool, private: PrivateKey | None = None
) -> str:
    """Store a new signing key (it becomes current). Returns its kid.

    ``private``: a key made beforehand with :func:`new_private_key`, so that a caller can record
    the change (by kid) before the key exists on disk; by default one is generated here."""
    directory = Path(keys_dir) / SIGNING_DIR
    if private is None:
        private = new_private_key(alg)
    elif not _fits(private, alg):
        raise KeyStoreError(f"the given key does not fit the signing algorithm {alg}")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    kid = key_id(private)
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path = directory / f"{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    entries = _read_index(directory)
    entries.append({"kid": kid, "alg": alg, "created_at": now, "retired_at": None, "demo": demo})
    _write_index(directory, entries)
    return kid


def rotate(
    keys_dir: str | Path,
    *,
    alg: str,
    now: int,
    demo: bool,
    private: PrivateKey | None = None,
    retire: Sequence[str] | None = None,
) -> tuple[str, list[str]]:
    """Store a new current key and retire the previously active ones. Returns (new, retired).

    ``private`` and ``retire`` (default: every active key) let a caller record exactly what the
    rotation will do before doing it."""
    directory = Path(keys_dir) / SIGNING_DIR
    previous = list(retire) if retire is not None else active_kids(keys_dir)
    new_kid = generate_key(keys_dir, alg=alg, now=now, demo=demo, private=private)
    entries = _read_index(directory)
    for entry in entries:
        if entry["kid"] in previous:
            entry["retired_at"] = now
    _write_index(directory, entries)
    return new_kid, previous
