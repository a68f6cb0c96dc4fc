"""Signing keys on disk under ``<keys_dir>/signing/``.

Each key is a PKCS#8 PEM file readable only by its owner, named by its kid (the RFC 7638
thumbprint). ``keys.json`` beside them records, per kid, the algorithm, when it was created (from
then on it is published in the JWKS), from when it signs (``active_from``; an index written
before it existed means "from creation"), when it was retired (it stops signing at that instant,
which may lie in the future) and whether it was generated for a demo.

Which key signs is a function of time: at instant ``t`` the signing key is, among the keys whose
``active_from <= t`` and which are not retired at ``t``, the one that started signing last.
Every worker computes the same answer from the same index and its clock, so a rotation switches
all of them at the same instant, with no signal between processes. A rotation
(``rotate(..., activate_at=now + tokens.key_activation_delay)``) publishes the new key at once
and schedules both its start and the old keys' retirement at the activation instant: relying
parties that cache the JWKS (the ledger module for ``JWKS_MAX_AGE`` seconds, HTTP caches for the
``/jwks`` answer's ``max-age``) already hold the new key when the first token it signs reaches
them. Retired keys stay in the JWKS for ``key_retention`` seconds so tokens they signed verify.

Running workers pick up a changed index without a restart. Why the file and not the database:
the private keys can only live on disk (mode 0600), so the index beside them is the one record
that cannot disagree with the PEM files; it is replaced atomically (``os.replace``) after the PEM
file is written, so a reader sees the old index or the new one, never a key without its file. A
store re-reads it when its ``stat`` (inode, size, mtime) changed, checked at most once per
second of the injected clock: the token path's cost is one comparison of two integers, plus one
``stat`` per second per worker. Keys already parsed are kept (a PEM file is parsed once) and a
PEM file whose key does not have its kid is refused. A reload that fails (a half-copied key
directory) keeps the keys in use, logs the reason and is tried again a second later.

Several nodes: the key directory is copied to every node; a copy that arrives before the
activation instant changes nothing for clients (each node publishes the new key as soon as it has
it, and all switch by their clocks at the same instant).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from trustanchor.clock import Clock, SystemClock
from trustanchor.jose.jwk import PrivateKey, PublicKey, public_jwk, thumbprint

SIGNING_DIR = "signing"
INDEX = "keys.json"
_NEVER = 2**63  # an instant after every other: "no further change of the signing key"

log = logging.getLogger("trustanchor.keys")


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
    active_from: int | None = None  # None: signs from created_at

    @property
    def signs_from(self) -> int:
        return self.created_at if self.active_from is None else self.active_from

    def signs_at(self, now: int) -> bool:
        """Whether this key may sign at ``now``: started, and not retired yet."""
        return self.signs_from <= now and (self.retired_at is None or now < self.retired_at)

    @property
    def public_key(self) -> PublicKey:
        return self.private_key.public_key()

    def public_jwk(self) -> dict[str, str]:
        return {**public_jwk(self.private_key), "kid": self.kid, "alg": self.alg, "use": "sig"}


_Fingerprint = tuple[int, int, int]  # inode, size, mtime (ns) of keys.json


@dataclass(frozen=True, slots=True)
class _Snapshot:
    keys: tuple[SigningKey, ...]  # oldest first
    by_kid: dict[str, SigningKey]
    fingerprint: _Fingerprint | None


class SigningKeyStore:
    """The keys of one key directory, as of the last (re)load; see the module docstring."""

    def __init__(
        self,
        keys: list[SigningKey],
        *,
        retention: int,
        clock: Clock | None = None,
        directory: Path | None = None,
        fingerprint: _Fingerprint | None = None,
    ) -> None:
        self._retention = retention
        self._clock = clock or SystemClock()
        self._directory = directory  # None: a fixed set of keys, never reloaded
        self._snapshot = _snapshot(keys, fingerprint)
        self._checked_at = self._clock.now()
        self._reload_lock = threading.Lock()
        # (snapshot, key, from, until): the signing key of that snapshot for [from, until)
        self._signing: tuple[_Snapshot, SigningKey, int, int] | None = None

    @classmethod
    def open(
        cls, keys_dir: str | Path, *, retention: int, clock: Clock | None = None
    ) -> SigningKeyStore:
        directory = Path(keys_dir) / SIGNING_DIR
        fingerprint, keys = _load(directory, {})
        return cls(
            keys, retention=retention, clock=clock, directory=directory, fingerprint=fingerprint
        )

    # --- reloading ------------------------------------------------------------------------------

    def _fresh(self, now: int) -> _Snapshot:
        """The current snapshot, after at most one ``stat`` of the index per second."""
        if now != self._checked_at and self._directory is not None:
            self._checked_at = now
            self.reload_if_changed()
        return self._snapshot

    def reload_if_changed(self) -> bool:
        """Re-read the index if it changed on disk; True when the keys were replaced. A reload
        that fails keeps the keys in use (logged; tried again on the next check)."""
        directory = self._directory
        if directory is None:
            return False
        try:
            fingerprint = _fingerprint(directory)
        except OSError as exc:
            log.warning("signing keys: cannot stat %s: %s", directory / INDEX, exc.strerror)
            return False
        if fingerprint == self._snapshot.fingerprint:
            return False
        with self._reload_lock:
            previous = self._snapshot
            if fingerprint == previous.fingerprint:  # another thread reloaded meanwhile
                return False
            try:
                loaded_fingerprint, keys = _load(directory, previous.by_kid)
            except (KeyStoreError, OSError, ValueError) as exc:
                log.warning(
                    "signing keys: reload of %s failed, keeping the keys in use: %s",
                    directory / INDEX,
                    exc,
                )
                return False
            self._snapshot = _snapshot(keys, loaded_fingerprint)
        log.info("signing keys reloaded from %s: %d keys", directory / INDEX, len(keys))
        return True

    # --- which key signs ------------------------------------------------------------------------

    def current(self) -> SigningKey:
        """The key that signs now (by the injected clock). The token path's cost: the reload
        check (two integers compared, a ``stat`` once a second) and a cached window check."""
        now = self._clock.now()
        snapshot = self._fresh(now)
        cached = self._signing
        if cached is not None and cached[0] is snapshot and cached[2] <= now < cached[3]:
            return cached[1]
        key, until = self._select(snapshot, now)
        self._signing = (snapshot, key, now, until)
        return key

    def signing_key_at(self, now: int) -> SigningKey | None:
        """The key that signs at ``now`` by the keys as loaded (None when no key may sign)."""
        snapshot = self._fresh(now)
        if not any(k.signs_at(now) for k in snapshot.keys):
            return None
        return self._select(snapshot, now)[0]

    @staticmethod
    def _select(snapshot: _Snapshot, now: int) -> tuple[SigningKey, int]:
        """The signing key at ``now`` and the next instant at which the choice may change."""
        signing = [k for k in snapshot.keys if k.signs_at(now)]
        if not signing:
            raise KeyStoreError("no active signing key: run `trustanchor keys generate`")
        key = max(signing, key=lambda k: (k.signs_from, k.created_at, k.kid))
        changes = [k.signs_from for k in snapshot.keys if k.signs_from > now]
        changes += [k.retired_at for k in snapshot.keys if k.retired_at and k.retired_at > now]
        return key, min(changes, default=_NEVER)

    # --- what is published ----------------------------------------------------------------------

    def get(self, kid: str) -> SigningKey | None:
        return self._fresh(self._clock.now()).by_kid.get(kid)

    def all(self) -> list[SigningKey]:
        return list(self._fresh(self._clock.now()).keys)

    def published(self, now: int) -> list[SigningKey]:
        """Keys in the JWKS: every key not retired (those that sign later included: published
        ahead) and the retired ones still within retention."""
        return [
            k
            for k in self._fresh(now).keys
            if k.retired_at is None or k.retired_at + self._retention > now
        ]

    def jwks(self, now: int) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in reversed(self.published(now))]}

    def verification_key(self, kid: str, now: int) -> PublicKey | None:
        key = self._fresh(now).by_kid.get(kid)
        if key is None or key not in self.published(now):
            return None
        return key.public_key

    @property
    def has_demo_keys(self) -> bool:
        """Whether a demo key signs now or may sign later (one whose retirement is only
        scheduled still signs until then)."""
        now = self._clock.now()
        return any(
            k.demo and (k.retired_at is None or k.retired_at > now) for k in self._snapshot.keys
        )

    def published_or_active(self) -> list[SigningKey]:
        return [k for k in self._snapshot.keys if k.retired_at is None]


def _snapshot(keys: list[SigningKey], fingerprint: _Fingerprint | None) -> _Snapshot:
    ordered = tuple(sorted(keys, key=lambda k: (k.created_at, k.kid)))
    return _Snapshot(ordered, {k.kid: k for k in ordered}, fingerprint)


def _fingerprint(directory: Path) -> _Fingerprint | None:
    try:
        st = os.stat(directory / INDEX)
    except (FileNotFoundError, NotADirectoryError):  # no index: no keys (as _read_index)
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _load(
    directory: Path, parsed: dict[str, SigningKey]
) -> tuple[_Fingerprint | None, list[SigningKey]]:
    """The index's fingerprint (taken first: a change while reading is seen at the next check)
    and its keys; PEM files of ``parsed`` keys are not read again."""
    fingerprint = _fingerprint(directory)
    keys: list[SigningKey] = []
    for entry in _read_index(directory):
        try:
            kid, alg = str(entry["kid"]), str(entry["alg"])
            created_at = int(entry["created_at"])
            retired = entry.get("retired_at")
            retired_at = None if retired is None else int(retired)
            active = entry.get("active_from")
            active_from = None if active is None else int(active)
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyStoreError(f"{directory / INDEX}: malformed key entry") from exc
        known = parsed.get(kid)
        private = known.private_key if known is not None else _load_pem(directory, kid)
        keys.append(
            SigningKey(
                kid=kid,
                alg=alg,
                created_at=created_at,
                retired_at=retired_at,
                demo=bool(entry.get("demo", False)),
                private_key=private,
                active_from=active_from,
            )
        )
    return fingerprint, keys


def _load_pem(directory: Path, kid: str) -> PrivateKey:
    pem_path = directory / f"{kid}.pem"
    try:
        loaded = serialization.load_pem_private_key(pem_path.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise KeyStoreError(f"{pem_path}: private key file missing") from exc
    if not isinstance(loaded, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise KeyStoreError(f"{pem_path}: unsupported key type")
    if key_id(loaded) != kid:
        raise KeyStoreError(f"{pem_path}: the key's thumbprint is not its kid")
    return loaded


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
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
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
    """Kids of the keys that are not retired nor scheduled to retire, oldest first (what
    :func:`rotate` retires)."""
    return [
        e["kid"] for e in _read_index(Path(keys_dir) / SIGNING_DIR) if e.get("retired_at") is None
    ]


def generate_key(
    keys_dir: str | Path,
    *,
    alg: str,
    now: int,
    demo: bool,
    private: PrivateKey | None = None,
    active_from: int | None = None,
) -> str:
    """Store a new signing key, published from ``now``, signing from ``active_from`` (default
    ``now``). Returns its kid.

    ``private``: a key made beforehand with :func:`new_private_key`, so that a caller can record
    the change (by kid) before the key exists on disk; by default one is generated here."""
    kid, _entries = _store_key(
        keys_dir, alg=alg, now=now, demo=demo, private=private, active_from=active_from
    )
    return kid


def _store_key(
    keys_dir: str | Path,
    *,
    alg: str,
    now: int,
    demo: bool,
    private: PrivateKey | None,
    active_from: int | None,
    retire: Sequence[str] = (),
) -> tuple[str, list[dict[str, Any]]]:
    """Write the PEM file, then the index (atomically) with the new key and ``retire`` retired
    at its ``active_from``: one index change, so no reader sees half a rotation."""
    directory = Path(keys_dir) / SIGNING_DIR
    if private is None:
        private = new_private_key(alg)
    elif not _fits(private, alg):
        raise KeyStoreError(f"the given key does not fit the signing algorithm {alg}")
    starts = now if active_from is None else active_from
    if starts < now:
        raise KeyStoreError("a new key cannot start signing before it is published")
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
        fh.flush()
        os.fsync(fh.fileno())
    entries = _read_index(directory)
    for entry in entries:
        if entry["kid"] in retire and entry.get("retired_at") is None:
            entry["retired_at"] = starts
    entries.append(
        {
            "kid": kid,
            "alg": alg,
            "created_at": now,
            "active_from": starts,
            "retired_at": None,
            "demo": demo,
        }
    )
    _write_index(directory, entries)
    return kid, entries


def rotate(
    keys_dir: str | Path,
    *,
    alg: str,
    now: int,
    demo: bool,
    private: PrivateKey | None = None,
    retire: Sequence[str] | None = None,
    activate_at: int | None = None,
) -> tuple[str, list[str]]:
    """Store a new key, published from ``now``, that signs from ``activate_at`` (default
    ``now``: at once), and retire the previously active keys at that same instant (they sign
    until then). Returns (new, retired).

    ``private`` and ``retire`` (default: every active key) let a caller record exactly what the
    rotation will do before doing it."""
    previous = list(retire) if retire is not None else active_kids(keys_dir)
    new_kid, _entries = _store_key(
        keys_dir,
        alg=alg,
        now=now,
        demo=demo,
        private=private,
        active_from=activate_at,
        retire=previous,
    )
    return new_kid, previous
