"""The demo credential issuer: a real SD-JWT VC (RFC 9901 SD-JWT, draft-ietf-oauth-sd-jwt-vc)
for a demo person, signed with a demo trust anchor's private key.

What is issued is what a national-ID or EU PID issuer would hand a wallet:

- header ``{"alg": "ES256", "typ": "dc+sd-jwt", "kid": <RFC 7638 thumbprint>}``; the kid is the
  one the anchor's declared JWKS (``keys/demo/anchors/<anchor>.jwks.json``, written by
  ``python -m trustanchor.demo.prepare``) gives the key, so the service finds it by kid;
- ``iss`` and ``vct`` from the anchor's declaration in the service's configuration (read with
  :func:`trustanchor.config.load_settings`), ``iat``/``exp`` from the injected clock,
  ``cnf.jwk`` = the holder's public key, ``_sd_alg`` ``sha-256``;
- every claim of the person (``sub``, names, birth date, address) selectively disclosable: one
  Disclosure ``[salt, name, value]`` each, the salt from the injected randomness (128 bits), the
  digests sorted in ``_sd`` so their order says nothing about the claims.

Framework-free; the only I/O is reading keys and declarations and writing the credential file
(:class:`IssuedCredential`) the demo wallet reads.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustanchor.clock import Clock
from trustanchor.config import Settings
from trustanchor.digests import b64url_encode, sha256_b64url
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import public_jwk, public_key_from_jwk, thumbprint
from trustanchor.randomness import Randomness
from trustanchor.services.anchor_declarations import DeclarationError, anchor_from_declaration

from .people import Person

CREDENTIAL_TYP = "dc+sd-jwt"
SIGNING_ALG = "ES256"
SD_ALG = "sha-256"
DEFAULT_LIFETIME = 365 * 86400  # a demo credential lasts a year; prepare renews it before then
SALT_BYTES = 16
CREDENTIAL_FORMAT_VERSION = 1


class IssuerError(Exception):
    """The credential cannot be issued. ``reason`` is a short code, ``detail`` says what to fix."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def load_ec_private_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from an unencrypted PEM file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise IssuerError("key_unreadable", f"{path}: {exc.__class__.__name__}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise IssuerError("key_unsupported", f"{path}: not a P-256 key")
    return key


@dataclass(frozen=True)
class AnchorIssuer:
    """One demo trust anchor's issuer: its declared identity and its private signing key."""

    anchor_id: str
    display_name: Mapping[str, str]
    issuer: str
    vct: str
    kid: str
    private_key: ec.EllipticCurvePrivateKey

    @classmethod
    def from_settings(
        cls, settings: Settings, anchor_id: str, *, keys_dir: Path | None = None
    ) -> AnchorIssuer:
        """The issuer of the anchor ``anchor_id`` declared in ``settings``, with its private key
        from ``<keys_dir>/anchors/<anchor_id>.key.pem`` (``keys_dir`` defaults to the service's
        ``service.keys_dir``, which is ``keys/demo`` in the demo). The key must be one of the
        anchor's declared keys: otherwise the service would refuse every credential."""
        declaration = next((a for a in settings.anchors if a.get("id") == anchor_id), None)
        if declaration is None:
            raise IssuerError("unknown_anchor", f"no anchor {anchor_id!r} is declared")
        try:
            anchor = anchor_from_declaration(declaration, base_dir=settings.config_dir)
        except DeclarationError as exc:
            raise IssuerError("invalid_anchor_declaration", str(exc)) from exc
        if anchor.kind != "sd_jwt_vc":
            raise IssuerError("unsupported_anchor", f"{anchor_id} is not an sd_jwt_vc anchor")
        directory = keys_dir if keys_dir is not None else Path(settings.service.keys_dir)
        private_key = load_ec_private_key(directory / "anchors" / f"{anchor_id}.key.pem")
        kid = _declared_kid(anchor.settings.get("jwks"), private_key)
        if kid is None:
            raise IssuerError(
                "key_not_declared",
                f"{anchor_id}: the private key is not in the anchor's declared JWKS; "
                "run python -m trustanchor.demo.prepare",
            )
        vct_values = anchor.settings["vct"]
        return cls(
            anchor_id=anchor.id,
            display_name=dict(anchor.display_name),
            issuer=str(anchor.settings["issuer"]),
            vct=str(vct_values[0]),
            kid=kid,
            private_key=private_key,
        )

    def issue(
        self,
        claims: Mapping[str, Any],
        holder_jwk: Mapping[str, str],
        *,
        clock: Clock,
        randomness: Randomness,
        lifetime: int = DEFAULT_LIFETIME,
    ) -> str:
        """The issuance ``<issuer-signed JWT>~<D1>~…~<Dn>~``: every claim in ``claims``
        selectively disclosable, bound to ``holder_jwk`` (a public JWK)."""
        reserved = set(claims) & {"iss", "vct", "iat", "exp", "nbf", "cnf", "status", "_sd"}
        if reserved:
            raise IssuerError("reserved_claim", ", ".join(sorted(reserved)))
        try:
            holder = public_jwk(public_key_from_jwk(dict(holder_jwk)))
        except JoseError as exc:
            raise IssuerError("invalid_holder_key", exc.detail) from exc
        if lifetime <= 0:
            raise IssuerError("invalid_lifetime", "lifetime is a positive number of seconds")
        disclosures = [
            disclosure(randomness.token(SALT_BYTES), name, value) for name, value in claims.items()
        ]
        now = clock.now()
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "vct": self.vct,
            "iat": now,
            "exp": now + lifetime,
            "cnf": {"jwk": holder},
            "_sd_alg": SD_ALG,
            "_sd": sorted(sha256_b64url(d) for d in disclosures),
        }
        header = {"typ": CREDENTIAL_TYP, "kid": self.kid}
        signed = jws.sign(payload, self.private_key, alg=SIGNING_ALG, headers=header)
        return "~".join([signed, *disclosures]) + "~"

    def public_jwks(self) -> dict[str, Any]:
        """This issuer's public key as a JWKS (what the anchor declaration lists)."""
        jwk = public_jwk(self.private_key)
        return {"keys": [{**jwk, "kid": self.kid, "alg": SIGNING_ALG, "use": "sig"}]}


