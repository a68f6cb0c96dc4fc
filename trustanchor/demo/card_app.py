"""The demo phone's My Number Card app, its protocol side (no Flask): answer the service's
certificate login (docs/CERTIFICATE-LOGIN.md) with the card's certificates.

1. **Invocation** — the same-device link or the QR code's URL carries ``client_id`` and
   ``request_uri`` (read as the wallet reads its links).
2. **Request** — fetched by reference from the pre-registered verifier's origin only (the same
   rules and limits as the demo wallet: :class:`~trustanchor.demo.holder.Holder`, which this app
   extends), media type ``application/oauth-authz-req+jwt``, ``typ``
   ``trustanchor-x509-request+jwt``, signed with a key of the verifier's ``/jwks``; then its
   claims: ``iss`` and ``client_id`` the link's, ``response_mode`` ``direct_post``,
   ``response_uri`` on the verifier's origin, ``nonce``, ``state``, ``iat``/``exp``, the fixed
   ``purpose``, ``certificates`` (``authentication``, and ``signature`` at enrolment) and
   ``algs`` (the app signs only RS256, as JPKI cards do).
3. **Challenge** — per certificate asked for, a JWS made with that certificate's key on the
   card (after its PIN): header exactly ``alg``/``typ``/``x5c`` (leaf, then its CA), payload
   exactly ``aud``, ``nonce``, ``txn``, ``iat``, ``exp``, ``purpose``, ``cert``. Never a
   document: nothing else is signed.
4. **Answer** — POSTed form-encoded to ``response_uri`` (``state``, ``authentication``,
   ``signature``), or ``error=access_denied`` when the person declines; the ``redirect_uri``
   of the JSON answer is followed only on the verifier's origin.

The PINs are checked by the card (here, this module) before it signs: the authentication
certificate's 4-digit PIN, the signature certificate's 6-16 character password. The demo cards
all share the PINs below, shown on the app's pages.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from trustanchor.digests import b64url_encode, equal
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.openid4vp.links import LinkError, parse_wallet_request_url

from .holder import _HEADERS, MAX_REQUEST_BYTES, Holder, HolderError, TrustedVerifier
from .jpki_ca import PROFILES, Card, CardCertificate, Profile

REQUEST_TYP = "trustanchor-x509-request+jwt"
REQUEST_MEDIA_TYPE = "application/oauth-authz-req+jwt"
CHALLENGE_TYP = "trustanchor-x509-challenge+jwt"
PURPOSE = "trustanchor-login-challenge-v1"
CARD_ALG = "RS256"  # JPKI cards sign RSA-2048 PKCS#1 v1.5
REQUEST_ALGS = ("ES256", "ES384", "ES512", "EdDSA", "PS256")
MAX_CHALLENGE_LIFETIME = 300
CLOCK_SKEW = 30
MAX_CLAIM_DEPTH = 6
# The demo cards' PINs (every demo card has the same; a real card's are the holder's secret).
DEMO_AUTH_PIN = "1234"
DEMO_SIGN_PASSWORD = "DEMO2027"  # noqa: S105 (a demo card's, shown on its pages)
_AUTH_PIN = re.compile(r"[0-9]{4}")
_SIGN_PASSWORD = re.compile(r"[A-Z0-9]{6,16}")

CARD_REASONS: dict[str, str] = {
    "not_a_certificate_request": "The request is not a certificate login request.",
    "wrong_purpose": "The request does not ask for a login challenge.",
    "unsupported_certificates": "The request asks for certificates this card does not have.",
    "unsupported_alg": "The service does not accept the signatures this card makes.",
    "pin_format": "The PIN is 4 digits; the signature password 6 to 16 letters and digits.",
    "pin_wrong": "The PIN or password is wrong.",
}


class CardError(Exception):
    """A refusal by the card app; ``reason`` is a key of :data:`CARD_REASONS` or of the
    wallet's :data:`~trustanchor.demo.holder.REASONS` (the shared fetching rules)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)

    @classmethod
    def of(cls, exc: HolderError) -> CardError:
        return cls(exc.reason, exc.detail)


@dataclass(frozen=True)
class CertificateRequest:
    """A verified certificate login request."""

    token: str
    verifier: TrustedVerifier
    client_id: str
    nonce: str
    state: str
    response_uri: str
    certificates: tuple[Profile, ...]
    expires_at: int
    client_name: Mapping[str, str]  # the intermediary asking, by language
    anchor_name: Mapping[str, str]

    def asks_signature(self) -> bool:
        return "signature" in self.certificates


