"""A test-side credential ISSUER and WALLET for SD-JWT VCs, plus an in-memory Fetcher.

They are built on the independent ``sd-jwt`` package (OpenWallet Foundation sd-jwt-python 0.10)
and on ``jwcrypto`` — never on trustanchor's own JOSE code — so that what the verifier accepts
is what another implementation produces, not what our code thinks it produces.

Import from tests as ``from support.credentials import Issuer, Wallet`` (pytest puts ``tests/``
on ``sys.path`` because ``tests/conftest.py`` lives there).

Typical use::

    issuer, wallet = Issuer.generate(), Wallet.generate()
    issuance = issuer.issue(wallet, claims={"sub": "p-1", "given_name": "Taro"},
                            disclosable={"sub", "given_name"}, iat=now - 60,
                            status=("https://issuer.example/status/1", 7))
    presentation = wallet.present(issuance, nonce=nonce, aud=verifier_id, iat=now)
    anchor_settings = {"issuer": issuer.issuer, "jwks": issuer.jwks(), "vct": [issuer.vct], ...}

Workarounds for sd-jwt 0.10 (each documented where it is applied):

- ``typ``: the package's default Issuer-signed JWT ``typ`` is ``example+sd-jwt`` (overridable
  only through the process-wide ``SD_JWT_HEADER`` environment variable); we pass
  ``{"typ": "dc+sd-jwt", "kid": ...}`` through its ``extra_header_parameters`` argument.
- Key Binding JWT: the package's holder stamps ``iat`` with the wall clock (``time.time()``) and
  has no parameter for it, while the tests need exact instants (stale, future). The wallet
  therefore uses the package to *select* Disclosures (``SDJWTHolder.create_presentation``
  without key binding, which yields ``<issuer-jwt>~<D1>~...~<Dn>~``) and signs the KB-JWT itself
  with jwcrypto exactly as RFC 9901 section 4.3 describes (typ ``kb+jwt``; ``iat``, ``aud``,
  ``nonce``, ``sd_hash`` = base64url SHA-256 of that string). A unit test cross-checks the
  result with the package's own ``SDJWTVerifier``.
- ``_sd_alg`` is always written as ``sha-256`` by the package; credentials with other values,
  repeated digests, ``alg`` ``none`` and similar broken shapes are built with
  :meth:`Issuer.sign` / :func:`make_disclosure` instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import zlib
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jwcrypto.jwk import JWK  # type: ignore[import-untyped]
from jwcrypto.jws import JWS  # type: ignore[import-untyped]
from sd_jwt.common import SDObj  # type: ignore[import-untyped]
from sd_jwt.holder import SDJWTHolder  # type: ignore[import-untyped]
from sd_jwt.issuer import SDJWTIssuer  # type: ignore[import-untyped]

from trustanchor.anchors.fetcher import FetchError

DEFAULT_ISSUER = "https://pid-issuer.example"
DEFAULT_VCT = "urn:example:jp:pid:1"
CREDENTIAL_TYP = "dc+sd-jwt"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def decode_segment(segment: str) -> Any:
    """Decode a base64url JSON segment (a JWT header/payload or a Disclosure), no checks."""
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def digest(disclosure: str) -> str:
    """The SD-JWT digest of a Disclosure as presented (RFC 9901 section 4.2.3)."""
    return b64url(hashlib.sha256(disclosure.encode("ascii")).digest())


def make_disclosure(name: str | None, value: Any, *, salt: str | None = None) -> str:
    """A Disclosure: ``[salt, name, value]`` for an object property, ``[salt, value]`` for an
    array element (``name=None``)."""
    salt = salt or b64url(secrets.token_bytes(16))
    return b64url_json([salt, value] if name is None else [salt, name, value])


def encode_status_list(statuses: Sequence[int], *, bits: int = 1) -> str:
    """``lst`` of a Token Status List: statuses packed LSB-first, ZLIB-compressed, base64url."""
    per_byte = 8 // bits
    packed = bytearray((len(statuses) + per_byte - 1) // per_byte)
    for index, status in enumerate(statuses):
        assert 0 <= status < (1 << bits)
        packed[index // per_byte] |= status << ((index % per_byte) * bits)
    return b64url(zlib.compress(bytes(packed), 9))


def _sign_compact(key: JWK, header: Mapping[str, Any], payload: Mapping[str, Any]) -> str:
    """Sign with jwcrypto. Header members whose value is None are left out (to drop defaults)."""
    protected = {name: value for name, value in header.items() if value is not None}
    token = JWS(payload=json.dumps(payload))
    token.add_signature(key, alg=protected["alg"], protected=json.dumps(protected))
    return str(token.serialize(compact=True))


@dataclass
class Wallet:
    """A holder's wallet: one P-256 key, bound into credentials through ``cnf.jwk``."""

    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def generate(cls) -> Wallet:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @property
    def jwk(self) -> JWK:
        return JWK.from_pyca(self.private_key)

    @property
    def public_jwk(self) -> dict[str, Any]:
        return dict(self.jwk.export_public(as_dict=True))

    def select(self, issuance: str, disclose: Mapping[str, Any] | None = None) -> str:
        """The SD-JWT to present, without KB-JWT (ends with ``~``). ``disclose`` is the sd-jwt
        package's selection structure, e.g. ``{"given_name": True, "address": {"locality":
        True}}``; None presents every Disclosure of the issuance."""
        if disclose is None:
            return issuance
        holder = SDJWTHolder(issuance)
        holder.create_presentation(dict(disclose))  # no nonce/aud/key: no KB-JWT
        presentation = str(holder.sd_jwt_presentation)
        assert presentation.endswith("~")
        return presentation

    def bind(
        self,
        sd_jwt: str,
        *,
        nonce: str,
        aud: str,
        iat: int,
        typ: str = "kb+jwt",
        sd_hash: str | None = None,
        signer: Wallet | None = None,
        header: Mapping[str, Any] | None = None,
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """Append a Key Binding JWT to ``sd_jwt`` (which must end with ``~``). The keyword
        overrides exist to build broken presentations: another ``typ``, a wrong ``sd_hash``,
        a signature by another wallet's key, extra or replaced header members and claims."""
        assert sd_jwt.endswith("~")
        payload: dict[str, Any] = {
            "iat": iat,
            "aud": aud,
            "nonce": nonce,
            "sd_hash": sd_hash if sd_hash is not None else digest(sd_jwt),
        }
        payload.update(claims or {})
        protected = {"alg": "ES256", "typ": typ, **(header or {})}
        return sd_jwt + _sign_compact((signer or self).jwk, protected, payload)

    def present(
        self,
        issuance: str,
        *,
        nonce: str,
        aud: str,
        iat: int,
        disclose: Mapping[str, Any] | None = None,
    ) -> str:
        """Select Disclosures (default: all) and bind the presentation to nonce/aud/iat."""
        return self.bind(self.select(issuance, disclose), nonce=nonce, aud=aud, iat=iat)


@dataclass
class Issuer:
    """A credential issuer with one P-256 signing key named ``kid``."""

    private_key: ec.EllipticCurvePrivateKey
    kid: str = "issuer-key-1"
    issuer: str = DEFAULT_ISSUER
    vct: str = DEFAULT_VCT
    extra_public_keys: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def generate(
        cls, *, kid: str = "issuer-key-1", issuer: str = DEFAULT_ISSUER, vct: str = DEFAULT_VCT
    ) -> Issuer:
        return cls(ec.generate_private_key(ec.SECP256R1()), kid=kid, issuer=issuer, vct=vct)

    @property
    def jwk(self) -> JWK:
        return JWK.from_pyca(self.private_key)

    def public_jwk(self) -> dict[str, Any]:
        public = dict(self.jwk.export_public(as_dict=True))
        public.update({"kid": self.kid, "use": "sig", "alg": "ES256"})
        return public

    def jwks(self) -> dict[str, Any]:
        """The JWKS an anchor configuration lists for this issuer."""
        return {"keys": [self.public_jwk(), *self.extra_public_keys]}

    def issue(
        self,
        holder: Wallet | None,
        *,
        claims: Mapping[str, Any],
        disclosable: Collection[str] = (),
        nested: Mapping[str, Collection[str]] | None = None,
        iat: int,
        exp: int | None = None,
        status: tuple[str, int] | None = None,
        typ: str = CREDENTIAL_TYP,
        header: Mapping[str, Any] | None = None,
        decoys: bool = False,
        vct: str | None = None,
        iss: str | None = None,
    ) -> str:
        """Issue an SD-JWT VC with the sd-jwt package; returns the issuance
        ``<issuer-jwt>~<D1>~...~<Dn>~``.

        ``claims`` are the user claims; names in ``disclosable`` become selectively disclosable
        top-level claims; ``nested`` makes members of object claims disclosable (recursive
        disclosure when the object itself is disclosable too). ``iss``, ``vct``, ``iat``,
        ``exp`` and ``status`` are always plain claims, as SD-JWT VC requires; ``vct``/``iss``
        override this issuer's defaults (to build credentials an anchor must refuse).
        """
        nested = nested or {}
        user_claims: dict[Any, Any] = {
            "iss": iss or self.issuer,
            "vct": vct or self.vct,
            "iat": iat,
        }
        if exp is not None:
            user_claims["exp"] = exp
        if status is not None:
            user_claims["status"] = {"status_list": {"uri": status[0], "idx": status[1]}}
        for name, value in claims.items():
            if name in nested:
                value = {
                    (SDObj(member) if member in nested[name] else member): inner
                    for member, inner in value.items()
                }
            user_claims[SDObj(name) if name in disclosable else name] = value
        issuer_obj = SDJWTIssuer(
            user_claims,
            self.jwk,
            holder.jwk if holder is not None else None,
            sign_alg="ES256",
            add_decoy_claims=decoys,
            extra_header_parameters={"typ": typ, "kid": self.kid, **(header or {})},
        )
        return str(issuer_obj.sd_jwt_issuance)

    def sign(
        self,
        payload: Mapping[str, Any],
        *,
        header: Mapping[str, Any] | None = None,
        key: JWK | None = None,
    ) -> str:
        """A hand-built Issuer-signed JWT (header defaults: ES256, dc+sd-jwt, this kid)."""
        protected = {"alg": "ES256", "typ": CREDENTIAL_TYP, "kid": self.kid, **(header or {})}
        return _sign_compact(key or self.jwk, protected, payload)

    def base_payload(self, holder: Wallet, *, iat: int, **claims: Any) -> dict[str, Any]:
        """The plain claims every hand-built credential needs."""
        payload = {
            "iss": self.issuer,
            "vct": self.vct,
            "iat": iat,
            "_sd_alg": "sha-256",
            "cnf": {"jwk": holder.public_jwk},
        }
        payload.update(claims)
        return payload

    def status_list_token(
        self,
        uri: str,
        statuses: Sequence[int],
        *,
        bits: int = 1,
        iat: int,
        exp: int | None = None,
        typ: str = "statuslist+jwt",
        key: JWK | None = None,
        sub: str | None = None,
        ttl: int | None = None,
    ) -> str:
        """A Status List Token for ``uri`` signed with this issuer's key (or ``key``)."""
        payload: dict[str, Any] = {
            "sub": sub if sub is not None else uri,
            "iat": iat,
            "status_list": {"bits": bits, "lst": encode_status_list(statuses, bits=bits)},
        }
        if exp is not None:
            payload["exp"] = exp
        if ttl is not None:
            payload["ttl"] = ttl
        protected = {"alg": "ES256", "typ": typ, "kid": self.kid}
        return _sign_compact(key or self.jwk, protected, payload)


@dataclass
class InMemoryFetcher:
    """A Fetcher (trustanchor.anchors.fetcher) test double serving fixed bodies by URL.
    Unknown URLs fail like an unreachable server; every request is recorded."""

    bodies: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)
    posts: list[tuple[str, str, bytes]] = field(default_factory=list)

    def serve(self, url: str, body: str | bytes) -> None:
        self.bodies[url] = body.encode("ascii") if isinstance(body, str) else body

    def get(self, url: str, *, accept: str, max_bytes: int) -> bytes:
        self.requests.append((url, accept, max_bytes))
        if url not in self.bodies:
            raise FetchError("network", f"{url} unreachable")
        body = self.bodies[url]
        if len(body) > max_bytes:
            raise FetchError("too_large", url)
        return body

    def post(
        self,
        url: str,
        *,
        body: bytes,
        content_type: str,
        accept: str,
        max_bytes: int,
        headers: Mapping[str, str] | None = None,
    ) -> bytes:
        """Answers a POST with the body served for ``url`` (tests of OCSP and upstream
        providers register what the server would answer); the request is recorded."""
        self.posts.append((url, content_type, body))
        return self.get(url, accept=accept, max_bytes=max_bytes)

    def get_authorized(
        self, url: str, *, accept: str, max_bytes: int, headers: Mapping[str, str]
    ) -> bytes:
        return self.get(url, accept=accept, max_bytes=max_bytes)
