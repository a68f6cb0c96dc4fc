"""Verifier for anchors of kind ``sd_jwt_vc``: an SD-JWT VC presented from a smartphone wallet
with a Key Binding JWT (RFC 9901 SD-JWT; draft-ietf-oauth-sd-jwt-vc; Token Status List).

The checks, in order (each refusal an :class:`AnchorFailure` with a code from :data:`REASONS`):

1. sizes: whole presentation ≤ ``limits.max_body_bytes``, at most ``limits.max_disclosures``
   Disclosures, each JWS and each Disclosure ≤ ``limits.max_jws_bytes``;
2. Issuer-signed JWT: ``alg`` in the anchor's allow-list (never ``none``/HS*), ``typ``
   ``dc+sd-jwt``, signature by one of the anchor's *configured* keys only (chosen by ``kid``;
   ``jwk``/``x5c``/``jku`` headers are ignored for trust), ``iss``, ``vct``, ``exp``/``nbf``/
   ``iat`` (with ``clock_skew``), ``_sd_alg``, ``cnf.jwk``;
3. Key Binding JWT: present, ``typ`` ``kb+jwt``, signed by ``cnf.jwk``, ``nonce`` (constant-time),
   ``aud``, ``iat`` neither in the future nor older than ``kb_max_age``, ``sd_hash`` over the
   presentation as received; the OpenID4VP transaction data claims ``transaction_data_hashes``
   (a non-empty array of base64url strings) and ``transaction_data_hashes_alg`` (a string), when
   present, well-formed and returned as signed (``VerifiedIdentity``), for the login method to
   compare with the transaction data it sent (``openid4vp/transaction_data.py``; a verifier
   does not know what was sent);
4. Disclosures: each referenced exactly once, no repeated digest, no reserved or colliding names,
   none of the claims SD-JWT VC forbids disclosing (``iss``, ``exp``, ``cnf``, ...);
5. status: the Token Status List entry, fetched only through the injected Fetcher and verified
   with the same anchor keys; unreachable or unverifiable means failure (fail closed). A list
   this verifier's keys verified is read again from a :class:`status_list.StatusListCache`
   until its ``ttl``/``exp`` or the anchor's ``status_cache`` seconds, whichever comes first
   (the anchor's own cache unless one is injected; its entries are scoped to these exact keys;
   ``status_cache = 0``: fetched on every login);
6. the subject claim and the claims the request requires are present.

``typ`` decision: the SD-JWT VC draft (section "JOSE Header") RECOMMENDS that Verifiers accept
both ``vc+sd-jwt`` (used until November 2024) and ``dc+sd-jwt`` "for a reasonable transitional
period", so ``vc+sd-jwt`` is accepted unless the anchor sets ``accept_legacy_typ = false``.
Either value keeps the point of the check: another JWT signed by the same issuer key (an ID
token, a status list) cannot be passed off as a credential.

``amr`` decision: ``("pop",)``. RFC 8176 registers ``pop`` for proof of possession of a key, which
is exactly what the Key Binding JWT shows. ``vc`` is not a registered value, and ``hwk``/``swk``
would claim knowledge of the wallet's key storage that nothing here verifies. That the login came
from a wallet credential is carried by the anchor, the trust framework and the evidence instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeGuard

from trustanchor import digests
from trustanchor.anchors import sd_jwt, status_list
from trustanchor.anchors.base import AnchorFailure, Expectation
from trustanchor.anchors.fetcher import Fetcher
from trustanchor.anchors.sd_jwt_vc_settings import SdJwtVcSettings, parse_settings
from trustanchor.config.settings import LimitSettings
from trustanchor.digests import b64url_encode
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import VerifiedIdentity
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey, public_key_from_jwk

CREDENTIAL_TYP = "dc+sd-jwt"
LEGACY_CREDENTIAL_TYP = "vc+sd-jwt"
KB_TYP = "kb+jwt"
AMR = ("pop",)
# SD-JWT VC: these claims are used by the Issuer-signed JWT itself and MUST NOT be disclosed.
NON_DISCLOSABLE = frozenset({"iss", "nbf", "exp", "cnf", "vct", "vct#integrity", "status"})
# OpenID4VP 1.0 appendix B.3.3.1: the Key Binding JWT's transaction data claims.
TRANSACTION_DATA_HASHES = "transaction_data_hashes"
TRANSACTION_DATA_HASHES_ALG = "transaction_data_hashes_alg"
_MAX_TRANSACTION_DATA = 16
_HASH = re.compile(r"[A-Za-z0-9_-]{1,128}")
_ALG_NAME = re.compile(r"[A-Za-z0-9._-]{1,32}")

REASONS: dict[str, str] = {
    **sd_jwt.REASONS,
    **status_list.REASONS,
    "malformed_credential": "The credential could not be read.",
    "issuer_alg_not_allowed": "The credential is signed with a method we do not accept.",
    "wrong_credential_typ": "This is not a credential of the expected kind.",
    "unknown_issuer_key": "The credential is signed with a key this issuer has not registered.",
    "issuer_signature_invalid": "The credential's signature is not valid for this issuer.",
    "wrong_issuer": "The credential comes from a different issuer.",
    "vct_not_accepted": "This type of credential is not accepted here.",
    "credential_expired": "The credential has expired.",
    "credential_not_yet_valid": "The credential is not valid yet.",
    "credential_too_old": "The credential was issued too long ago to be accepted.",
    "invalid_holder_key": "The credential is not bound to a usable key of your wallet.",
    "forbidden_disclosure": "The credential reveals an item that must never be hidden.",
    "key_binding_missing": "Your wallet did not prove that it holds the credential.",
    "kb_malformed": "Your wallet's proof could not be read.",
    "kb_wrong_typ": "Your wallet's proof is not of the expected kind.",
    "kb_signature_invalid": "Your wallet's proof was not made with the credential's key.",
    "kb_nonce_mismatch": "Your wallet's proof was made for a different login attempt.",
    "kb_wrong_audience": "Your wallet's proof was made for a different service.",
    "kb_iat_in_future": "Your wallet's proof is dated in the future.",
    "kb_stale": "Your wallet's proof is too old; please try again.",
    "kb_sd_hash_mismatch": "Your wallet's proof does not match the items it revealed.",
    "transaction_data_malformed": "Your wallet's signature of the payment could not be read.",
    "status_reference_missing": "The credential cannot be checked for revocation.",
    "credential_revoked": "The credential has been revoked by its issuer.",
    "credential_suspended": "The credential is currently suspended by its issuer.",
    "credential_status_unrecognised": "The issuer reports a credential status we cannot accept.",
    "missing_subject": "The credential does not identify you in the expected way.",
    "missing_claims": "The credential does not reveal all the information this service needs.",
}


class SdJwtVcVerifier:
    """AnchorVerifier for one ``sd_jwt_vc`` anchor. Construction parses the anchor's settings and
    keys (raising ValueError on bad configuration) and does nothing else: no network."""

    def __init__(
        self,
        anchor: Anchor,
        *,
        fetcher: Fetcher | None,
        limits: LimitSettings,
        kb_max_age: int,
        clock_skew: int = 30,
        status_lists: status_list.StatusListCache | None = None,
    ) -> None:
        if anchor.kind != "sd_jwt_vc":
            raise ValueError(f"anchor {anchor.id}: kind {anchor.kind!r} is not sd_jwt_vc")
        self.anchor = anchor
        self.settings: SdJwtVcSettings = parse_settings(anchor.settings)
        self._fetcher = fetcher
        self._limits = limits
        self._kb_max_age = kb_max_age
        self._skew = clock_skew
        if (
            status_lists is None
            and self.settings.status_cache > 0
            and self.settings.status_check != "off"
        ):
            status_lists = status_list.StatusListCache(max_age=self.settings.status_cache)
        self._status_lists = status_lists
        self._status_scope = (
            status_list.verification_scope(
                self.settings.keys, self.settings.algs, self.settings.status_max_bytes
            )
            if status_lists is not None
            else ""
        )

    def verify(self, evidence: str, *, expected: Expectation, at: int) -> VerifiedIdentity:
        try:
            parts = sd_jwt.split(
                evidence,
                max_bytes=self._limits.max_body_bytes,
                max_disclosures=self._limits.max_disclosures,
            )
            if max(map(len, parts.disclosures), default=0) > self._limits.max_jws_bytes:
                raise AnchorFailure("presentation_too_large", "a disclosure exceeds the limit")
            payload = self._issuer_payload(parts.issuer_jwt, at)
            holder_key = self._holder_key(payload)
            # One SHA-256 pass over the SD-JWT serves both sd_hash (the SD-JWT alone) and the
            # evidence digest (the whole presentation: the SD-JWT followed by the KB-JWT).
            hasher = hashlib.sha256(parts.sd_jwt.encode("ascii"))
            sd_jwt_digest = hasher.digest()
            transaction_data = self._check_key_binding(
                parts, holder_key, expected, at, sd_jwt_digest=sd_jwt_digest
            )
            if parts.kb_jwt is not None:  # always, past the key binding check
                hasher.update(parts.kb_jwt.encode("ascii"))
            # Validity in time only after the holder proved possession of the key for our
            # nonce: someone replaying a leaked expired credential without the key gets a
            # key-binding failure (budgeted in the audit log), not "credential_expired" (always
            # recorded, as it names a credential that verified).
            self._check_validity(payload, at)
            disclosures = sd_jwt.decode_disclosures(
                parts.disclosures, max_depth=self._limits.max_json_depth
            )
            processed = sd_jwt.reconstruct(payload, disclosures)
            forbidden = sd_jwt.top_level_disclosed_names(payload, disclosures) & NON_DISCLOSABLE
            if forbidden:
                raise AnchorFailure("forbidden_disclosure", ", ".join(sorted(forbidden)))
            reference = self._check_status(processed, at)
        except sd_jwt.SdJwtError as exc:
            raise AnchorFailure(exc.reason, exc.detail) from exc
        except status_list.StatusListError as exc:
            raise AnchorFailure(exc.reason, exc.detail) from exc
        return self._identity(
            evidence,
            payload,
            processed,
            reference,
            expected,
            at,
            evidence_digest=hasher.hexdigest(),  # evidence is ASCII: its UTF-8 bytes hashed
            transaction_data=transaction_data,
        )

    # -- Issuer-signed JWT ---------------------------------------------------------------------

    def _issuer_payload(self, token: str, at: int) -> dict[str, Any]:
        settings = self.settings
        max_bytes = self._limits.max_jws_bytes
        try:
            header = jws.unverified_header(token, max_bytes=max_bytes)
        except JoseError as exc:
            raise AnchorFailure("malformed_credential", exc.reason) from exc
        if header.get("alg") not in settings.algs:
            raise AnchorFailure("issuer_alg_not_allowed", f"alg {header.get('alg')!r}")
        typ = header.get("typ")
        accepted = (
            (CREDENTIAL_TYP, LEGACY_CREDENTIAL_TYP)
            if settings.accept_legacy_typ
            else (CREDENTIAL_TYP,)
        )
        if typ not in accepted:
            raise AnchorFailure("wrong_credential_typ", f"typ {typ!r}")
        try:
            # The header read above is not decoded again; every other check of jws.parse runs.
            parsed = jws.parse(
                token, max_bytes=max_bytes, allowed_algs=settings.algs, header=header
            )
        except JoseError as exc:
            raise AnchorFailure("malformed_credential", f"{exc.reason}: {exc.detail}") from exc
        candidates = settings.candidate_keys(parsed.header)
        if not candidates:
            raise AnchorFailure("unknown_issuer_key", f"kid {parsed.header.get('kid')!r}")
        if not _signed_by_any(parsed, candidates):
            raise AnchorFailure("issuer_signature_invalid")
        try:
            payload = parsed.claims(max_depth=self._limits.max_json_depth)
        except JoseError as exc:
            raise AnchorFailure("malformed_credential", exc.detail) from exc
        self._check_issuer_claims(payload, at)
        return payload

    def _check_issuer_claims(self, payload: Mapping[str, Any], at: int) -> None:
        settings = self.settings
        if payload.get("iss") != settings.issuer:
            raise AnchorFailure("wrong_issuer", f"iss {str(payload.get('iss'))[:200]!r}")
        if payload.get("vct") not in settings.vct:
            raise AnchorFailure("vct_not_accepted", f"vct {str(payload.get('vct'))[:200]!r}")
        sd_jwt.check_sd_alg(payload)
        exp, nbf, iat = payload.get("exp"), payload.get("nbf"), payload.get("iat")
        for name, value in (("exp", exp), ("nbf", nbf), ("iat", iat)):
            if value is not None and not _is_int(value):
                raise AnchorFailure("malformed_credential", f"{name} is not an integer")

    def _check_validity(self, payload: Mapping[str, Any], at: int) -> None:
        settings = self.settings
        exp, nbf, iat = payload.get("exp"), payload.get("nbf"), payload.get("iat")
        if _is_int(exp) and at >= exp + self._skew:
            raise AnchorFailure("credential_expired")
        if _is_int(nbf) and at + self._skew < nbf:
            raise AnchorFailure("credential_not_yet_valid", "nbf")
        if _is_int(iat) and at + self._skew < iat:
            raise AnchorFailure("credential_not_yet_valid", "iat in the future")
        if settings.max_age is not None:
            if not _is_int(iat):
                raise AnchorFailure("credential_too_old", "no iat to apply max_age to")
            if at - iat > settings.max_age:
                raise AnchorFailure("credential_too_old")

    def _holder_key(self, payload: Mapping[str, Any]) -> PublicKey:
        cnf = payload.get("cnf")
        if not isinstance(cnf, dict) or "jwk" not in cnf:
            raise AnchorFailure("invalid_holder_key", "cnf.jwk missing")
        try:
            return public_key_from_jwk(cnf["jwk"])
        except JoseError as exc:
            raise AnchorFailure("invalid_holder_key", exc.detail) from exc

    # -- Key Binding JWT -----------------------------------------------------------------------

    def _check_key_binding(
        self,
        parts: sd_jwt.SdJwtParts,
        holder_key: PublicKey,
        expected: Expectation,
        at: int,
        *,
        sd_jwt_digest: bytes | None = None,
    ) -> tuple[tuple[str, ...], str | None] | None:
        """Every check of the Key Binding JWT; returns its transaction data claims (hashes,
        algorithm), None when it has none. ``sd_jwt_digest``: SHA-256 of ``parts.sd_jwt``
        when the caller has it (computed here otherwise)."""
        if parts.kb_jwt is None:
            raise AnchorFailure("key_binding_missing")
        try:
            parsed = jws.parse(
                parts.kb_jwt,
                max_bytes=self._limits.max_jws_bytes,
                allowed_algs=self.settings.holder_algs,
            )
        except JoseError as exc:
            raise AnchorFailure("kb_malformed", f"{exc.reason}: {exc.detail}") from exc
        try:
            jws.check_typ(parsed.header, KB_TYP)
        except JoseError as exc:
            raise AnchorFailure("kb_wrong_typ", f"typ {parsed.header.get('typ')!r}") from exc
        if not _signed_by_any(parsed, (holder_key,)):
            raise AnchorFailure("kb_signature_invalid")
        try:
            claims = parsed.claims(max_depth=self._limits.max_json_depth)
        except JoseError as exc:
            raise AnchorFailure("kb_malformed", exc.detail) from exc
        nonce, aud, iat, sd_hash = (claims.get(k) for k in ("nonce", "aud", "iat", "sd_hash"))
        if not expected.nonce or not isinstance(nonce, str) or not _equal(nonce, expected.nonce):
            raise AnchorFailure("kb_nonce_mismatch")
        if not isinstance(aud, str) or aud != expected.audience:
            raise AnchorFailure("kb_wrong_audience", f"aud {str(aud)[:200]!r}")
        if not _is_int(iat):
            raise AnchorFailure("kb_malformed", "iat is not an integer")
        if iat > at + self._skew:
            raise AnchorFailure("kb_iat_in_future")
        if at - iat > self._kb_max_age:
            raise AnchorFailure("kb_stale", f"issued {at - iat}s ago")
        if sd_jwt_digest is None:
            sd_jwt_digest = hashlib.sha256(parts.sd_jwt.encode("ascii")).digest()
        if not isinstance(sd_hash, str) or not _equal(sd_hash, b64url_encode(sd_jwt_digest)):
            raise AnchorFailure("kb_sd_hash_mismatch")
        return _transaction_data_claims(claims)

    # -- Status --------------------------------------------------------------------------------

    def _check_status(
        self, processed: Mapping[str, Any], at: int
    ) -> status_list.StatusReference | None:
        mode = self.settings.status_check
        if mode == "off":
            try:  # recorded for the audit trail only; nothing is fetched or decided on it
                return status_list.status_reference(processed)
            except status_list.StatusListError:
                return None
        reference = status_list.status_reference(processed)
        if reference is None:
            if mode == "required":
                raise AnchorFailure("status_reference_missing")
            return None
        if self._fetcher is None:
            raise AnchorFailure("status_unavailable", "no fetcher configured")
        value = status_list.fetch_status(
            reference,
            fetcher=self._fetcher,
            keys=self.settings.candidate_keys,
            allowed_algs=self.settings.algs,
            max_bytes=self.settings.status_max_bytes,
            at=at,
            clock_skew=self._skew,
            cache=self._status_lists,
            scope=self._status_scope,
        )
        if value == status_list.INVALID:
            raise AnchorFailure("credential_revoked", reference.uri)
        if value == status_list.SUSPENDED:
            raise AnchorFailure("credential_suspended", reference.uri)
        if value != status_list.VALID:
            raise AnchorFailure("credential_status_unrecognised", f"status {value}")
        return reference

    # -- Result --------------------------------------------------------------------------------

    def _identity(
        self,
        evidence: str,
        payload: Mapping[str, Any],
        processed: Mapping[str, Any],
        reference: status_list.StatusReference | None,
        expected: Expectation,
        at: int,
        *,
        evidence_digest: str | None = None,
        transaction_data: tuple[tuple[str, ...], str | None] | None = None,
    ) -> VerifiedIdentity:
        """``evidence_digest``: SHA-256 of ``evidence``, hex, when the caller has it."""
        settings = self.settings
        subject = processed.get(settings.subject_claim)
        if not isinstance(subject, str) or not subject or not _encodable(subject):
            raise AnchorFailure("missing_subject", settings.subject_claim)
        claims = {
            oidc: processed[name] for oidc, name in settings.claims.items() if name in processed
        }
        missing = [name for name in expected.required_claims if name not in claims]
        if missing:
            raise AnchorFailure("missing_claims", ", ".join(missing))
        exp = payload.get("exp")
        hashes, hashes_alg = transaction_data if transaction_data is not None else (None, None)
        return VerifiedIdentity(
            anchor_id=self.anchor.id,
            subject=subject,
            claims=claims,
            assurance_level=self.anchor.assurance_level,
            verified_at=at,
            expires_at=exp if _is_int(exp) else None,
            evidence_digest=(
                evidence_digest if evidence_digest is not None else digests.sha256_hex(evidence)
            ),
            trust_framework=settings.trust_framework,
            evidence=self._evidence(payload),
            status_reference=reference.to_json() if reference is not None else None,
            amr=AMR,
            transaction_data_hashes=hashes,
            transaction_data_hashes_alg=hashes_alg,
        )

    def _evidence(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """An OpenID Connect for Identity Assurance ``evidence`` element: the credential was
        checked cryptographically (``vcrypt``); the record names its type and issuer."""
        evidence: dict[str, Any] = {
            "type": self.settings.evidence_type,
            "check_details": [{"check_method": "vcrypt"}],
        }
        iat = payload.get("iat")
        if _is_int(iat):
            evidence["time"] = _iso8601(iat)
        if self.settings.evidence_type == "electronic_record":
            evidence["record"] = {
                "type": payload["vct"],
                "source": {"name": self.settings.issuer},
            }
        return evidence


def _transaction_data_claims(
    claims: Mapping[str, Any],
) -> tuple[tuple[str, ...], str | None] | None:
    """OpenID4VP 1.0 appendix B.3.3.1: ``transaction_data_hashes`` is a non-empty array of
    base64url strings, ``transaction_data_hashes_alg`` a string, never without the hashes."""
    hashes = claims.get(TRANSACTION_DATA_HASHES)
    alg = claims.get(TRANSACTION_DATA_HASHES_ALG)
    if hashes is None and TRANSACTION_DATA_HASHES not in claims:
        if TRANSACTION_DATA_HASHES_ALG in claims:
            raise AnchorFailure("transaction_data_malformed", "an algorithm without hashes")
        return None
    if (
        not isinstance(hashes, list)
        or not 0 < len(hashes) <= _MAX_TRANSACTION_DATA
        or not all(isinstance(h, str) and _HASH.fullmatch(h) for h in hashes)
    ):
        raise AnchorFailure("transaction_data_malformed", "hashes are base64url strings")
    if TRANSACTION_DATA_HASHES_ALG in claims and (
        not isinstance(alg, str) or not _ALG_NAME.fullmatch(alg)
    ):
        raise AnchorFailure("transaction_data_malformed", "the algorithm is a name")
    return tuple(hashes), alg


def _signed_by_any(parsed: jws.ParsedJWS, candidates: Sequence[PublicKey]) -> bool:
    for key in candidates:
        try:
            jws.verify_signature(parsed, key)
            return True
        except JoseError:
            continue
    return False


def _equal(received: str, expected: str) -> bool:
    """Constant-time comparison that treats text JSON allowed but UTF-8 cannot encode (lone
    surrogates) as a mismatch rather than an exception."""
    return _encodable(received) and digests.equal(received, expected)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _iso8601(epoch: int) -> str:
    try:
        moment = datetime.fromtimestamp(epoch, tz=UTC)
        if moment.year >= 1000:  # isoformat's first 19 characters are strftime's below
            return moment.isoformat()[:19] + "Z"
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # the year without leading zeros
    except (OverflowError, OSError, ValueError) as exc:
        raise AnchorFailure("malformed_credential", "iat out of range") from exc


def explain(reason: str) -> str:
    """Plain-words explanation of a reason code (for the person), with a safe fallback."""
    return REASONS.get(reason, "The credential could not be verified.")
