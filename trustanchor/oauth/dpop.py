"""DPoP proof validation (RFC 9449 §4.3) and stateless server-provided nonces (§8).

A DPoP proof is a JWT signed by a key the client holds; its public key travels in the header,
and its claims bind the proof to one HTTP request (``htm`` + ``htu``), one instant (``iat``),
optionally one access token (``ath``) and one server nonce. Tokens are bound to the key's RFC 7638
thumbprint (``cnf.jkt``), so everything downstream only needs :attr:`DpopProof.jkt`.

Every refusal is :class:`InvalidDpopProof` with a description that is safe to show and says what
to change (the ``htu`` and ``htm`` expected, the algorithms accepted, the ``iat`` window), or
:class:`UseDpopNonce` carrying a fresh nonce the client should retry with. Resource servers
answer a bad proof with 401 and ``WWW-Authenticate: DPoP error="invalid_dpop_proof"``; that
status mapping belongs to the web layer, the error class stays the same here.

Nonces are stateless: ``<issued_at>.<HMAC(nonce_key, issued_at)>``. Any worker holding the key
can check them, and nothing needs to be stored. They are not single-use (RFC 9449 does not
require that); replay of a proof is stopped by the ``jti`` registry instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote, unquote_to_bytes, urlsplit

from trustanchor.config.settings import DpopSettings
from trustanchor.digests import b64url_encode, equal, keyed_digest
from trustanchor.jose import jwk as jose_jwk
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.oauth.errors import InvalidDpopProof, UseDpopNonce
from trustanchor.oauth.replay import JtiRegistry

TYP = "dpop+jwt"
REPLAY_NAMESPACE = "dpop"
MAX_JTI_LENGTH = 256
MAX_NONCE_LENGTH = 128
MIN_NONCE_KEY_BYTES = 32
_NONCE_LABEL = "dpop-nonce-v1"
_NONCE_SYNTAX = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_P = ParamSpec("_P")
_T = TypeVar("_T")

# Safe descriptions for the reasons trustanchor.jose reports; the detail goes to log_detail.
_JOSE_DESCRIPTIONS = {
    "too_large": "DPoP proof is too large",
    "malformed": "DPoP proof is not a well-formed JWS",
    "alg_not_allowed": "DPoP proof alg is not accepted: use one of {algs}",
    "unsupported": "DPoP proof uses an unsupported JWS feature",
    "wrong_typ": "DPoP proof typ must be dpop+jwt",
    "invalid_jwk": "DPoP proof jwk is not an acceptable public key",
    "bad_signature": "DPoP proof signature is invalid",
    "invalid_payload": "DPoP proof claims are not a JSON object",
}


@dataclass(frozen=True, slots=True)
class DpopProof:
    """A proof that passed every check. ``jkt`` is what tokens are bound to (``cnf.jkt``)."""

    jkt: str
    jti: str
    htm: str
    htu: str
    iat: int
    jwk: dict[str, Any] = field(hash=False, compare=False)


class DpopVerifier:
    """Validates the DPoP header of one request. Construct once per process and share."""

    def __init__(
        self, settings: DpopSettings, replay: JtiRegistry, nonce_key: bytes, *, max_bytes: int
    ) -> None:
        if len(nonce_key) < MIN_NONCE_KEY_BYTES:
            raise ValueError(f"the DPoP nonce key needs at least {MIN_NONCE_KEY_BYTES} bytes")
        # The jose layer refuses none/HS* anyway; intersecting here keeps the promise local.
        allowed = frozenset(settings.allowed_algs) & jws.ASYMMETRIC_ALGS
        if not allowed:
            raise ValueError("dpop.allowed_algs names no asymmetric signature algorithm")
        if settings.nonce_lifetime <= 0 or settings.iat_leeway < 0:
            raise ValueError("dpop.nonce_lifetime must be positive and iat_leeway non-negative")
        self._settings = settings
        self._replay = replay
        self._nonce_key = nonce_key
        self._max_bytes = max_bytes
        self._allowed_algs = allowed

    # -- nonces -------------------------------------------------------------------------------

    def issue_nonce(self, at: int) -> str:
        """A nonce for the ``DPoP-Nonce`` response header, valid for ``nonce_lifetime`` seconds."""
        issued = str(at)
        return f"{issued}.{keyed_digest(self._nonce_key, _NONCE_LABEL, issued)}"

    def _nonce_is_valid(self, nonce: object, at: int) -> bool:
        if not isinstance(nonce, str) or len(nonce) > MAX_NONCE_LENGTH:
            return False
        match = _NONCE_SYNTAX.fullmatch(nonce)
        if match is None:
            return False
        issued, mac = match.group(1), match.group(2)
        if not equal(keyed_digest(self._nonce_key, _NONCE_LABEL, issued), mac):
            return False
        age = at - int(issued)
        # A nonce from slightly in the future can come from another worker with a skewed clock.
        return -self._settings.iat_leeway <= age <= self._settings.nonce_lifetime

    # -- proofs -------------------------------------------------------------------------------

    def verify(
        self,
        headers: Sequence[str],
        *,
        method: str,
        url: str,
        at: int,
        access_token: str | None = None,
        expected_jkt: str | None = None,
        nonce_required: bool | None = None,
    ) -> DpopProof:
        """Validate the request's DPoP header values and record the proof's jti: :meth:`check`,
        then :meth:`spend`.

        ``headers``: every ``DPoP`` header value of the request (exactly one is accepted).
        ``url``: the endpoint's URL built from the configured issuer, never from the request's
        Host header, or a proof minted for another server would pass the ``htu`` check.
        ``access_token``: given at resource servers, the proof must carry its ``ath``.
        ``expected_jkt``: the thumbprint the token or the PAR ``dpop_jkt`` is bound to.
        """
        proof = self.check(
            headers,
            method=method,
            url=url,
            at=at,
            access_token=access_token,
            expected_jkt=expected_jkt,
            nonce_required=nonce_required,
        )
        self.spend(proof, at=at)
        return proof

    def check(
        self,
        headers: Sequence[str],
        *,
        method: str,
        url: str,
        at: int,
        access_token: str | None = None,
        expected_jkt: str | None = None,
        nonce_required: bool | None = None,
    ) -> DpopProof:
        """Everything :meth:`verify` checks but the replay: nothing is recorded, so that an
        endpoint can check the proof (and answer ``use_dpop_nonce``) before it authenticates
        the client, and record the proof only for an authenticated client (:meth:`spend`)."""
        token = _single_header(headers)
        try:
            parsed = _parse(token, max_bytes=self._max_bytes, allowed_algs=self._allowed_algs)
        except InvalidDpopProof as exc:
            exc.description = exc.description.format(algs=" ".join(sorted(self._allowed_algs)))
            raise
        header_jwk = parsed.header.get("jwk")
        if header_jwk is None:
            raise InvalidDpopProof(
                "DPoP proof header has no jwk: it must carry the public key",
                reason="dpop_jwk_missing",
            )
        key = _public_key(header_jwk)
        if not jose_jwk.key_fits_alg(key, parsed.alg):
            raise InvalidDpopProof("DPoP proof jwk does not fit its alg", reason="dpop_jwk_alg")
        _jose(jws.verify_signature, parsed, key)
        claims = _jose(parsed.claims)

        jti = _string_claim(claims, "jti")
        if len(jti) > MAX_JTI_LENGTH:
            raise InvalidDpopProof("DPoP proof jti is too long", reason="dpop_jti_too_long")
        htm = _string_claim(claims, "htm")
        if htm != method:
            raise InvalidDpopProof(
                f"DPoP proof htm does not match the request method: it must be {method}",
                reason="dpop_htm_mismatch",
            )
        htu = _string_claim(claims, "htu")
        if not _same_uri(htu, url):
            raise InvalidDpopProof(
                f"DPoP proof htu does not match the request URL: it must be {url} (without "
                "query and fragment)",
                reason="dpop_htu_mismatch",
            )
        iat = claims.get("iat")
        if iat is None:
            raise InvalidDpopProof("DPoP proof has no iat", reason="dpop_iat_missing")
        if not isinstance(iat, int) or isinstance(iat, bool):
            raise InvalidDpopProof("DPoP proof iat must be an integer", reason="dpop_iat_malformed")
        if abs(iat - at) > self._settings.iat_leeway:
            raise InvalidDpopProof(
                f"DPoP proof iat is outside the acceptable window: it must be within "
                f"{self._settings.iat_leeway} s of the server's time (see the Date header); "
                "sign a new proof for every request",
                reason="dpop_iat_window",
            )

        if access_token is not None:
            ath = claims.get("ath")
            if not isinstance(ath, str):
                raise InvalidDpopProof(
                    "DPoP proof has no ath for the access token: it must carry ath, the "
                    "base64url SHA-256 hash of the access token",
                    reason="dpop_ath_missing",
                )
            if not equal(ath, _access_token_hash(access_token)):
                raise InvalidDpopProof(
                    "DPoP proof ath does not match the access token: it must be the base64url "
                    "SHA-256 hash of the access token sent with it",
                    reason="dpop_ath_mismatch",
                )

        jkt = _jose(jose_jwk.thumbprint, header_jwk)
        if expected_jkt is not None and not equal(jkt, expected_jkt):
            raise InvalidDpopProof(
                "DPoP proof key is not the key the token is bound to: sign the proof with the "
                "key whose thumbprint is the token's cnf.jkt",
                reason="dpop_key_mismatch",
            )

        required = self._settings.require_nonce if nonce_required is None else nonce_required
        if required:
            nonce = claims.get("nonce")
            if nonce is None:
                raise UseDpopNonce(
                    self.issue_nonce(at),
                    "a DPoP nonce is required: sign a new proof whose nonce claim is the "
                    "DPoP-Nonce header of this answer",
                )
            if not self._nonce_is_valid(nonce, at):
                raise UseDpopNonce(
                    self.issue_nonce(at),
                    "the DPoP nonce is invalid or expired: sign a new proof whose nonce claim is "
                    "the DPoP-Nonce header of this answer",
                )

        return DpopProof(jkt=jkt, jti=jti, htm=htm, htu=htu, iat=iat, jwk=dict(header_jwk))

    def spend(self, proof: DpopProof, *, at: int) -> None:
        """Record a checked proof's jti (once: a replay is refused). Last, so that a refused
        proof does not burn its jti. The proof stays acceptable until iat + leeway <= at +
        2 * leeway; the registry must remember it at least that long."""
        expires_at = at + 2 * self._settings.iat_leeway
        if not self._replay.first_use(REPLAY_NAMESPACE, f"{proof.jkt}:{proof.jti}", expires_at):
            raise InvalidDpopProof(
                "DPoP proof jti reused: sign a new proof with a fresh jti for every request",
                reason="dpop_jti_replay",
            )


def _single_header(headers: Sequence[str]) -> str:
    if len(headers) == 0:
        raise InvalidDpopProof(
            "DPoP proof missing: send one in the DPoP header", reason="dpop_proof_missing"
        )
    if len(headers) > 1:
        raise InvalidDpopProof(
            "more than one DPoP header: send exactly one proof", reason="dpop_proof_repeated"
        )
    return headers[0]


def _parse(token: str, *, max_bytes: int, allowed_algs: frozenset[str]) -> jws.ParsedJWS:
    parsed = _jose(jws.parse, token, max_bytes=max_bytes, allowed_algs=allowed_algs)
    _jose(jws.check_typ, parsed.header, TYP)
    return parsed


def _public_key(header_jwk: object) -> jose_jwk.PublicKey:
    return _jose(jose_jwk.public_key_from_jwk, header_jwk)


def _jose(func: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Call a trustanchor.jose function, turning its refusals into InvalidDpopProof."""
    try:
        return func(*args, **kwargs)
    except JoseError as exc:
        description = _JOSE_DESCRIPTIONS.get(exc.reason, "DPoP proof refused")
        raise InvalidDpopProof(
            description, log_detail=f"{exc.reason}: {exc.detail}", reason="dpop_proof_invalid"
        ) from exc