def disclosure(salt: str, name: str, value: Any) -> str:
    """A Disclosure for an object property: base64url of the UTF-8 JSON ``[salt, name, value]``."""
    encoded = json.dumps([salt, name, value], ensure_ascii=False)
    return b64url_encode(encoded.encode("utf-8"))


def _declared_kid(jwks: Any, key: ec.EllipticCurvePrivateKey) -> str | None:
    own = thumbprint(public_jwk(key))
    entries = jwks.get("keys") if isinstance(jwks, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        try:
            if isinstance(entry, dict) and thumbprint(entry) == own:
                kid = entry.get("kid")
                return kid if isinstance(kid, str) and kid else own
        except JoseError:
            continue
    return None


# -- the credential file the demo wallet reads ---------------------------------------------------


@dataclass(frozen=True)
class IssuedCredential:
    """A credential as stored for the demo wallet: ``<state_dir>/credentials/<person>.json``."""

    person: str
    anchor: str
    issuer_name: Mapping[str, str]  # the anchor's display name, en/ja (for the wallet's cards)
    credential: str  # the issuance, <issuer JWT>~<D1>~...~<Dn>~
    issued_at: int
    expires_at: int
    issuer_kid: str
    holder_jkt: str  # RFC 7638 thumbprint of the holder key it is bound to

    def to_json(self) -> dict[str, Any]:
        return {
            "version": CREDENTIAL_FORMAT_VERSION,
            "format": CREDENTIAL_TYP,
            "person": self.person,
            "anchor": self.anchor,
            "issuer_name": dict(self.issuer_name),
            "credential": self.credential,
            "issued_at": self.issued_at,
            "expires_at": self.expires_at,
            "issuer_kid": self.issuer_kid,
            "holder_jkt": self.holder_jkt,
        }

    @classmethod
    def from_json(cls, data: Any) -> IssuedCredential:
        if not isinstance(data, dict) or data.get("version") != CREDENTIAL_FORMAT_VERSION:
            raise IssuerError("credential_file_invalid", "unknown credential file version")
        if data.get("format") != CREDENTIAL_TYP:
            raise IssuerError("credential_file_invalid", "not an SD-JWT VC")
        try:
            names = data["issuer_name"]
            record = cls(
                person=_str(data["person"]),
                anchor=_str(data["anchor"]),
                issuer_name={str(k): _str(v) for k, v in names.items()},
                credential=_str(data["credential"]),
                issued_at=_int(data["issued_at"]),
                expires_at=_int(data["expires_at"]),
                issuer_kid=_str(data["issuer_kid"]),
                holder_jkt=_str(data["holder_jkt"]),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise IssuerError("credential_file_invalid", f"{exc.__class__.__name__}") from exc
        return record

    def save(self, path: Path) -> None:
        """Write atomically (a reader never sees half a file), readable by the owner only."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_json(), fh, ensure_ascii=False, indent=2)
            fh.write("\n")
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> IssuedCredential:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IssuerError("credential_file_unreadable", f"{path}") from exc
        return cls.from_json(data)


def credential_path(state_dir: Path, person_id: str) -> Path:
    return state_dir / "credentials" / f"{person_id}.json"


def holder_key_path(keys_dir: Path, person_id: str) -> Path:
    return keys_dir / "holders" / f"{person_id}.key.pem"


def issue_for_person(
    person: Person,
    anchor_issuer: AnchorIssuer,
    holder_key: ec.EllipticCurvePrivateKey,
    *,
    clock: Clock,
    randomness: Randomness,
    lifetime: int = DEFAULT_LIFETIME,
) -> IssuedCredential:
    """Issue ``person``'s credential at their anchor, bound to ``holder_key``."""
    if anchor_issuer.anchor_id != person.anchor:
        raise IssuerError("wrong_anchor", f"{person.id}'s credential comes from {person.anchor}")
    holder = public_jwk(holder_key)
    issued_at = clock.now()
    credential = anchor_issuer.issue(
        person.credential_claims(), holder, clock=clock, randomness=randomness, lifetime=lifetime
    )
    return IssuedCredential(
        person=person.id,
        anchor=anchor_issuer.anchor_id,
        issuer_name=dict(anchor_issuer.display_name),
        credential=credential,
        issued_at=issued_at,
        expires_at=issued_at + lifetime,
        issuer_kid=anchor_issuer.kid,
        holder_jkt=thumbprint(holder),
    )


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("expected a non-empty string")
    return value


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("expected an integer")
    return value


__all__ = [
    "CREDENTIAL_TYP",
    "DEFAULT_LIFETIME",
    "AnchorIssuer",
    "IssuedCredential",
    "IssuerError",
    "credential_path",
    "disclosure",
    "holder_key_path",
    "issue_for_person",
    "load_ec_private_key",
]
