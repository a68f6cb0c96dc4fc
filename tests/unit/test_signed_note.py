"""C2SP signed-note: published test vectors, strict parsing, verification rules."""

from __future__ import annotations

import base64
import contextlib

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from trustanchor.audit.note import (
    MAX_SIGNATURES,
    Ed25519Signer,
    Ed25519Verifier,
    NoteError,
    NoteSignature,
    key_id,
    sign_note,
    split_note,
    verify_note,
)

# Test vectors of golang.org/x/mod/sumdb/note (note_test.go / example_test.go), the reference
# implementation the C2SP spec was written from, and the example key of c2sp.org/signed-note.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
    "pRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox"
    "33WWd1RvMc+QQ=\n"
)
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRK"
    "uwHjG1Yu72IneyaQM=\n"
)

PETER = Ed25519Verifier.from_vkey(PETER_VKEY)
ENOCH = Ed25519Verifier.from_vkey(ENOCH_VKEY)


def peter_signer() -> Ed25519Signer:
    material = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert material[0] == 0x01
    return Ed25519Signer("PeterNeumann", ed25519.Ed25519PrivateKey.from_private_bytes(material[1:]))


def fresh_signer(name: str = "example.com/log") -> Ed25519Signer:
    return Ed25519Signer(name, ed25519.Ed25519PrivateKey.generate())


def reason(note: str | bytes, verifiers: list[Ed25519Verifier]) -> str:
    with pytest.raises(NoteError) as info:
        verify_note(note, verifiers)
    return info.value.reason


# --- published vectors --------------------------------------------------------------------------


def test_go_vector_verifies() -> None:
    note = verify_note(GO_TEXT + "\n" + PETER_SIG, [PETER])
    assert note.text == GO_TEXT
    assert [(s.name, s.key_id) for s in note.signatures] == [("PeterNeumann", 0xC74F20A3)]


def test_signing_reproduces_the_go_vector_byte_for_byte() -> None:
    signer = peter_signer()
    assert signer.key_id == 0xC74F20A3
    assert signer.verifier().vkey == PETER_VKEY
    assert sign_note(GO_TEXT, [signer]) == GO_TEXT + "\n" + PETER_SIG


def test_spec_example_key_and_note_verify() -> None:
    verifier = Ed25519Verifier.from_vkey(SPEC_VKEY)
    assert verifier.key_id == 0x530D903A
    assert verifier.vkey == SPEC_VKEY
    assert verify_note(SPEC_NOTE, [verifier]).text == "This is an example message.\n"


def test_key_id_is_the_truncated_sha256_of_name_newline_type_key() -> None:
    raw = base64.b64decode(PETER_VKEY.split("+", 2)[2])[1:]
    assert key_id("PeterNeumann", 0x01, raw) == 0xC74F20A3


def test_two_signers_each_known_key_is_verified() -> None:
    note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    both = verify_note(note, [PETER, ENOCH])
    assert [s.name for s in both.signatures] == ["PeterNeumann", "EnochRoot"]
    only_enoch = verify_note(note, [ENOCH])
    assert [s.name for s in only_enoch.signatures] == ["EnochRoot"]
    assert [s.name for s in only_enoch.unverified] == ["PeterNeumann"]


def test_bytes_input_is_accepted() -> None:
    assert verify_note((GO_TEXT + "\n" + PETER_SIG).encode(), [PETER]).text == GO_TEXT


# --- round trips --------------------------------------------------------------------------------


def test_sign_then_verify_round_trip_with_empty_lines_in_text() -> None:
    signer = fresh_signer()
    text = "first\n\nafter an empty line\n— looks like a signature but is text\n"
    assert verify_note(sign_note(text, [signer]), [signer.verifier()]).text == text


@settings(max_examples=200)
@given(st.text(alphabet=st.characters(min_codepoint=0x20, exclude_categories=["Cs"])))
def test_any_valid_text_round_trips(body: str) -> None:
    signer = fresh_signer()
    text = body + "\n"
    assert verify_note(sign_note(text, [signer]), [signer.verifier()]).text == text


# --- refusals -----------------------------------------------------------------------------------


def test_missing_final_newline_is_refused() -> None:
    assert reason(GO_TEXT + "\n" + PETER_SIG.rstrip("\n"), [PETER]) == "missing_final_newline"


def test_missing_blank_line_or_signatures_is_refused() -> None:
    assert reason(GO_TEXT, [PETER]) == "missing_signatures"
    assert reason(GO_TEXT + "\n", [PETER]) == "missing_signatures"
    assert reason(PETER_SIG, [PETER]) == "missing_signatures"
    # The text ends at the LAST blank line: a trailing one leaves no signature block.
    assert reason(GO_TEXT + "\n" + PETER_SIG + "\n", [PETER]) == "missing_signatures"


