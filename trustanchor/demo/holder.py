"""The demo wallet's core: answer an OpenID4VP 1.0 request with an SD-JWT VC presentation.

Framework-free (no Flask); the HTTP client, the clock and the randomness are injected.

1. **Invocation** — the wallet URL (same-device link or QR code) carries only ``client_id`` and
   ``request_uri`` (:func:`trustanchor.openid4vp.links.parse_wallet_request_url`).
2. **Request Object** — fetched from ``request_uri`` (GET, or POST with a fresh ``wallet_nonce``
   when ``request_uri_method=post``) and verified: media type, ``typ`` ``oauth-authz-req+jwt``,
   the signature, ``iss``/``client_id`` equal to the URL's ``client_id``, ``aud``
   ``https://self-issued.me/v2`` (static discovery: we sent no wallet metadata), ``exp``/``iat``,
   ``response_type`` ``vp_token``, ``response_mode`` ``direct_post``, ``nonce``, ``state``,
   ``response_uri`` on the verifier's registered origin, the echoed ``wallet_nonce``.

   *Which key?* The service's ``client_id`` has no Client Identifier Prefix, so it is a
   **pre-registered** verifier (OpenID4VP 1.0 section 5.9.2): the wallet knows its metadata from a
   registration made beforehand — here a :class:`TrustedVerifier`: its ``client_id`` (the
   service's issuer identifier), name, origin and ``jwks_uri`` (the service's ``/jwks``, whose
   current signing key signs the Request Objects; the header's ``kid`` picks it). Requests
   from a verifier the wallet does not know, or with a prefix, are refused.
3. **DCQL** — the query is validated (:func:`trustanchor.openid4vp.dcql.validate_query`) and
   matched against the person's credentials: format ``dc+sd-jwt``, ``meta.vct_values``, every
   requested claim (claims path pointers, ``values``, ``claim_sets`` in order of preference).
   Exactly the Disclosures needed for the requested claims are chosen — nothing more.
4. **Consent** — :class:`Proposal` says who asks (the registered name), which credential and which
   claims, and the payment the request asks the person to sign (``transaction_data``, below);
   the person confirms or declines.
5. **Response** — on confirm the presentation ``<issuer JWT>~<chosen Disclosures>~<KB-JWT>``
   (KB-JWT ``typ`` ``kb+jwt`` with ``nonce``, ``aud`` = ``client_id``, ``iat``, ``sd_hash``) is
   POSTed form-encoded to ``response_uri`` as ``vp_token`` = a JSON object keyed by the Credential
   Query id (OpenID4VP 1.0 section 8.1) with ``state``; the ``redirect_uri`` of the JSON answer
   is returned (only when it is on the verifier's origin). Decline POSTs
   ``error=access_denied`` with ``state`` (section 8.5).

**Transaction data** (OpenID4VP 1.0 section 5.1, appendix B.3.3.1; docs/DYNAMIC-LINKING.md).
The wallet knows the service's three types (a transfer, a funding movement, a standing
authorization of funding), written out here (:data:`TRANSACTION_TYPES`, each with exactly its
members). A request whose ``transaction_data`` holds anything else (an unknown type, an unknown
or missing member, a member of the wrong kind, a ``credential_ids`` naming no Credential Query
of the request, a hash algorithm list without ``sha-256``) is answered with
``error=invalid_transaction_data`` (section 8.5) and refused to the person. Otherwise the confirm
page shows each element (amount, payee, references; or a standing authorization's bounds in
words) and the Key Binding JWT of the credential it names carries
``transaction_data_hashes`` (SHA-256, base64url, over each string exactly as received) and
``transaction_data_hashes_alg`` ``sha-256``.

What the wallet fetches (it runs on a server in the demo, so a link must not make it a proxy):
only the ``request_uri`` of a link naming a pre-registered verifier, and only on that verifier's
registered origin (same scheme, host and port); its ``jwks_uri``; and its ``response_uri``, on the
same origin. Redirects are never followed. Every answer is read at most to its limit (a declared
``Content-Length`` beyond it is refused before reading, a streamed body is cut off at the limit)
and within a deadline, and ``Accept-Encoding: identity`` asks for no compression.

Every refusal is a :class:`HolderError` with a reason code (the wallet page explains each).
Limitation: only top-level claims may be selectively disclosable in held credentials (what
:mod:`trustanchor.demo.issuer` issues); a deeper path is disclosed with its top-level claim.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeGuard
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.asymmetric import ec

from trustanchor.anchors import sd_jwt
from trustanchor.clock import Clock
from trustanchor.digests import b64url_decode, equal, sha256_b64url
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey, keys_from_jwks, public_jwk, thumbprint
from trustanchor.openid4vp import dcql
from trustanchor.openid4vp.links import LinkError, check_https_url, parse_wallet_request_url
from trustanchor.randomness import Randomness

# OpenID4VP 1.0 and RFC 9101 values, written out here from the specifications (the wallet does
# not reuse the verifier's constants, so a mistake on one side is not silently shared).
REQUEST_OBJECT_TYP = "oauth-authz-req+jwt"
REQUEST_OBJECT_MEDIA_TYPE = "application/oauth-authz-req+jwt"
STATIC_DISCOVERY_AUDIENCE = "https://self-issued.me/v2"
KB_JWT_TYP = "kb+jwt"
SD_JWT_VC_FORMAT = "dc+sd-jwt"
DEFINED_CLIENT_ID_PREFIXES = frozenset(
    {
        "redirect_uri",
        "openid_federation",
        "decentralized_identifier",
        "verifier_attestation",
        "x509_san_dns",
        "x509_hash",
        "origin",
    }
)
VERIFIER_ALGS = ("ES256", "ES384", "ES512", "EdDSA", "PS256")
HOLDER_ALG = "ES256"
CLOCK_SKEW = 30
MAX_REQUEST_BYTES = 64 * 1024
MAX_JWKS_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 16 * 1024
MAX_CLAIM_DEPTH = 8
DEFAULT_TIMEOUT = 10.0
_CHUNK = 8192
_HEADERS = {"Accept-Encoding": "identity"}  # no compressed answers: the limits count real bytes
# URLs the wallet checks against the verifier's registered origin: the reason when the URL is
# unusable, and when it is on another origin.
_MALFORMED = {
    "request_uri": "invalid_link",
    "response_uri": "invalid_request",
    "redirect_uri": "invalid_redirect_uri",
}
_ELSEWHERE = {
    "request_uri": "request_uri_not_registered",
    "response_uri": "response_uri_not_registered",
    "redirect_uri": "invalid_redirect_uri",
}

# The service's transaction data types (docs/DYNAMIC-LINKING.md): required and optional members
# besides type, credential_ids and transaction_data_hashes_alg.
TRANSACTION_TYPES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "urn:trustanchor:transaction:value_transfer:1": (
        frozenset({"amount", "currency", "creditor"}),
        frozenset({"remittance_reference"}),
    ),
    "urn:trustanchor:transaction:funding:1": (
        frozenset(
            {
                "direction",
                "amount",
                "currency",
                "deposit_account_reference",
                "wallet_account_reference",
            }
        ),
        frozenset(),
    ),
    "urn:trustanchor:transaction:standing_funding:1": (
        frozenset(
            {
                "directions",
                "max_amount",
                "daily_amount",
                "valid_days",
                "deposit_account_reference",
                "wallet_account_reference",
            }
        ),
        frozenset(),
    ),
}
TRANSACTION_HASH_ALG = "sha-256"
MAX_TRANSACTION_DATA = 8
_CREDITOR_MEMBERS = frozenset({"label", "intermediary", "account_reference"})
_BOUND_MEMBERS = frozenset({"amount", "currency"})
_FUNDING_DIRECTIONS = ("deposit_to_wallet", "wallet_to_deposit")
# Members that are not plain text: checked on their own.
_STRUCTURED = frozenset({"creditor", "directions", "max_amount", "daily_amount", "valid_days"})

REASONS: dict[str, str] = {
    "invalid_transaction_data": "The request asks to sign a payment this wallet cannot read.",
    "invalid_link": "The link or QR code is not a wallet request.",
    "unknown_verifier": "The requesting service is not one this wallet knows.",
    "request_unavailable": "The request could not be fetched from the service.",
    "request_uri_not_registered": "The link asks the wallet to fetch from another site.",
    "answer_too_large": "The service's answer is larger than this wallet accepts.",
    "request_malformed": "The service's request could not be read.",
    "wrong_typ": "The service's request is not a signed authorization request.",
    "verifier_keys_unavailable": "The service's keys could not be fetched.",
    "unknown_verifier_key": "The request is signed with a key the service has not published.",
    "bad_signature": "The request's signature is not valid.",
    "client_id_mismatch": "The request names a different service than the link.",
    "wrong_audience": "The request is not addressed to wallets.",
    "request_expired": "The request has expired.",
    "request_not_yet_valid": "The request is dated in the future.",
    "unsupported_response_type": "The request asks for a kind of answer this wallet cannot give.",
    "unsupported_response_mode": "The request asks for a way of answering this wallet cannot use.",
    "invalid_request": "The request lacks something it must contain.",
    "response_uri_not_registered": "The request wants the answer sent to another site.",
    "wallet_nonce_mismatch": "The request does not answer this wallet's fetch.",
    "unexpected_client_metadata": "The request carries metadata a registered service must not.",
    "invalid_dcql_query": "The request's list of wanted information is malformed.",
    "unsupported_dcql_query": "The request asks for information in a way this wallet cannot.",
    "no_matching_credential": "No credential in this wallet has what the request asks for.",
    "verifier_unreachable": "The answer could not be delivered to the service.",
    "verifier_refused": "The service did not accept the answer.",
    "invalid_redirect_uri": "The service sent back an address this wallet will not open.",
}


class HolderError(Exception):
    """A refusal by the wallet. ``reason`` is a key of :data:`REASONS`; ``detail`` is for the
    person too (it never holds secrets) and may be empty."""

    def __init__(self, reason: str, detail: str = "") -> None:
        assert reason in REASONS, reason
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


# -- injected HTTP client (a requests.Session fits) ------------------------------------------------


class HttpResponse(Protocol):
    """An answer whose body has not been read yet (``stream=True``): the holder reads it in
    chunks, up to its own limit, and closes it."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    def iter_content(self, chunk_size: int) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class HttpClient(Protocol):
    def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str],
        timeout: float,
        allow_redirects: bool,
        stream: bool,
    ) -> HttpResponse: ...

    def post(
        self,
        url: str,
        *,
        data: Mapping[str, str],
        headers: Mapping[str, str],
        timeout: float,
        allow_redirects: bool,
        stream: bool,
    ) -> HttpResponse: ...


