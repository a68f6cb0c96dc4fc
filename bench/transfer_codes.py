"""Authorization codes for a value_transfer grant, minted ahead of a token-endpoint run
(``bench/token_endpoint.py --grant transfer_code``).

A code is single-use, so a load run needs one per request. Each server gets its codes before a
measured run and never during one: trustanchor's are written into its SQLite database through the
same repository functions the consent step uses (``grants_repo.create_grant`` /
``grants_repo.store_code``), node-oidc-provider's are made in its process by its own models
(``POST /bench/mint`` in bench/peer/node-oidc-provider/server.js). All codes of a server share one
grant, as all would share one grant row anyway for the work measured here (a primary-key read).

What the grant holds is what trustanchor's consent step stores for a transfer a policy decision
allowed: the approved ``value_transfer`` entry, the login behind it and the anchor set relied on.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

REDIRECT_URI = "https://bank.bench.invalid/callback"
SCOPE = "openid api:read"
ANCHOR_SET = "bench-set"
CODE_LIFETIME = 3600  # minted ahead of the run; trustanchor's own codes live at most 60 s
TRANSFER_DETAIL: dict[str, Any] = {
    "type": "value_transfer",
    "instructed_amount": {"currency": "JPY", "amount": "5000"},
    "debtor_account": "acc_benchDebtorAccount0001",
    "creditor_account": "acc_benchCreditorAccount001",
}


def pkce_pair() -> tuple[str, str]:
    """(code_verifier, S256 code_challenge) shared by every code of the run."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def form_prefix(verifier: str) -> str:
    """The token request body without the code: wrk appends one code per request."""
    fixed = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
    )
    return fixed + "&code="


class TrustanchorCodes:
    """Mints codes straight into a trustanchor database (the server keeps running)."""

    def __init__(self, config: Path, client_id: str, challenge: str) -> None:
        self._config = config
        self._client_id = client_id
        self._challenge = challenge
        self._grant_id: str | None = None

    def mint(self, count: int) -> list[str]:
        from trustanchor.config import load_settings
        from trustanchor.domain.identity import Authentication
        from trustanchor.oauth.claims_request import ClaimsRequest
        from trustanchor.services.grant_details import GrantDetails
        from trustanchor.storage import grants_repo
        from trustanchor.storage.database import Database

        settings = load_settings(self._config, environ={})
        db = Database(settings.service.database_url)
        now = int(time.time())
        codes = [secrets.token_urlsafe(32) for _ in range(count)]
        binding = {
            "redirect_uri": REDIRECT_URI,
            "code_challenge": self._challenge,
            "dpop_jkt": None,
        }
        try:
            with db.transaction() as conn:
                if self._grant_id is None:
                    self._grant_id = secrets.token_urlsafe(16)
                    details = GrantDetails(
                        scope=tuple(SCOPE.split()),
                        claims=ClaimsRequest(),
                        authorization_details=(TRANSFER_DETAIL,),
                        authentication=Authentication(
                            holder_id="bench-holder",
                            identity_id="bench-identity",
                            anchor_id="bench-anchor",
                            acr="urn:trustanchor:assurance:high",
                            amr=("vc",),
                            auth_time=now,
                            trust_framework="bench",
                        ),
                        subject=secrets.token_urlsafe(32),  # a pairwise pseudonym's shape
                        nonce=None,
                        anchor_set_id=ANCHOR_SET,
                    )
                    grants_repo.create_grant(
                        conn,
                        self._grant_id,
                        self._client_id,
                        "bench-holder",
                        details.to_json(),
                        now=now,
                        expires_at=now + CODE_LIFETIME,
                    )
                for code in codes:
                    grants_repo.store_code(
                        conn,
                        code,
                        self._grant_id,
                        self._client_id,
                        binding,
                        now=now,
                        expires_at=now + CODE_LIFETIME,
                    )
        finally:
            db.dispose()
        return codes


class NodeCodes:
    """Asks the node peer to mint codes with its own models (bench-only route, 127.0.0.1)."""

    def __init__(self, port: int, mint_token: str) -> None:
        self._port = port
        self._token = mint_token

    def mint(self, count: int) -> list[str]:
        query = urllib.parse.urlencode({"count": count, "token": self._token})
        url = f"http://127.0.0.1:{self._port}/bench/mint?{query}"
        request = urllib.request.Request(url, data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=120) as response:  # only 127.0.0.1
            codes = response.read().decode("ascii").split()
        if len(codes) != count:
            raise RuntimeError(f"node peer minted {len(codes)} codes, asked for {count}")
        return codes
