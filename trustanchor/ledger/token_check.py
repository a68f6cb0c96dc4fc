"""Verifying a DPoP-bound JWT access token at the ledger (RFC 9068 + RFC 9449 §7).

The token is checked first (typ ``at+jwt``, a key of the issuer, issuer, audience, lifetime,
required claims, ``cnf.jkt``), then the request's DPoP proof against it. The proof check is the
service's own :class:`trustanchor.oauth.dpop.DpopVerifier`, so the ledger and the service agree
on what a valid proof is (one header, ``typ dpop+jwt``, alg allow-list, public ``jwk`` only,
``htm``/``htu``, ``iat`` window, ``ath``, thumbprint = ``cnf.jkt``, ``jti`` single use) and refuse
a proof with the same reason code (``dpop_htu_mismatch``, ``dpop_jti_replay``, ...).

Server-provided DPoP nonces (RFC 9449 §8) are a choice: give ``dpop_nonce_key`` (at least 32
bytes, the same on every ledger worker) to demand them; without it proofs need no nonce and the
``jti`` registry plus the ``iat`` window are what stop replay.

Every refusal is :class:`LedgerRefusal`. Nothing here consumes the access token: that happens in
:func:`trustanchor.ledger.authorize.authorize_transfer` after every check passed. A DPoP proof's
``jti`` is recorded as soon as the proof is accepted, as at the service.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from trustanchor.clock import Clock
from trustanchor.config.settings import DpopSettings
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.ledger.errors import REASONS, LedgerRefusal
from trustanchor.ledger.keys import JwksCache, JwksDocument, KeySource, StaticJwks
from trustanchor.ledger.replay_store import ReplayStore
from trustanchor.oauth.dpop import DpopProof, DpopVerifier
from trustanchor.oauth.errors import InvalidDpopProof, UseDpopNonce

ACCESS_TOKEN_TYP = "at+jwt"  # noqa: S105 - a media type, not a secret
DEFAULT_ALGS = ("ES256", "EdDSA")
MAX_TOKEN_BYTES = 16384
MAX_PROOF_BYTES = 8192
MAX_JTI_LENGTH = 256
MAX_LEEWAY = 300

_JOSE_REASONS = {
    "alg_not_allowed": "alg_not_allowed",
    "wrong_typ": "wrong_typ",
    "bad_signature": "bad_signature",
}

HeaderValues = str | Sequence[str] | None
"""One header value, every value of a repeated header, or None when the header is absent."""


@dataclass(frozen=True, slots=True)
class VerifiedAccessToken:
    """An access token that passed every check, with the proof presented alongside it.

    ``valid_until`` is ``exp`` plus the verifier's leeway: the token is refused from that instant
    on, and its single-use record must be kept at least until then.
    """

    jti: str
    sub: str
    client_id: str
    issuer: str
    audience: tuple[str, ...]
    iat: int
    exp: int
    valid_until: int
    jkt: str
    scope: str
    anchor_set: str | None
    authorization_details: tuple[Mapping[str, Any], ...]
    claims: Mapping[str, Any] = field(repr=False)
    proof: DpopProof = field(repr=False)
    token: str = field(repr=False)  # the compact JWT, e.g. for introspection; never log it


class LedgerTokenVerifier:
    """Verifies ``Authorization: DPoP <token>`` plus ``DPoP: <proof>`` for one ledger.

    ``issuer``: the authorization server's issuer identifier, compared exactly.
    ``audience``: this ledger's audience; the token's ``aud`` must contain it.
    ``keys``: a static JWKS (dict, bytes or text), a callable returning the issuer's current JWKS
    (wrapped in a :class:`JwksCache` with its defaults), or any :class:`KeySource`.
    ``replay``: where DPoP proof jtis are recorded (the same store the ledger consumes tokens in).
    ``leeway``: seconds of clock difference tolerated for ``exp``/``iat``/``nbf`` (0..300).
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        keys: KeySource | JwksDocument | Callable[[], JwksDocument],
        *,
        replay: ReplayStore,
        clock: Clock,
        algs: Sequence[str] = DEFAULT_ALGS,
        leeway: int = 30,
        dpop_algs: Sequence[str] = DEFAULT_ALGS,
        dpop_iat_leeway: int = 60,
        dpop_nonce_key: bytes | None = None,
        dpop_nonce_lifetime: int = 300,
    ) -> None:
        if not issuer or not audience:
            raise ValueError("issuer and audience are required")
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
        self._algs = _asymmetric(algs, "algs")
        self.issuer = issuer
        self.audience = audience
        self.clock = clock
        self.leeway = leeway
        self.dpop_algs = tuple(sorted(_asymmetric(dpop_algs, "dpop_algs")))
        self._keys = _key_source(keys)
        self._nonces = dpop_nonce_key is not None
        settings = DpopSettings(
            iat_leeway=dpop_iat_leeway,
            require_nonce=self._nonces,
            nonce_lifetime=dpop_nonce_lifetime,
            allowed_algs=self.dpop_algs,
        )
        # Without nonces the key is never used (verify() passes nonce_required=False), but the
        # verifier wants one; a random one cannot be guessed should that ever change.
        nonce_key = dpop_nonce_key if dpop_nonce_key is not None else secrets.token_bytes(32)
        self._dpop = DpopVerifier(
            settings, _ProofRegistry(replay), nonce_key, max_bytes=MAX_PROOF_BYTES
        )

    def issue_dpop_nonce(self, at: int | None = None) -> str:
        """A fresh nonce for a ``DPoP-Nonce`` response header (only with ``dpop_nonce_key``)."""
        if not self._nonces:
            raise ValueError("this verifier was configured without DPoP nonces")
        return self._dpop.issue_nonce(self.clock.now() if at is None else at)

    def verify(
        self,
        authorization: HeaderValues,
        dpop: HeaderValues,
        *,
        method: str,
        url: str,
        at: int | None = None,
    ) -> VerifiedAccessToken:
        """Check the request's ``Authorization`` and ``DPoP`` headers.

        ``url``: the URL of this ledger endpoint built from the ledger's configured public base
        URL, never from the request's Host header (or a proof made for another server passes).
        Headers folded by the web server into one comma-separated value are split again: a JWT
        contains no comma, so ``"a, b"`` is two proofs (refused) and never one.
        """
        at = self.clock.now() if at is None else at
        token = _bearer_value(authorization)
        claims = self._verify_jwt(token, at)
        jkt = claims["cnf"]["jkt"]
        proof = self._verify_proof(
            _values(dpop), method=method, url=url, at=at, token=token, jkt=jkt
        )
        aud = claims["aud"]
        anchor_set = claims.get("anchor_set")
        scope = claims.get("scope")
        return VerifiedAccessToken(
            jti=claims["jti"],
            sub=claims["sub"],
            client_id=claims["client_id"],
            issuer=claims["iss"],
            audience=(aud,) if isinstance(aud, str) else tuple(aud),
            iat=claims["iat"],
            exp=claims["exp"],
            valid_until=claims["exp"] + self.leeway,
            jkt=jkt,
            scope=scope if isinstance(scope, str) else "",
            anchor_set=anchor_set if isinstance(anchor_set, str) and anchor_set else None,
            authorization_details=_details(claims.get("authorization_details")),
            claims=MappingProxyType(claims),
            proof=proof,
            token=token,
        )

    # -- the access token ---------------------------------------------------------------------

    def _verify_jwt(self, token: str, at: int) -> dict[str, Any]:
        try:
            parsed = jws.parse(token, max_bytes=MAX_TOKEN_BYTES, allowed_algs=self._algs)
            jws.check_typ(parsed.header, ACCESS_TOKEN_TYP)
        except JoseError as exc:
            raise _token_refusal(exc) from exc
        kid = parsed.header.get("kid")
        key = self._keys.key(kid, at) if isinstance(kid, str) and kid else None
        if key is None:
            raise LedgerRefusal("unknown_key", log_detail="no issuer key with this kid")
        try:
            jws.verify_signature(parsed, key)
            claims = parsed.claims()
        except JoseError as exc:
            raise _token_refusal(exc) from exc
        self._check_claims(claims, at)
        return claims

    def _check_claims(self, claims: dict[str, Any], at: int) -> None:
        if claims.get("iss") != self.issuer:
            raise LedgerRefusal("wrong_issuer")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self.audience not in audiences:
            raise LedgerRefusal("wrong_audience")
        for name in ("exp", "iat"):
            if not _is_int(claims.get(name)):
                raise LedgerRefusal("missing_claim", log_detail=f"{name} missing or not an integer")
        if at >= claims["exp"] + self.leeway:
            raise LedgerRefusal("token_expired")
        if claims["iat"] > at + self.leeway:
            raise LedgerRefusal("token_not_yet_valid", log_detail="iat in the future")
        nbf = claims.get("nbf")
        if nbf is not None and (not _is_int(nbf) or nbf > at + self.leeway):
            raise LedgerRefusal("token_not_yet_valid", log_detail="nbf in the future or invalid")
        for name in ("jti", "sub", "client_id"):
            value = claims.get(name)
            if not isinstance(value, str) or not value:
                raise LedgerRefusal("missing_claim", log_detail=f"{name} missing")
        if len(claims["jti"]) > MAX_JTI_LENGTH:
            raise LedgerRefusal("missing_claim", log_detail="jti too long")
        cnf = claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
        if not isinstance(jkt, str) or not jkt:
            raise LedgerRefusal("not_dpop_bound")

    # -- the DPoP proof -----------------------------------------------------------------------

    def _verify_proof(
        self, proofs: list[str], *, method: str, url: str, at: int, token: str, jkt: str
    ) -> DpopProof:
        try:
            return self._dpop.verify(
                proofs,
                method=method,
                url=url,
                at=at,
                access_token=token,
                expected_jkt=jkt,
                nonce_required=self._nonces,
            )
        except UseDpopNonce as exc:
            raise LedgerRefusal(
                "dpop_nonce_required", exc.description, nonce=exc.nonce, log_detail=exc.log_detail
            ) from exc
        except InvalidDpopProof as exc:
            raise proof_refusal(exc) from exc


