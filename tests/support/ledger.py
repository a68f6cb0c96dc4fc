"""The two parties a ledger sees, for the tests of trustanchor.ledger.

:class:`ServiceIssuer` mints transfer tokens through the service's own signing path (a key made
by ``keystore.signing_keys.generate_key``, opened as a ``SigningKeyStore``, signed by
``oauth.jwt_tokens.TokenSigner``), with the claims the token endpoint puts in them.
:class:`Intermediary` is the client: it holds a DPoP key and makes a fresh proof per request.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from trustanchor.clock import FixedClock
from trustanchor.digests import b64url_encode
from trustanchor.jose.jwk import PrivateKey, public_jwk, thumbprint
from trustanchor.keystore.signing_keys import SigningKeyStore, generate_key
from trustanchor.ledger import (
    FundingInstruction,
    LedgerTokenVerifier,
    ReplayStore,
    TransferInstruction,
)
from trustanchor.oauth import funding, value_transfer
from trustanchor.oauth.jwt_tokens import TokenSigner

AT = 1_700_000_000
ISSUER = "https://as.example.com"
AUDIENCE = "https://ledger.example.com"
LEDGER_URL = "https://ledger.example.com/transfers"
DEBTOR = "acc_" + "TaroWallet0000000001"
CREDITOR = "acc_" + "HanakoWallet00000002"
DEPOSIT = "acc_" + "TaroDeposit000000003"
LINK_ID = "lnk_" + "TaroLink000000000004"
FUNDING_URL = "https://ledger.example.com/fundings"
STANDING_ID = "sta_" + "TaroStanding00000005"
ANCHOR_SET = "jp-banks"
CLIENT_ID = "intermediary-1"
TRANSFER_LIFETIME = 60
_counter = itertools.count()


def transfer_entry(**overrides: Any) -> dict[str, Any]:
    """A value_transfer entry in the service's normalised form (validated by the service's own
    module, as the token endpoint would have done)."""
    entry: dict[str, Any] = {
        "type": "value_transfer",
        "instructed_amount": {"currency": "JPY", "amount": "5000"},
        "debtor_account": DEBTOR,
        "creditor_account": CREDITOR,
        "remittance_reference": "INV-2026-0001",
    }
    entry.update(overrides)
    entry = {k: v for k, v in entry.items() if v is not None}
    return value_transfer.validate(entry)


def matching_instruction(**overrides: Any) -> TransferInstruction:
    """The instruction that matches :func:`transfer_entry` exactly."""
    values: dict[str, Any] = {
        "amount": "5000",
        "currency": "JPY",
        "debtor_account": DEBTOR,
        "creditor_account": CREDITOR,
        "remittance_reference": "INV-2026-0001",
    }
    values.update(overrides)
    return TransferInstruction(**values)


def funding_entry(**overrides: Any) -> dict[str, Any]:
    """A funding entry as the service grants it (with the link it relies on), in normalised
    form; ``link_id=None`` leaves the link out."""
    entry: dict[str, Any] = {
        "type": "funding",
        "direction": "deposit_to_wallet",
        "instructed_amount": {"currency": "JPY", "amount": "10000"},
        "deposit_account": DEPOSIT,
        "wallet_account": DEBTOR,
        "link_id": LINK_ID,
    }
    entry.update(overrides)
    entry = {k: v for k, v in entry.items() if v is not None}
    return funding.validate(entry)


def matching_funding(**overrides: Any) -> FundingInstruction:
    """The instruction that matches :func:`funding_entry` exactly."""
    values: dict[str, Any] = {
        "direction": "deposit_to_wallet",
        "amount": "10000",
        "currency": "JPY",
        "deposit_account": DEPOSIT,
        "wallet_account": DEBTOR,
    }
    values.update(overrides)
    return FundingInstruction(**values)


class ServiceIssuer:
    """The authorization server's signing side."""

    def __init__(self, keys_dir: Path, *, alg: str = "ES256", issuer: str = ISSUER) -> None:
        generate_key(keys_dir, alg=alg, now=AT - 3600, demo=False)
        self.store = SigningKeyStore.open(keys_dir, retention=86400)
        self.signer = TokenSigner(self.store, issuer=issuer)

    def jwks(self) -> dict[str, Any]:
        return self.store.jwks(AT)

    def claims(self, *, jkt: str | None, at: int = AT, **overrides: Any) -> dict[str, Any]:
        """What services/grants/issuing.py puts in a transfer token (plus ``anchor_set``)."""
        claims: dict[str, Any] = {
            "sub": "pairwise-subject-of-taro",
            "client_id": CLIENT_ID,
            "aud": AUDIENCE,
            "iat": at,
            "exp": at + TRANSFER_LIFETIME,
            "jti": f"at-{next(_counter)}",
            "scope": "",
            "authorization_details": [transfer_entry()],
            "anchor_set": ANCHOR_SET,
        }
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def transfer_token(self, *, jkt: str | None, at: int = AT, **overrides: Any) -> str:
        return self.signer.access_token(self.claims(jkt=jkt, at=at, **overrides))

    def id_token(self, **claims: Any) -> str:
        return self.signer.id_token(claims)


@dataclass
class Intermediary:
    """The client holding the DPoP key its tokens are bound to."""

    key: PrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    alg: str = "ES256"

    @property
    def jkt(self) -> str:
        return thumbprint(public_jwk(self.key))

    def proof(
        self,
        token: str | None,
        *,
        method: str = "POST",
        url: str = LEDGER_URL,
        at: int = AT,
        drop: tuple[str, ...] = (),
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {"jti": f"proof-{next(_counter)}", "htm": method, "htu": url}
        body["iat"] = at
        if token is not None:
            body["ath"] = b64url_encode(hashlib.sha256(token.encode("ascii")).digest())
        body.update(claims)
        for name in drop:
            body.pop(name, None)
        header = {"typ": "dpop+jwt", "jwk": public_jwk(self.key)}
        return jwt.encode(body, self.key, algorithm=self.alg, headers=header)


def make_verifier(
    issuer: ServiceIssuer, replay: ReplayStore, clock: FixedClock | None = None, **options: Any
) -> LedgerTokenVerifier:
    return LedgerTokenVerifier(
        ISSUER,
        AUDIENCE,
        issuer.jwks(),
        replay=replay,
        clock=clock or FixedClock(AT),
        **options,
    )
