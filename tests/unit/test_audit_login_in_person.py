"""The audit entry kind ``login_in_person`` (docs/AUDIT-FORMAT.md §1.2): a successful login at a
bank branch's counter, with exactly the members of a successful ``login`` plus ``branch`` and
``operator``. ``login`` itself keeps exactly its members, none optional, so every entry written
before the counter channel existed keeps its bytes and its leaf hash."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest

from trustanchor.audit import merkle
from trustanchor.audit.entries import (
    EntryError,
    Login,
    LoginInPerson,
    entry_from_mapping,
    parse_entry,
)
from trustanchor.digests import keyed_digest
from trustanchor.services import audit_stats, audit_trail

T0 = 1_700_000_000
SECRET = b"p" * 32
HOLDER = keyed_digest(SECRET, "audit-holder", "holder-1")
OPERATOR = audit_trail.operator_pseudonym(SECRET, "tokyo-marunouchi", "S-0042")
# docs/AUDIT-FORMAT.md §1.2 shows this entry and its leaf hash.
IN_PERSON = (
    b'{"anchor_id":"jpki","at":1700000000,"branch":"tokyo-marunouchi",'
    b'"holder":"sSx3rWIVwlbMg38oQKHaY4-Mgh0zenC5w-f1krjdG9k","kind":"login_in_person",'
    b'"operator":"EYN_tfvFwlEJWbHcarKsX1LJTOMF7W4Fn-WSbIpgahk","outcome":"ok","reason":null,"v":1}'
)
IN_PERSON_LEAF = "3a5b4424073e5241ddbb489c1d052f97c67dcbeb98c8e1236d2066613e7e92a7"
REMOTE = (
    b'{"anchor_id":"jpki","at":1700000000,"holder":"sSx3rWIVwlbMg38oQKHaY4-Mgh0zenC5w-f1krjdG9k",'
    b'"kind":"login","outcome":"ok","reason":null,"v":1}'
)


def in_person() -> LoginInPerson:
    return audit_trail.login_in_person(
        at=T0, anchor_id="jpki", holder=HOLDER, branch="tokyo-marunouchi", operator=OPERATOR
    )


def test_operator_pseudonym_is_keyed_over_branch_and_staff_id() -> None:
    assert keyed_digest(SECRET, "audit-operator", "tokyo-marunouchi", "S-0042") == OPERATOR
    assert audit_trail.operator_pseudonym(SECRET, "osaka-umeda", "S-0042") != OPERATOR
    assert audit_trail.operator_pseudonym(b"q" * 32, "tokyo-marunouchi", "S-0042") != OPERATOR


def test_in_person_login_canonical_bytes_are_the_documented_ones() -> None:
    entry = in_person()
    assert entry.to_canonical() == IN_PERSON
    assert hashlib.sha256(b"\x00" + IN_PERSON).hexdigest() == IN_PERSON_LEAF
    assert merkle.leaf_hash(IN_PERSON).hex() == IN_PERSON_LEAF
    assert parse_entry(IN_PERSON) == entry


def test_it_has_the_members_of_a_successful_login_plus_branch_and_operator() -> None:
    in_person_members = set(json.loads(IN_PERSON))
    login_members = set(json.loads(REMOTE))
    assert in_person_members - login_members == {"branch", "operator"}
    assert login_members - in_person_members == set()


def test_a_remote_login_has_exactly_the_members_it_always_had() -> None:
    """Old entries stay verifiable: same members, same bytes, parsed as before."""
    entry = audit_trail.login_ok(at=T0, anchor_id="jpki", holder=HOLDER)
    assert entry.to_canonical() == REMOTE
    assert parse_entry(REMOTE) == entry
    assert [f.name for f in dataclasses.fields(Login)] == [
        "at",
        "anchor_id",
        "outcome",
        "reason",
        "holder",
    ]


@pytest.mark.parametrize("member", ["channel", "branch", "operator"])
def test_a_login_entry_takes_no_in_person_member(member: str) -> None:
    """No optional members: a ``login`` naming a branch or operator (or a ``channel``, absent
    or null) is an unknown field, never a second way to write an in-person login."""
    for value in (None, "in_person", "tokyo-marunouchi", OPERATOR):
        data = {**json.loads(REMOTE), member: value}
        with pytest.raises(EntryError) as info:
            entry_from_mapping(data)
        assert (info.value.reason, info.value.field) == ("unknown_field", member)


@pytest.mark.parametrize(
    "missing", ["anchor_id", "outcome", "reason", "holder", "branch", "operator"]
)
def test_every_member_is_required(missing: str) -> None:
    data = json.loads(IN_PERSON)
    del data[missing]
    with pytest.raises(EntryError) as info:
        entry_from_mapping(data)
    assert (info.value.reason, info.value.field) == ("missing_field", missing)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("outcome", "failed"),  # a failure at the counter is a login entry
        ("reason", "certificate_revoked"),
        ("holder", None),  # a successful login always names its holder
        ("branch", None),
        ("operator", None),
        ("operator", "S-0042"),  # a raw staff id is not a pseudonym
        ("operator", "taro@bank.example"),
        ("branch", "Tokyo Marunouchi"),
        ("branch", "a" * 43),
    ],
)
def test_member_shapes(member: str, value: str | None) -> None:
    data = {**json.loads(IN_PERSON), member: value}
    with pytest.raises(EntryError) as info:
        entry_from_mapping(data)
    assert info.value.field == member
    assert info.value.reason == ("bad_type" if value is None else "bad_value")


def test_the_channel_member_is_gone() -> None:
    data = {**json.loads(IN_PERSON), "channel": "in_person"}
    with pytest.raises(EntryError) as info:
        entry_from_mapping(data)
    assert (info.value.reason, info.value.field) == ("unknown_field", "channel")


def test_the_console_counts_it_as_an_allowed_login() -> None:
    classify = audit_stats.CLASSIFIERS["login_in_person"]
    assert classify(json.loads(IN_PERSON)) == audit_stats.Outcome("allowed", None)
