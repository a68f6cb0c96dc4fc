"""Identity joining (issue 10, item 1): the rule matching of services/identity_joining.py, the
``identity_joins`` policy field, the ``identity_join`` audit entry, and what a step-up asks the
wallet for. Pure code; the HTTP flows are in tests/flows/test_identity_joining.py."""

from __future__ import annotations

import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trustanchor.audit.entries import EntryError, IdentityJoin, parse_entry
from trustanchor.digests import keyed_digest
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.claim_normalizer import NORMALIZER_ID, same_value
from trustanchor.oauth.authorization_request import AuthorizationRequest
from trustanchor.policy.anchor_set_policy import JoinRule, PolicyError, parse_policy
from trustanchor.services.identity_joining import (
    AnchorState,
    JoinRefused,
    NewSide,
    Proof,
    SetRules,
    compare,
    evaluate,
    present_again,
)
from trustanchor.services.wallet_login import dcql_for
from trustanchor.storage.identities_repo import JoinCandidate

AT = 1_700_000_000
RULE = JoinRule(
    id="name-and-birthdate",
    claims=("birthdate", "family_name", "given_name"),
    min_assurance="substantial",
)
HANAKO = {"family_name": "山田", "given_name": "花子", "birthdate": "1988-05-14"}
SETS = [SetRules("jp-cbdc", frozenset({"jp-high", "jp-ekyc", "jp-low"}), (RULE,))]
ANCHORS = {
    "jp-high": AnchorState("high", True),
    "jp-ekyc": AnchorState("substantial", True),
    "jp-low": AnchorState("low", True),
    "eu-pid": AnchorState("high", True),
}


def existing(
    anchor_id: str = "jp-ekyc",
    claims: dict[str, Any] | None = None,
    *,
    level: str = "substantial",
    status: str = "valid",
    expires_at: int | None = None,
    identity_id: str = "idn-1",
) -> JoinCandidate:
    return JoinCandidate(
        id=identity_id,
        anchor_id=anchor_id,
        claims=dict(HANAKO if claims is None else claims),
        assurance_level=level,
        expires_at=expires_at,
        credential_status=status,
    )


def new(claims: dict[str, Any] | None = None, anchor_id: str = "jp-high") -> NewSide:
    return NewSide(anchor_id, "high", dict(HANAKO if claims is None else claims))


def refusal(*args: Any, **kwargs: Any) -> JoinRefused:
    with pytest.raises(JoinRefused) as caught:
        evaluate(*args, **kwargs)
    return caught.value


# -- the comparison -----------------------------------------------------------------------------


def test_the_same_person_written_in_another_width_case_and_script_matches() -> None:
    left = {"family_name": "ＹＡＭＡＤＡ", "given_name": "はなこ", "birthdate": "1988-05-14"}
    right = {"family_name": "yamada", "given_name": "ﾊﾅｺ", "birthdate": "1988-05-14"}
    assert compare(RULE.claims, left, right) == "match"


def test_a_different_name_is_a_mismatch_even_when_other_claims_are_missing() -> None:
    assert compare(RULE.claims, {**HANAKO, "family_name": "鈴木"}, {"family_name": "山田"}) == (
        "mismatch"
    )


def test_missing_claims_prove_nothing() -> None:
    assert compare(RULE.claims, {"family_name": "山田"}, HANAKO) == "new_lacks"
    assert compare(RULE.claims, HANAKO, {"family_name": "山田"}) == "existing_lacks"
    assert compare(RULE.claims, {**HANAKO, "birthdate": None}, HANAKO) == "new_lacks"


def test_variant_kanji_do_not_match() -> None:
    registered, simplified = {**HANAKO, "family_name": "髙田"}, {**HANAKO, "family_name": "高田"}
    assert compare(RULE.claims, registered, simplified) == "mismatch"


names = st.text(
    alphabet=st.characters(whitelist_categories=("Lu", "Ll", "Lo"), max_codepoint=0x9FFF),
    min_size=1,
    max_size=12,
)