class _ProofRegistry:
    """The service's JtiRegistry port on top of the ledger's ReplayStore."""

    def __init__(self, store: ReplayStore) -> None:
        self._store = store

    def first_use(self, namespace: str, jti: str, expires_at: int) -> bool:
        return self._store.consume(jti, expires_at, namespace=namespace)


def _asymmetric(algs: Sequence[str], name: str) -> frozenset[str]:
    """The allow-list as given, refused whole if it names anything but asymmetric algorithms
    (dropping ``none`` silently would hide a configuration mistake)."""
    if isinstance(algs, str):
        raise ValueError(f"{name} must be a list of algorithm names")
    allowed = frozenset(algs)
    if not allowed or not allowed <= jws.ASYMMETRIC_ALGS:
        raise ValueError(f"{name} must name asymmetric JWS algorithms only")
    return allowed


def _key_source(keys: KeySource | JwksDocument | Callable[[], JwksDocument]) -> KeySource:
    if isinstance(keys, Mapping | bytes | str):
        return StaticJwks(keys)
    if hasattr(keys, "key"):
        return keys
    if callable(keys):
        return JwksCache(keys)
    raise TypeError("keys must be a JWKS, a callable returning one, or a KeySource")


def _details(value: object) -> tuple[Mapping[str, Any], ...]:
    """The entries, read-only; anything but an array of objects counts as no entries at all
    (so it authorizes nothing, rather than the well-formed part of it)."""
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        return ()
    return tuple(MappingProxyType(entry) for entry in value)


