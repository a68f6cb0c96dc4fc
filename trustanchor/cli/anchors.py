"""``trustanchor anchors``: inspect the anchor registry, add an anchor, suspend and resume one.

Anchors declared in the configuration are applied at start-up; ``add`` registers one from its own
TOML file (same format as an ``[[anchors]]`` entry). Suspending takes effect for new logins at
once; a declaration in the configuration never resumes a suspended anchor, only ``resume`` does.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from trustanchor.cli.context import CliContext, database_errors, pass_context
from trustanchor.domain.anchors import Anchor
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import thumbprint
from trustanchor.services import cascades
from trustanchor.services.anchor_declarations import DeclarationError, anchor_from_declaration
from trustanchor.services.audit_trail import record_operator_change
from trustanchor.storage.anchors_repo import AnchorRepository
from trustanchor.storage.database import StorageUnavailable


@click.group()
def anchors() -> None:
    """Trust anchors: the identity sources people log in through."""


@anchors.command("list")
@pass_context
def list_command(ctx: CliContext) -> None:
    """Every registered anchor with its kind, status, assurance level and anchor sets."""
    with database_errors(ctx):
        registered = AnchorRepository(ctx.db).list()
    if not registered:
        click.echo("no anchors yet: declare them in the configuration or run `anchors add`")
        return
    click.echo(f"{'id':<24} {'kind':<10} {'status':<10} {'assurance':<12} {'sets':<24} name")
    for a in registered:
        click.echo(
            f"{a.id:<24} {a.kind:<10} {a.status:<10} {a.assurance_level:<12} "
            f"{','.join(a.anchor_sets) or '-':<24} {a.name('en')}"
        )


@anchors.command()
@click.argument("anchor_id", metavar="ID")
@pass_context
def show(ctx: CliContext, anchor_id: str) -> None:
    """One anchor as JSON (keys shown by kid and thumbprint, not in full)."""
    anchor = _existing(ctx, anchor_id)
    click.echo(json.dumps(describe(anchor), indent=2, ensure_ascii=False, sort_keys=True))


@anchors.command()
@click.option(
    "--file",
    "path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="TOML with one [[anchors]] entry, or the anchor's fields as a single table.",
)
@click.option("--replace", is_flag=True, help="Overwrite an anchor that already exists.")
@pass_context
def add(ctx: CliContext, path: Path, replace: bool) -> None:
    """Register an anchor from a TOML file (jwks_file is read relative to that file)."""
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise click.ClickException(f"{path}: not readable TOML ({exc})") from exc
    try:
        anchor = anchor_from_declaration(
            _single_declaration(data, path),
            base_dir=path.parent,
            allow_http=not ctx.settings.is_production,
        )
    except DeclarationError as exc:
        raise click.ClickException(
            f"{path}: invalid anchor:\n  " + "\n  ".join(exc.problems)
        ) from exc
    repository = AnchorRepository(ctx.db)
    with database_errors(ctx):
        existing = repository.get(anchor.id)
        if existing is not None and not replace:
            raise click.ClickException(
                f"anchor {anchor.id} exists already; add --replace to overwrite it, or "
                "choose another id"
            )
        now = ctx.clock.now()
        try:
            change = repository.upsert(anchor, now, may_resume=False)
        except ValueError as exc:
            raise click.ClickException(
                f"{exc}. Declare the anchor set in the configuration ([[anchor_sets]]) first."
                if "anchor set" in str(exc)
                else str(exc)
            ) from exc
        if change.action != "unchanged":
            _audit(ctx, anchor.id, "added" if change.action == "created" else "replaced", now)
    click.echo(change.describe())
    if anchor.status == "active" and change.kept_status is None:
        click.echo(f"logins through {anchor.id} are accepted from now on")


@anchors.command()
@click.argument("anchor_id", metavar="ID")
@pass_context
def suspend(ctx: CliContext, anchor_id: str) -> None:
    """Refuse logins through an anchor from now on (identities it verified stay recorded)."""
    anchor = _existing(ctx, anchor_id)
    if anchor.status == "retired":
        raise click.ClickException(f"anchor {anchor_id} is retired; there is nothing to suspend")
    with database_errors(ctx):
        now = ctx.clock.now()
        if anchor.status == "suspended":
            click.echo(f"anchor {anchor_id} is already suspended")
        else:
            AnchorRepository(ctx.db).set_status(anchor_id, "suspended", now)
            _audit(ctx, anchor_id, "suspended", now)
            click.echo(
                f"anchor {anchor_id} suspended: logins through {anchor_id} are refused from now on"
            )
        # Idempotent, so running suspend again finishes a cascade a failure interrupted.
        result = cascades.anchor_suspended(ctx.db, anchor_id, at=now)
    click.echo(
        f"{result.revoked_grants} transfer grant(s) relying on it revoked; "
        f"{result.flagged_accounts} account(s) and {result.flagged_links} link(s) flagged "
        "for re-verification"
    )
    click.echo(f"Undo with `trustanchor anchors resume {anchor_id}`.")


@anchors.command()
@click.argument("anchor_id", metavar="ID")
@pass_context
def resume(ctx: CliContext, anchor_id: str) -> None:
    """Accept logins through a suspended anchor again."""
    anchor = _existing(ctx, anchor_id)
    if anchor.status == "retired":
        raise click.ClickException(
            f"anchor {anchor_id} is retired and cannot be resumed; register it again under a "
            "new id with `trustanchor anchors add`"
        )
    if anchor.status == "active":
        click.echo(f"anchor {anchor_id} is already active")
        return
    with database_errors(ctx):
        now = ctx.clock.now()
        AnchorRepository(ctx.db).set_status(anchor_id, "active", now)
        _audit(ctx, anchor_id, "resumed", now)
    click.echo(f"anchor {anchor_id} resumed: logins through {anchor_id} are accepted from now on")
    declared = [d for d in ctx.settings.anchors if d.get("id") == anchor_id]
    if any(d.get("status", "active") != "active" for d in declared):
        click.echo(
            f"warning: the configuration declares {anchor_id} as {declared[0].get('status')}; "
            "the next start will suspend it again unless you change the declaration"
        )


def _audit(ctx: CliContext, anchor_id: str, action: str, now: int) -> None:
    """The repository commits the change itself, so its audit leaf is written in a transaction
    right after it; if that fails the operator is told the change stands unlogged."""
    try:
        record_operator_change(ctx.db, at=now, what="anchor", id=anchor_id, action=action)
    except StorageUnavailable as exc:
        raise click.ClickException(
            f"anchor {anchor_id} {action}, but its audit log entry could not be written "
            f"({exc}); the change is in effect and NOT in the audit log"
        ) from exc


def describe(anchor: Anchor) -> dict[str, Any]:
    """An anchor for display: every field, with key sets summarised as kid + thumbprint."""
    return {
        "id": anchor.id,
        "kind": anchor.kind,
        "display_name": dict(anchor.display_name),
        "assurance_level": anchor.assurance_level,
        "status": anchor.status,
        "anchor_sets": list(anchor.anchor_sets),
        "updated_at": anchor.updated_at,
        "settings": _summarise(anchor.settings),
    }


def _summarise(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            k: _jwks_summary(v)
            if k == "jwks"
            else _certificates_summary(v)
            if k in PEM_LISTS
            else _summarise(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_summarise(v) for v in value]
    return value


PEM_LISTS = ("roots", "issuers")  # x509 anchors: trusted roots and a profile's issuing CAs


def _certificates_summary(pems: Any) -> Any:
    """Certificates as an operator checks them: subject, SHA-256 fingerprint and validity."""
    if not isinstance(pems, list):
        return "(not a list of PEM certificates)"
    summary: list[Any] = []
    for pem in pems:
        try:
            cert = x509.load_pem_x509_certificate(str(pem).encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            summary.append("(not a PEM certificate)")
            continue
        summary.append(
            {
                "subject": cert.subject.rfc4514_string(),
                "sha256": cert.fingerprint(hashes.SHA256()).hex(),
                "not_before": cert.not_valid_before_utc.isoformat(),
                "not_after": cert.not_valid_after_utc.isoformat(),
            }
        )
    return summary


def _jwks_summary(jwks: Any) -> Any:
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        return "(not a JWKS)"
    summary: list[dict[str, Any]] = []
    for key in keys:
        if not isinstance(key, Mapping):
            continue
        try:
            print_ = thumbprint(dict(key))
        except JoseError:
            print_ = "(no thumbprint)"
        entry = {"kid": key.get("kid"), "kty": key.get("kty"), "thumbprint": print_}
        if "alg" in key:
            entry["alg"] = key["alg"]
        summary.append(entry)
    return {"keys": summary}


def _single_declaration(data: dict[str, Any], path: Path) -> Mapping[str, Any]:
    if "anchors" in data:
        entries = data["anchors"]
        if set(data) != {"anchors"} or not isinstance(entries, list) or len(entries) != 1:
            raise click.ClickException(
                f"{path}: give exactly one [[anchors]] entry and nothing else"
            )
        entry: Mapping[str, Any] = entries[0]
        return entry
    return data


def _existing(ctx: CliContext, anchor_id: str) -> Anchor:
    with database_errors(ctx):
        anchor = AnchorRepository(ctx.db).get(anchor_id)
    if anchor is None:
        raise click.ClickException(
            f"no anchor {anchor_id!r}; `trustanchor anchors list` shows the registered ones"
        )
    return anchor
