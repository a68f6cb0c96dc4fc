"""Our identity towards wallets and the signed Request Object (OpenID4VP 1.0 section 5, JAR).

Client Identifier Prefix — the choice
-------------------------------------
A wallet learns from the prefix of ``client_id`` (section 5.9) how to authenticate the verifier
and where its metadata comes from. Our deployment: trustanchor is *registered in advance* with the
wallets of a national ecosystem (the registration holds our name, ``jwks_uri`` and the formats we
accept) and signs its Request Objects with the keys published in its own JWKS. Compared:

- **pre-registered (no prefix)** — ``client_id`` is the identifier the ecosystem registered; the
  wallet already knows our metadata and keys, and checks the signature against our JWKS by
  ``kid``. Exactly our situation, no extra PKI, and keys rotate through the JWKS we already
  publish. Chosen as the default. Consequence: we must *not* send ``client_metadata`` (a wallet
  that knows our registration answers ``invalid_client``), and our identifier must not start with
  a defined prefix followed by ``:`` (a wallet would parse it as that prefix).
- ``x509_san_dns:`` / ``x509_hash:`` — authentication through an X.509 chain in the ``x5c``
  header, validated against the wallet's trusted roots. Right when the ecosystem runs a verifier
  PKI (HAIP requires ``x509_hash``); needs a certificate whose key is our signing key, and
  ``client_metadata`` in every request.
- ``decentralized_identifier:`` — keys from a resolved DID document; needs DID infrastructure the
  ecosystem does not have, and ``kid`` must be a DID URL.
- ``verifier_attestation:`` — a JWT from a party wallets trust, bound to our key (``cnf``), in the
  ``jwt`` header. Useful without pre-registration; an extra issuer to operate.
- ``openid_federation:`` — metadata from an OpenID Federation trust chain.
- ``redirect_uri:`` — cannot be signed (there is no key a wallet could trust), so it cannot
  authenticate us at all: refused.

The choice stays configuration: :class:`VerifierIdentity` takes the full ``client_id`` (with its
prefix) and whatever the prefix needs (``x5c``, an attestation JWT, a DID key id), and refuses
combinations a wallet would reject, at start-up rather than in someone's phone.

The Request Object
------------------
Served at ``request_uri`` with content type ``application/oauth-authz-req+jwt``; the JOSE header
carries ``typ: oauth-authz-req+jwt`` (wallets must refuse anything else). ``iss`` (= ``client_id``,
which wallets ignore but JAR expects) and ``aud`` ``https://self-issued.me/v2`` (section 5.8: the
value for static discovery, i.e. we did not fetch the wallet's metadata) are included with
``iat``/``exp`` so a captured Request Object goes stale. The ``state`` identifies the wallet
transaction at our ``response_uri``; the ``nonce`` binds the presentation (its Key Binding JWT) to
this transaction and, together with ``aud`` = our full ``client_id``, to us.

``transaction_data`` (section 5.1), when given, is the array of base64url strings exactly as the
login transaction stored them (``openid4vp/transaction_data.py``): each must be one of our
elements and name only Credential Queries of the DCQL query, because a wallet refuses the whole
request for one element it cannot read (``invalid_transaction_data``).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509

from trustanchor import strict_json
from trustanchor.digests import sha256_b64url
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import public_jwk, public_key_from_jwk, thumbprint
from trustanchor.keystore.signing_keys import SigningKey
from trustanchor.openid4vp import dcql, transaction_data
from trustanchor.openid4vp.links import LinkError, check_client_id, check_https_url

REQUEST_OBJECT_TYP = "oauth-authz-req+jwt"
REQUEST_OBJECT_MEDIA_TYPE = "application/oauth-authz-req+jwt"
STATIC_DISCOVERY_AUDIENCE = "https://self-issued.me/v2"
RESPONSE_TYPE = "vp_token"
RESPONSE_MODE = "direct_post"

PRE_REGISTERED = "pre-registered"
REDIRECT_URI = "redirect_uri"
OPENID_FEDERATION = "openid_federation"
DECENTRALIZED_IDENTIFIER = "decentralized_identifier"
VERIFIER_ATTESTATION = "verifier_attestation"
X509_SAN_DNS = "x509_san_dns"
X509_HASH = "x509_hash"
ORIGIN = "origin"
# The prefixes defined by OpenID4VP 1.0 section 5.9.3 (``origin`` is reserved for the DC API).
DEFINED_PREFIXES = frozenset(
    {
        REDIRECT_URI,
        OPENID_FEDERATION,
        DECENTRALIZED_IDENTIFIER,
        VERIFIER_ATTESTATION,
        X509_SAN_DNS,
        X509_HASH,
        ORIGIN,
    }
)
# Prefixes whose wallets read our metadata from the request (vs. a registration or trust chain).
_METADATA_IN_REQUEST = frozenset(
    {DECENTRALIZED_IDENTIFIER, VERIFIER_ATTESTATION, X509_SAN_DNS, X509_HASH}
)

# nonce and state: "ASCII URL safe characters"; at least 128 bits when base64url (22 chars).
_URL_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
_MIN_RANDOM_CHARS = 22
_MAX_VALUE = 256
MAX_LIFETIME = 3600
_MAX_ATTESTATION = 8192


class RequestObjectError(ValueError):
    """A Request Object cannot be built as asked (configuration or caller error)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class RequestUriPostError(ValueError):
    """The wallet's POST to ``request_uri`` (``request_uri_method=post``) is malformed."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def client_id_prefix(client_id: str) -> str:
    """The Client Identifier Prefix of ``client_id`` (section 5.9.1), ``pre-registered`` if none.

    Only the text before the *first* ``:`` counts, and only when it is a defined prefix: a
    wallet treats ``https://verifier.example`` as pre-registered (or refuses it).
    """
    head, sep, _ = client_id.partition(":")
    return head if sep and head in DEFINED_PREFIXES else PRE_REGISTERED


@dataclass(frozen=True, slots=True)
class VerifierIdentity:
    """Who we are to a wallet: ``client_id`` *with* its prefix, and the key that signs for it.

    ``kid`` defaults to the signing key's kid (its RFC 7638 thumbprint, as in our JWKS); for
    ``decentralized_identifier:`` it must be the DID URL of the verification method.
    ``x5c`` (base64 DER, leaf first) is for the ``x509_*`` prefixes, ``attestation_jwt`` for
    ``verifier_attestation:``. Invalid combinations raise :class:`RequestObjectError`.
    """

    client_id: str
    signing_key: SigningKey
    kid_override: str | None = None
    x5c: tuple[str, ...] = field(default=())
    attestation_jwt: str | None = None

    def __post_init__(self) -> None:
        try:
            check_client_id(self.client_id)
        except LinkError as exc:
            raise RequestObjectError("invalid_client_id", exc.detail) from exc
        if self.signing_key.alg not in jws.ASYMMETRIC_ALGS:
            raise RequestObjectError("unsupported_alg", f"cannot sign with {self.signing_key.alg}")
        prefix = self.prefix
        if prefix == REDIRECT_URI:
            raise RequestObjectError(
                "unsignable_prefix", "redirect_uri: requests cannot be signed, so cannot be used"
            )
        if prefix == ORIGIN:
            raise RequestObjectError("reserved_prefix", "origin: is reserved for the DC API")
        if self.x5c and prefix not in (X509_SAN_DNS, X509_HASH):
            raise RequestObjectError("unexpected_x5c", f"x5c is not used with {prefix}")
        if self.attestation_jwt is not None and prefix != VERIFIER_ATTESTATION:
            raise RequestObjectError("unexpected_attestation", f"no attestation with {prefix}")
        if prefix in (X509_SAN_DNS, X509_HASH):
            self._check_x509(prefix)
        elif prefix == VERIFIER_ATTESTATION:
            self._check_attestation()
        elif prefix == DECENTRALIZED_IDENTIFIER:
            did = self.original_client_id
            if not did.startswith("did:") or not self.kid.startswith(did + "#"):
                raise RequestObjectError(
                    "invalid_did", "decentralized_identifier needs a DID and kid = DID URL"
                )

    @property
    def prefix(self) -> str:
        return client_id_prefix(self.client_id)

    @property
    def original_client_id(self) -> str:
        """The identifier within its prefix's namespace (the whole value when pre-registered)."""
        if self.prefix == PRE_REGISTERED:
            return self.client_id
        return self.client_id.partition(":")[2]

    @property
    def kid(self) -> str:
        return self.kid_override if self.kid_override is not None else self.signing_key.kid

    @property
    def alg(self) -> str:
        return self.signing_key.alg

    @property
    def metadata_in_request(self) -> bool:
        """Whether wallets expect ``client_metadata`` in the request for this prefix."""
        return self.prefix in _METADATA_IN_REQUEST

    def jose_header(self) -> dict[str, Any]:
        header: dict[str, Any] = {"typ": REQUEST_OBJECT_TYP}
        if self.prefix in (X509_SAN_DNS, X509_HASH):
            header["x5c"] = list(self.x5c)
        elif self.prefix == VERIFIER_ATTESTATION:
            header["jwt"] = self.attestation_jwt
            header["kid"] = self.kid
        else:
            header["kid"] = self.kid
        return header

    def _own_thumbprint(self) -> str:
        return thumbprint(public_jwk(self.signing_key.private_key))

    def _check_x509(self, prefix: str) -> None:
        if not self.x5c:
            raise RequestObjectError("missing_x5c", f"{prefix} needs the certificate chain (x5c)")
        try:
            ders = [base64.b64decode(item, validate=True) for item in self.x5c]
            leaf = x509.load_der_x509_certificate(ders[0])
            leaf_thumbprint = thumbprint(public_jwk(leaf.public_key()))  # type: ignore[arg-type]
        except (binascii.Error, ValueError, TypeError) as exc:
            raise RequestObjectError("invalid_x5c", "x5c must be base64 DER certificates") from exc
        if leaf_thumbprint != self._own_thumbprint():
            raise RequestObjectError("x5c_key_mismatch", "the leaf certificate is not our key")
        if prefix == X509_HASH and sha256_b64url(ders[0]) != self.original_client_id:
            raise RequestObjectError("x509_hash_mismatch", "client_id is not the leaf's hash")
        if prefix == X509_SAN_DNS:
            try:
                san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                names = san.value.get_values_for_type(x509.DNSName)
            except x509.ExtensionNotFound:
                names = []
            if self.original_client_id not in names:
                raise RequestObjectError("x509_san_mismatch", "client_id is not a dNSName SAN")

    def _check_attestation(self) -> None:
        token = self.attestation_jwt
        if token is None:
            raise RequestObjectError("missing_attestation", "verifier_attestation needs its JWT")
        try:
            parsed = jws.parse(token, max_bytes=_MAX_ATTESTATION, allowed_algs=jws.ASYMMETRIC_ALGS)
            jws.check_typ(parsed.header, "verifier-attestation+jwt")
            claims = parsed.claims()
            cnf = claims.get("cnf")
            bound = thumbprint(
                public_jwk(public_key_from_jwk(cnf.get("jwk") if isinstance(cnf, dict) else None))
            )
        except JoseError as exc:
            raise RequestObjectError("invalid_attestation", exc.reason) from exc
        if claims.get("sub") != self.original_client_id:
            raise RequestObjectError("invalid_attestation", "sub is not our client_id")
        if bound != self._own_thumbprint():
            raise RequestObjectError("invalid_attestation", "cnf.jwk is not our signing key")


