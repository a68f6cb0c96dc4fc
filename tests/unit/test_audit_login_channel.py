"""The in-person members of the audit ``login`` entry (docs/AUDIT-FORMAT.md §1.2): ``channel``,
``branch`` and ``operator`` together or not at all, absent (never null) on remote logins, so
every entry written before them keeps its bytes and its leaf hash."""

from __future__ import annotations

import json

import pytest

from trustanchor.audit import merkle
from trustanchor.audit.entries import EntryError, Login, entry_from_mapping, parse_entry
from trustanchor.digests import keyed_digest
from trustanchor.services import audit_trail

T0 = 1_700_000_000
SECRET = b"p" * 32
HOLDER = keyed_digest(SECRET, "audit-holder", "holder-1")
OPERATOR = audit_trail.operator_pseudonym(SECRET, "tokyo-marunouchi", "S-0042")
# docs/AUDIT-FORMAT.md §1.2 shows this entry and its leaf hash.
IN_PERSON = (
    b'{"anchor_id":"jpki","at":1700000000,"branch":"tokyo-marunouchi","channel":"in_person",'
    b'"holder":"sSx3rWIVwlbMg38oQKHaY4-Mgh0zenC5w-f1krjdG9k","kind":"login",'
    b'"operator":"EYN_tfvFwlEJWbHcarKsX1LJTOMF7W4Fn-WSbIpgahk","outcome":"ok","reason":null,"v":1}'
)
IN_PERSON_LEAF = "86ecce461e622b7b12d4b1c1d6a9cd305e5dff07d8b49994af0f83c7500d9a04"
REMOTE = (
    b'{"anchor_id":"jpki","at":1700000000,"holder":"sSx3rWIVwlbMg38oQKHaY4-Mgh0zenC5w-f1krjdG9k",'
    b'"kind":"login","outcome":"ok","reason":null,"v":1}'
)


def test_operator_pseudonym_is_keyed_over_branch_and_staff_id() -> None:
    assert keyed_digest(SECRET, "audit-operator", "tokyo-marunouchi", "S-0042") == OPERATOR
    assert audit_trail.operator_pseudonym(SECRET, "osaka-umeda", "S-0042") != OPERATOR
    assert audit_trail.operator_pseudonym(b"q" * 32, "tokyo-marunouchi", "S-0042") != OPERATOR


def test_in_person_login_canonical_bytes_are_the_documented_ones() -> None:
    entry = audit_trail.login_ok(
        at=T0, anchor_id="jpki", holder=HOLDER, branch="tokyo-marunouchi", operator=OPERATOR
    )
    assert entry.to_canonical() == IN_PERSON
    assert merkle.leaf_hash(IN_PERSON).hex() == IN_PERSON_LEAF
    assert parse_entry(IN_PERSON) == entry


def test_a_remote_login_has_exactly_the_members_it_always_had() -> None:
    """Old entries stay verifiable: same members, same bytes, parsed as before."""
    entry = audit_trail.login_ok(at=T0, anchor_id="jpki", holder=HOLDER)
    assert entry.to_canonical() == REMOTE
    parsed = parse_entry(REMOTE)
    assert parsed == entry and parsed.channel is None  # type: ignore[union-attr]


@pytest.mark.parametrize("missing", ["channel", "branch", "operator"])
def test_the_three_members_go_together(missing: str) -> None:
    data = json.loads(IN_PERSON)
    del data[missing]
    with pytest.raises(EntryError) as info:
        entry_from_mapping(data)
    assert info.value.reason == "bad_value"


@pytest.mark.parametrize("member", ["channel", "branch", "operator"])
def test_an_optional_member_is_absent_never_null(member: str) -> None:
    """One entry, one encoding: ``"channel": null`` is not another way to say remote."""
    data = json.loads(REMOTE)
    data[member] = None
    with pytest.raises(EntryError) as info:
        entry_from_mapping(data)
    assert (info.value.reason, info.value.field) == ("bad_value", member)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("channel", "remote"),  # remote is the absence of the members
        ("channel", "branch"),
        ("operator", "S-0042"),  # a raw staff id is not a pseudonym
        ("operator", "taro@bank.example"),
        ("branch", "Tokyo Marunouchi"),
        ("branch", "a" * 43),
    ],
)
def test_member_shapes(member: str, value: str) -> None:
    data = {**json.loads(IN_PERSON), member: value}
    with pytest.raises(EntryError) as info:
        entry_from_mapping(data)
    assert info.value.field == member


def test_builder_refuses_half_an_in_person_login() -> None:
    with pytest.raises(ValueError, match="both the branch and the operator"):
        audit_trail.login_ok(at=T0, anchor_id="jpki", holder=HOLDER, branch="tokyo-marunouchi")
    with pytest.raises(EntryError):
        Login(
            at=T0,
            anchor_id="jpki",
            outcome="ok",
            reason=None,
            holder=HOLDER,
            channel="in_person",
            branch=None,
            operator=OPERATOR,
        )