def _string_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if value is None:
        raise InvalidDpopProof(f"DPoP proof has no {name}", reason="dpop_claim_missing")
    if not isinstance(value, str) or not value:
        raise InvalidDpopProof(
            f"DPoP proof {name} must be a non-empty string", reason="dpop_claim_missing"
        )
    return value


def _access_token_hash(access_token: str) -> str:
    """``ath``: base64url(SHA-256(ASCII(token))). UTF-8 keeps odd input from raising."""
    return b64url_encode(hashlib.sha256(access_token.encode("utf-8")).digest())


def _same_uri(htu: str, url: str) -> bool:
    """RFC 9449 §4.3 step 9: compare without query and fragment, after RFC 3986 §6.2.2/§6.2.3
    normalisation of case, percent-escapes (the path compared as the octets it names) and default
    ports. Anything unparsable is unequal."""
    left = _normalised_uri(htu)
    return left is not None and left == _normalised_uri(url)


def _normalised_uri(value: str) -> tuple[str, str, int, str] | None:
    if len(value) > 2048 or not value.isascii():
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname  # lower-cased by urllib
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    # The path as the octets it names, percent-encoded one way (all but unreserved characters
    # and "/"): ``%c3%a9``, ``%C3%A9`` and ``%2C`` / ``,`` compare equal. The server's own URL
    # comes from the decoded path the router saw (PATH_INFO), where ``%2F`` is already ``/``.
    path = quote(unquote_to_bytes(parts.path), safe="/") or "/"
    return scheme, host, port, path


__all__ = ["REPLAY_NAMESPACE", "TYP", "DpopProof", "DpopVerifier"]
