"""The demo issuer (trustanchor.demo.issuer), the demo people (trustanchor.demo.people) and the
wallet part of trustanchor.demo.prepare.

Credentials issued for the demo people with the anchor declarations of config/demo.toml are
checked twice: by the independent ``sd-jwt`` package's SDJWTVerifier and by trustanchor's own
sd_jwt_vc anchor verifier, as the service would run it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto.jwk import JWK  # type: ignore[import-untyped]
from sd_jwt.verifier import SDJWTVerifier  # type: ignore[import-untyped]
from support.credentials import decode_segment, digest

from trustanchor.anchors.base import AnchorFailure, Expectation
from trustanchor.anchors.sd_jwt_vc import SdJwtVcVerifier
from trustanchor.clock import FixedClock
from trustanchor.config import Settings, load_settings
from trustanchor.config.settings import LimitSettings
from trustanchor.demo import prepare
from trustanchor.demo.holder import HeldCredential, presentation
from trustanchor.demo.issuer import (
    AnchorIssuer,
    IssuedCredential,
    IssuerError,
    credential_path,
    holder_key_path,
    issue_for_person,
    load_ec_private_key,
)
from trustanchor.demo.people import PeopleError, load_people, parse_people, person
from trustanchor.jose.jwk import public_jwk, thumbprint
from trustanchor.randomness import SequenceRandomness
from trustanchor.services.anchor_declarations import anchor_from_declaration

REPO = Path(__file__).resolve().parents[2]
AT = 1_760_000_000
NONCE = "nonce-from-the-verifier-0123456789"
AUD = "http://127.0.0.1:8000"
LIMITS = LimitSettings(
    max_body_bytes=65536,
    max_jws_bytes=16384,
    max_json_depth=8,
    max_authorization_details=16,
    max_disclosures=128,
)


def demo_settings(keys_dir: Path) -> Settings:
    """config/demo.toml, its anchors' JWKS files taken from ``keys_dir`` (made by prepare)."""
    settings = load_settings(REPO / "config" / "demo.toml", environ={})
    anchors = []
    for declaration in settings.anchors:
        if declaration["kind"] != "sd_jwt_vc":  # the card's and the eKYC bank's anchors
            anchors.append(declaration)
            continue
        table = dict(declaration["sd_jwt_vc"])
        table["jwks_file"] = str(keys_dir / "anchors" / f"{declaration['id']}.jwks.json")
        anchors.append({**declaration, "sd_jwt_vc": table})
    return dataclasses.replace(settings, anchors=tuple(anchors))


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    prepare.prepare(directory)
    return directory


@pytest.fixture
def settings(keys_dir: Path) -> Settings:
    return demo_settings(keys_dir)


@pytest.fixture
def holder_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def service_verifier(settings: Settings, anchor_id: str) -> SdJwtVcVerifier:
    declaration = next(a for a in settings.anchors if a["id"] == anchor_id)
    anchor = anchor_from_declaration(declaration, base_dir=settings.config_dir)
    return SdJwtVcVerifier(anchor, fetcher=None, limits=LIMITS, kb_max_age=300)


def held(issued: IssuedCredential, key: ec.EllipticCurvePrivateKey) -> HeldCredential:
    return HeldCredential.parse(
        issued.credential,
        key,
        credential_id=issued.person,
        anchor_id=issued.anchor,
        issuer_name=issued.issuer_name,
    )