@pytest.mark.parametrize(
    "line",
    [
        "-- PeterNeumann AAAAAAA=\n",  # ASCII dashes instead of the em dash
        "—PeterNeumann AAAAAAA=\n",  # no space after the em dash
        "— PeterNeumann  AAAAAAA=\n",  # two spaces
        "— PeterNeumann AAAAAAA= \n",  # trailing space
        "— PeterNeumann\n",  # no signature
        "— PeterNeumann AAAA AAAA\n",
    ],
)
def test_malformed_signature_line_is_refused(line: str) -> None:
    assert reason(GO_TEXT + "\n" + PETER_SIG + line, [PETER]) == "malformed_signature_line"


@pytest.mark.parametrize(
    "blob",
    [
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM",
        "x08go_ZJkuBS9UG_SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAN=",
        "AAAAAA==!",
        "ÄAAAAAA=",
    ],
    ids=["no-padding", "url-alphabet", "non-canonical-bits", "junk", "non-ascii"],
)
def test_bad_base64_is_refused(blob: str) -> None:
    assert reason(f"{GO_TEXT}\n— PeterNeumann {blob}\n", [PETER]) == "bad_base64"


def test_signature_shorter_than_key_id_plus_one_byte_is_refused() -> None:
    blob = base64.b64encode(b"\xc7\x4f\x20\xa3").decode()
    assert reason(f"{GO_TEXT}\n— PeterNeumann {blob}\n", [PETER]) == "signature_too_short"


@pytest.mark.parametrize("name", ["Peter+Neumann", "Peter\u00a0Neumann", "Peter\u2003"])
def test_bad_key_name_in_signature_line_is_refused(name: str) -> None:
    assert reason(f"{GO_TEXT}\n— {name} AAAAAAA=\n", [PETER]) == "bad_key_name"


def test_tampered_text_is_refused() -> None:
    tampered = GO_TEXT.replace("problem is", "problem was")
    assert reason(tampered + "\n" + PETER_SIG, [PETER]) == "invalid_signature"


@pytest.mark.parametrize("length", [1, 63, 65, 200])
def test_known_key_signature_of_wrong_length_is_invalid(length: int) -> None:
    blob = base64.b64encode(bytes.fromhex("c74f20a3") + b"\x00" * length).decode()
    assert reason(f"{GO_TEXT}\n— PeterNeumann {blob}\n", [PETER]) == "invalid_signature"


def test_tampered_signature_is_refused() -> None:
    sig = PETER_SIG.replace("x08go/ZJ", "x08go/ZK")
    assert reason(GO_TEXT + "\n" + sig, [PETER]) == "invalid_signature"


def test_a_failing_known_signature_rejects_even_if_another_verifies() -> None:
    bad_enoch = ENOCH_SIG.replace("rwz+eBzm", "rwz+eBzn")
    assert reason(GO_TEXT + "\n" + PETER_SIG + bad_enoch, [PETER, ENOCH]) == "invalid_signature"


def test_signature_by_unknown_key_only_is_refused() -> None:
    assert reason(GO_TEXT + "\n" + PETER_SIG, [ENOCH]) == "no_known_signature"


def test_same_name_other_key_id_and_same_id_other_name_are_unknown_keys() -> None:
    other_key = Ed25519Verifier("PeterNeumann", ed25519.Ed25519PrivateKey.generate().public_key())
    assert other_key.key_id != PETER.key_id
    assert reason(GO_TEXT + "\n" + PETER_SIG, [other_key]) == "no_known_signature"
    renamed = PETER_SIG.replace("PeterNeumann", "PaulNeumann")
    assert reason(GO_TEXT + "\n" + renamed, [PETER]) == "no_known_signature"


def test_duplicate_signature_of_a_known_key_is_refused() -> None:
    assert reason(GO_TEXT + "\n" + PETER_SIG + PETER_SIG, [PETER]) == "duplicate_signature"


def test_duplicate_signatures_of_unknown_keys_are_ignored() -> None:
    note = verify_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG + ENOCH_SIG, [PETER])
    assert len(note.unverified) == 2


def test_control_characters_are_refused() -> None:
    assert reason("tab\there\n\n" + PETER_SIG, [PETER]) == "control_character"
    assert reason(GO_TEXT.replace("\n", "\r\n") + "\n" + PETER_SIG, [PETER]) == "control_character"


def test_invalid_utf8_is_refused() -> None:
    assert reason(b"\xff\xfe\n\n" + PETER_SIG.encode(), [PETER]) == "not_utf8"
    assert reason("\ud800\n\n" + PETER_SIG, [PETER]) == "not_utf8"