# -- what the wallet knows and holds ------------------------------------------------------------


@dataclass(frozen=True)
class TrustedVerifier:
    """A pre-registered verifier: what the ecosystem registered about it with the wallet."""

    client_id: str
    display_name: Mapping[str, str]  # language -> name shown to the person
    origin: str  # scheme://host[:port]; response_uri and redirect_uri must be on it
    jwks_uri: str  # where its Request Object signing keys are published

    def name(self, language: str) -> str:
        return self.display_name.get(language) or self.display_name.get("en") or self.client_id


@dataclass(frozen=True)
class HeldCredential:
    """One SD-JWT VC in the wallet with the private key it is bound to (``cnf.jwk``)."""

    id: str
    anchor_id: str
    issuer_name: Mapping[str, str]
    issuer_jwt: str
    payload: Mapping[str, Any]  # the Issuer-signed payload (with _sd digests)
    disclosures: tuple[sd_jwt.Disclosure, ...]
    holder_key: ec.EllipticCurvePrivateKey

    @classmethod
    def parse(
        cls,
        issuance: str,
        holder_key: ec.EllipticCurvePrivateKey,
        *,
        credential_id: str,
        anchor_id: str,
        issuer_name: Mapping[str, str],
    ) -> HeldCredential:
        """Read an issuance ``<JWT>~<D1>~…~<Dn>~`` (our own wallet's: the issuer signature was
        checked when it was stored, the verifier checks it again). The credential must be bound
        to ``holder_key`` and its Disclosures must all belong to it."""
        try:
            parts = sd_jwt.split(issuance, max_bytes=MAX_REQUEST_BYTES, max_disclosures=64)
            parsed = jws.parse(
                parts.issuer_jwt, max_bytes=MAX_REQUEST_BYTES, allowed_algs=VERIFIER_ALGS
            )
            payload = parsed.claims(max_depth=MAX_CLAIM_DEPTH)
            disclosures = sd_jwt.decode_disclosures(parts.disclosures, max_depth=MAX_CLAIM_DEPTH)
            sd_jwt.reconstruct(payload, disclosures)
        except (sd_jwt.SdJwtError, JoseError) as exc:
            raise ValueError(f"credential {credential_id}: {exc}") from exc
        if parts.kb_jwt is not None:
            raise ValueError(f"credential {credential_id}: an issuance has no key binding JWT")
        cnf = payload.get("cnf")
        bound = cnf.get("jwk") if isinstance(cnf, dict) else None
        try:
            bound_jkt = thumbprint(bound) if isinstance(bound, dict) else None
        except JoseError:
            bound_jkt = None
        if bound_jkt != thumbprint(public_jwk(holder_key)):
            raise ValueError(f"credential {credential_id}: not bound to this wallet's key")
        if not isinstance(payload.get("vct"), str):
            raise ValueError(f"credential {credential_id}: no vct")
        return cls(
            id=credential_id,
            anchor_id=anchor_id,
            issuer_name=dict(issuer_name),
            issuer_jwt=parts.issuer_jwt,
            payload=payload,
            disclosures=disclosures,
            holder_key=holder_key,
        )

    @property
    def vct(self) -> str:
        return str(self.payload["vct"])

    @property
    def issuer(self) -> str:
        return str(self.payload.get("iss", ""))

    @property
    def expires_at(self) -> int | None:
        exp = self.payload.get("exp")
        return exp if _is_int(exp) else None

    def claims(self) -> dict[str, Any]:
        """Every claim with all Disclosures applied (what the wallet itself can show)."""
        return sd_jwt.reconstruct(self.payload, self.disclosures)

    def disclosable_claims(self) -> dict[str, Any]:
        """The selectively disclosable top-level claims, in issuance order."""
        return {d.name: d.value for d in self.disclosures if d.name is not None}

    def issuer_name_in(self, language: str) -> str:
        return self.issuer_name.get(language) or self.issuer_name.get("en") or self.anchor_id


