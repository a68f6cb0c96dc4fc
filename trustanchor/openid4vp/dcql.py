"""Digital Credentials Query Language (DCQL), OpenID4VP 1.0 section 6.

We only ever *ask* for one SD-JWT VC (``dc+sd-jwt``) per login, so :func:`build_query` makes the
simplest query that expresses it: one Credential Query with the anchor's accepted ``vct`` values and
the claims we need, by claims path pointer (section 7). Asking for named claims matters for
privacy: the wallet must not disclose selectively disclosable claims we did not request.

:func:`validate_query` checks a whole query against the structural rules of section 6 (and the
format-specific ``meta`` rules of appendix B for ``dc+sd-jwt`` and ``mso_mdoc``). We run it on our
own queries before signing them (a bad query configured for an anchor fails at start-up, not in a
wallet) and the demo wallet runs it on what it receives. Unknown members are ignored, as the
specification requires for forward compatibility.

A DCQL query is a *request*: the wallet is free to ignore it, so nothing here is a security check
on what comes back (Security Considerations, "Security Checks on the Returned Credentials"): the
presentation verifier checks the ``vct`` and the claims.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

SD_JWT_VC_FORMAT = "dc+sd-jwt"
MDOC_FORMAT = "mso_mdoc"

# Credential Query and Claims Query ids: non-empty, alphanumeric, "_" or "-".
_ID = re.compile(r"[A-Za-z0-9_-]+")
_MAX_ID = 128
_MAX_ITEMS = 64
_MAX_STRING = 2048

ClaimPath = Sequence[str | int | None]


class DCQLError(ValueError):
    """A DCQL query breaks a rule of OpenID4VP 1.0 section 6. ``reason`` is a short code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def build_query(
    credential_id: str, vct_values: Sequence[str], claim_paths: Sequence[ClaimPath]
) -> dict[str, Any]:
    """One ``dc+sd-jwt`` Credential Query (holder binding required, the default).

    ``claim_paths`` are claims path pointers, e.g. ``[["family_name"], ["address", "locality"]]``.
    An empty ``claim_paths`` omits ``claims``: the wallet then discloses no selectively
    disclosable claim at all (section 6.4.1). The result is validated before it is returned.
    """
    if isinstance(vct_values, str):
        raise DCQLError("invalid_meta", "vct_values must be a sequence of strings, not a string")
    credential: dict[str, Any] = {
        "id": credential_id,
        "format": SD_JWT_VC_FORMAT,
        "meta": {"vct_values": list(vct_values)},
    }
    if claim_paths:
        credential["claims"] = [{"path": list(path)} for path in claim_paths]
    query = {"credentials": [credential]}
    validate_query(query)
    return query


def credential_ids(query: Mapping[str, Any]) -> tuple[str, ...]:
    """The Credential Query ids of a query that passed :func:`validate_query`."""
    return tuple(c["id"] for c in query["credentials"])


def validate_query(q: Any) -> None:
    """Raise :class:`DCQLError` unless ``q`` is a structurally valid DCQL query."""
    if not isinstance(q, dict):
        raise DCQLError("not_an_object", "a DCQL query is a JSON object")
    credentials = _non_empty_list(q.get("credentials"), "credentials")
    ids: set[str] = set()
    for credential in credentials:
        cid = _credential_query(credential)
        if cid in ids:
            raise DCQLError("duplicate_id", f"credential id {cid!r} appears twice")
        ids.add(cid)
    if "credential_sets" in q:
        for credential_set in _non_empty_list(q["credential_sets"], "credential_sets"):
            _credential_set(credential_set, ids)


def _credential_query(c: Any) -> str:
    if not isinstance(c, dict):
        raise DCQLError("invalid_credential_query", "each credentials entry is an object")
    cid = _identifier(c.get("id"), "credential id")
    fmt = c.get("format")
    if not isinstance(fmt, str) or not fmt or len(fmt) > _MAX_STRING:
        raise DCQLError("invalid_format", f"credential {cid!r}: format must be a non-empty string")
    for flag in ("multiple", "require_cryptographic_holder_binding"):
        if flag in c and not isinstance(c[flag], bool):
            raise DCQLError("invalid_credential_query", f"credential {cid!r}: {flag} is a boolean")
    meta = c.get("meta")
    if not isinstance(meta, dict):
        raise DCQLError("invalid_meta", f"credential {cid!r}: meta is a required object")
    _format_meta(fmt, meta, cid)
    if "trusted_authorities" in c:
        for authority in _non_empty_list(c["trusted_authorities"], "trusted_authorities"):
            _trusted_authority(authority, cid)
    claim_ids = _claims(c, cid, fmt)
    if "claim_sets" in c:
        if "claims" not in c:
            raise DCQLError("invalid_claim_sets", f"credential {cid!r}: claim_sets without claims")
        for option in _non_empty_list(c["claim_sets"], "claim_sets"):
            for ref in _non_empty_list(option, "claim_sets option"):
                if not isinstance(ref, str) or ref not in claim_ids:
                    raise DCQLError(
                        "unknown_claim_id", f"credential {cid!r}: {ref!r} in claim_sets"
                    )
    return cid


