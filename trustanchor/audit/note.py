"""Signed notes exactly as C2SP signed-note (c2sp.org/signed-note) defines them.

Why this format: checkpoints of the audit log must be checkable by existing transparency tooling
(Go's ``sumdb/note``, witnesses, monitors), and that tooling speaks signed notes. A note is

    <text, ending in a newline>
    <blank line>
    — <key name> <base64(4-byte key ID || signature)>     (one or more lines)

The signatures cover the text including its final newline and nothing else. A key is identified
by the pair (key name, key ID); for Ed25519 (signature type ``0x01``) the key ID is the first
four bytes of ``SHA-256(key name || 0x0A || 0x01 || 32-byte public key)``. A verifier key
("vkey") is the shareable text form ``<name>+<key ID, 8 hex>+<base64(0x01 || public key)>``.

Verification rules (the spec's, made strict; every refusal is a :class:`NoteError` with a
stable ``reason`` from :data:`REASONS`):

- the note is valid UTF-8 without ASCII control characters other than newline, ends in a
  newline, is at most :data:`MAX_NOTE_BYTES` and carries at most :data:`MAX_SIGNATURES` lines
  (the spec requires accepting at least 16);
- the text is everything up to the *last* blank line; every signature line after it is parsed
  strictly (em dash, one space, a valid key name, one space, canonical standard base64 of at
  least 5 bytes), whether or not its key is known;
- signatures from unknown keys (name or ID not both matching a configured verifier) are ignored;
  every signature from a known key is verified and one that fails rejects the whole note (the
  spec's SHOULD, taken as a MUST); at least one known key must have signed;
- two signature lines from the same known key reject the note (``duplicate_signature``). Go's
  ``note.Open`` skips repeats instead; a well-formed note never has them, and refusing removes
  any question of which of the two an auditor relied on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

EM_DASH_PREFIX = "\u2014 "  # "— ": em dash, space
ED25519_TYPE = 0x01
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100

REASONS = frozenset(
    {
        "not_utf8",
        "control_character",
        "too_large",
        "empty_text",
        "missing_final_newline",
        "missing_signatures",
        "malformed_signature_line",
        "bad_key_name",
        "bad_base64",
        "signature_too_short",
        "too_many_signatures",
        "duplicate_signature",
        "invalid_signature",
        "no_known_signature",
        "no_signers",
        "ambiguous_verifier",
        "bad_verifier_key",
        "unsupported_key_type",
        "verifier_key_id_mismatch",
        # checkpoint.py (CheckpointError is a NoteError)
        "bad_checkpoint",
        "bad_origin",
        "bad_tree_size",
        "bad_root_hash",
        "bad_extension",
        "bad_time",
        "origin_mismatch",
    }
)


class NoteError(Exception):
    """A note (or verifier key) was refused. ``reason`` is a stable code from :data:`REASONS`;
    ``detail`` is for humans and may change."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class Signer(Protocol):
    """Something that signs note texts under a (name, key ID)."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def sign(self, message: bytes) -> bytes: ...


class Verifier(Protocol):
    """Checks signatures of one key; ``verify`` raises :class:`NoteError` when one fails."""

    @property
    def name(self) -> str: ...

    @property
    def key_id(self) -> int: ...

    def verify(self, message: bytes, signature: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: int
    signature: bytes  # without the 4-byte key ID


@dataclass(frozen=True, slots=True)
class NoteText:
    """A verified note: its text (with the final newline) and who signed it."""

    text: str
    signatures: tuple[NoteSignature, ...]  # verified, from known keys
    unverified: tuple[NoteSignature, ...] = field(default=())  # unknown keys, ignored


def valid_key_name(name: str) -> bool:
    """Non-empty, no Unicode space, no ``+`` (which would break the vkey syntax), no control
    characters."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and not any(ch.isspace() or ord(ch) < 0x20 for ch in name)
    )


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """The RECOMMENDED key ID: ``SHA-256(name || 0x0A || type || public key)[:4]``, big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key)
    return int.from_bytes(digest.digest()[:4], "big")


def _raw_public(public_key: ed25519.Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verifier_key(name: str, public_key: ed25519.Ed25519PublicKey) -> str:
    """The vkey string ``<name>+<key ID hex>+<base64(0x01 || public key)>``."""
    if not valid_key_name(name):
        raise NoteError("bad_key_name", repr(name))
    raw = _raw_public(public_key)
    encoded = base64.b64encode(bytes([ED25519_TYPE]) + raw).decode("ascii")
    return f"{name}+{key_id(name, ED25519_TYPE, raw):08x}+{encoded}"


@dataclass(frozen=True, slots=True)
class Ed25519Verifier:
    name: str
    public_key: ed25519.Ed25519PublicKey

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise NoteError("bad_key_name", repr(self.name))

    @property
    def key_id(self) -> int:
        return key_id(self.name, ED25519_TYPE, _raw_public(self.public_key))

    @property
    def vkey(self) -> str:
        return verifier_key(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> None:
        try:
            self.public_key.verify(signature, message)
        except InvalidSignature as exc:
            raise NoteError("invalid_signature", f"by {self.name}") from exc

    @classmethod
    def from_vkey(cls, vkey: str) -> Ed25519Verifier:
        """Parse a vkey; the key ID in it must be the one the key and name produce."""
        if not isinstance(vkey, str):
            raise NoteError("bad_verifier_key", "not a string")
        parts = vkey.split("+", 2)  # base64 may itself contain '+'
        if len(parts) != 3:
            raise NoteError("bad_verifier_key", "expected <name>+<key ID>+<key>")
        name, hash_hex, key_b64 = parts
        if not valid_key_name(name):
            raise NoteError("bad_key_name", repr(name))
        if not re.fullmatch(r"[0-9a-f]{8}", hash_hex):
            raise NoteError("bad_verifier_key", "key ID must be 8 lowercase hex digits")
        material = _b64decode(key_b64, "bad_verifier_key")
        if not material:
            raise NoteError("bad_verifier_key", "empty key")
        if material[0] != ED25519_TYPE:
            raise NoteError("unsupported_key_type", f"type 0x{material[0]:02x}")
        if len(material) != 33:
            raise NoteError("bad_verifier_key", "an Ed25519 key is 32 bytes")
        verifier = cls(name, ed25519.Ed25519PublicKey.from_public_bytes(material[1:]))
        if verifier.key_id != int(hash_hex, 16):
            raise NoteError("verifier_key_id_mismatch", vkey)
        return verifier


@dataclass(frozen=True, slots=True)
class Ed25519Signer:
    name: str
    private_key: ed25519.Ed25519PrivateKey = field(repr=False)

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise NoteError("bad_key_name", repr(self.name))

    @property
    def key_id(self) -> int:
        return key_id(self.name, ED25519_TYPE, _raw_public(self.private_key.public_key()))

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def verifier(self) -> Ed25519Verifier:
        return Ed25519Verifier(self.name, self.private_key.public_key())


def _b64decode(value: str, reason: str) -> bytes:
    """Strict standard base64 (RFC 4648 §4): alphabet, padding, and canonical trailing bits."""
    if not value.isascii():
        raise NoteError(reason, "not base64")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise NoteError(reason, "not base64") from exc
    if base64.b64encode(raw).decode("ascii") != value:
        raise NoteError(reason, "non-canonical base64")
    return raw


def _check_characters(text: str) -> bytes:
    try:
        encoded = text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteError("not_utf8") from exc
    if len(encoded) > MAX_NOTE_BYTES:
        raise NoteError("too_large")
    for ch in text:
        if ord(ch) < 0x20 and ch != "\n":
            raise NoteError("control_character", f"U+{ord(ch):04X}")
    return encoded


def sign_note(text: str, signers: Iterable[Signer]) -> str:
    """Sign ``text`` (non-empty, ending in a newline) with every signer, in order."""
    if not isinstance(text, str) or text == "":
        raise NoteError("empty_text")
    if not text.endswith("\n"):
        raise NoteError("missing_final_newline", "the note text must end with a newline")
    message = _check_characters(text)
    signers = list(signers)
    if not signers:
        raise NoteError("no_signers")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError("too_many_signatures")
    lines: list[str] = []
    seen: set[tuple[str, int]] = set()
    for signer in signers:
        if not valid_key_name(signer.name):
            raise NoteError("bad_key_name", repr(signer.name))
        ident = (signer.name, signer.key_id)
        if ident in seen:
            raise NoteError("duplicate_signature", signer.name)
        seen.add(ident)
        blob = signer.key_id.to_bytes(4, "big") + signer.sign(message)
        lines.append(f"{EM_DASH_PREFIX}{signer.name} {base64.b64encode(blob).decode('ascii')}\n")
    note = text + "\n" + "".join(lines)
    _check_characters(note)  # size bound on the whole note
    return note


def _parse_signature_line(line: str) -> NoteSignature:
    if not line.startswith(EM_DASH_PREFIX):
        raise NoteError("malformed_signature_line", "must start with an em dash and a space")
    parts = line[len(EM_DASH_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise NoteError("malformed_signature_line", "expected <key name> <signature>")
    name, encoded = parts
    if not valid_key_name(name):
        raise NoteError("bad_key_name", repr(name))
    blob = _b64decode(encoded, "bad_base64")
    if len(blob) < 5:
        raise NoteError("signature_too_short")
    return NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:])


def split_note(note: str | bytes) -> tuple[str, tuple[NoteSignature, ...]]:
    """Parse a note's structure without verifying anything. The text MUST NOT be trusted
    before :func:`verify_note` accepted it; this exists for diagnostics and tests."""
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteError("too_large")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteError("not_utf8") from exc
    if not isinstance(note, str):
        raise NoteError("not_utf8", "not text")
    _check_characters(note)
    if not note.endswith("\n"):
        raise NoteError("missing_final_newline")
    cut = note.rfind("\n\n")
    if cut < 0 or cut + 2 == len(note):
        raise NoteError("missing_signatures", "no blank line followed by signature lines")
    text, block = note[: cut + 1], note[cut + 2 :]
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("too_many_signatures")
    return text, tuple(_parse_signature_line(line) for line in lines)


def verify_note(note: str | bytes, verifiers: Iterable[Verifier]) -> NoteText:
    """Verify ``note`` against the known keys in ``verifiers``; return its text and signers."""
    known: dict[tuple[str, int], Verifier] = {}
    for verifier in verifiers:
        ident = (verifier.name, verifier.key_id)
        if ident in known:
            raise NoteError("ambiguous_verifier", f"{verifier.name}+{verifier.key_id:08x}")
        known[ident] = verifier
    text, signatures = split_note(note)
    message = text.encode("utf-8")
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    seen: set[tuple[str, int]] = set()
    for sig in signatures:
        ident = (sig.name, sig.key_id)
        key = known.get(ident)
        if key is None:
            unverified.append(sig)
            continue
        if ident in seen:
            raise NoteError("duplicate_signature", f"{sig.name}+{sig.key_id:08x}")
        seen.add(ident)
        key.verify(message, sig.signature)
        verified.append(sig)
    if not verified:
        raise NoteError("no_known_signature", "no signature from a known key")
    return NoteText(text, tuple(verified), tuple(unverified))