def widen(text: str) -> str:
    """Full-width forms of ASCII letters and digits, as some anchors write them."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


@given(names, names, st.dates().map(str))
def test_a_person_matches_their_own_claims_however_an_anchor_writes_them(
    family: str, given_name: str, birthdate: str
) -> None:
    claims = {"family_name": family, "given_name": given_name, "birthdate": birthdate}
    other = {
        "family_name": widen(family.upper()),
        "given_name": " " + unicodedata.normalize("NFKC", given_name).swapcase() + "\u3000",
        "birthdate": birthdate,
    }
    if all(same_value(claims[n], other[n]) for n in RULE.claims):
        assert compare(RULE.claims, claims, other) == "match"


@given(names, names)
def test_a_join_is_proved_only_by_equal_normalised_values(left: str, right: str) -> None:
    """Whatever the names, evaluate joins exactly when the normaliser says they are equal."""
    new_side = new({**HANAKO, "family_name": left})
    holder = [existing(claims={**HANAKO, "family_name": right})]
    if same_value(left, right):
        assert evaluate(new_side, holder, SETS, ANCHORS, at=AT).claims == RULE.claims
    else:
        assert refusal(new_side, holder, SETS, ANCHORS, at=AT).reason == "identity_mismatch"


# -- evaluate -------------------------------------------------------------------------------------


def test_the_same_name_and_birthdate_at_another_anchor_of_the_set_joins() -> None:
    proof = evaluate(new(), [existing()], SETS, ANCHORS, at=AT)
    assert proof == Proof(
        rule="name-and-birthdate",
        anchor_set_id="jp-cbdc",
        matched_identity_id="idn-1",
        matched_anchor_id="jp-ekyc",
        claims=("birthdate", "family_name", "given_name"),
    )


def test_someone_elses_credential_is_refused_as_a_mismatch() -> None:
    taro = {"family_name": "鈴木", "given_name": "太郎", "birthdate": "1979-11-02"}
    assert refusal(new(taro), [existing()], SETS, ANCHORS, at=AT).reason == "identity_mismatch"


def test_a_minimal_disclosure_asks_for_that_anchors_credential_again() -> None:
    refused = refusal(new(), [existing(claims={})], SETS, ANCHORS, at=AT)
    assert refused.reason == "join_needs_claims"
    assert refused.present_again == ("jp-ekyc",)
    assert refused.claims == RULE.claims
    assert (refused.rule, refused.anchor_set_id) == ("name-and-birthdate", "jp-cbdc")


def test_a_new_credential_that_hides_the_claims_is_refused() -> None:
    reason = refusal(new({"family_name": "山田"}), [existing()], SETS, ANCHORS, at=AT).reason
    assert reason == "join_claims_missing"


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [
        (existing(status="revoked"), "join_identity_not_current"),
        (existing(status="suspended"), "join_identity_not_current"),
        (existing(status="unknown"), "join_identity_not_current"),
        (existing(expires_at=AT), "join_identity_not_current"),
        (existing("jp-low", level="low"), "join_no_rule"),  # low claims are never proof
        (existing("eu-pid", level="high"), "join_no_rule"),  # no set holds both anchors
    ],
)
def test_identities_that_cannot_vouch_are_not_compared(
    candidate: JoinCandidate, reason: str
) -> None:
    assert refusal(new(), [candidate], SETS, ANCHORS, at=AT).reason == reason


def test_an_inactive_anchor_vouches_for_nothing_on_either_side() -> None:
    suspended = {**ANCHORS, "jp-ekyc": AnchorState("substantial", False)}
    assert refusal(new(), [existing()], SETS, suspended, at=AT).reason == "join_no_rule"
    suspended = {**ANCHORS, "jp-high": AnchorState("high", False)}
    assert refusal(new(), [existing()], SETS, suspended, at=AT).reason == "join_no_rule"


def test_an_identity_level_below_the_rule_counts_even_at_a_strong_anchor() -> None:
    weak = existing(level="low")
    assert refusal(new(), [weak], SETS, ANCHORS, at=AT).reason == "join_no_rule"


def test_a_new_credential_below_the_rule_joins_nothing() -> None:
    low = NewSide("jp-low", "low", dict(HANAKO))
    assert refusal(low, [existing()], SETS, ANCHORS, at=AT).reason == "join_no_rule"


def test_a_set_without_rules_joins_nothing() -> None:
    bare = [SetRules("jp-cbdc", frozenset({"jp-high", "jp-ekyc"}), ())]
    assert refusal(new(), [existing()], bare, ANCHORS, at=AT).reason == "join_no_rule"


def test_a_rule_naming_another_normaliser_is_never_applied() -> None:
    other = JoinRule("x", RULE.claims, "substantial", normalizer="something-else")
    sets = [SetRules("jp-cbdc", frozenset({"jp-high", "jp-ekyc"}), (other,))]
    assert refusal(new(), [existing()], sets, ANCHORS, at=AT).reason == "join_no_rule"


def test_one_matching_identity_is_enough_and_the_first_by_id_is_named() -> None:
    holder = [
        existing(claims={**HANAKO, "family_name": "佐藤"}, identity_id="idn-0"),
        existing(identity_id="idn-1"),
        existing(identity_id="idn-2"),
    ]
    assert evaluate(new(), holder, SETS, ANCHORS, at=AT).matched_identity_id == "idn-1"


def test_asking_again_wins_over_a_mismatch_elsewhere() -> None:
    holder = [existing(claims={**HANAKO, "family_name": "佐藤"}), existing(claims={})]
    assert refusal(new(), holder, SETS, ANCHORS, at=AT).reason == "join_needs_claims"


def test_present_again_reads_only_well_formed_hints() -> None:
    assert present_again(None) == ()
    assert present_again({"anchor_set_id": "jp-cbdc"}) == ()
    assert present_again({"join": {"present_again": "jp-ekyc"}}) == ()
    assert present_again({"join": {"present_again": ["jp-ekyc", 3]}}) == ("jp-ekyc",)


# -- the policy field -----------------------------------------------------------------------------

DECLARED = {
    "id": "name-and-birthdate",
    "claims": ["given_name", "family_name", "birthdate"],
    "min_assurance": "substantial",
    "normalizer": NORMALIZER_ID,
}


def test_a_declared_rule_parses_and_round_trips_canonically() -> None:
    policy = parse_policy({"identity_joins": [DECLARED]})
    assert policy.identity_joins == (RULE,)
    stored = policy.to_json()
    assert stored["identity_joins"] == [
        {
            "id": "name-and-birthdate",
            "claims": ["birthdate", "family_name", "given_name"],
            "min_assurance": "substantial",
            "normalizer": NORMALIZER_ID,
        }
    ]
    assert parse_policy(stored) == policy


def test_a_policy_without_rules_keeps_its_stored_form() -> None:
    assert "identity_joins" not in parse_policy({}).to_json()


@pytest.mark.parametrize(
    ("rules", "problem"),
    [
        ({"a": 1}, ("identity_joins", "must be a list of tables")),
        ([{**DECLARED, "min_assurance": "low"}], ("identity_joins[0].min_assurance", "must be")),
        ([{**DECLARED, "normalizer": "nfc"}], ("identity_joins[0].normalizer", "must be nfkc")),
        ([{**DECLARED, "claims": []}], ("identity_joins[0].claims", "must be a non-empty")),
        ([{**DECLARED, "claims": ["a", "a"]}], ("identity_joins[0].claims", "lists a claim")),
        ([{**DECLARED, "claims": ["Family Name"]}], ("identity_joins[0].claims", "must be")),
        ([{**DECLARED, "id": "Bad Id"}], ("identity_joins[0].id", "must be 1-64")),
        ([{**DECLARED, "extra": 1}], ("identity_joins[0].extra", "unknown field")),
        ([{"id": "x"}], ("identity_joins[0].claims", "missing")),
        ([DECLARED, DECLARED], ("identity_joins[1].id", "another rule has the same id")),
    ],
)
def test_a_bad_rule_is_refused_with_its_field(rules: Any, problem: tuple[str, str]) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({"identity_joins": rules})
    assert any(
        where == problem[0] and message.startswith(problem[1])
        for where, message in caught.value.problems
    ), caught.value.problems


# -- the audit entry ------------------------------------------------------------------------------

PSEUDONYM = keyed_digest(b"pairwise-secret", "audit-identity", "idn-1")
OTHER = keyed_digest(b"pairwise-secret", "audit-holder", "hol-1")


def joined(**change: Any) -> IdentityJoin:
    fields: dict[str, Any] = {
        "at": AT,
        "action": "joined",
        "identity": PSEUDONYM,
        "anchor_id": "jp-high",
        "holder": OTHER,
        "new_holder": None,
        "rule": "name-and-birthdate",
        "anchor_set_id": "jp-cbdc",
        "matched_anchor_id": "jp-ekyc",
        "claims": "birthdate family_name given_name",
        **change,
    }
    return IdentityJoin(**fields)


def test_a_join_entry_names_the_rule_and_claim_names_and_round_trips() -> None:
    entry = joined()
    assert parse_entry(entry.to_canonical()) == entry
    assert b"birthdate family_name given_name" in entry.to_canonical()


@pytest.mark.parametrize(
    "change",
    [
        {"claims": "山田"},  # a value, not a claim name
        {"claims": "family_name birthdate"},  # not in order
        {"claims": "Yamada Hanako"},
        {"new_holder": PSEUDONYM},  # a join moves nobody
        {"rule": None},  # a join always names its rule
        {"action": "unjoined"},  # an unjoin names no rule, but a new holder
        {"identity": "idn-1"},  # an internal id, not a pseudonym
    ],
)
def test_a_join_entry_refuses_values_and_inconsistent_fields(change: dict[str, Any]) -> None:
    with pytest.raises(EntryError):
        joined(**change)


def test_an_unjoin_entry_names_only_the_holders() -> None:
    entry = joined(
        action="unjoined",
        new_holder=PSEUDONYM,
        rule=None,
        anchor_set_id=None,
        matched_anchor_id=None,
        claims=None,
    )
    assert parse_entry(entry.to_canonical()) == entry


# -- what the wallet is asked for -----------------------------------------------------------------


def test_a_step_up_asks_the_wallet_for_the_join_claims_too() -> None:
    anchor = Anchor(
        id="jp-high",
        kind="sd_jwt_vc",
        display_name={"en": "x"},
        assurance_level="high",
        status="active",
        settings={
            "vct": ["urn:x"],
            "subject_claim": "sub",
            "claims": {"family_name": "family_name", "birthdate": "birthdate"},
        },
    )
    request = AuthorizationRequest.from_json(
        {
            "client_id": "bank",
            "redirect_uri": "https://b/cb",
            "scope": ["openid"],
            "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        }
    )
    plain = dcql_for(anchor, request)
    stepped = dcql_for(anchor, request, ("birthdate", "family_name"))
    paths = [c["path"] for c in stepped["credentials"][0]["claims"]]
    # The names the consent page shows come first (WHO_CLAIMS, as the anchor maps them), then
    # the join rule's claims, each once.
    assert [p for p in paths if p != ["sub"]] == [["family_name"], ["birthdate"]]
    assert [c["path"] for c in plain["credentials"][0]["claims"]] == [["sub"], ["family_name"]]