def test_issued_credential_has_the_declared_shape(
    settings: Settings, keys_dir: Path, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    hanako = person("hanako")
    issuer = AnchorIssuer.from_settings(settings, "jp-national-id", keys_dir=keys_dir)
    randomness = SequenceRandomness("salt")
    issued = issue_for_person(
        hanako, issuer, holder_key, clock=FixedClock(AT), randomness=randomness, lifetime=3600
    )
    jwt, *disclosures, last = issued.credential.split("~")
    assert last == ""  # an issuance ends with "~" and has no key binding JWT
    header, payload = decode_segment(jwt.split(".")[0]), decode_segment(jwt.split(".")[1])
    jwks = json.loads((keys_dir / "anchors" / "jp-national-id.jwks.json").read_text())
    assert header == {"alg": "ES256", "typ": "dc+sd-jwt", "kid": jwks["keys"][0]["kid"]}
    assert header["kid"] == thumbprint(public_jwk(issuer.private_key))
    assert payload["iss"] == "https://demo-pid.trustanchor.invalid/jp"  # config/demo.toml
    assert payload["vct"] == "urn:trustanchor:demo:jp:national-id:1"
    assert (payload["iat"], payload["exp"]) == (AT, AT + 3600)
    assert payload["cnf"] == {"jwk": public_jwk(holder_key)}
    assert payload["_sd_alg"] == "sha-256"
    assert sorted(payload) == ["_sd", "_sd_alg", "cnf", "exp", "iat", "iss", "vct"]
    # Every claim of the person is a Disclosure, salted from the injected randomness.
    decoded = [decode_segment(d) for d in disclosures]
    assert {name: value for _salt, name, value in decoded} == hanako.credential_claims()
    assert [salt for salt, _name, _value in decoded] == [
        f"salt{n}".ljust(43, "x") for n in range(1, 6)
    ]
    assert payload["_sd"] == sorted(digest(d) for d in disclosures)
    assert issued.holder_jkt == thumbprint(public_jwk(holder_key))
    assert issued.issuer_name == {"en": "My Number Card (demo)", "ja": "マイナンバーカード（デモ）"}


@pytest.mark.parametrize("person_id", ["hanako", "erika"])
def test_sd_jwt_package_verifies_what_the_demo_issuer_issues(
    settings: Settings, keys_dir: Path, holder_key: ec.EllipticCurvePrivateKey, person_id: str
) -> None:
    someone = person(person_id)
    issuer = AnchorIssuer.from_settings(settings, someone.anchor, keys_dir=keys_dir)
    issued = issue_for_person(
        someone, issuer, holder_key, clock=FixedClock(AT), randomness=SequenceRandomness()
    )
    credential = held(issued, holder_key)
    shown = presentation(
        credential,
        [d.encoded for d in credential.disclosures],
        nonce=NONCE,
        aud=AUD,
        iat=AT,
    )
    issuer_jwk = JWK.from_pyca(issuer.private_key.public_key())
    seen: dict[str, Any] = {}

    def issuer_key(iss: str, header: dict[str, Any]) -> JWK:
        seen.update(iss=iss, kid=header["kid"], typ=header["typ"])
        return issuer_jwk

    verifier = SDJWTVerifier(shown, issuer_key, expected_aud=AUD, expected_nonce=NONCE)
    payload = verifier.get_verified_payload()
    assert seen == {"iss": issuer.issuer, "kid": issuer.kid, "typ": "dc+sd-jwt"}
    for name, value in someone.credential_claims().items():
        assert payload[name] == value
    assert ("address" in payload) == (person_id == "hanako")


def test_service_verifier_accepts_a_full_and_a_selective_presentation(
    settings: Settings, keys_dir: Path, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    hanako = person("hanako")
    issuer = AnchorIssuer.from_settings(settings, "jp-national-id", keys_dir=keys_dir)
    issued = issue_for_person(
        hanako, issuer, holder_key, clock=FixedClock(AT - 60), randomness=SequenceRandomness()
    )
    credential = held(issued, holder_key)
    verifier = service_verifier(settings, "jp-national-id")

    everything = presentation(
        credential, [d.encoded for d in credential.disclosures], nonce=NONCE, aud=AUD, iat=AT
    )
    identity = verifier.verify(
        everything,
        expected=Expectation(nonce=NONCE, audience=AUD, required_claims=("address",)),
        at=AT,
    )
    assert identity.subject == hanako.sub
    assert identity.anchor_id == "jp-national-id"
    assert identity.claims == {
        "given_name": "花子",
        "family_name": "山田",
        "birthdate": hanako.birthdate,
        "address": hanako.credential_claims()["address"],
    }
    assert identity.trust_framework == "jp_my_number_card"

    chosen = [d.encoded for d in credential.disclosures if d.name in ("sub", "given_name")]
    selective = presentation(credential, chosen, nonce=NONCE, aud=AUD, iat=AT)
    identity = verifier.verify(selective, expected=Expectation(nonce=NONCE, audience=AUD), at=AT)
    assert identity.claims == {"given_name": "花子"}
    with pytest.raises(AnchorFailure) as refused:
        verifier.verify(
            selective,
            expected=Expectation(nonce=NONCE, audience=AUD, required_claims=("family_name",)),
            at=AT,
        )
    assert refused.value.reason == "missing_claims"


def test_a_credential_of_one_anchor_is_refused_by_the_other(
    settings: Settings, keys_dir: Path, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    erika = person("erika")
    issuer = AnchorIssuer.from_settings(settings, "eu-pid", keys_dir=keys_dir)
    issued = issue_for_person(
        erika, issuer, holder_key, clock=FixedClock(AT), randomness=SequenceRandomness()
    )
    credential = held(issued, holder_key)
    shown = presentation(
        credential, [d.encoded for d in credential.disclosures], nonce=NONCE, aud=AUD, iat=AT
    )
    with pytest.raises(AnchorFailure) as refused:
        service_verifier(settings, "jp-national-id").verify(
            shown, expected=Expectation(nonce=NONCE, audience=AUD), at=AT
        )
    assert refused.value.reason == "unknown_issuer_key"


def test_an_undeclared_key_or_anchor_cannot_issue(settings: Settings, keys_dir: Path) -> None:
    with pytest.raises(IssuerError) as unknown:
        AnchorIssuer.from_settings(settings, "no-such-anchor", keys_dir=keys_dir)
    assert unknown.value.reason == "unknown_anchor"
    # Replace the private key: the declared JWKS no longer lists it.
    pem = keys_dir / "anchors" / "eu-pid.key.pem"
    pem.unlink()
    prepare.ensure_private_key(pem)
    with pytest.raises(IssuerError) as undeclared:
        AnchorIssuer.from_settings(settings, "eu-pid", keys_dir=keys_dir)
    assert undeclared.value.reason == "key_not_declared"
    with pytest.raises(IssuerError) as missing:
        AnchorIssuer.from_settings(settings, "jp-national-id", keys_dir=keys_dir / "nowhere")
    assert missing.value.reason == "key_unreadable"


def test_issue_refuses_reserved_claims_and_the_wrong_anchor(
    settings: Settings, keys_dir: Path, holder_key: ec.EllipticCurvePrivateKey
) -> None:
    issuer = AnchorIssuer.from_settings(settings, "jp-national-id", keys_dir=keys_dir)
    with pytest.raises(IssuerError) as reserved:
        issuer.issue(
            {"sub": "x", "cnf": {}},
            public_jwk(holder_key),
            clock=FixedClock(AT),
            randomness=SequenceRandomness(),
        )
    assert reserved.value.reason == "reserved_claim"
    with pytest.raises(IssuerError) as wrong:
        issue_for_person(
            person("erika"),
            issuer,
            holder_key,
            clock=FixedClock(AT),
            randomness=SequenceRandomness(),
        )
    assert wrong.value.reason == "wrong_anchor"


# -- the people file ---------------------------------------------------------------------------


def test_the_demo_people_are_as_designed() -> None:
    people = {p.id: p for p in load_people()}
    assert list(people) == ["hanako", "taro", "erika", "aiko", "ume"]
    assert people["hanako"].display_name.get("ja") == "山田 花子"
    assert people["taro"].display_name.get("en") == "Taro Suzuki"
    assert people["hanako"].anchor == people["taro"].anchor == "jp-national-id"
    assert people["erika"].anchor == "eu-pid"
    assert people["erika"].address is None and people["hanako"].address is not None
    # The payees are linked at start; the auditor has no accounts; Hanako is the evaluator's.
    assert [p.id for p in people.values() if p.linked_at_start] == ["taro", "erika"]
    assert [p.id for p in people.values() if p.auditor] == ["aiko"]
    assert people["aiko"].accounts == () and not people["hanako"].linked_at_start
    for someone in (people["hanako"], people["taro"], people["erika"]):
        kinds = [a.kind for a in someone.accounts]
        assert kinds == ["bank_deposit", "cbdc_wallet"]
        for account in someone.accounts:
            assert str(account.opening_amount) == account.opening_balance
    assert people["hanako"].account("cbdc_wallet").currency == "JPY"
    # My Number Cards (jpki_ca.py): the Japanese residents have one; Taro's is revoked; Ume has
    # no smartphone (no wallet credential: she uses her card at the branch's counter).
    assert [p.id for p in people.values() if p.card] == ["hanako", "taro", "aiko", "ume"]
    assert [p.id for p in people.values() if p.card and p.card.revoked] == ["taro"]
    assert [p.id for p in people.values() if not p.smartphone] == ["ume"]
    assert people["ume"].anchor == "jp-jpki" and people["ume"].accounts


def _raw_person(**changes: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": "someone",
        "display_name": {"en": "Some One", "ja": "誰か"},
        "anchor": "eu-pid",
        "sub": "s-1",
        "given_name": "Some",
        "family_name": "One",
        "birthdate": "2000-02-29",
        "accounts": [
            {
                "kind": "cbdc_wallet",
                "label": {"en": "Wallet", "ja": "ウォレット"},
                "reference": "R-1",
                "currency": "EUR",
                "opening_balance": "10.50",
            }
        ],
    }
    entry.update(changes)
    return entry


def _account(**changes: Any) -> dict[str, Any]:
    account = dict(_raw_person()["accounts"][0])
    account.update(changes)
    return account


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (_raw_person(nickname="x"), "people[0].nickname: unknown key"),
        (_raw_person(birthdate="2001-02-29"), "birthdate"),
        (_raw_person(birthdate="29.02.2000"), "birthdate"),
        (_raw_person(display_name={"en": "Only English"}), "display_name.ja: missing"),
        (_raw_person(accounts=[_account(opening_balance="10.5")]), "write '10.50'"),
        (_raw_person(accounts=[_account(currency="JPY", opening_balance="1.5")]), "decimal"),
        (_raw_person(accounts=[_account(kind="savings")]), "kind"),
        (_raw_person(accounts=[_account(colour="red")]), "colour: unknown key"),
        (_raw_person(address={"locality": "Berlin"}), "address"),
        (_raw_person(id="Upper"), "id"),
    ],
)
def test_people_are_loaded_strictly(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(PeopleError, match=re.escape(message)):
        parse_people({"people": [entry]})


def test_people_ids_subs_and_references_are_unique() -> None:
    one = _raw_person()
    with pytest.raises(PeopleError, match="id 'someone' appears twice"):
        parse_people({"people": [one, _raw_person(sub="s-2")]})
    with pytest.raises(PeopleError, match="account reference"):
        parse_people({"people": [one, _raw_person(id="other", sub="s-2")]})
    with pytest.raises(PeopleError, match="unknown top-level key"):
        parse_people({"people": [one], "extra": 1})


# -- prepare: holder keys and credentials ----------------------------------------------------


def test_prepare_wallet_issues_once_and_again_only_when_needed(
    settings: Settings, keys_dir: Path, tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    clock = FixedClock(AT)
    randomness = SequenceRandomness()

    def run() -> list[str]:
        return prepare.prepare_wallet(
            settings, keys_dir=keys_dir, state_dir=state_dir, clock=clock, randomness=randomness
        )

    first = run()
    with_phone = [p for p in load_people() if p.smartphone]  # no phone, no wallet credential
    assert sum(m.startswith("issued ") for m in first) == len(with_phone)
    assert not credential_path(state_dir, "ume").exists()
    for someone in with_phone:
        key_file = holder_key_path(keys_dir, someone.id)
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        stored = IssuedCredential.load(credential_path(state_dir, someone.id))
        assert stat.S_IMODE(os.stat(credential_path(state_dir, someone.id)).st_mode) == 0o600
        credential = held(stored, load_ec_private_key(key_file))
        assert credential.disclosable_claims() == someone.credential_claims()

    second = run()
    assert not any(m.startswith("issued ") for m in second)

    # A new holder key for taro: only taro's credential is issued again, bound to it.
    holder_key_path(keys_dir, "taro").unlink()
    third = run()
    assert [m for m in third if m.startswith("issued ")] == [
        f"issued {credential_path(state_dir, 'taro')}"
    ]
    # Close to expiry: everything is renewed.
    clock.set(AT + 340 * 86400)
    fourth = run()
    assert sum(m.startswith("issued ") for m in fourth) == len(with_phone)


def test_prepare_command_makes_keys_and_credentials_for_config_demo_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python -m trustanchor.demo.prepare`` with the real config/demo.toml (copied, so the
    relative keys_dir and jwks_file paths land in a temporary directory)."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "demo.toml").write_bytes((REPO / "config" / "demo.toml").read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TRUSTANCHOR_CONFIG", raising=False)
    assert prepare.main(["--config", "config/demo.toml", "--state-dir", "var/demo"]) == 0
    first = capsys.readouterr().out
    assert "issued var/demo/credentials/hanako.json" in first
    assert "created keys/demo/holders/erika.key.pem" in first
    assert prepare.main(["--config", "config/demo.toml", "--state-dir", "var/demo"]) == 0
    assert "issued" not in capsys.readouterr().out
    stored = IssuedCredential.load(tmp_path / "var/demo/credentials/taro.json")
    assert stored.anchor == "jp-national-id" and stored.person == "taro"
