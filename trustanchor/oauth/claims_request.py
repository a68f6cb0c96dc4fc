"""The OpenID Connect ``claims`` request parameter (Core §5.5), including ``verified_claims``
requests (OpenID Connect for Identity Assurance 1.0). Parsed strictly; unknown shapes refused."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from trustanchor import strict_json
from trustanchor.echo import echoable
from trustanchor.oauth.errors import InvalidRequest

TARGETS = ("userinfo", "id_token")
_MEMBER_KEYS = {"essential", "value", "values", "purpose", "max_age"}
MAX_CLAIMS = 64


@dataclass(frozen=True, slots=True)
class ClaimsRequest:
    userinfo: Mapping[str, Any] = field(default_factory=dict)
    id_token: Mapping[str, Any] = field(default_factory=dict)

    def names(self, target: str) -> tuple[str, ...]:
        """Plain claim names requested for ``target`` (verified_claims excluded)."""
        members = self.userinfo if target == "userinfo" else self.id_token
        return tuple(n for n in members if n != "verified_claims")

    def verified_claims(self, target: str) -> list[Mapping[str, Any]]:
        members = self.userinfo if target == "userinfo" else self.id_token
        value = members.get("verified_claims")
        if value is None:
            return []
        return list(value) if isinstance(value, list) else [value]

    def all_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for target in TARGETS:
            for name in self.names(target):
                if name not in names:
                    names.append(name)
            for request in self.verified_claims(target):
                for name in request.get("claims", {}):
                    if name not in names:
                        names.append(name)
        return tuple(names)

    def to_json(self) -> dict[str, Any]:
        return {"userinfo": dict(self.userinfo), "id_token": dict(self.id_token)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> ClaimsRequest:
        if not data:
            return cls()
        return cls(userinfo=data.get("userinfo", {}), id_token=data.get("id_token", {}))


def parse_claims_request(raw: str | None, *, max_depth: int) -> ClaimsRequest:
    if raw is None:
        return ClaimsRequest()
    try:
        value = strict_json.loads(raw, max_depth=max_depth, max_bytes=8192)
    except strict_json.StrictJSONError as exc:
        raise InvalidRequest(f"claims: {exc}") from exc
    if not isinstance(value, dict):
        raise InvalidRequest("claims must be a JSON object")
    unknown = set(value) - set(TARGETS)
    if unknown:
        raise InvalidRequest(f"claims: {_member(sorted(unknown)[0])}")
    parsed: dict[str, dict[str, Any]] = {}
    count = 0
    for target in TARGETS:
        members = value.get(target, {})
        if not isinstance(members, dict):
            raise InvalidRequest(f"claims.{target} must be an object")
        for name, spec in members.items():
            count += 1
            if name == "verified_claims":
                _check_verified_claims(spec, f"claims.{target}.verified_claims")
            else:
                _check_member(spec, _where(f"claims.{target}", name))
        parsed[target] = members
    if count > MAX_CLAIMS:
        raise InvalidRequest("claims: too many members")
    return ClaimsRequest(userinfo=parsed["userinfo"], id_token=parsed["id_token"])


def _member(name: str) -> str:
    return f"unknown member {name}" if echoable(name) else "an unknown member"


def _where(prefix: str, name: str) -> str:
    """Where a member of the caller's naming is, for a description: its name only when
    echoable (trustanchor.echo)."""
    return f"{prefix}.{name}" if echoable(name) else f"a member of {prefix}"


def _check_member(spec: Any, where: str) -> None:
    if spec is None:
        return
    if not isinstance(spec, dict) or not set(spec) <= _MEMBER_KEYS:
        raise InvalidRequest(f"{where}: must be null or an object with essential/value/values")
    if "essential" in spec and not isinstance(spec["essential"], bool):
        raise InvalidRequest(f"{where}.essential must be a boolean")
    if "values" in spec and not isinstance(spec["values"], list):
        raise InvalidRequest(f"{where}.values must be an array")
    if "purpose" in spec and (not isinstance(spec["purpose"], str) or len(spec["purpose"]) > 300):
        raise InvalidRequest(f"{where}.purpose must be a string of at most 300 characters")


def _check_verified_claims(spec: Any, where: str) -> None:
    items = spec if isinstance(spec, list) else [spec]
    if not items or len(items) > 4:
        raise InvalidRequest(f"{where}: must be an object or a short array of objects")
    for item in items:
        if not isinstance(item, dict) or set(item) - {"verification", "claims"}:
            raise InvalidRequest(f"{where}: must have verification and claims")
        verification = item.get("verification")
        claims = item.get("claims")
        if not isinstance(verification, dict):
            raise InvalidRequest(f"{where}.verification must be an object")
        if not isinstance(claims, dict) or not claims:
            raise InvalidRequest(f"{where}.claims must be a non-empty object")
        for name, member in claims.items():
            _check_member(member, _where(f"{where}.claims", name))
        tf = verification.get("trust_framework")
        if tf is not None:
            _check_member(tf, f"{where}.verification.trust_framework")
