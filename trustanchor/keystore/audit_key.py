"""The audit log's Ed25519 checkpoint signing key, on disk under ``<keys_dir>/audit/``.

Kept apart from the token signing keys (``signing_keys.py``) on purpose: a different purpose,
lifetime and audience (auditors pin it, possibly for years), and compromising one must not let
anyone forge the other. Same style: one PKCS#8 PEM per key, mode 0600 in a 0700 directory, and
an index ``keys.json`` with public metadata only (key name, key ID, vkey, created/retired).

The key *name* is the log's origin (C2SP tlog-checkpoint: the log's key name SHOULD match the
origin line), so every key of one log carries the same name; a rotation adds a key with a new
key ID and retires the previous one. Old vkeys stay in the index so auditors can verify old
checkpoints. Private material is never put in an exception, a repr or a log line.

A key added by a rotation (``services/key_changes.rotate_audit_key``) records where the log
introduced it: ``introduced_index``, the leaf index of the ``operator_change audit_vkey
<digest(vkey)> generated`` entry, and ``introduced_size``, the size of a checkpoint signed by
the previous key that covers it. ``GET /audit/keys`` serves that checkpoint with the entry's
inclusion proof, so an auditor who holds only the previous key can follow to the new one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from trustanchor.audit.note import Ed25519Signer, Ed25519Verifier, NoteError, valid_key_name
from trustanchor.keystore.signing_keys import KeyStoreError

AUDIT_DIR = "audit"
INDEX = "keys.json"


@dataclass(frozen=True, slots=True)
class AuditKeyInfo:
    """Public facts about one audit key, current or retired (what auditors are given)."""

    name: str
    key_id: int
    vkey: str
    created_at: int
    retired_at: int | None
    introduced_index: int | None = None  # the audit_vkey entry introducing this key
    introduced_size: int | None = None  # a checkpoint by the previous key covering it

    @property
    def key_id_hex(self) -> str:
        return f"{self.key_id:08x}"

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier.from_vkey(self.vkey)


@dataclass(frozen=True, slots=True)
class AuditKey:
    """The current audit key. Satisfies :class:`trustanchor.audit.note.Signer`."""

    name: str
    key_id: int
    created_at: int
    private_key: ed25519.Ed25519PrivateKey = field(repr=False)

    @property
    def verifier_key(self) -> str:
        return self.verifier().vkey

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.private_key.public_key())

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def _directory(keys_dir: str | Path) -> Path:
    return Path(keys_dir) / AUDIT_DIR


def _read_index(directory: Path) -> list[dict[str, Any]]:
    path = directory / INDEX
    if not path.exists():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise KeyStoreError(f"{path}: malformed audit key index")
    return data


def _write_index(directory: Path, entries: list[dict[str, Any]]) -> None:
    tmp = directory / (INDEX + ".tmp")
    tmp.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, directory / INDEX)


def _info(entry: dict[str, Any], directory: Path) -> AuditKeyInfo:
    try:
        info = AuditKeyInfo(
            name=str(entry["name"]),
            key_id=int(str(entry["key_id"]), 16),
            vkey=str(entry["vkey"]),
            created_at=int(entry["created_at"]),
            retired_at=None if entry.get("retired_at") is None else int(entry["retired_at"]),
            introduced_index=_optional_int(entry.get("introduced_index")),
            introduced_size=_optional_int(entry.get("introduced_size")),
        )
        verifier = info.verifier()
    except (KeyError, ValueError, TypeError, NoteError) as exc:
        raise KeyStoreError(f"{directory / INDEX}: malformed audit key entry") from exc
    if verifier.name != info.name or verifier.key_id != info.key_id:
        raise KeyStoreError(f"{directory / INDEX}: vkey does not match name and key ID")
    return info


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def index_fingerprint(keys_dir: str | Path) -> tuple[int, int, int] | None:
    """(inode, size, mtime ns) of the audit key index, None without one: what a running log
    compares to notice a rotation (the index is replaced atomically)."""
    try:
        st = os.stat(_directory(keys_dir) / INDEX)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def list_audit_keys(keys_dir: str | Path) -> list[AuditKeyInfo]:
    """Every audit key ever generated, oldest first (public data only)."""
    directory = _directory(keys_dir)
    return [_info(entry, directory) for entry in _read_index(directory)]


def new_audit_key(keys_dir: str | Path, *, name: str) -> tuple[ed25519.Ed25519PrivateKey, int]:
    """A fresh audit key for ``name`` and its key ID, in memory only, whose key ID no key of
    this directory has; stored by :func:`generate_audit_key` (after the caller recorded it)."""
    if not valid_key_name(name):
        raise KeyStoreError(f"invalid audit key name {name!r} (no spaces, no '+', non-empty)")
    existing = list_audit_keys(keys_dir)
    if any(info.name != name for info in existing):
        raise KeyStoreError("the audit key name is the log origin and cannot change")
    taken = {info.key_id for info in existing}
    while True:  # a 32-bit key ID collision under one name is possible in principle only
        private = ed25519.Ed25519PrivateKey.generate()
        signer = Ed25519Signer(name, private)
        if signer.key_id not in taken:
            return private, signer.key_id


def generate_audit_key(
    keys_dir: str | Path,
    *,
    name: str,
    now: int,
    private: ed25519.Ed25519PrivateKey | None = None,
    introduced: tuple[int, int] | None = None,
) -> AuditKeyInfo:
    """Store a new audit key named ``name`` (the log origin) and make it current; a previous
    current key is retired at ``now``. All keys of one directory share the name. ``private``:
    a key from :func:`new_audit_key`; by default one is generated here. ``introduced``: the
    (leaf index, checkpoint size) of the log's entry introducing it (see the module docstring).
    """
    if not valid_key_name(name):
        raise KeyStoreError(f"invalid audit key name {name!r} (no spaces, no '+', non-empty)")
    directory = _directory(keys_dir)
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    entries = _read_index(directory)
    existing = [_info(entry, directory) for entry in entries]
    if any(info.name != name for info in existing):
        raise KeyStoreError("the audit key name is the log origin and cannot change")
    if private is None:
        private, _key_id = new_audit_key(keys_dir, name=name)
    signer = Ed25519Signer(name, private)
    if signer.key_id in {info.key_id for info in existing}:
        raise KeyStoreError("an audit key with this key ID exists already")
    key_id_hex = f"{signer.key_id:08x}"
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(directory / f"{key_id_hex}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    for entry in entries:
        if entry.get("retired_at") is None:
            entry["retired_at"] = now
    vkey = signer.verifier().vkey
    added: dict[str, Any] = {
        "name": name,
        "key_id": key_id_hex,
        "vkey": vkey,
        "created_at": now,
        "retired_at": None,
    }
    if introduced is not None:
        added["introduced_index"], added["introduced_size"] = introduced
    entries.append(added)
    _write_index(directory, entries)
    return _info(added, directory)


def load_audit_key(keys_dir: str | Path) -> AuditKey:
    """The current audit key, checked against its index entry (a swapped PEM file is refused)."""
    directory = _directory(keys_dir)
    active = [info for info in list_audit_keys(keys_dir) if info.retired_at is None]
    if not active:
        raise KeyStoreError(f"{directory}: no current audit key")
    if len(active) > 1:
        raise KeyStoreError(f"{directory / INDEX}: more than one current audit key")
    info = active[0]
    path = directory / f"{info.key_id_hex}.pem"
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise KeyStoreError(f"{path}: audit private key file missing") from exc
    except ValueError:
        raise KeyStoreError(f"{path}: unreadable audit private key") from None
    if not isinstance(loaded, ed25519.Ed25519PrivateKey):
        raise KeyStoreError(f"{path}: the audit key must be Ed25519")
    key = AuditKey(info.name, info.key_id, info.created_at, loaded)
    if key.verifier_key != info.vkey:
        raise KeyStoreError(f"{path}: private key does not match the published vkey")
    return key
