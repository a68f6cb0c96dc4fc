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


def generate_key(keys_dir: str | Path, *, alg: str, now: int, demo: bool) -> str:
    """Create a new signing key (it becomes current). Returns its kid."""
    directory = Path(keys_dir) / SIGNING_DIR
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    private: PrivateKey
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    else:
        raise KeyStoreError(f"unsupported signing algorithm {alg}")
    kid = thumbprint(public_jwk(private))
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


def rotate(keys_dir: str | Path, *, alg: str, now: int, demo: bool) -> tuple[str, list[str]]:
    """Generate a new current key and retire the previously active ones. Returns (new, retired)."""
    directory = Path(keys_dir) / SIGNING_DIR
    previous = [e["kid"] for e in _read_index(directory) if e.get("retired_at") is None]
    new_kid = generate_key(keys_dir, alg=alg, now=now, demo=demo)
    entries = _read_index(directory)
    for entry in entries:
        if entry["kid"] in previous:
            entry["retired_at"] = now
    _write_index(directory, entries)
    return new_kid, previous