def _values(header: HeaderValues) -> list[str]:
    """Every value of a header; values folded into one line by the server are split again."""
    if header is None:
        return []
    raw = [header] if isinstance(header, str) else list(header)
    return [part.strip() for value in raw for part in value.split(",") if part.strip()]


def _bearer_value(authorization: HeaderValues) -> str:
    values = _values(authorization)
    if not values:
        raise LedgerRefusal("token_missing")
    if len(values) > 1:
        raise LedgerRefusal("multiple_authorization_headers")
    scheme, _, token = values[0].partition(" ")
    token = token.strip()
    if scheme.lower() != "dpop":
        # Bearer included: every transfer token is DPoP-bound, so one sent as Bearer was either
        # stolen or sent by a client that would also let it be stolen.
        raise LedgerRefusal("dpop_scheme_required")
    if not token:
        raise LedgerRefusal("token_missing")
    return token


def proof_refusal(exc: InvalidDpopProof) -> LedgerRefusal:
    """The service's refusal of a proof, under the service's own reason code; a code added there
    later and not yet listed in REASONS is still a refused proof (``dpop_proof_invalid``)."""
    known = exc.reason in REASONS and exc.reason.startswith("dpop_")
    reason = exc.reason if known else "dpop_proof_invalid"
    detail = exc.log_detail if known else f"{exc.reason}: {exc.log_detail}"
    return LedgerRefusal(reason, exc.description, log_detail=detail)


def _token_refusal(exc: JoseError) -> LedgerRefusal:
    reason = _JOSE_REASONS.get(exc.reason, "token_malformed")
    return LedgerRefusal(reason, log_detail=f"{exc.reason}: {exc.detail}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = ["ACCESS_TOKEN_TYP", "DEFAULT_ALGS", "LedgerTokenVerifier", "VerifiedAccessToken"]