def test_too_many_signatures_is_refused_but_sixteen_are_accepted() -> None:
    signers = [fresh_signer(f"example.com/w{i}") for i in range(16)]
    note = sign_note("hello\n", signers)
    assert len(verify_note(note, [s.verifier() for s in signers]).signatures) == 16
    flood = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG * MAX_SIGNATURES
    assert reason(flood, [PETER]) == "too_many_signatures"


def test_oversized_note_is_refused() -> None:
    assert reason("a" * (1 << 20) + "\n\n" + PETER_SIG, [PETER]) == "too_large"


def test_two_verifiers_for_one_key_are_ambiguous() -> None:
    assert reason(GO_TEXT + "\n" + PETER_SIG, [PETER, PETER]) == "ambiguous_verifier"


def test_split_note_exposes_structure_without_trusting_it() -> None:
    text, sigs = split_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG)
    assert text == GO_TEXT
    assert [s.name for s in sigs] == ["PeterNeumann", "EnochRoot"]
    assert isinstance(sigs[0], NoteSignature) and len(sigs[0].signature) == 64


# --- signing refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "empty_text"),
        ("no newline", "missing_final_newline"),
        ("bell\a\n", "control_character"),
        ("\udc80\n", "not_utf8"),
    ],
)
def test_sign_note_refuses_bad_text(text: str, expected: str) -> None:
    with pytest.raises(NoteError) as info:
        sign_note(text, [fresh_signer()])
    assert info.value.reason == expected


def test_sign_note_needs_a_signer_and_refuses_the_same_key_twice() -> None:
    with pytest.raises(NoteError) as info:
        sign_note("x\n", [])
    assert info.value.reason == "no_signers"
    signer = fresh_signer()
    with pytest.raises(NoteError) as info:
        sign_note("x\n", [signer, signer])
    assert info.value.reason == "duplicate_signature"


@pytest.mark.parametrize("name", ["", "has space", "plus+sign", "tab\tname"])
def test_signer_with_invalid_key_name_is_refused(name: str) -> None:
    with pytest.raises(NoteError) as info:
        fresh_signer(name)
    assert info.value.reason == "bad_key_name"


# --- verifier keys ------------------------------------------------------------------------------


def test_every_mangling_of_a_vkey_is_refused() -> None:
    # As Go's TestNewVerifier: every proper substring and every single-byte change fails.
    raw = PETER_VKEY.encode()
    for i in range(len(raw) + 1):
        for j in range(i + 1, len(raw) + 1):
            if (i, j) != (0, len(raw)):
                with pytest.raises(NoteError):
                    Ed25519Verifier.from_vkey(raw[i:j].decode())
    for i in range(len(raw)):
        mangled = bytearray(raw)
        mangled[i] += 1
        with pytest.raises(NoteError):
            Ed25519Verifier.from_vkey(mangled.decode())


@pytest.mark.parametrize(
    ("vkey", "expected"),
    [
        (
            "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
            "verifier_key_id_mismatch",
        ),
        ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "bad_verifier_key"),
        (
            "PeterNeumann+c74f20a3+AhpcOdkHFDw4TEHoMMW84SqogX7FZJqqvywxOIs1stdE1g==",
            "unsupported_key_type",
        ),
        ("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy", "bad_verifier_key"),
        ("PeterNeumann", "bad_verifier_key"),
    ],
)
def test_vkey_refusals_name_their_reason(vkey: str, expected: str) -> None:
    with pytest.raises(NoteError) as info:
        Ed25519Verifier.from_vkey(vkey)
    assert info.value.reason == expected


# --- hypothesis: arbitrary input only ever raises NoteError -------------------------------------


@settings(max_examples=500)
@given(st.text())
def test_arbitrary_text_only_raises_note_error(note: str) -> None:
    with contextlib.suppress(NoteError):
        verify_note(note, [PETER])


@settings(max_examples=300)
@given(st.binary())
def test_arbitrary_bytes_only_raise_note_error(note: bytes) -> None:
    with pytest.raises(NoteError):
        verify_note(note, [PETER])


@settings(max_examples=300)
@given(
    st.lists(
        st.sampled_from(["— ", "PeterNeumann", " ", "\n", "x08go/", "=", "+", "A", "—", "\n\n"]),
        max_size=30,
    )
)
def test_near_miss_notes_only_raise_note_error(parts: list[str]) -> None:
    with pytest.raises(NoteError):
        verify_note(GO_TEXT + "".join(parts), [PETER])


@settings(max_examples=300)
@given(st.text())
def test_arbitrary_vkeys_only_raise_note_error(vkey: str) -> None:
    with contextlib.suppress(NoteError):
        Ed25519Verifier.from_vkey(vkey)
