"""Signed checkpoints of the audit log in the C2SP tlog-checkpoint format.

A checkpoint is a signed note (``note.py``) whose text is exactly::

    <origin>
    <tree size, ASCII decimal, no leading zeros>
    <root hash, standard base64 of the 32-byte RFC 9162 root>
    [extension lines, each non-empty]

Our log writes one extension line, ``time <POSIX seconds>``, the instant the checkpoint was
signed. Why that line and that syntax (see docs/AUDIT-FORMAT.md for the long form):

- the issue asks checkpoints to carry a time, and tlog-checkpoint has no time field; extension
  lines are the spec's only place for it, and an Ed25519 note signature covers them;
- ``time <seconds>`` is the exact syntax and unit tlog-cosignature uses for its timestamp line,
  so it reads the same way to anyone who knows the C2SP formats. Rekor's ``Timestamp: <ns>``
  line was not copied: our clock is in seconds, and the same name in another unit invites
  misreading;
- witnesses, if added later, attach their own times in their cosignatures; nothing here
  conflicts with that.

The log's key name is the origin (the spec's SHOULD, enforced here): signing refuses a key whose
name differs, and verification requires a verified signature by a key named like the origin.
Key rotation keeps the name and changes the key ID.

Parse errors are :class:`CheckpointError`, a :class:`~trustanchor.audit.note.NoteError`, so a
caller of :func:`verify_checkpoint` handles one exception type.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from trustanchor.audit.note import (
    NoteError,
    Signer,
    Verifier,
    sign_note,
    verify_note,
)

HASH_SIZE = 32
MAX_TREE_SIZE = (1 << 63) - 1  # fits a signed 64-bit column, as tlog-cosignature's timestamp
TIME_PREFIX = "time "
_DECIMAL = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(NoteError):
    """The note verified (or was being built) but is not a well-formed checkpoint of our log."""


def _decimal(value: str, reason: str) -> int:
    # re with ASCII digits only: int() alone would accept "+1", " 1", "1_0" and Unicode digits.
    if not value.isascii() or not _DECIMAL.fullmatch(value) or len(value) > 19:
        raise CheckpointError(reason, repr(value))
    number = int(value)
    if number > MAX_TREE_SIZE:
        raise CheckpointError(reason, "too large")
    return number


def _check_line(value: str, reason: str) -> None:
    if not isinstance(value, str) or value == "":
        raise CheckpointError(reason, "must be a non-empty line")
    if any(ord(ch) < 0x20 for ch in value):
        raise CheckpointError(reason, "control character or newline")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "bad_origin")
        if type(self.size) is not int or not 0 <= self.size <= MAX_TREE_SIZE:
            raise CheckpointError("bad_tree_size", repr(self.size))
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != HASH_SIZE:
            raise CheckpointError("bad_root_hash", "a root hash is 32 bytes")
        if not isinstance(self.extensions, tuple):
            raise CheckpointError("bad_extension", "extensions must be a tuple of lines")
        times = 0
        for line in self.extensions:
            _check_line(line, "bad_extension")
            if line == "time" or line.startswith(TIME_PREFIX):
                times += 1
                _decimal(line[len(TIME_PREFIX) :], "bad_time")
        if times > 1:
            raise CheckpointError("bad_time", "more than one time line")

    @property
    def time(self) -> int | None:
        """The ``time`` extension (POSIX seconds when the log signed it), if present."""
        for line in self.extensions:
            if line.startswith(TIME_PREFIX):
                return int(line[len(TIME_PREFIX) :])
        return None

    def to_text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode("ascii")]
        return "\n".join([*lines, *self.extensions]) + "\n"


def new_checkpoint(origin: str, size: int, root_hash: bytes, *, at: int) -> Checkpoint:
    """The checkpoint our log signs: the three mandatory lines and ``time <at>``."""
    return Checkpoint(origin, size, root_hash, (f"{TIME_PREFIX}{at}",))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note *text* (already verified, final newline included)."""
    if not isinstance(text, str):
        raise CheckpointError("bad_checkpoint", "not text")
    if not text.endswith("\n"):
        raise CheckpointError("missing_final_newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("bad_checkpoint", "needs origin, tree size and root hash lines")
    origin, size_line, root_line, *extensions = lines
    _check_line(origin, "bad_origin")
    size = _decimal(size_line, "bad_tree_size")
    try:
        if not root_line.isascii():
            raise ValueError
        root_hash = base64.b64decode(root_line, validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise CheckpointError("bad_root_hash", "not base64") from exc
    if len(root_hash) != HASH_SIZE or base64.b64encode(root_hash).decode() != root_line:
        raise CheckpointError("bad_root_hash", "not the canonical base64 of 32 bytes")
    return Checkpoint(origin, size, root_hash, tuple(extensions))


def sign_checkpoint(checkpoint: Checkpoint, key: Signer) -> str:
    """The signed note for ``checkpoint``; ``key`` must be named like the origin."""
    if key.name != checkpoint.origin:
        raise CheckpointError("origin_mismatch", f"key {key.name!r} for {checkpoint.origin!r}")
    return sign_note(checkpoint.to_text(), [key])


def verify_checkpoint(
    signed: str | bytes,
    verifiers: Verifier | Iterable[Verifier],
    *,
    origin: str | None = None,
) -> Checkpoint:
    """Verify a signed checkpoint against the log's key(s) (all the keys it ever used, for old
    checkpoints) and return it. A verified signature by a key named like the origin is
    required; ``origin``, when given, must match too."""
    known = list(verifiers) if isinstance(verifiers, Iterable) else [verifiers]
    note = verify_note(signed, known)
    checkpoint = parse_checkpoint(note.text)
    if origin is not None and checkpoint.origin != origin:
        raise CheckpointError("origin_mismatch", f"expected {origin!r}")
    if not any(sig.name == checkpoint.origin for sig in note.signatures):
        raise CheckpointError("origin_mismatch", "not signed by the log's own key")
    return checkpoint
