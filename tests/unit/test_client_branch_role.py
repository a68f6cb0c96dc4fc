"""The branch role of a counter terminal (``trustanchor_branch``): who may carry it, how it is
validated, stored and shown (docs/CERTIFICATE-LOGIN.md, "At a bank branch")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from trustanchor.cli.clients import clients
from trustanchor.cli.context import CliContext
from trustanchor.clock import FixedClock
from trustanchor.domain.clients import BranchRole
from trustanchor.oauth.client_metadata import (
    client_from_declaration,
    client_from_metadata,
    client_to_metadata,
)
from trustanchor.storage.database import Database
from trustanchor.storage.migrate import upgrade

KEY = {
    **ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key(), as_dict=True),
    "kid": "k1",
}
BRANCH = {"branch_id": "tokyo-marunouchi", "display_name": {"en": "Marunouchi", "ja": "丸の内"}}


def _terminal(**changes: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {
        "client_id": "counter-marunouchi",
        "client_name": {"en": "Marunouchi counter"},
        "client_type": "confidential",
        "token_endpoint_auth_method": "private_key_jwt",
        "jwks": {"keys": [KEY]},
        "redirect_uris": ["https://counter.bank.example/cb"],
        "grant_types": ["authorization_code"],
        "scope": "openid",
        "trustanchor_branch": BRANCH,
    }
    decl.update(changes)
    return {k: v for k, v in decl.items() if v is not None}


def _parse(decl: dict[str, Any], mode: str = "production") -> Any:
    return client_from_declaration(decl, mode=mode, base_dir=Path("."))[0]


def test_branch_role_is_parsed_stored_and_read_back() -> None:
    client = _parse(_terminal())
    assert client.branch == BranchRole("tokyo-marunouchi", {"en": "Marunouchi", "ja": "丸の内"})
    stored = json.loads(json.dumps(client_to_metadata(client)))
    assert stored["trustanchor_branch"] == BRANCH
    assert client_from_metadata(stored) == client


def test_a_client_without_the_role_stores_no_branch_member() -> None:
    """Rows written before the role existed stay byte-equal (no operator change at start)."""
    client = _parse(_terminal(trustanchor_branch=None))
    assert client.branch is None
    assert "trustanchor_branch" not in client_to_metadata(client)


def test_display_name_is_optional() -> None:
    client = _parse(_terminal(trustanchor_branch={"branch_id": "osaka-umeda"}))
    assert client.branch == BranchRole("osaka-umeda", {})
    assert client_from_metadata(client_to_metadata(client)) == client


def test_public_clients_cannot_carry_the_role() -> None:
    decl = _terminal(
        client_type="public",
        token_endpoint_auth_method="none",
        jwks=None,
        grant_types=["authorization_code"],
    )
    with pytest.raises(ValueError, match="trustanchor_branch: only confidential clients"):
        _parse(decl)


def test_shared_secret_clients_cannot_carry_the_role() -> None:
    """A client_secret_basic secret proves nothing about which machine holds it."""
    decl = _terminal(
        token_endpoint_auth_method="client_secret_basic", jwks=None, client_secret="s3cret-demo"
    )
    with pytest.raises(ValueError, match="only confidential clients using private_key_jwt"):
        _parse(decl, mode="demo")


def test_the_role_needs_the_authorization_code_grant() -> None:
    decl = _terminal(grant_types=["client_credentials"], redirect_uris=None)
    with pytest.raises(ValueError, match="needs the authorization_code grant"):
        _parse(decl)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("tokyo", "must be a table"),
        ({}, "branch_id: required"),
        ({"branch_id": ""}, "branch_id: required"),
        ({"branch_id": "Tokyo Marunouchi"}, "branch_id: required"),
        ({"branch_id": "-tokyo"}, "branch_id: required"),
        ({"branch_id": "x" * 65}, "branch_id: required"),
        ({"branch_id": 7}, "branch_id: required"),
        ({"branch_id": "a" * 43}, "looks like a secret"),
        ({"branch_id": "tokyo", "name": "x"}, "trustanchor_branch.name: unknown key"),
        ({"branch_id": "tokyo", "display_name": {}}, "display_name: must be a string"),
        ({"branch_id": "tokyo", "display_name": {"en": "a\nb"}}, "control characters"),
        ({"branch_id": "tokyo", "display_name": {"EN!": "x"}}, "is not a language tag"),
    ],
)
def test_malformed_roles_are_refused_with_the_field_named(value: object, problem: str) -> None:
    with pytest.raises(ValueError, match="client 'counter-marunouchi': trustanchor_branch") as exc:
        _parse(_terminal(trustanchor_branch=value))
    assert problem in str(exc.value)


def test_a_stored_row_with_a_tampered_role_is_refused() -> None:
    stored = client_to_metadata(_parse(_terminal()))
    stored["trustanchor_branch"] = {"branch_id": "tokyo", "extra": True}
    with pytest.raises(ValueError, match="unknown key"):
        client_from_metadata(stored)
    stored["trustanchor_branch"] = {"branch_id": "tokyo"}
    stored["token_endpoint_auth_method"] = "none"
    stored["client_type"] = "public"
    stored["jwks"] = None
    stored["dpop_bound_access_tokens"] = True
    with pytest.raises(ValueError, match="only confidential clients"):
        client_from_metadata(stored)


def test_clients_show_and_list_print_the_role(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'trustanchor.db'}"
    config = tmp_path / "test.toml"
    config.write_text(
        f'[service]\nmode = "test"\nissuer = "http://127.0.0.1:8000"\n'
        f'database_url = "{url}"\nkeys_dir = "{tmp_path / "keys"}"\n'
    )
    upgrade(Database(url))
    declaration = tmp_path / "counter.toml"
    declaration.write_text(
        'client_id = "counter-marunouchi"\nclient_type = "confidential"\n'
        'redirect_uris = ["https://counter.bank.example/cb"]\n'
        f'jwks = {{ keys = [{{ kty = "EC", crv = "P-256", x = "{KEY["x"]}", '
        f'y = "{KEY["y"]}", kid = "k1" }}] }}\n'
        '[trustanchor_branch]\nbranch_id = "tokyo-marunouchi"\n'
        'display_name = { en = "Marunouchi", ja = "丸の内" }\n'
    )

    def run(*args: str) -> Any:
        obj = CliContext(config_path=config, clock=FixedClock(1_700_000_000))
        return CliRunner().invoke(clients, list(args), obj=obj)

    added = run("add", "--file", str(declaration))
    assert added.exit_code == 0, added.output
    shown = run("show", "counter-marunouchi")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["trustanchor_branch"] == BRANCH
    listed = run("list")
    header, row = listed.output.splitlines()
    assert header.split() == ["client_id", "type", "auth", "method", "branch", "name"]
    assert row.split()[:4] == [
        "counter-marunouchi",
        "confidential",
        "private_key_jwt",
        "tokyo-marunouchi",
    ]
    assert row.index("tokyo-marunouchi") == header.index("branch")  # under its heading