def sd_jwt_vc_client_metadata(
    *, sd_jwt_alg_values: Sequence[str] = ("ES256",), kb_jwt_alg_values: Sequence[str] = ("ES256",)
) -> dict[str, Any]:
    """``client_metadata`` with the SD-JWT VC algorithms we accept (appendix B, SD-JWT VC).

    Only for prefixes that carry metadata in the request (see
    :attr:`VerifierIdentity.metadata_in_request`); with pre-registration the same
    ``vp_formats_supported`` belongs in the registration instead.
    """
    if not sd_jwt_alg_values or not kb_jwt_alg_values:
        raise RequestObjectError("invalid_client_metadata", "algorithm lists must not be empty")
    return {
        "vp_formats_supported": {
            dcql.SD_JWT_VC_FORMAT: {
                "sd-jwt_alg_values": list(sd_jwt_alg_values),
                "kb-jwt_alg_values": list(kb_jwt_alg_values),
            }
        }
    }


def build_request_object(
    verifier: VerifierIdentity,
    *,
    nonce: str,
    state: str,
    response_uri: str,
    dcql_query: Mapping[str, Any],
    at: int,
    lifetime: int,
    client_metadata: Mapping[str, Any] | None = None,
    wallet_nonce: str | None = None,
    allow_http_loopback: bool = False,
    transaction_data_items: Sequence[str] = (),
) -> str:
    """The signed Request Object (compact JWS) for one wallet transaction.

    ``nonce`` and ``state`` are fresh random values (>= 22 URL-safe characters, i.e. 128 bits)
    from :mod:`trustanchor.randomness`; ``lifetime`` (seconds, 1..3600) bounds ``exp``.
    ``wallet_nonce`` is echoed when the wallet POSTed one to ``request_uri``.
    ``transaction_data_items`` become the ``transaction_data`` parameter (omitted when empty).
    """
    _check_random("nonce", nonce)
    _check_random("state", state)
    try:
        check_https_url(response_uri, what="response_uri", allow_http_loopback=allow_http_loopback)
    except LinkError as exc:
        raise RequestObjectError("invalid_response_uri", exc.detail) from exc
    # Unless a wallet trusts us specifically, the response URI must be on the SAN's host.
    if (
        verifier.prefix == X509_SAN_DNS
        and urlsplit(response_uri).hostname != verifier.original_client_id.lower()
    ):
        raise RequestObjectError("invalid_response_uri", "host differs from x509_san_dns name")
    try:
        dcql.validate_query(dcql_query)
    except dcql.DCQLError as exc:
        raise RequestObjectError("invalid_dcql_query", str(exc)) from exc
    if isinstance(at, bool) or not isinstance(at, int) or at < 0:
        raise RequestObjectError("invalid_time", "at is whole epoch seconds")
    if (
        isinstance(lifetime, bool)
        or not isinstance(lifetime, int)
        or not 0 < lifetime <= MAX_LIFETIME
    ):
        raise RequestObjectError("invalid_lifetime", f"lifetime is 1..{MAX_LIFETIME} seconds")
    claims: dict[str, Any] = {
        "iss": verifier.client_id,
        "aud": STATIC_DISCOVERY_AUDIENCE,
        "iat": at,
        "exp": at + lifetime,
        "client_id": verifier.client_id,
        "response_type": RESPONSE_TYPE,
        "response_mode": RESPONSE_MODE,
        "response_uri": response_uri,
        "nonce": nonce,
        "state": state,
        "dcql_query": dict(dcql_query),
    }
    if client_metadata is not None:
        if not verifier.metadata_in_request:
            raise RequestObjectError(
                "unexpected_client_metadata",
                f"wallets take {verifier.prefix} metadata from elsewhere (invalid_client)",
            )
        claims["client_metadata"] = _checked_client_metadata(client_metadata)
    elif verifier.metadata_in_request:
        raise RequestObjectError(
            "missing_client_metadata", f"{verifier.prefix} needs client_metadata in the request"
        )
    if wallet_nonce is not None:
        claims["wallet_nonce"] = _checked_wallet_nonce(wallet_nonce, RequestObjectError)
    if transaction_data_items:
        claims["transaction_data"] = _checked_transaction_data(transaction_data_items, dcql_query)
    key = verifier.signing_key
    return jws.sign(claims, key.private_key, alg=key.alg, headers=verifier.jose_header())


