"""Attack report F2 (issue 14): a description repeats a name the caller chose only when it is
short and plain (trustanchor.echo), so that no request writes line breaks or kilobytes into an
answer or a log line."""

from __future__ import annotations

import pytest

from trustanchor import strict_json
from trustanchor.echo import ECHO_MAX, echoable
from trustanchor.oauth.claims_request import parse_claims_request
from trustanchor.oauth.errors import InvalidRequest
from trustanchor.oauth.params import reject_repeats, single

FORGED = "a\n2026-12-07T00:00:00.000Z INFO trustanchor.login [forged]: ok\nb"
UNPLAIN = [FORGED, "x" * 32_000, "k" * (ECHO_MAX + 1), "", "a b", 'a"b', "a\\b", "é", "a\u2028b"]


@pytest.mark.parametrize("name", ["client_id", "authorization_details", "a.b~c-d", "k" * ECHO_MAX])
def test_short_plain_names_are_echoable(name: str) -> None:
    assert echoable(name)


@pytest.mark.parametrize("name", UNPLAIN)
def test_other_names_are_not(name: str) -> None:
    assert not echoable(name)


@pytest.mark.parametrize("name", UNPLAIN[:-3])
def test_a_repeated_parameter_of_the_callers_naming_is_not_named(name: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        reject_repeats({"scope": ["openid"], name: ["1", "2"]})
    assert refused.value.description == "a parameter is repeated"
    assert refused.value.reason == "parameter_repeated"


def test_a_repeated_parameter_of_a_plain_name_is_named() -> None:
    with pytest.raises(InvalidRequest) as refused:
        reject_repeats({"scope": ["openid", "email"]})
    assert refused.value.description == "parameter scope is repeated"
    with pytest.raises(InvalidRequest) as known:
        single({"state": ["a", "b"]}, "state")
    assert known.value.description == "state is repeated"


def test_claims_name_unknown_members_only_when_plain() -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_claims_request('{"' + "x" * 5000 + '": {}}', max_depth=8)
    assert refused.value.description == "claims: an unknown member"
    with pytest.raises(InvalidRequest) as named:
        parse_claims_request('{"extra": {}}', max_depth=8)
    assert named.value.description == "claims: unknown member extra"
    with pytest.raises(InvalidRequest) as inner:
        parse_claims_request('{"userinfo": {"a\\nb": 5}}', max_depth=8)
    assert inner.value.description == (
        "a member of claims.userinfo: must be null or an object with essential/value/values"
    )
    with pytest.raises(InvalidRequest) as duplicate:
        parse_claims_request('{"userinfo": {"a\\nb": null, "a\\nb": null}}', max_depth=8)
    assert duplicate.value.description == "claims: duplicate member"


def test_strict_json_names_a_duplicate_member_only_when_plain() -> None:
    with pytest.raises(strict_json.StrictJSONError, match=r"^duplicate member 'a'$"):
        strict_json.loads('{"a": 1, "a": 2}')
    long = "k" * 10_000
    with pytest.raises(strict_json.StrictJSONError, match=r"^duplicate member$"):
        strict_json.loads(f'{{"{long}": 1, "{long}": 2}}')
