"""Anchor and anchor-set declarations: the ``[[anchors]]`` / ``[[anchor_sets]]`` tables of the
configuration (or a file given to ``trustanchor anchors add``) turned into domain objects.

Every problem is collected and reported at once, each naming the declaration and the field
(``anchors.<id>.<field>: …``), so an operator fixes a file in one pass. Unknown fields are refused:
a misspelt security setting must not be silently ignored.

An anchor's kind-specific settings live in a sub-table named after the kind
(``[anchors.sd_jwt_vc]``, ``[anchors.x509]``, ``[anchors.oidc]``) and become ``Anchor.settings``,
validated by that kind's own settings parser in ``anchors/`` (so a declaration that passes here is
one the kind's verifier accepts). Files named in a declaration are read here, relative to the
declaring file's directory, so stored settings always carry their material inline:
``sd_jwt_vc.jwks_file`` becomes ``jwks``; ``x509.roots_file`` and each certificate profile's
``issuers_file`` (``[anchors.x509.authentication]``, ``[anchors.x509.signature]``) become lists of
PEM certificates ``roots`` and ``issuers``.

Applying declarations is a use case of the service (it writes through storage and the audit log),
which is why this module lives in ``services/`` and ``anchors/`` stays a pure layer of verifiers.

Applying declarations is idempotent (see :func:`apply_anchor_declarations`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection

from trustanchor.anchors.sd_jwt_vc_settings import parse_settings as parse_sd_jwt_vc_settings
from trustanchor.anchors.x509_settings import parse_settings as parse_x509_settings
from trustanchor.domain.anchor_sets import AnchorSet
from trustanchor.domain.anchors import (
    ANCHOR_KINDS,
    ANCHOR_STATUSES,
    Anchor,
    AnchorKind,
    AnchorStatus,
)
from trustanchor.domain.assurance import LEVELS, AssuranceLevel
from trustanchor.policy.anchor_set_policy import PolicyError, parse_policy
from trustanchor.storage.anchors_repo import AnchorRepository, Change
from trustanchor.storage.database import Database
from trustanchor.strict_json import StrictJSONError, loads

SLUG = re.compile(r"[a-z0-9-]{1,64}")
LANGUAGE_TAG = re.compile(r"[a-z]{2,3}")
SUPPORTED_KINDS = ("sd_jwt_vc", "x509", "oidc")
X509_PROFILES = ("authentication", "signature")
MAX_PEM_FILE_BYTES = 256 * 1024
PEM_CERTIFICATE = re.compile(
    r"-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----"
)
ANCHOR_FIELDS = frozenset(
    {"id", "kind", "display_name", "assurance_level", "status", "anchor_sets"}
)
ANCHOR_SET_FIELDS = frozenset({"id", "display_name", "policy"})
MAX_JWKS_FILE_BYTES = 64 * 1024
MAX_NAME_LENGTH = 200


class DeclarationError(ValueError):
    """One or more declarations are invalid. ``problems`` holds one line per problem, each
    starting with ``anchors.<id>.<field>`` or ``anchor_sets.<id>.<field>``."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


# ---------------------------------------------------------------- anchors