# -- a verified request and what answering it would disclose -----------------------------------


@dataclass(frozen=True)
class VerifiedRequest:
    token: str  # the Request Object as fetched (the confirm page carries it back)
    verifier: TrustedVerifier
    client_id: str
    nonce: str
    state: str
    response_uri: str
    dcql_query: Mapping[str, Any]
    expires_at: int
    wallet_nonce: str | None
    transaction_data: tuple[TransactionItem, ...] = ()


@dataclass(frozen=True)
class TransactionItem:
    """One ``transaction_data`` element: the string as received (what is hashed) and what it
    says (checked to be one of :data:`TRANSACTION_TYPES`)."""

    encoded: str
    element: Mapping[str, Any]

    @property
    def type(self) -> str:
        return str(self.element["type"])

    @property
    def credential_ids(self) -> tuple[str, ...]:
        return tuple(self.element["credential_ids"])


@dataclass(frozen=True)
class CredentialMatch:
    """One Credential Query answered by one held credential, with what it reveals."""

    query_id: str
    credential: HeldCredential
    disclosed: tuple[tuple[str, Any], ...]  # (claim name, value), in issuance order
    disclosures: tuple[str, ...]  # the encoded Disclosures to present

    @property
    def claim_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.disclosed)


@dataclass(frozen=True)
class Proposal:
    request: VerifiedRequest
    matches: tuple[CredentialMatch, ...]