def _format_meta(fmt: str, meta: dict[str, Any], cid: str) -> None:
    if fmt == SD_JWT_VC_FORMAT:
        vct_values = _non_empty_list(meta.get("vct_values"), "meta.vct_values")
        if not all(isinstance(v, str) and v and len(v) <= _MAX_STRING for v in vct_values):
            raise DCQLError("invalid_meta", f"credential {cid!r}: vct_values are non-empty strings")
    elif fmt == MDOC_FORMAT:
        doctype = meta.get("doctype_value")
        if not isinstance(doctype, str) or not doctype:
            raise DCQLError("invalid_meta", f"credential {cid!r}: doctype_value is required")


def _trusted_authority(authority: Any, cid: str) -> None:
    if not isinstance(authority, dict) or not isinstance(authority.get("type"), str):
        raise DCQLError("invalid_trusted_authorities", f"credential {cid!r}: type is required")
    values = _non_empty_list(authority.get("values"), "trusted_authorities values")
    if not all(isinstance(v, str) and v for v in values):
        raise DCQLError("invalid_trusted_authorities", f"credential {cid!r}: values are strings")


def _claims(c: dict[str, Any], cid: str, fmt: str) -> set[str]:
    if "claims" not in c:
        return set()
    claim_ids: set[str] = set()
    paths: set[tuple[str | int | None, ...]] = set()
    need_ids = "claim_sets" in c
    for claim in _non_empty_list(c["claims"], "claims"):
        if not isinstance(claim, dict):
            raise DCQLError("invalid_claims_query", f"credential {cid!r}: claims are objects")
        if "id" in claim or need_ids:
            claim_id = _identifier(claim.get("id"), "claim id")
            if claim_id in claim_ids:
                raise DCQLError("duplicate_id", f"credential {cid!r}: claim id {claim_id!r} twice")
            claim_ids.add(claim_id)
        path = _claims_path(claim.get("path"), cid, fmt)
        if path in paths:
            # "Verifiers MUST NOT point to the same claim more than once in a single query."
            raise DCQLError("duplicate_claim", f"credential {cid!r}: path {list(path)!r} twice")
        paths.add(path)
        if "values" in claim:
            for value in _non_empty_list(claim["values"], "claim values"):
                if not isinstance(value, str | int) or (isinstance(value, str) and not value):
                    raise DCQLError(
                        "invalid_claims_query",
                        f"credential {cid!r}: values are strings, integers or booleans",
                    )
    return claim_ids


def _claims_path(path: Any, cid: str, fmt: str) -> tuple[str | int | None, ...]:
    """A claims path pointer (section 7): a non-empty array of strings, nulls and integers >= 0."""
    components = _non_empty_list(path, "claim path")
    for component in components:
        if component is None or isinstance(component, str):
            continue
        if isinstance(component, int) and not isinstance(component, bool) and component >= 0:
            continue
        raise DCQLError(
            "invalid_claim_path", f"credential {cid!r}: path components are strings, null or >= 0"
        )
    if fmt == MDOC_FORMAT and (
        len(components) != 2 or not all(isinstance(x, str) for x in components)
    ):
        raise DCQLError(
            "invalid_claim_path", f"credential {cid!r}: mdoc paths are [namespace, name]"
        )
    return tuple(components)


def _credential_set(credential_set: Any, ids: set[str]) -> None:
    if not isinstance(credential_set, dict):
        raise DCQLError("invalid_credential_sets", "each credential_sets entry is an object")
    if "required" in credential_set and not isinstance(credential_set["required"], bool):
        raise DCQLError("invalid_credential_sets", "required is a boolean")
    for option in _non_empty_list(credential_set.get("options"), "credential_sets options"):
        for ref in _non_empty_list(option, "credential_sets option"):
            if not isinstance(ref, str) or ref not in ids:
                raise DCQLError("unknown_credential_id", f"{ref!r} in credential_sets")


def _identifier(value: Any, what: str) -> str:
    if not isinstance(value, str) or len(value) > _MAX_ID or not _ID.fullmatch(value):
        raise DCQLError("invalid_id", f"{what} must match [A-Za-z0-9_-]+")
    return value


def _non_empty_list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise DCQLError("not_a_non_empty_array", f"{what} must be a non-empty array")
    if len(value) > _MAX_ITEMS:
        raise DCQLError("too_many_items", f"{what} has more than {_MAX_ITEMS} entries")
    return value


__all__ = [
    "MDOC_FORMAT",
    "SD_JWT_VC_FORMAT",
    "ClaimPath",
    "DCQLError",
    "build_query",
    "credential_ids",
    "validate_query",
]