@dataclass(frozen=True)
class Pins:
    authentication: str
    signature: str = ""


class CardApp(Holder):
    """The card app: the wallet's fetching and origin rules, the certificate protocol."""

    # 1-2 ------------------------------------------------------------------------------------

    def fetch_certificate_request(self, link: str) -> CertificateRequest:
        try:
            params = parse_wallet_request_url(link, allow_http_loopback=self._allow_http)
        except LinkError as exc:
            raise CardError("invalid_link", exc.detail) from exc
        try:
            verifier = self._verifier(params.client_id)
            request_uri = self._on_origin(params.request_uri, verifier, "request_uri")
            response = self._http.get(
                request_uri,
                headers={**_HEADERS, "Accept": REQUEST_MEDIA_TYPE},
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
            body = self._read(response, MAX_REQUEST_BYTES, "request_unavailable")
        except HolderError as exc:
            raise CardError.of(exc) from exc
        except OSError as exc:
            raise CardError("request_unavailable", exc.__class__.__name__) from exc
        if response.status_code != 200:
            raise CardError("request_unavailable", f"HTTP {response.status_code}")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type != REQUEST_MEDIA_TYPE:
            raise CardError("request_malformed", f"content type {media_type!r}")
        if not body.isascii():
            raise CardError("request_malformed", "not a compact JWS")
        return self.verify_certificate_request(
            body.decode("ascii").strip(), client_id=params.client_id
        )

    def verify_certificate_request(self, token: str, *, client_id: str) -> CertificateRequest:
        """Verify the request (again on the PIN page's POST: the token travels in the form)."""
        try:
            verifier = self._verifier(client_id)
            parsed = jws.parse(token, max_bytes=MAX_REQUEST_BYTES, allowed_algs=REQUEST_ALGS)
        except HolderError as exc:
            raise CardError.of(exc) from exc
        except JoseError as exc:
            raise CardError("request_malformed", exc.reason) from exc
        try:
            jws.check_typ(parsed.header, REQUEST_TYP)
        except JoseError as exc:
            raise CardError(
                "not_a_certificate_request", f"typ {parsed.header.get('typ')!r}"
            ) from exc
        try:
            key = self._verifier_key(verifier, parsed.header.get("kid"))
        except HolderError as exc:
            raise CardError.of(exc) from exc
        try:
            jws.verify_signature(parsed, key)
            claims = parsed.claims(max_depth=MAX_CLAIM_DEPTH)
        except JoseError as exc:
            reason = "bad_signature" if exc.reason == "bad_signature" else "request_malformed"
            raise CardError(reason, exc.reason) from exc
        return self._checked(token, verifier, client_id, claims)

    def _checked(
        self, token: str, verifier: TrustedVerifier, client_id: str, claims: Mapping[str, Any]
    ) -> CertificateRequest:
        if claims.get("client_id") != client_id or claims.get("iss") != client_id:
            raise CardError("client_id_mismatch")
        now = self._clock.now()
        exp, iat = claims.get("exp"), claims.get("iat")
        if not _is_int(exp) or not _is_int(iat):
            raise CardError("invalid_request", "iat and exp are required")
        if now >= exp + CLOCK_SKEW:
            raise CardError("request_expired")
        if iat > now + CLOCK_SKEW:
            raise CardError("request_not_yet_valid", "iat")
        if claims.get("response_mode") != "direct_post":
            raise CardError("unsupported_response_mode", str(claims.get("response_mode"))[:50])
        if claims.get("purpose") != PURPOSE:
            raise CardError("wrong_purpose", str(claims.get("purpose"))[:60])
        nonce, state = claims.get("nonce"), claims.get("state")
        if not isinstance(nonce, str) or len(nonce) < 22 or not isinstance(state, str) or not state:
            raise CardError("invalid_request", "nonce and state are required")
        certificates = claims.get("certificates")
        if (
            not isinstance(certificates, list)
            or not certificates
            or certificates[0] != "authentication"
            or len(set(certificates)) != len(certificates)
            or any(c not in PROFILES for c in certificates)
        ):
            raise CardError("unsupported_certificates", str(certificates)[:80])
        algs = claims.get("algs")
        if not isinstance(algs, list) or CARD_ALG not in algs:
            raise CardError("unsupported_alg", str(algs)[:80])
        try:
            response_uri = self._on_origin(claims.get("response_uri"), verifier, "response_uri")
        except HolderError as exc:
            raise CardError.of(exc) from exc
        return CertificateRequest(
            token=token,
            verifier=verifier,
            client_id=client_id,
            nonce=nonce,
            state=state,
            response_uri=response_uri,
            certificates=tuple(certificates),
            expires_at=exp,
            client_name=_names(claims.get("client_name")),
            anchor_name=_names(_anchor_display(claims.get("anchor"))),
        )

    # 3-4 ------------------------------------------------------------------------------------

    def answer(self, request: CertificateRequest, card: Card, pins: Pins) -> str | None:
        """Check the PINs, sign the challenge with each certificate asked for, post; the
        ``redirect_uri`` of the service's answer (on its origin), if any."""
        check_pins(request, pins)
        form = {"state": request.state}
        for profile in request.certificates:
            form[profile] = challenge(request, card.certificates[profile], self._clock.now())
        return self._send(request, form)

    def decline_request(self, request: CertificateRequest) -> str | None:
        return self._send(request, {"state": request.state, "error": "access_denied"})

    def _send(self, request: CertificateRequest, form: Mapping[str, str]) -> str | None:
        try:
            response = self._http.post(
                request.response_uri,
                data=form,
                headers={**_HEADERS, "Accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except OSError as exc:
            raise CardError("verifier_unreachable", exc.__class__.__name__) from exc
        try:
            content = self._read(response, 16 * 1024, "verifier_unreachable")
        except HolderError as exc:
            raise CardError.of(exc) from exc
        body = _json_object(content)
        if response.status_code != 200:
            description = body.get("error_description") or body.get("error") or "refused"
            raise CardError("verifier_refused", str(description)[:200])
        redirect_uri = body.get("redirect_uri")
        if redirect_uri is None:
            return None
        try:
            return self._on_origin(redirect_uri, request.verifier, "redirect_uri")
        except HolderError as exc:
            raise CardError.of(exc) from exc


def check_pins(request: CertificateRequest, pins: Pins) -> None:
    """The card's own check before it signs (constant time against the demo PINs)."""
    if not _AUTH_PIN.fullmatch(pins.authentication):
        raise CardError("pin_format")
    if request.asks_signature() and not _SIGN_PASSWORD.fullmatch(pins.signature):
        raise CardError("pin_format")
    ok = equal(pins.authentication, DEMO_AUTH_PIN)
    if request.asks_signature():
        ok = equal(pins.signature, DEMO_SIGN_PASSWORD) and ok
    if not ok:
        raise CardError("pin_wrong")


def challenge(request: CertificateRequest, certificate: CardCertificate, now: int) -> str:
    """The challenge JWS of one certificate: RS256 with its key, header alg/typ/x5c only."""
    header = {
        "alg": CARD_ALG,
        "typ": CHALLENGE_TYP,
        "x5c": [
            base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode("ascii")
            for c in certificate.chain
        ],
    }
    payload = {
        "aud": request.client_id,
        "nonce": request.nonce,
        "txn": request.state,
        "iat": now,
        "exp": min(request.expires_at, now + MAX_CHALLENGE_LIFETIME),
        "purpose": PURPOSE,
        "cert": certificate.profile,
    }
    signing_input = f"{_segment(header)}.{_segment(payload)}".encode("ascii")
    signature = certificate.key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input.decode('ascii')}.{b64url_encode(signature)}"


def _segment(value: Mapping[str, Any]) -> str:
    return b64url_encode(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def _names(value: Any) -> dict[str, str]:
    if isinstance(value, str):
        return {"en": value[:200]}
    if isinstance(value, dict):
        return {k: str(v)[:200] for k, v in value.items() if isinstance(k, str) and len(k) <= 8}
    return {}


def _anchor_display(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("display_name", value.get("id"))
    return value


def _json_object(content: bytes) -> dict[str, Any]:
    try:
        body = json.loads(content) if content else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def local_name(names: Mapping[str, str], language: str, fallback: str) -> str:
    return names.get(language) or names.get("en") or fallback


__all__: Sequence[str] = [
    "CARD_REASONS",
    "CHALLENGE_TYP",
    "DEMO_AUTH_PIN",
    "DEMO_SIGN_PASSWORD",
    "PURPOSE",
    "REQUEST_TYP",
    "CardApp",
    "CardError",
    "CertificateRequest",
    "Pins",
    "challenge",
    "check_pins",
    "local_name",
]