def anchor_from_declaration(
    decl: Mapping[str, Any], *, base_dir: Path, allow_http: bool = False
) -> Anchor:
    """Validate one anchor declaration. Raises DeclarationError listing every problem.
    ``allow_http`` admits plain-http upstream providers (demo and test modes, never
    production)."""
    if not isinstance(decl, Mapping):
        raise DeclarationError(["anchors: every entry must be a table"])
    problems: list[str] = []
    anchor_id = decl.get("id")
    where = _where("anchors", anchor_id, problems)
    kind = decl.get("kind")
    if kind not in ANCHOR_KINDS:
        problems.append(f"{where}.kind: must be one of {', '.join(ANCHOR_KINDS)}, not {kind!r}")
    elif kind not in SUPPORTED_KINDS:
        problems.append(
            f"{where}.kind: {kind!r} is not supported yet (supported: {', '.join(SUPPORTED_KINDS)})"
        )
    for key in decl:
        if key in ANCHOR_FIELDS or key == kind:
            continue
        if key in ANCHOR_KINDS:
            problems.append(f"{where}.{key}: settings table for kind {key}, but kind is {kind!r}")
        else:
            problems.append(f"{where}.{key}: unknown field")
    display_name = _display_name(decl.get("display_name"), f"{where}.display_name", problems)
    level = decl.get("assurance_level")
    if level not in LEVELS:
        problems.append(f"{where}.assurance_level: must be one of {', '.join(LEVELS)}")
    status = decl.get("status", "active")
    if status not in ANCHOR_STATUSES:
        problems.append(f"{where}.status: must be one of {', '.join(ANCHOR_STATUSES)}")
    sets = _slug_list(decl.get("anchor_sets", []), f"{where}.anchor_sets", problems)
    settings: dict[str, Any] = {}
    if kind == "sd_jwt_vc":
        settings = _sd_jwt_vc_settings(decl.get(kind), f"{where}.{kind}", base_dir, problems)
    elif kind == "x509":
        settings = _x509_settings(decl.get(kind), f"{where}.{kind}", base_dir, problems)
    elif kind == "oidc":
        settings = _oidc_settings(decl.get(kind), f"{where}.{kind}", problems, level)
    if problems:
        raise DeclarationError(problems)
    return Anchor(
        id=str(anchor_id),  # checked by _where
        kind=cast(AnchorKind, kind),  # the checks above passed
        display_name=display_name,
        assurance_level=cast(AssuranceLevel, level),
        status=cast(AnchorStatus, status),
        settings=settings,
        anchor_sets=tuple(sorted(sets)),
    )


def _sd_jwt_vc_settings(
    table: Any, where: str, base_dir: Path, problems: list[str]
) -> dict[str, Any]:
    """Resolve ``jwks_file`` into ``jwks``, then validate with the verifier's own settings parser
    (so a declaration that passes here is one the sd_jwt_vc verifier accepts)."""
    if not isinstance(table, Mapping):
        problems.append(f"{where}: missing; add the [anchors.sd_jwt_vc] settings table")
        return {}
    settings = dict(table)
    before = len(problems)
    if "jwks_file" in settings:
        if "jwks" in settings:
            problems.append(f"{where}.jwks_file: give either jwks or jwks_file, not both")
        jwks_file = settings.pop("jwks_file")
        if not isinstance(jwks_file, str) or not jwks_file:
            problems.append(f"{where}.jwks_file: must be a file name")
        else:
            settings["jwks"] = _read_jwks(base_dir / jwks_file, f"{where}.jwks_file", problems)
    _check_json_values(settings, where, problems)
    if len(problems) == before:
        try:
            parse_sd_jwt_vc_settings(settings)
        except ValueError as exc:  # its messages start with the field name
            problems.append(f"{where}.{exc}")
    return settings


def _x509_settings(table: Any, where: str, base_dir: Path, problems: list[str]) -> dict[str, Any]:
    """Resolve ``roots_file`` and the profiles' ``issuers_file`` into inline PEM lists, then
    validate with the x509 verifier's own settings parser."""
    if not isinstance(table, Mapping):
        problems.append(f"{where}: missing; add the [anchors.x509] settings table")
        return {}
    settings = dict(table)
    before = len(problems)
    _inline_pems(settings, "roots", base_dir, where, problems)
    for profile in X509_PROFILES:
        sub = settings.get(profile)
        if isinstance(sub, Mapping):
            resolved = dict(sub)
            _inline_pems(resolved, "issuers", base_dir, f"{where}.{profile}", problems)
            settings[profile] = resolved
    _check_json_values(settings, where, problems)
    if len(problems) == before:
        try:
            parse_x509_settings(settings)
        except ValueError as exc:  # its messages start with the field name
            problems.append(f"{where}.{exc}")
    return settings