@dataclass(frozen=True, slots=True)
class RequestUriPost:
    """What a wallet may POST to ``request_uri`` (section 5.10): both members optional."""

    wallet_nonce: str | None
    wallet_metadata: dict[str, Any] | None


def parse_request_uri_post(form: Mapping[str, Any], *, max_bytes: int) -> RequestUriPost:
    """Read ``wallet_nonce``/``wallet_metadata`` from the form body; other members are ignored.

    ``form`` maps names to lists of values (``MultiDict.to_dict(flat=False)``).
    """
    values: dict[str, str] = {}
    total = 0
    try:
        items = list(form.items())
    except (AttributeError, TypeError) as exc:
        raise RequestUriPostError("malformed", "not a form") from exc
    for name, raw in items:
        if not isinstance(name, str) or not isinstance(raw, list | tuple):
            raise RequestUriPostError("malformed", "not a form")
        for value in raw:
            if not isinstance(value, str):
                raise RequestUriPostError("malformed", "form values are strings")
            total += len(name.encode("utf-8", "surrogatepass"))
            total += len(value.encode("utf-8", "surrogatepass"))
        if total > max_bytes:
            raise RequestUriPostError("too_large", "request body exceeds the limit")
        if name in ("wallet_nonce", "wallet_metadata"):
            if len(raw) != 1:
                reason = "repeated_parameter" if raw else "malformed"
                raise RequestUriPostError(reason, f"{name} must appear once")
            values[name] = raw[0]
    nonce = values.get("wallet_nonce")
    if nonce is not None:
        nonce = _checked_wallet_nonce(nonce, RequestUriPostError)
    metadata: dict[str, Any] | None = None
    if "wallet_metadata" in values:
        try:
            parsed = strict_json.loads(values["wallet_metadata"], max_depth=8, max_bytes=max_bytes)
        except strict_json.StrictJSONError as exc:
            raise RequestUriPostError("invalid_wallet_metadata", str(exc)) from exc
        if not isinstance(parsed, dict):
            raise RequestUriPostError("invalid_wallet_metadata", "not a JSON object")
        metadata = parsed
    return RequestUriPost(wallet_nonce=nonce, wallet_metadata=metadata)


