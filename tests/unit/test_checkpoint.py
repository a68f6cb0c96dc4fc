"""C2SP tlog-checkpoint text, signed checkpoints, and the audit signing key on disk."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor.audit.checkpoint import (
    Checkpoint,
    CheckpointError,
    new_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
    verify_checkpoint,
)
from trustanchor.audit.note import (
    Ed25519Signer,
    Ed25519Verifier,
    NoteError,
    sign_note,
    split_note,
    verify_note,
)
from trustanchor.keystore.audit_key import (
    AuditKey,
    generate_audit_key,
    list_audit_keys,
    load_audit_key,
)
from trustanchor.keystore.signing_keys import KeyStoreError

ORIGIN = "auth.example.com/audit"
T0 = 1_700_000_000
ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()

# The example of c2sp.org/tlog-checkpoint (its key is not published; the text part is parsed).
SPEC_CHECKPOINT = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv"
    "2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


# docs/AUDIT-FORMAT.md §2.4: the checkpoint of a one-leaf log holding the entry of §1.4.
DOC_VKEY = "auth.example.com/audit+5a9c0e20+AfY7DWYsbxYHvvIEFNUU+k7ghMQO6Aq9pKqszbS2rRrW"
DOC_CHECKPOINT = (
    "auth.example.com/audit\n"
    "1\n"
    "lVVI2hvIlvroaioboiw0Vuk94Fv3ERWWjbo7c5po52c=\n"
    "time 1700000001\n"
    "\n"
    "— auth.example.com/audit WpwOIMRvjMyec5fR6x5sQzSkgVd+W1GnGkkhr51LSrlVQihNhhZ3fpMUpCawq1mZBOIPm"
    "GtI8+gFjmFy4tScxG98SAE=\n"
)


@pytest.fixture
def key(tmp_path: Path) -> AuditKey:
    generate_audit_key(tmp_path, name=ORIGIN, now=T0)
    return load_audit_key(tmp_path)


def refused(text: str) -> str:
    with pytest.raises(CheckpointError) as info:
        parse_checkpoint(text)
    return info.value.reason


# --- text format --------------------------------------------------------------------------------


def test_spec_example_checkpoint_text_parses() -> None:
    text, sigs = split_note(SPEC_CHECKPOINT)
    checkpoint = parse_checkpoint(text)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert base64.b64encode(checkpoint.root_hash).decode() == (
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    )
    assert checkpoint.extensions == ()
    assert checkpoint.to_text() == text
    assert sigs[0].name == checkpoint.origin


def test_documented_example_verifies() -> None:
    checkpoint = verify_checkpoint(DOC_CHECKPOINT, Ed25519Verifier.from_vkey(DOC_VKEY))
    assert (checkpoint.origin, checkpoint.size, checkpoint.time) == (ORIGIN, 1, 1_700_000_001)
    assert checkpoint.root_hash.hex() == (
        "955548da1bc896fae86a2a1ba22c3456e93de05bf71115968dba3b739a68e767"
    )


def test_our_checkpoint_text_is_exactly_the_documented_one() -> None:
    checkpoint = new_checkpoint(ORIGIN, 42, ROOT, at=T0)
    assert checkpoint.to_text() == f"{ORIGIN}\n42\n{ROOT_B64}\ntime {T0}\n"
    assert checkpoint.time == T0
    assert parse_checkpoint(checkpoint.to_text()) == checkpoint


def test_empty_tree_has_size_zero() -> None:
    empty_root = hashlib.sha256(b"").digest()  # RFC 9162: the root of the empty tree
    checkpoint = new_checkpoint(ORIGIN, 0, empty_root, at=T0)
    assert parse_checkpoint(checkpoint.to_text()).size == 0


def test_unknown_extension_lines_are_kept_opaque() -> None:
    checkpoint = parse_checkpoint(f"{ORIGIN}\n1\n{ROOT_B64}\nsomething else\ntime 5\n")
    assert checkpoint.extensions == ("something else", "time 5")
    assert checkpoint.time == 5


@pytest.mark.parametrize(
    "size", ["01", "00", "-1", "+1", " 1", "1 ", "1.0", "1e3", "0x10", "1_000", "\u0661", "", "x"]
)
def test_tree_size_not_plain_decimal_is_refused(size: str) -> None:
    assert refused(f"{ORIGIN}\n{size}\n{ROOT_B64}\n") == "bad_tree_size"


def test_tree_size_beyond_63_bits_is_refused() -> None:
    assert refused(f"{ORIGIN}\n{1 << 63}\n{ROOT_B64}\n") == "bad_tree_size"
    assert parse_checkpoint(f"{ORIGIN}\n{(1 << 63) - 1}\n{ROOT_B64}\n").size == (1 << 63) - 1


@pytest.mark.parametrize(
    "root",
    [
        base64.b64encode(ROOT[:31]).decode(),
        base64.b64encode(ROOT + b"\x00").decode(),
        ROOT_B64.rstrip("="),
        base64.urlsafe_b64encode(b"\xff" * 32).decode(),
        ROOT.hex(),
        ROOT_B64[:-2] + "B=",  # non-canonical trailing bits
        "",
        "é" * 44,
    ],
    ids=["31-bytes", "33-bytes", "no-padding", "urlsafe", "hex", "non-canonical", "empty", "utf8"],
)
def test_root_hash_wrong_length_or_encoding_is_refused(root: str) -> None:
    assert refused(f"{ORIGIN}\n1\n{root}\n") == "bad_root_hash"


def test_structure_refusals() -> None:
    assert refused(f"{ORIGIN}\n1\n{ROOT_B64}") == "missing_final_newline"
    assert refused(f"{ORIGIN}\n1\n") == "bad_checkpoint"
    assert refused(f"\n1\n{ROOT_B64}\n") == "bad_origin"
    assert refused(f"{ORIGIN}\n1\n{ROOT_B64}\n\n") == "bad_extension"


@pytest.mark.parametrize("line", ["time 01", "time -5", "time", "time 1.5", "time  5"])
def test_malformed_time_line_is_refused(line: str) -> None:
    assert refused(f"{ORIGIN}\n1\n{ROOT_B64}\n{line}\n") == "bad_time"


def test_two_time_lines_are_refused() -> None:
    assert refused(f"{ORIGIN}\n1\n{ROOT_B64}\ntime 1\ntime 2\n") == "bad_time"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"origin": ""}, "bad_origin"),
        ({"origin": "a\nb"}, "bad_origin"),
        ({"size": -1}, "bad_tree_size"),
        ({"size": True}, "bad_tree_size"),
        ({"root_hash": b"\x00" * 31}, "bad_root_hash"),
        ({"extensions": ("",)}, "bad_extension"),
        ({"extensions": ("a\nb",)}, "bad_extension"),
    ],
)
def test_constructor_refuses_what_the_text_could_not_carry(
    kwargs: dict[str, object], expected: str
) -> None:
    args: dict[str, object] = {"origin": ORIGIN, "size": 1, "root_hash": ROOT, **kwargs}
    with pytest.raises(CheckpointError) as info:
        Checkpoint(**args)  # type: ignore[arg-type]
    assert info.value.reason == expected


# --- signed checkpoints -------------------------------------------------------------------------


def test_sign_and_verify_round_trip(key: AuditKey) -> None:
    checkpoint = new_checkpoint(ORIGIN, 7, ROOT, at=T0 + 5)
    signed = sign_checkpoint(checkpoint, key)
    assert signed.startswith(checkpoint.to_text() + "\n— " + ORIGIN + " ")
    assert verify_checkpoint(signed, key.verifier()) == checkpoint
    assert verify_checkpoint(signed, [key.verifier()], origin=ORIGIN) == checkpoint


def test_signed_checkpoint_is_a_plain_signed_note(key: AuditKey) -> None:
    signed = sign_checkpoint(new_checkpoint(ORIGIN, 7, ROOT, at=T0), key)
    assert verify_note(signed, [key.verifier()]).signatures[0].key_id == key.key_id


def test_tampered_size_or_root_is_refused(key: AuditKey) -> None:
    signed = sign_checkpoint(new_checkpoint(ORIGIN, 7, ROOT, at=T0), key)
    for tampered in (
        signed.replace("\n7\n", "\n8\n", 1),
        signed.replace(ROOT_B64, base64.b64encode(hashlib.sha256(b"other").digest()).decode()),
        signed.replace(f"time {T0}", f"time {T0 + 1}"),
    ):
        with pytest.raises(NoteError) as info:
            verify_checkpoint(tampered, key.verifier())
        assert info.value.reason == "invalid_signature"


def test_checkpoint_signed_by_an_unknown_key_only_is_refused(key: AuditKey) -> None:
    stranger = Ed25519Signer(ORIGIN, ed25519.Ed25519PrivateKey.generate())
    signed = sign_checkpoint(new_checkpoint(ORIGIN, 7, ROOT, at=T0), stranger)
    with pytest.raises(NoteError) as info:
        verify_checkpoint(signed, key.verifier())
    assert info.value.reason == "no_known_signature"


def test_signing_key_must_be_named_like_the_origin(key: AuditKey) -> None:
    with pytest.raises(CheckpointError) as info:
        sign_checkpoint(new_checkpoint("other.example/log", 1, ROOT, at=T0), key)
    assert info.value.reason == "origin_mismatch"


def test_checkpoint_of_another_origin_signed_by_our_key_is_refused(key: AuditKey) -> None:
    text = new_checkpoint("other.example/log", 1, ROOT, at=T0).to_text()
    signed = sign_note(text, [key])
    with pytest.raises(CheckpointError) as info:
        verify_checkpoint(signed, key.verifier())
    assert info.value.reason == "origin_mismatch"


def test_expected_origin_is_enforced(key: AuditKey) -> None:
    signed = sign_checkpoint(new_checkpoint(ORIGIN, 1, ROOT, at=T0), key)
    with pytest.raises(CheckpointError) as info:
        verify_checkpoint(signed, key.verifier(), origin="elsewhere.example/audit")
    assert info.value.reason == "origin_mismatch"


def test_witness_cosignatures_are_ignored(key: AuditKey) -> None:
    witness = Ed25519Signer("witness.example/w1", ed25519.Ed25519PrivateKey.generate())
    checkpoint = new_checkpoint(ORIGIN, 3, ROOT, at=T0)
    signed = sign_note(checkpoint.to_text(), [key, witness])
    assert verify_checkpoint(signed, key.verifier()) == checkpoint


def test_two_checkpoints_of_one_size_with_different_roots_both_verify_and_differ(
    key: AuditKey,
) -> None:
    # A split view is two valid signatures; detecting it is comparing what verify returns.
    a = verify_checkpoint(
        sign_checkpoint(new_checkpoint(ORIGIN, 9, ROOT, at=T0), key), key.verifier()
    )
    other = hashlib.sha256(b"fork").digest()
    b = verify_checkpoint(
        sign_checkpoint(new_checkpoint(ORIGIN, 9, other, at=T0), key), key.verifier()
    )
    assert a.size == b.size and a.root_hash != b.root_hash


@settings(max_examples=500)
@given(st.text())
def test_arbitrary_text_only_raises_checkpoint_error(text: str) -> None:
    with contextlib.suppress(CheckpointError):
        parse_checkpoint(text)


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from([ORIGIN, "\n", "0", "1", "01", ROOT_B64, "time ", "=", " ", "é"]),
        max_size=12,
    )
)
def test_near_miss_checkpoints_only_raise_checkpoint_error(parts: list[str]) -> None:
    with contextlib.suppress(CheckpointError):
        parse_checkpoint("".join(parts))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_signed_text_only_raises_note_error(text: str) -> None:
    signer = Ed25519Signer(ORIGIN, ed25519.Ed25519PrivateKey.from_private_bytes(b"\x01" * 32))
    with pytest.raises(NoteError):
        verify_checkpoint(text, signer.verifier())


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=0, max_value=(1 << 63) - 1),
    st.binary(min_size=32, max_size=32),
    st.integers(min_value=0, max_value=(1 << 63) - 1),
)
def test_any_checkpoint_round_trips(size: int, root: bytes, at: int) -> None:
    checkpoint = new_checkpoint(ORIGIN, size, root, at=at)
    assert parse_checkpoint(checkpoint.to_text()) == checkpoint


# --- the audit key on disk ----------------------------------------------------------------------


def test_generate_writes_private_pem_0600_in_0700_dir(tmp_path: Path) -> None:
    info = generate_audit_key(tmp_path, name=ORIGIN, now=T0)
    directory = tmp_path / "audit"
    pem = directory / f"{info.key_id_hex}.pem"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    index = json.loads((directory / "keys.json").read_text())
    assert index == [
        {
            "name": ORIGIN,
            "key_id": info.key_id_hex,
            "vkey": info.vkey,
            "created_at": T0,
            "retired_at": None,
        }
    ]
    assert not (tmp_path / "signing").exists()  # independent of the token signing keys


def test_loaded_key_matches_its_published_vkey(tmp_path: Path) -> None:
    info = generate_audit_key(tmp_path, name=ORIGIN, now=T0)
    key = load_audit_key(tmp_path)
    assert (key.name, key.key_id, key.created_at) == (ORIGIN, info.key_id, T0)
    assert key.verifier_key == info.vkey
    assert info.vkey.startswith(f"{ORIGIN}+{info.key_id_hex}+")
    assert info.verifier().key_id == key.key_id


def test_private_material_never_appears_in_repr_or_published_data(tmp_path: Path) -> None:
    info = generate_audit_key(tmp_path, name=ORIGIN, now=T0)
    key = load_audit_key(tmp_path)
    seed = key.private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    pem_body = (tmp_path / "audit" / f"{info.key_id_hex}.pem").read_text().splitlines()[1]
    for public in (repr(key), str(key), repr(info), (tmp_path / "audit" / "keys.json").read_text()):
        assert "private_key" not in public
        assert seed.hex() not in public
        assert base64.b64encode(seed).decode() not in public
        assert pem_body not in public


def test_rotation_keeps_the_name_retires_the_old_key_and_old_checkpoints_verify(
    tmp_path: Path,
) -> None:
    generate_audit_key(tmp_path, name=ORIGIN, now=T0)
    old_key = load_audit_key(tmp_path)
    old_signed = sign_checkpoint(new_checkpoint(ORIGIN, 1, ROOT, at=T0), old_key)
    generate_audit_key(tmp_path, name=ORIGIN, now=T0 + 100)
    new_key = load_audit_key(tmp_path)
    assert new_key.key_id != old_key.key_id and new_key.name == ORIGIN
    keys = list_audit_keys(tmp_path)
    assert [(k.key_id, k.retired_at) for k in keys] == [
        (old_key.key_id, T0 + 100),
        (new_key.key_id, None),
    ]
    verifiers = [k.verifier() for k in keys]
    assert verify_checkpoint(old_signed, verifiers).size == 1
    with pytest.raises(NoteError) as info:
        verify_checkpoint(old_signed, new_key.verifier())
    assert info.value.reason == "no_known_signature"


def test_the_key_name_cannot_change(tmp_path: Path) -> None:
    generate_audit_key(tmp_path, name=ORIGIN, now=T0)
    with pytest.raises(KeyStoreError):
        generate_audit_key(tmp_path, name="other.example/audit", now=T0 + 1)


@pytest.mark.parametrize("name", ["", "with space", "a+b"])
def test_invalid_key_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyStoreError):
        generate_audit_key(tmp_path, name=name, now=T0)


def test_missing_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError):
        load_audit_key(tmp_path)


def test_swapped_private_key_file_is_refused(tmp_path: Path) -> None:
    info = generate_audit_key(tmp_path, name=ORIGIN, now=T0)
    pem = tmp_path / "audit" / f"{info.key_id_hex}.pem"
    pem.write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(KeyStoreError):
        load_audit_key(tmp_path)


def test_missing_private_key_file_is_refused(tmp_path: Path) -> None:
    info = generate_audit_key(tmp_path, name=ORIGIN, now=T0)
    (tmp_path / "audit" / f"{info.key_id_hex}.pem").unlink()
    with pytest.raises(KeyStoreError):
        load_audit_key(tmp_path)