def _inline_pems(
    settings: dict[str, Any], field: str, base_dir: Path, where: str, problems: list[str]
) -> None:
    """``<field>_file`` (a PEM bundle) becomes ``<field>``, a list of PEM certificates."""
    key = f"{field}_file"
    if key not in settings:
        return
    name = settings.pop(key)
    if field in settings:
        problems.append(f"{where}.{key}: give either {field} or {key}, not both")
        return
    if not isinstance(name, str) or not name:
        problems.append(f"{where}.{key}: must be a file name")
        return
    path = base_dir / name
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_PEM_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(f"{where}.{key}: cannot read {path} ({exc.__class__.__name__})")
        return
    if len(data) > MAX_PEM_FILE_BYTES:
        problems.append(f"{where}.{key}: {path} is larger than {MAX_PEM_FILE_BYTES} bytes")
        return
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        problems.append(f"{where}.{key}: {path} is not a PEM file")
        return
    pems = [m.group(0).replace("\r\n", "\n") + "\n" for m in PEM_CERTIFICATE.finditer(text)]
    if not pems:
        problems.append(f"{where}.{key}: {path} holds no PEM certificate")
        return
    settings[field] = pems


def _oidc_settings(table: Any, where: str, problems: list[str], level: Any) -> dict[str, Any]:
    """Validate with the upstream provider's own settings parser. (H4b: parse_settings needs the
    anchor's level; an http issuer passes here and is refused in production where the provider
    is built, services/anchor_verifiers.py, since declarations do not know the mode.)"""
    from trustanchor.anchors.oidc_settings import parse_settings

    if not isinstance(table, Mapping):
        problems.append(f"{where}: missing; add the [anchors.oidc] settings table")
        return {}
    settings = dict(table)
    before = len(problems)
    _check_json_values(settings, where, problems)
    if len(problems) == before:
        try:
            parse_settings(
                settings, anchor_level=level if level in LEVELS else "high", allow_http=True
            )
        except ValueError as exc:  # its messages start with the field name
            problems.append(f"{where}.{exc}")
    return settings


def _read_jwks(path: Path, where: str, problems: list[str]) -> Any:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_JWKS_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(f"{where}: cannot read {path} ({exc.__class__.__name__})")
        return None
    try:
        return loads(data, max_bytes=MAX_JWKS_FILE_BYTES)
    except StrictJSONError as exc:
        problems.append(f"{where}: {path} is not a valid JSON document ({exc})")
        return None


# ------------------------------------------------------------ anchor sets


def anchor_set_from_declaration(decl: Mapping[str, Any]) -> AnchorSet:
    """Validate one anchor-set declaration (version 1; the repository bumps it on policy change)."""
    if not isinstance(decl, Mapping):
        raise DeclarationError(["anchor_sets: every entry must be a table"])
    problems: list[str] = []
    where = _where("anchor_sets", decl.get("id"), problems)
    for key in decl:
        if key not in ANCHOR_SET_FIELDS:
            problems.append(f"{where}.{key}: unknown field")
    display_name = _display_name(decl.get("display_name"), f"{where}.display_name", problems)
    # The policy engine's parser is the one judge of a policy; the set stores its canonical
    # JSON (every default spelt out), so equal policies never bump the version.
    stored: dict[str, Any] = {}
    try:
        stored = parse_policy(decl.get("policy", {})).to_json()
    except PolicyError as exc:
        problems.extend(exc.lines(f"{where}.policy"))
    if problems:
        raise DeclarationError(problems)
    return AnchorSet(id=decl["id"], display_name=display_name, policy=stored, version=1)


# ------------------------------------------------------------------ apply