def _check_random(name: str, value: Any) -> None:
    if (
        not isinstance(value, str)
        or not _MIN_RANDOM_CHARS <= len(value) <= _MAX_VALUE
        or not _URL_SAFE.fullmatch(value)
    ):
        raise RequestObjectError(
            f"invalid_{name}", f"{name} must be 22-256 URL-safe characters of fresh randomness"
        )


def _checked_wallet_nonce(value: Any, error: type[RequestObjectError | RequestUriPostError]) -> str:
    if (
        not isinstance(value, str)
        or not 0 < len(value) <= _MAX_VALUE
        or not all("!" <= ch <= "~" for ch in value)
    ):
        raise error("invalid_wallet_nonce", "wallet_nonce must be 1-256 printable ASCII characters")
    return value


def _checked_transaction_data(items: Sequence[str], dcql_query: Mapping[str, Any]) -> list[str]:
    if isinstance(items, str) or len(items) > transaction_data.MAX_ELEMENTS:
        raise RequestObjectError("invalid_transaction_data", "too many elements")
    # Appendix B.3.3: transaction data needs holder binding, which build_query never turns off.
    queried = set(dcql.credential_ids(dcql_query))
    checked: list[str] = []
    for item in items:
        try:
            element = transaction_data.decode(item)
        except transaction_data.TransactionDataError as exc:
            raise RequestObjectError("invalid_transaction_data", exc.detail) from exc
        if not set(element["credential_ids"]) <= queried:
            raise RequestObjectError(
                "invalid_transaction_data", "credential_ids names a credential not queried"
            )
        checked.append(item)
    return checked


def _checked_client_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    formats = metadata.get("vp_formats_supported")
    if not isinstance(formats, Mapping) or not formats:
        raise RequestObjectError(
            "invalid_client_metadata", "client_metadata needs a non-empty vp_formats_supported"
        )
    return dict(metadata)


__all__ = [
    "DECENTRALIZED_IDENTIFIER",
    "DEFINED_PREFIXES",
    "MAX_LIFETIME",
    "OPENID_FEDERATION",
    "PRE_REGISTERED",
    "REQUEST_OBJECT_MEDIA_TYPE",
    "REQUEST_OBJECT_TYP",
    "STATIC_DISCOVERY_AUDIENCE",
    "VERIFIER_ATTESTATION",
    "X509_HASH",
    "X509_SAN_DNS",
    "RequestObjectError",
    "RequestUriPost",
    "RequestUriPostError",
    "VerifierIdentity",
    "build_request_object",
    "client_id_prefix",
    "parse_request_uri_post",
    "sd_jwt_vc_client_metadata",
]
