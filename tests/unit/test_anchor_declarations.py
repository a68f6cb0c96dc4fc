"""Anchor and anchor-set declarations: what the configuration may say, and how refusals read."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.jose.jwk import public_jwk
from trustanchor.services.anchor_declarations import (
    DeclarationError,
    anchor_from_declaration,
    anchor_set_from_declaration,
)

ISSUER_KEY = ec.generate_private_key(ec.SECP256R1())
ISSUER_JWK = {**public_jwk(ISSUER_KEY), "kid": "issuer-1"}


def declaration(**changes: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {
        "id": "mynumber-wallet",
        "kind": "sd_jwt_vc",
        "display_name": {"en": "My Number wallet", "ja": "マイナンバーウォレット"},
        "assurance_level": "high",
        "anchor_sets": ["jp-cbdc", "jp-banks"],
        "sd_jwt_vc": {
            "issuer": "https://issuer.example.jp",
            "jwks": {"keys": [ISSUER_JWK]},
            "vct": ["urn:jp:mynumber:1"],
            "subject_claim": "sub",
            "trust_framework": "jp_my_number_card",
            "status_check": "required",
        },
    }
    decl.update(changes)
    return decl


def sd_jwt_vc(**changes: Any) -> dict[str, Any]:
    table = dict(declaration()["sd_jwt_vc"])
    table.update(changes)
    return {k: v for k, v in table.items() if v is not None}


def problems_of(decl: Any, base_dir: Path = Path(".")) -> list[str]:
    with pytest.raises(DeclarationError) as info:
        anchor_from_declaration(decl, base_dir=base_dir)
    return info.value.problems


# ------------------------------------------------------------------ valid


def test_valid_declaration_becomes_an_anchor() -> None:
    anchor = anchor_from_declaration(declaration(), base_dir=Path("."))
    assert anchor.id == "mynumber-wallet"
    assert anchor.kind == "sd_jwt_vc"
    assert anchor.assurance_level == "high"
    assert anchor.status == "active"  # the default
    assert anchor.anchor_sets == ("jp-banks", "jp-cbdc")  # sorted
    assert anchor.name("ja") == "マイナンバーウォレット"
    assert anchor.settings["issuer"] == "https://issuer.example.jp"
    assert anchor.settings["jwks"] == {"keys": [ISSUER_JWK]}


def test_display_name_string_is_english() -> None:
    anchor = anchor_from_declaration(declaration(display_name="Wallet"), base_dir=Path("."))
    assert anchor.display_name == {"en": "Wallet"}


def test_explicit_status_is_kept() -> None:
    anchor = anchor_from_declaration(declaration(status="suspended"), base_dir=Path("."))
    assert anchor.status == "suspended"
    assert not anchor.is_active


def test_jwks_file_is_resolved_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "issuer.jwks.json").write_text(json.dumps({"keys": [ISSUER_JWK]}))
    decl = declaration(sd_jwt_vc=sd_jwt_vc(jwks=None, jwks_file="keys/issuer.jwks.json"))
    anchor = anchor_from_declaration(decl, base_dir=tmp_path)
    assert anchor.settings["jwks"] == {"keys": [ISSUER_JWK]}
    assert "jwks_file" not in anchor.settings


def test_declaration_is_not_mutated_by_jwks_file_resolution(tmp_path: Path) -> None:
    (tmp_path / "issuer.json").write_text(json.dumps({"keys": [ISSUER_JWK]}))
    decl = declaration(sd_jwt_vc=sd_jwt_vc(jwks=None, jwks_file="issuer.json"))
    anchor_from_declaration(decl, base_dir=tmp_path)
    assert decl["sd_jwt_vc"]["jwks_file"] == "issuer.json"


# ---------------------------------------------------------------- invalid

INVALID_FIELDS: list[tuple[dict[str, Any], str]] = [
    ({"id": "Wallet_1"}, "anchors.Wallet_1.id: must be 1 to 64 characters"),
    ({"id": "a" * 65}, ".id: must be 1 to 64 characters"),
    ({"id": 7}, "anchors.<no id>.id:"),
    ({"kind": "magic"}, "anchors.mynumber-wallet.kind: must be one of"),
    ({"kind": "federation"}, "anchors.mynumber-wallet.kind: 'federation' is not supported yet"),
    (
        {"kind": "x509"},
        "anchors.mynumber-wallet.sd_jwt_vc: settings table for kind sd_jwt_vc, but kind is 'x509'",
    ),
    ({"kind": "oidc"}, "anchors.mynumber-wallet.oidc: missing; add the [anchors.oidc] settings"),
    ({"display_name": ""}, "anchors.mynumber-wallet.display_name.en: must be a non-empty name"),
    ({"display_name": {}}, "anchors.mynumber-wallet.display_name: must be a string or a table"),
    ({"display_name": {"EN": "x"}}, "anchors.mynumber-wallet.display_name.EN: not a language"),
    ({"display_name": 3}, "anchors.mynumber-wallet.display_name: must be a string or a table"),
    ({"assurance_level": "medium"}, "anchors.mynumber-wallet.assurance_level: must be one of"),
    ({"assurance_level": None}, "anchors.mynumber-wallet.assurance_level: must be one of"),
    ({"status": "paused"}, "anchors.mynumber-wallet.status: must be one of"),
    ({"anchor_sets": "jp-cbdc"}, "anchors.mynumber-wallet.anchor_sets: must be a list"),
    ({"anchor_sets": ["JP"]}, "anchors.mynumber-wallet.anchor_sets: 'JP' is not a valid"),
    ({"anchor_sets": ["a", "a"]}, "anchors.mynumber-wallet.anchor_sets: lists an anchor set twice"),
    ({"issuer": "https://x"}, "anchors.mynumber-wallet.issuer: unknown field"),
    ({"x509": {}}, "anchors.mynumber-wallet.x509: settings table for kind x509"),
    ({"sd_jwt_vc": None}, "anchors.mynumber-wallet.sd_jwt_vc: missing"),
    ({"sd_jwt_vc": sd_jwt_vc(issuer=None)}, "anchors.mynumber-wallet.sd_jwt_vc.issuer:"),
    ({"sd_jwt_vc": sd_jwt_vc(vct=[])}, "anchors.mynumber-wallet.sd_jwt_vc.vct:"),
    ({"sd_jwt_vc": sd_jwt_vc(subject_claim="")}, "anchors.mynumber-wallet.sd_jwt_vc.subject_claim"),
    ({"sd_jwt_vc": sd_jwt_vc(jwks=None)}, "anchors.mynumber-wallet.sd_jwt_vc.jwks:"),
    ({"sd_jwt_vc": sd_jwt_vc(colour="red")}, "anchors.mynumber-wallet.sd_jwt_vc.colour: unknown"),
    (
        {"sd_jwt_vc": sd_jwt_vc(jwks={"keys": [{**ISSUER_JWK, "d": "AAAA"}]})},
        "anchors.mynumber-wallet.sd_jwt_vc.jwks: invalid_jwk: contains private key material",
    ),
    (
        {"sd_jwt_vc": sd_jwt_vc(jwks={"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})},
        "anchors.mynumber-wallet.sd_jwt_vc.jwks:",
    ),
    (
        {"sd_jwt_vc": sd_jwt_vc(max_age=datetime.date(2030, 1, 1))},
        "anchors.mynumber-wallet.sd_jwt_vc.max_age: date values are not supported here",
    ),
    (
        {"sd_jwt_vc": sd_jwt_vc(status_max_bytes=float("nan"))},
        "anchors.mynumber-wallet.sd_jwt_vc.status_max_bytes: must be a finite number",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), INVALID_FIELDS)
def test_every_invalid_field_is_named(changes: dict[str, Any], expected: str) -> None:
    problems = problems_of(declaration(**changes))
    assert any(expected in p for p in problems), problems


def test_all_problems_are_reported_at_once() -> None:
    problems = problems_of(declaration(assurance_level="max", status="gone", colour="red"))
    assert [p.split(":")[0] for p in problems] == [
        "anchors.mynumber-wallet.colour",
        "anchors.mynumber-wallet.assurance_level",
        "anchors.mynumber-wallet.status",
    ]


def test_declaration_must_be_a_table() -> None:
    assert problems_of(["not", "a", "table"]) == ["anchors: every entry must be a table"]


def test_missing_jwks_file_is_named(tmp_path: Path) -> None:
    decl = declaration(sd_jwt_vc=sd_jwt_vc(jwks=None, jwks_file="nowhere.json"))
    [problem] = problems_of(decl, tmp_path)
    assert problem.startswith("anchors.mynumber-wallet.sd_jwt_vc.jwks_file: cannot read ")
    assert "FileNotFoundError" in problem


def test_jwks_file_that_is_not_json_is_named(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"keys": [], "keys": []}')
    decl = declaration(sd_jwt_vc=sd_jwt_vc(jwks=None, jwks_file="bad.json"))
    [problem] = problems_of(decl, tmp_path)
    assert problem.startswith("anchors.mynumber-wallet.sd_jwt_vc.jwks_file: ")
    assert "duplicate member" in problem


def test_jwks_file_too_large_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.json").write_text(" " * 70_000 + "{}")
    decl = declaration(sd_jwt_vc=sd_jwt_vc(jwks=None, jwks_file="big.json"))
    [problem] = problems_of(decl, tmp_path)
    assert "too large" in problem


def test_jwks_and_jwks_file_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "issuer.json").write_text(json.dumps({"keys": [ISSUER_JWK]}))
    decl = declaration(sd_jwt_vc=sd_jwt_vc(jwks_file="issuer.json"))
    assert problems_of(decl, tmp_path) == [
        "anchors.mynumber-wallet.sd_jwt_vc.jwks_file: give either jwks or jwks_file, not both"
    ]


@given(st.text(max_size=80))
def test_ids_are_accepted_exactly_when_they_are_slugs(anchor_id: str) -> None:
    is_slug = 1 <= len(anchor_id) <= 64 and all(
        c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in anchor_id
    )
    try:
        anchor = anchor_from_declaration(declaration(id=anchor_id), base_dir=Path("."))
    except DeclarationError as exc:
        assert not is_slug
        assert any(
            p.endswith(".id: must be 1 to 64 characters of a-z, 0-9 and '-'") for p in exc.problems
        )
    else:
        assert is_slug and anchor.id == anchor_id


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "id",
                "kind",
                "display_name",
                "assurance_level",
                "status",
                "anchor_sets",
                "sd_jwt_vc",
                "other",
            ]
        ),
        JSONISH,
    )
)
def test_arbitrary_declarations_fail_only_with_declaration_error(decl: dict[str, Any]) -> None:
    try:
        anchor_from_declaration(decl, base_dir=Path("."))
    except DeclarationError as exc:
        assert exc.problems and all(p.startswith("anchors") for p in exc.problems)


# -------------------------------------------------------------- anchor sets


def test_valid_anchor_set() -> None:
    anchor_set = anchor_set_from_declaration(
        {
            "id": "jp-cbdc",
            "display_name": "Japan CBDC",
            "policy": {
                "operations": ["value_transfer"],
                "min_assurance_link": "substantial",
                "limits": {"JPY": "1000000"},
            },
        }
    )
    assert anchor_set == AnchorSet(
        id="jp-cbdc",
        display_name={"en": "Japan CBDC"},
        policy={  # stored in the policy engine's canonical form, defaults spelt out
            "operations": ["value_transfer"],
            "min_assurance_link": "substantial",
            "min_assurance_transfer": "high",
            "revocation_check": "fail_closed",
            "limits": {"JPY": "1000000"},
            "step_up": [],
        },
        version=1,
    )


def test_anchor_set_policy_defaults_to_deny_everything() -> None:
    policy = anchor_set_from_declaration({"id": "s", "display_name": "S"}).policy
    assert policy["operations"] == [] and policy["limits"] == {}


def test_an_unknown_policy_field_is_refused() -> None:
    with pytest.raises(DeclarationError) as info:
        anchor_set_from_declaration(
            {"id": "s", "display_name": "S", "policy": {"step_up_amount": 100000}}
        )
    assert info.value.problems == ["anchor_sets.s.policy.step_up_amount: unknown field"]


@pytest.mark.parametrize(
    ("decl", "expected"),
    [
        ({"id": "S!", "display_name": "S"}, "anchor_sets.S!.id: must be 1 to 64 characters"),
        ({"display_name": "S"}, "anchor_sets.<no id>.id:"),
        ({"id": "s"}, "anchor_sets.s.display_name: must be a string or a table"),
        ({"id": "s", "display_name": "S", "policy": "strict"}, "anchor_sets.s.policy: must be a"),
        (
            {"id": "s", "display_name": "S", "policy": {"min_assurance_link": "medium"}},
            "anchor_sets.s.policy.min_assurance_link: must be one of low, substantial, high",
        ),
        (
            {"id": "s", "display_name": "S", "policy": {"min_assurance_transfer": 3}},
            "anchor_sets.s.policy.min_assurance_transfer: must be one of low, substantial, high",
        ),
        (
            {"id": "s", "display_name": "S", "policy": {"since": datetime.date(2024, 1, 1)}},
            "anchor_sets.s.policy.since: unknown field",
        ),
        ({"id": "s", "display_name": "S", "anchors": ["a"]}, "anchor_sets.s.anchors: unknown"),
    ],
)
def test_every_invalid_anchor_set_field_is_named(decl: dict[str, Any], expected: str) -> None:
    with pytest.raises(DeclarationError) as info:
        anchor_set_from_declaration(decl)
    assert any(expected in p for p in info.value.problems), info.value.problems
