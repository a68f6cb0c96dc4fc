"""Our private_key_jwt key per upstream provider (keystore/upstream_keys.py): made once, 0600 in
a 0700 directory, loaded back as the same key, its public JWKS without private members, never
its private part in a repr, and a key of another algorithm than the anchor needs refused."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from trustanchor.jose import jws
from trustanchor.keystore import upstream_keys
from trustanchor.keystore.upstream_keys import UpstreamKeyError

PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi"}


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_a_key_is_made_once_private_and_loads_back(tmp_path: Path, alg: str) -> None:
    assert upstream_keys.ensure(tmp_path, "bank-idp", alg=alg)
    path = tmp_path / "upstream" / "bank-idp.private.jwk"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    first = path.read_bytes()
    assert not upstream_keys.ensure(tmp_path, "bank-idp", alg=alg)  # kept, not replaced
    assert path.read_bytes() == first
    key = upstream_keys.load(tmp_path, "bank-idp")
    assert key.alg == alg and key.kid == json.loads(first)["kid"]
    (public,) = key.jwks()["keys"]
    assert not PRIVATE_MEMBERS & public.keys()
    assert public["kid"] == key.kid and public["alg"] == alg and public["use"] == "sig"
    assert "private" not in repr(key) and json.loads(first)["d"] not in repr(key)
    # An assertion signed with the loaded key verifies (joserfc) with the published JWKS only.
    token = jws.sign({"iss": "me"}, key.private_key, alg=alg, headers={"kid": key.kid})
    decoded = jose_jwt.decode(token, KeySet.import_key_set(key.jwks()), algorithms=[alg])
    assert decoded.claims == {"iss": "me"}


def test_a_key_of_another_algorithm_is_refused(tmp_path: Path) -> None:
    upstream_keys.ensure(tmp_path, "bank-idp", alg="ES256")
    with pytest.raises(UpstreamKeyError, match="holds a ES256 key but the anchor needs RS256"):
        upstream_keys.ensure(tmp_path, "bank-idp", alg="RS256")


def test_each_provider_has_its_own_key(tmp_path: Path) -> None:
    upstream_keys.ensure(tmp_path, "a", alg="ES256")
    upstream_keys.ensure(tmp_path, "b", alg="ES256")
    assert upstream_keys.load(tmp_path, "a").kid != upstream_keys.load(tmp_path, "b").kid


@pytest.mark.parametrize("anchor_id", ["../x", "a/b", "..", "", "x" * 65])
def test_an_anchor_id_never_names_a_path_outside_the_directory(
    tmp_path: Path, anchor_id: str
) -> None:
    with pytest.raises(UpstreamKeyError):
        upstream_keys.key_path(tmp_path, anchor_id)


def test_a_missing_or_tampered_key_file_is_refused_without_its_content(tmp_path: Path) -> None:
    with pytest.raises(UpstreamKeyError, match="no key for upstream anchor"):
        upstream_keys.load(tmp_path, "bank-idp")
    upstream_keys.ensure(tmp_path, "bank-idp", alg="ES256")
    path = tmp_path / "upstream" / "bank-idp.private.jwk"
    jwk = json.loads(path.read_text())
    upstream_keys.ensure(tmp_path, "other", alg="ES256")
    other = json.loads((tmp_path / "upstream" / "other.private.jwk").read_text())
    path.write_text(json.dumps({**jwk, "d": other["d"]}))  # private part of another key
    with pytest.raises(UpstreamKeyError) as refused:
        upstream_keys.load(tmp_path, "bank-idp")
    assert other["d"] not in str(refused.value) and jwk["d"] not in str(refused.value)
