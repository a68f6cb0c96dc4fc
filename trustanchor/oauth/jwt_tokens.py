"""JWT access tokens (RFC 9068, ``typ: at+jwt``) and ID tokens, signed with the current key;
verification of our own access tokens against the published keys."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jws_encoder import CompactSigner
from trustanchor.keystore.signing_keys import SigningKey, SigningKeyStore
from trustanchor.oauth.errors import InvalidToken

ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a media type, not a secret
ID_TOKEN_TYP = "JWT"  # noqa: S105
_MAX_TOKEN_BYTES = 16384


@dataclass(frozen=True, slots=True)
class AccessTokenClaims:
    jti: str
    sub: str
    client_id: str
    aud: str | list[str]
    scope: str
    iat: int
    exp: int
    jkt: str | None
    raw: Mapping[str, Any]


class TokenSigner:
    """Signs with the keystore's current key through the direct encoder
    (``trustanchor.jose.jws_encoder``): the key's signer, with its encoded headers, is made once
    and kept until another key becomes current. Headers are exactly ``alg``, ``kid``, ``typ``."""

    def __init__(self, keys: SigningKeyStore, *, issuer: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._cached: tuple[SigningKey, CompactSigner] | None = None

    def _signer(self) -> CompactSigner:
        key = self._keys.current()
        cached = self._cached
        if cached is not None and cached[0] is key:
            return cached[1]
        signer = CompactSigner(key.private_key, alg=key.alg, kid=key.kid)
        self._cached = (key, signer)
        return signer

    def access_token(self, claims: Mapping[str, Any]) -> str:
        body = {**claims, "iss": self._issuer}  # nothing overrides our iss
        return self._signer().sign(body, typ=ACCESS_TOKEN_TYP)

    def id_token(self, claims: Mapping[str, Any]) -> str:
        body = {**claims, "iss": self._issuer}  # nothing overrides our iss
        return self._signer().sign(body, typ=ID_TOKEN_TYP)

    def sign(self, claims: Mapping[str, Any], *, typ: str) -> str:
        return self._signer().sign(claims, typ=typ)


class AccessTokenVerifier:
    """Checks a presented access token is one of ours: typ at+jwt, a published key, our issuer,
    an accepted audience, not expired. Revocation is checked separately against storage."""

    def __init__(self, keys: SigningKeyStore, *, issuer: str, algs: tuple[str, ...]) -> None:
        self._keys = keys
        self._issuer = issuer
        self._algs = frozenset(algs)

    def verify(
        self, token: str, *, at: int, audiences: tuple[str, ...] | None = None
    ) -> AccessTokenClaims:
        try:
            parsed = jws.parse(token, max_bytes=_MAX_TOKEN_BYTES, allowed_algs=self._algs)
            jws.check_typ(parsed.header, ACCESS_TOKEN_TYP)
            kid = parsed.header.get("kid")
            key = self._keys.verification_key(kid, at) if isinstance(kid, str) else None
            if key is None:
                raise InvalidToken("unknown signing key")
            jws.verify_signature(parsed, key)
            claims = parsed.claims()
        except JoseError as exc:
            raise InvalidToken("the access token is not valid", log_detail=exc.reason) from exc
        if claims.get("iss") != self._issuer:
            raise InvalidToken("the access token is not valid", log_detail="issuer")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int) or exp <= at:
            raise InvalidToken("the access token has expired")
        aud = claims.get("aud")
        aud_list = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if audiences is not None and not set(aud_list) & set(audiences):
            raise InvalidToken("the access token is not for this resource")
        for name in ("jti", "sub", "client_id"):
            if not isinstance(claims.get(name), str):
                raise InvalidToken("the access token is not valid", log_detail=name)
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        return AccessTokenClaims(
            jti=claims["jti"],
            sub=claims["sub"],
            client_id=claims["client_id"],
            aud=aud if isinstance(aud, str | list) else [],
            scope=str(claims.get("scope", "")),
            iat=iat,
            exp=exp,
            jkt=jkt if isinstance(jkt, str) else None,
            raw=claims,
        )
