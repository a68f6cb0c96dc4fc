"""domain/identity.py: a finished login's JSON (stored with the interaction and the SSO session).
``signed_operations`` (docs/DYNAMIC-LINKING.md) appears only when the login signed something, so
every login stored before it keeps its exact JSON and reads back unchanged."""

from __future__ import annotations

import dataclasses

from trustanchor.domain.identity import Authentication

PLAIN = Authentication(
    holder_id="hld_1",
    identity_id="idn_1",
    anchor_id="jp-national-id",
    acr="https://trustanchor.example/acr/high",
    amr=("pop",),
    auth_time=1_760_000_000,
    trust_framework="jp_my_number_card",
)


def test_a_login_that_signed_nothing_keeps_its_json() -> None:
    data = PLAIN.to_json()
    assert "signed_operations" not in data
    assert set(data) == {
        "holder_id",
        "identity_id",
        "anchor_id",
        "acr",
        "amr",
        "auth_time",
        "trust_framework",
        "evidence",
    }
    assert Authentication.from_json(data) == PLAIN


def test_signed_operations_round_trip() -> None:
    signed = dataclasses.replace(PLAIN, signed_operations=("abc", "def"))
    data = signed.to_json()
    assert data["signed_operations"] == ["abc", "def"]
    assert Authentication.from_json(data) == signed