def apply_anchor_declarations(
    db: Database,
    anchors: Sequence[Mapping[str, Any]],
    anchor_sets: Sequence[Mapping[str, Any]],
    *,
    base_dir: Path,
    now: int,
    on_write: Callable[[Connection, Sequence[Change]], None] | None = None,
    allow_http: bool = False,
) -> list[str]:
    """Upsert the declared anchor sets and anchors in one transaction; return what changed.

    - Everything is validated first; any problem raises DeclarationError and writes nothing.
    - Idempotent: re-applying identical declarations writes nothing (no ``updated_at`` bump, no
      new set version) and returns an empty list. A changed policy bumps the set's version.
    - Each declared anchor's memberships become exactly its ``anchor_sets``.
    - Anchors and sets in the database but absent from the declarations are left alone: they
      may have been added with ``trustanchor anchors add``. Removing one from the file does not
      delete it; suspend it with ``trustanchor anchors suspend``.
    - A declaration never resumes an anchor: if the database holds a stricter status (suspended
      or retired, e.g. set by the operator in an emergency) it is kept, and the returned list
      says so. ``trustanchor anchors resume`` is the only way back to active.
    - ``on_write`` runs inside the transaction with the changes (see ``AnchorRepository.apply``):
      ``trustanchor init`` records them as the audit log's operator_change entries there, so a
      change never commits without its entry.
    """
    problems: list[str] = []
    parsed_sets = _parse_all(anchor_sets, anchor_set_from_declaration, "anchor_sets", problems)
    parsed_anchors = _parse_all(
        anchors,
        lambda d: anchor_from_declaration(d, base_dir=base_dir, allow_http=allow_http),
        "anchors",
        problems,
    )
    repository = AnchorRepository(db)
    if parsed_anchors and not problems:
        known = {s.id for s in parsed_sets} | {s.id for s in repository.anchor_sets()}
        for anchor in parsed_anchors:
            for set_id in anchor.anchor_sets:
                if set_id not in known:
                    problems.append(
                        f"anchors.{anchor.id}.anchor_sets: unknown anchor set {set_id!r} "
                        "(declare it in [[anchor_sets]])"
                    )
    if problems:
        raise DeclarationError(problems)
    changes = repository.apply(
        parsed_sets, parsed_anchors, now, may_resume=False, on_write=on_write
    )
    return [c.describe() for c in changes if c.action != "unchanged" or c.kept_status]


def _parse_all(
    declarations: Sequence[Mapping[str, Any]],
    parse: Any,
    section: str,
    problems: list[str],
) -> list[Any]:
    parsed: list[Any] = []
    seen: set[str] = set()
    for decl in declarations:
        try:
            item = parse(decl)
        except DeclarationError as exc:
            problems.extend(exc.problems)
            continue
        if item.id in seen:
            problems.append(f"{section}.{item.id}: declared twice")
        seen.add(item.id)
        parsed.append(item)
    return parsed


# ---------------------------------------------------------------- helpers


def _where(section: str, ident: Any, problems: list[str]) -> str:
    if isinstance(ident, str) and SLUG.fullmatch(ident):
        return f"{section}.{ident}"
    shown = ident if isinstance(ident, str) and len(ident) <= 80 else "?"
    where = f"{section}.{shown}" if isinstance(ident, str) else f"{section}.<no id>"
    problems.append(f"{where}.id: must be 1 to 64 characters of a-z, 0-9 and '-'")
    return where


def _display_name(value: Any, where: str, problems: list[str]) -> dict[str, str]:
    if isinstance(value, str):
        value = {"en": value}
    if not isinstance(value, Mapping) or not value:
        problems.append(f"{where}: must be a string or a table of language = name (en, ja)")
        return {}
    names: dict[str, str] = {}
    for language, name in value.items():
        if not isinstance(language, str) or not LANGUAGE_TAG.fullmatch(language):
            problems.append(f"{where}.{language}: not a language code such as en or ja")
        elif not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME_LENGTH:
            problems.append(f"{where}.{language}: must be a non-empty name")
        else:
            names[language] = name
    return names


def _slug_list(value: Any, where: str, problems: list[str]) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        problems.append(f"{where}: must be a list of anchor set ids")
        return []
    for item in value:
        if not SLUG.fullmatch(item):
            problems.append(f"{where}: {item!r} is not a valid anchor set id")
    if len(set(value)) != len(value):
        problems.append(f"{where}: lists an anchor set twice")
    return list(value)


def _check_json_values(value: Any, where: str, problems: list[str]) -> None:
    """Stored settings are JSON: refuse TOML dates/times and non-finite floats up front."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            _check_json_values(item, f"{where}.{key}", problems)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json_values(item, f"{where}[{index}]", problems)
    elif isinstance(value, float):
        if not math.isfinite(value):
            problems.append(f"{where}: must be a finite number")
    elif value is not None and not isinstance(value, str | int | bool):
        problems.append(f"{where}: {type(value).__name__} values are not supported here")