# -- the holder ---------------------------------------------------------------------------------


class Holder:
    """The wallet's protocol side. ``verifiers``: the pre-registered verifiers it answers.
    ``allow_http_loopback``: accept ``http`` on loopback hosts (the local demo) — plain ``http``
    anywhere else is refused whatever this says."""

    def __init__(
        self,
        *,
        http: HttpClient,
        clock: Clock,
        randomness: Randomness,
        verifiers: Sequence[TrustedVerifier],
        allow_http_loopback: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._http = http
        self._clock = clock
        self._randomness = randomness
        self._verifiers = {v.client_id: v for v in verifiers}
        self._allow_http = allow_http_loopback
        self._timeout = timeout

    # 1-2: invocation and Request Object --------------------------------------------------------

    def fetch_request(self, wallet_url: str) -> VerifiedRequest:
        """Read the invocation URL, fetch the Request Object by reference and verify it."""
        try:
            params = parse_wallet_request_url(wallet_url, allow_http_loopback=self._allow_http)
        except LinkError as exc:
            raise HolderError("invalid_link", exc.detail) from exc
        # Unknown verifiers are refused before any fetch, and so is a request_uri anywhere but
        # on the verifier's registered origin: a link must not make the wallet fetch elsewhere.
        verifier = self._verifier(params.client_id)
        request_uri = self._on_origin(params.request_uri, verifier, "request_uri")
        headers = {**_HEADERS, "Accept": REQUEST_OBJECT_MEDIA_TYPE}
        wallet_nonce = None
        try:
            if params.request_uri_method == "post":
                wallet_nonce = self._randomness.token(16)
                response = self._http.post(
                    request_uri,
                    data={"wallet_nonce": wallet_nonce},
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                    stream=True,
                )
            else:
                response = self._http.get(
                    request_uri,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                    stream=True,
                )
        except OSError as exc:  # requests' exceptions are OSErrors
            raise HolderError("request_unavailable", exc.__class__.__name__) from exc
        body = self._read(response, MAX_REQUEST_BYTES, "request_unavailable")
        if response.status_code != 200:
            raise HolderError("request_unavailable", _error_text(response.status_code, body))
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if media_type != REQUEST_OBJECT_MEDIA_TYPE:
            raise HolderError("request_malformed", f"content type {media_type!r}")
        if not body.isascii():
            raise HolderError("request_malformed", "not a compact JWS")
        return self.verify_request_object(
            body.decode("ascii").strip(), client_id=params.client_id, wallet_nonce=wallet_nonce
        )

    def verify_request_object(
        self, token: str, *, client_id: str, wallet_nonce: str | None = None
    ) -> VerifiedRequest:
        """Verify a Request Object fetched for the invocation whose ``client_id`` was given
        (again on the confirm page: the token travels in the form and is checked anew)."""
        verifier = self._verifier(client_id)
        try:
            parsed = jws.parse(token, max_bytes=MAX_REQUEST_BYTES, allowed_algs=VERIFIER_ALGS)
        except JoseError as exc:
            raise HolderError("request_malformed", exc.reason) from exc
        try:
            jws.check_typ(parsed.header, REQUEST_OBJECT_TYP)
        except JoseError as exc:
            raise HolderError("wrong_typ", f"typ {parsed.header.get('typ')!r}") from exc
        key = self._verifier_key(verifier, parsed.header.get("kid"))
        try:
            jws.verify_signature(parsed, key)
        except JoseError as exc:
            raise HolderError("bad_signature") from exc
        try:
            claims = parsed.claims(max_depth=MAX_CLAIM_DEPTH)
        except JoseError as exc:
            raise HolderError("request_malformed", exc.detail) from exc
        return self._checked_request(token, verifier, client_id, claims, wallet_nonce)

    def _checked_request(
        self,
        token: str,
        verifier: TrustedVerifier,
        client_id: str,
        claims: Mapping[str, Any],
        wallet_nonce: str | None,
    ) -> VerifiedRequest:
        if claims.get("client_id") != client_id or claims.get("iss", client_id) != client_id:
            raise HolderError("client_id_mismatch")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if STATIC_DISCOVERY_AUDIENCE not in audiences:
            raise HolderError("wrong_audience", f"aud {str(aud)[:100]!r}")
        now = self._clock.now()
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        if not _is_int(exp):
            raise HolderError("invalid_request", "exp is missing")
        if now >= exp + CLOCK_SKEW:
            raise HolderError("request_expired")
        for name, value in (("iat", iat), ("nbf", nbf)):
            if value is None:
                continue
            if not _is_int(value):
                raise HolderError("invalid_request", f"{name} is not a number")
            if value > now + CLOCK_SKEW:
                raise HolderError("request_not_yet_valid", name)
        if claims.get("response_type") != "vp_token":
            raise HolderError("unsupported_response_type", str(claims.get("response_type"))[:50])
        if claims.get("response_mode") != "direct_post":
            raise HolderError("unsupported_response_mode", str(claims.get("response_mode"))[:50])
        if "client_metadata" in claims:
            raise HolderError("unexpected_client_metadata")
        nonce, state = claims.get("nonce"), claims.get("state")
        if not isinstance(nonce, str) or not nonce:
            raise HolderError("invalid_request", "nonce is missing")
        if not isinstance(state, str) or not state:
            raise HolderError("invalid_request", "state is missing")
        response_uri = self._on_origin(claims.get("response_uri"), verifier, "response_uri")
        echoed = claims.get("wallet_nonce")
        if wallet_nonce is not None and (
            not isinstance(echoed, str) or not equal(echoed, wallet_nonce)
        ):
            raise HolderError("wallet_nonce_mismatch")
        query = claims.get("dcql_query")
        try:
            dcql.validate_query(query)
        except dcql.DCQLError as exc:
            raise HolderError("invalid_dcql_query", exc.reason) from exc
        assert isinstance(query, dict)
        verified = VerifiedRequest(
            token=token,
            verifier=verifier,
            client_id=client_id,
            nonce=nonce,
            state=state,
            response_uri=response_uri,
            dcql_query=query,
            expires_at=exp,
            wallet_nonce=wallet_nonce,
        )
        if "transaction_data" not in claims:
            return verified
        try:
            items = read_transaction_data(claims["transaction_data"], dcql.credential_ids(query))
        except HolderError:
            # Section 8.5: the wallet answers invalid_transaction_data, then tells the person.
            self._post(
                verified,
                {
                    "error": "invalid_transaction_data",
                    "error_description": "The wallet cannot read the transaction data",
                    "state": state,
                },
            )
            raise
        return dataclasses.replace(verified, transaction_data=items)

    def _verifier(self, client_id: str) -> TrustedVerifier:
        head, sep, _ = client_id.partition(":")
        if sep and head in DEFINED_CLIENT_ID_PREFIXES:
            raise HolderError("unknown_verifier", f"client_id prefix {head}: is not supported")
        verifier = self._verifiers.get(client_id)
        if verifier is None:
            raise HolderError("unknown_verifier", client_id[:100])
        return verifier

    def _verifier_key(self, verifier: TrustedVerifier, kid: Any) -> PublicKey:
        try:
            response = self._http.get(
                verifier.jwks_uri,
                headers={**_HEADERS, "Accept": "application/json"},
                timeout=self._timeout,
                allow_redirects=False,
                stream=True,
            )
        except OSError as exc:
            raise HolderError("verifier_keys_unavailable", exc.__class__.__name__) from exc
        content = self._read(response, MAX_JWKS_BYTES, "verifier_keys_unavailable")
        if response.status_code != 200:
            raise HolderError("verifier_keys_unavailable", f"HTTP {response.status_code}")
        try:
            keys = keys_from_jwks(json.loads(content))
        except (ValueError, JoseError) as exc:
            raise HolderError("verifier_keys_unavailable", "not a JWKS") from exc
        if not isinstance(kid, str) or kid not in keys:
            raise HolderError("unknown_verifier_key", f"kid {str(kid)[:100]!r}")
        return keys[kid]

    def _on_origin(self, url: Any, verifier: TrustedVerifier, what: str) -> str:
        try:
            checked = check_https_url(url, what=what, allow_http_loopback=self._allow_http)
        except LinkError as exc:
            raise HolderError(_MALFORMED[what], exc.detail) from exc
        parts = urlsplit(checked)
        if f"{parts.scheme}://{parts.netloc}".lower() != verifier.origin.lower():
            raise HolderError(_ELSEWHERE[what], f"{what} is not on {verifier.origin}")
        return checked

    def _read(self, response: HttpResponse, limit: int, reason: str) -> bytes:
        """The body, at most ``limit`` bytes, within the deadline; refused beyond either.

        A redirect's body is not needed (it is refused anyway) and is not read."""
        try:
            if 300 <= response.status_code < 400:
                return b""
            declared = response.headers.get("Content-Length", "")
            if declared.strip().isdigit() and int(declared) > limit:
                raise HolderError("answer_too_large", f"Content-Length {declared.strip()}")
            deadline = time.monotonic() + self._timeout
            body = bytearray()
            for chunk in response.iter_content(_CHUNK):
                body += chunk
                if len(body) > limit:
                    raise HolderError("answer_too_large", f"more than {limit} bytes")
                if time.monotonic() > deadline:
                    raise HolderError(reason, "the answer took too long")
            return bytes(body)
        except OSError as exc:
            raise HolderError(reason, exc.__class__.__name__) from exc
        finally:
            response.close()

    # 3-4: DCQL and the proposal ------------------------------------------------------------------

    def propose(self, request: VerifiedRequest, credentials: Sequence[HeldCredential]) -> Proposal:
        """Which held credential answers each Credential Query, disclosing what."""
        return Proposal(request, match_query(request.dcql_query, credentials))

    # 5: the response ---------------------------------------------------------------------------

    def present(self, proposal: Proposal) -> str | None:
        """POST the presentation(s); the redirect_uri the verifier answered with, if any."""
        request = proposal.request
        iat = self._clock.now()
        vp_token = {
            match.query_id: [
                presentation(
                    match.credential,
                    match.disclosures,
                    nonce=request.nonce,
                    aud=request.client_id,
                    iat=iat,
                    transaction_data=[
                        item.encoded
                        for item in request.transaction_data
                        if match.query_id in item.credential_ids
                    ],
                )
            ]
            for match in proposal.matches
        }
        return self._post(
            request,
            {"vp_token": json.dumps(vp_token, separators=(",", ":")), "state": request.state},
        )

    def decline(self, request: VerifiedRequest) -> str | None:
        """Tell the verifier the person declined (``access_denied``)."""
        return self._post(
            request,
            {
                "error": "access_denied",
                "error_description": "The holder declined to share the requested credential",
                "state": request.state,
            },
        )

    def _post(self, request: VerifiedRequest, form: Mapping[str, str]) -> str | None:
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
            raise HolderError("verifier_unreachable", exc.__class__.__name__) from exc
        content = self._read(response, MAX_RESPONSE_BYTES, "verifier_unreachable")
        if response.status_code != 200:
            raise HolderError("verifier_refused", _error_text(response.status_code, content))
        try:
            body = json.loads(content) if content else {}
        except ValueError as exc:
            raise HolderError("verifier_refused", "the answer is not JSON") from exc
        if not isinstance(body, dict):
            raise HolderError("verifier_refused", "the answer is not a JSON object")
        redirect_uri = body.get("redirect_uri")
        if redirect_uri is None:
            return None
        return self._on_origin(redirect_uri, request.verifier, "redirect_uri")


def presentation(
    credential: HeldCredential,
    disclosures: Sequence[str],
    *,
    nonce: str,
    aud: str,
    iat: int,
    transaction_data: Sequence[str] = (),
) -> str:
    """``<issuer JWT>~<D…>~<KB-JWT>`` (RFC 9901 section 4.3): the KB-JWT signs ``sd_hash`` over
    exactly the string before it, so the verifier knows which Disclosures the holder chose, and
    (OpenID4VP 1.0 appendix B.3.3.1) the hash of each ``transaction_data`` string as received."""
    sd = "~".join([credential.issuer_jwt, *disclosures]) + "~"
    kb_claims: dict[str, Any] = {
        "iat": iat,
        "aud": aud,
        "nonce": nonce,
        "sd_hash": sha256_b64url(sd),
    }
    if transaction_data:
        kb_claims["transaction_data_hashes"] = [sha256_b64url(item) for item in transaction_data]
        kb_claims["transaction_data_hashes_alg"] = TRANSACTION_HASH_ALG
    kb_jwt = jws.sign(kb_claims, credential.holder_key, alg=HOLDER_ALG, headers={"typ": KB_JWT_TYP})
    return sd + kb_jwt


# -- transaction data (OpenID4VP 1.0 section 5.1, appendix B.3.3.1) ----------------------------


def read_transaction_data(value: Any, query_ids: Sequence[str]) -> tuple[TransactionItem, ...]:
    """The elements of a request's ``transaction_data``, each one of :data:`TRANSACTION_TYPES`
    with exactly its members, naming only Credential Queries of the request and letting the
    wallet hash with sha-256; HolderError("invalid_transaction_data") otherwise."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_TRANSACTION_DATA:
        raise HolderError("invalid_transaction_data", "not a non-empty array")
    return tuple(_transaction_item(item, query_ids) for item in value)


def _transaction_item(encoded: Any, query_ids: Sequence[str]) -> TransactionItem:
    def bad(detail: str) -> HolderError:
        return HolderError("invalid_transaction_data", detail)

    if not isinstance(encoded, str) or not encoded:
        raise bad("an element is not a string")
    try:
        raw = b64url_decode(encoded)
        element = json.loads(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad("an element is not base64url JSON") from exc
    if not isinstance(element, dict):
        raise bad("an element is not an object")
    members = TRANSACTION_TYPES.get(str(element.get("type")))
    if members is None:
        raise bad(f"unknown type {str(element.get('type'))[:80]!r}")
    required, optional = members
    base = {"type", "credential_ids", "transaction_data_hashes_alg"}
    names = set(element)
    if not (required | base) <= names or names - required - optional - base:
        raise bad("members differ from the type's")
    ids = element["credential_ids"]
    if not isinstance(ids, list) or not ids or not all(i in query_ids for i in ids):
        raise bad("credential_ids names no credential of the request")
    algs = element["transaction_data_hashes_alg"]
    if not isinstance(algs, list) or TRANSACTION_HASH_ALG not in algs:
        raise bad("sha-256 is not among the hash algorithms")
    texts = [v for k, v in element.items() if k in required | optional and k not in _STRUCTURED]
    creditor = element.get("creditor")
    if "creditor" in required:
        if not isinstance(creditor, dict) or set(creditor) != _CREDITOR_MEMBERS:
            raise bad("creditor")
        texts += list(creditor.values())
    if "directions" in required:
        directions = element["directions"]
        if (
            not isinstance(directions, list)
            or not directions
            or not all(isinstance(d, str) and d in _FUNDING_DIRECTIONS for d in directions)
            or len(set(directions)) != len(directions)
        ):
            raise bad("directions")
        for name in ("max_amount", "daily_amount"):
            bound = element[name]
            if not isinstance(bound, dict) or set(bound) != _BOUND_MEMBERS:
                raise bad(name)
            texts += list(bound.values())
        days = element["valid_days"]
        if not _is_int(days) or not 0 < days <= 366:
            raise bad("valid_days")
    if not all(isinstance(text, str) and text.isprintable() for text in texts):
        raise bad("a member is not text")
    return TransactionItem(encoded, element)


# -- DCQL matching (OpenID4VP 1.0 sections 6 and 7) -------------------------------------------


def match_query(
    query: Mapping[str, Any], credentials: Sequence[HeldCredential]
) -> tuple[CredentialMatch, ...]:
    """Answer every Credential Query of ``query`` (a query without ``credential_sets`` requires
    them all) with the first held credential that satisfies it."""
    try:
        dcql.validate_query(query)
    except dcql.DCQLError as exc:
        raise HolderError("invalid_dcql_query", exc.reason) from exc
    if "credential_sets" in query:
        raise HolderError("unsupported_dcql_query", "credential_sets")
    matches = []
    for credential_query in query["credentials"]:
        matches.append(_answer(credential_query, credentials))
    return tuple(matches)


def _answer(
    credential_query: Mapping[str, Any], credentials: Sequence[HeldCredential]
) -> CredentialMatch:
    query_id = str(credential_query["id"])
    if credential_query.get("format") != SD_JWT_VC_FORMAT:
        raise HolderError("no_matching_credential", f"format {credential_query.get('format')}")
    if "trusted_authorities" in credential_query:
        raise HolderError("unsupported_dcql_query", "trusted_authorities")
    vct_values = credential_query["meta"]["vct_values"]
    candidates = [c for c in credentials if c.vct in vct_values]
    if not candidates:
        raise HolderError("no_matching_credential", "no credential of the requested type")
    missing = ""
    for credential in candidates:
        names = _claims_to_disclose(credential_query, credential)
        if isinstance(names, str):
            missing = names
            continue
        chosen = [d for d in credential.disclosures if d.name in names]
        return CredentialMatch(
            query_id=query_id,
            credential=credential,
            disclosed=tuple((str(d.name), d.value) for d in chosen),
            disclosures=tuple(d.encoded for d in chosen),
        )
    raise HolderError("no_matching_credential", f"the credential lacks {missing}")


def _claims_to_disclose(
    credential_query: Mapping[str, Any], credential: HeldCredential
) -> frozenset[str] | str:
    """Top-level disclosable claim names to reveal, or the first unmet claim path (text)."""
    claims_queries = credential_query.get("claims")
    if claims_queries is None:
        return frozenset()  # section 6.4.1: no selectively disclosable claim is requested
    full = credential.claims()
    disclosable = {d.name for d in credential.disclosures if d.name is not None}
    needed: dict[int, frozenset[str] | None] = {}  # claim index -> names, None if unmet
    for index, claim in enumerate(claims_queries):
        found = _resolve(full, claim["path"])
        if found and "values" in claim:
            found = [value for value in found if _value_in(value, claim["values"])]
        top = claim["path"][0]
        needed[index] = (frozenset({top}) if top in disclosable else frozenset()) if found else None
    if "claim_sets" not in credential_query:
        unmet = [i for i, names in needed.items() if names is None]
        if unmet:
            return _path_text(claims_queries[unmet[0]]["path"])
        return frozenset().union(*(n for n in needed.values() if n is not None))
    by_id = {str(c["id"]): i for i, c in enumerate(claims_queries)}
    for option in credential_query["claim_sets"]:  # in the verifier's order of preference
        chosen = [needed[by_id[claim_id]] for claim_id in option]
        if all(names is not None for names in chosen):
            return frozenset().union(*(n for n in chosen if n is not None))
    return "every option of claim_sets"


def _resolve(value: Any, path: Sequence[Any]) -> list[Any]:
    """Claims path pointer processing (section 7.1); an empty result means "not present"."""
    selected = [value]
    for component in path:
        following: list[Any] = []
        for element in selected:
            if isinstance(component, str):
                if isinstance(element, dict) and component in element:
                    following.append(element[component])
            elif component is None:
                if isinstance(element, list):
                    following.extend(element)
            elif isinstance(element, list) and 0 <= component < len(element):
                following.append(element[component])
        selected = following
        if not selected:
            return []
    return selected


def _value_in(value: Any, allowed: Sequence[Any]) -> bool:
    return any(type(value) is type(option) and value == option for option in allowed)


def _path_text(path: Sequence[Any]) -> str:
    return "/".join("*" if c is None else str(c) for c in path)


def _error_text(status_code: int, content: bytes) -> str:
    """A short, safe description of an error answer (HTTP status and the OAuth error fields)."""
    text = f"HTTP {status_code}"
    try:
        body = json.loads(content[:MAX_RESPONSE_BYTES])
    except ValueError:
        return text
    if isinstance(body, dict):
        for name in ("error", "error_description"):
            value = body.get(name)
            if isinstance(value, str) and value:
                text += f", {value[:200]}"
    return text


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = [
    "REASONS",
    "CredentialMatch",
    "HeldCredential",
    "Holder",
    "HolderError",
    "HttpClient",
    "HttpResponse",
    "Proposal",
    "TrustedVerifier",
    "VerifiedRequest",
    "match_query",
    "presentation",
]
