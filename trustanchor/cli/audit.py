"""``trustanchor audit``: what an auditor runs, offline, against downloaded material.

The auditor trusts nothing but the published keys and checkpoints they kept. Every command
reads plain files (formats: docs/AUDIT-FORMAT.md §3), so material fetched once — by
``audit fetch`` or by hand — can be checked anywhere, later, without the service. ``--url`` and
``--token`` (an access token with the ``audit`` scope, sent as Bearer) download what a file
option leaves out.

- ``verify TOKEN``: the token's signature against the published (possibly retired) token keys,
  claims sanity, its ``token_issued`` entry, and that entry's inclusion under a checkpoint.
- ``check --since OLD``: the log from a checkpoint the auditor kept to a newer one is append-only;
  a rollback or a split view is reported loudly (exit 2).
- ``replay``: the whole tree recomputed from the entries equals the signed checkpoint.

``--pin VKEY`` (verify, check, replay, fetch): trust only the audit keys the auditor kept and
those the log introduced from them (an audit key rotation, :func:`follow_audit_keys`), not every
key the service publishes.

Exit codes: 0 verified; 1 the material is unusable (a file missing or malformed, a signature
that does not verify); 2 the log contradicts itself (rollback, split view, rewritten entries).
Every failure says what to do next.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click
import requests

from trustanchor import strict_json
from trustanchor.audit.checkpoint import Checkpoint, verify_checkpoint
from trustanchor.audit.entries import EntryError, OperatorChange, TokenIssued, parse_entry
from trustanchor.audit.merkle import (
    MerkleAccumulator,
    ProofError,
    leaf_hash,
    verify_consistency,
    verify_inclusion,
)
from trustanchor.audit.note import Ed25519Verifier, NoteError
from trustanchor.jose import jws
from trustanchor.jose.errors import JoseError
from trustanchor.jose.jwk import PublicKey, public_key_from_jwk
from trustanchor.oauth.jwt_tokens import ACCESS_TOKEN_TYP

PAGE = 1000  # the server's MAX_PAGE
MAX_TOKEN_BYTES = 16384
MAX_FILE_BYTES = 16 << 20
_SAFE_REF = re.compile(r"[A-Za-z0-9_-]{1,100}")


class AuditFailure(click.ClickException):
    """Unusable material (exit 1). The message ends with what to do next."""

    exit_code = 1


class LogContradiction(click.ClickException):
    """The log contradicts itself (exit 2): printed loudly, it is what auditors look for."""

    exit_code = 2

    def format_message(self) -> str:
        bar = "!" * 72
        return f"\n{bar}\n{self.message}\n{bar}"


def _when(at: int | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- material -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenKey:
    kid: str
    alg: str | None
    key: PublicKey
    created_at: int | None
    retired_at: int | None


@dataclass(frozen=True)
class PublishedKeys:
    issuer: str
    origin: str
    audit: tuple[Ed25519Verifier, ...]
    tokens: dict[str, TokenKey]


class Remote:
    """The service's /audit API, with the auditor's access token (Bearer)."""

    def __init__(self, url: str, token: str) -> None:
        self.base = url.rstrip("/")
        self.token = token

    def get(
        self, path: str, *, accept: str = "application/json", params: dict[str, int] | None = None
    ) -> str:
        try:
            response = requests.get(
                self.base + path,
                params=params or {},
                headers={"Authorization": f"Bearer {self.token}", "Accept": accept},
                timeout=30,
            )
        except requests.RequestException as exc:
            raise AuditFailure(
                f"cannot reach {self.base}: {exc}. Check --url, or work offline from files."
            ) from exc
        if response.status_code != 200:
            hint = (
                "Get a fresh access token with the audit scope (client_credentials) and pass it "
                "with --token."
                if response.status_code in (401, 403)
                else "Check the parameters; the server's answer is above."
            )
            raise AuditFailure(
                f"{path}: HTTP {response.status_code} {response.text.strip()}. {hint}"
            )
        return response.text

    def json(self, path: str, **params: int) -> Any:
        return _json(self.get(path, params=params), path)


def _remote(url: str | None, token: str | None) -> Remote | None:
    if url is None:
        return None
    if not token:
        raise AuditFailure("--url needs --token: an access token with the audit scope.")
    return Remote(url, token)


def _read(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise AuditFailure(
            f"cannot read {path} ({exc.strerror}). Download it with `trustanchor audit fetch`."
        ) from exc
    if len(data) > MAX_FILE_BYTES:
        raise AuditFailure(f"{path} is larger than {MAX_FILE_BYTES} bytes.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise AuditFailure(f"{path} is not UTF-8. Download it again.") from exc


def _json(text: str, where: str) -> Any:
    try:
        return strict_json.loads(text, max_depth=8, max_bytes=MAX_FILE_BYTES)
    except strict_json.StrictJSONError as exc:
        raise AuditFailure(f"{where} is not valid JSON ({exc}). Download it again.") from exc


def _material(
    path: Path | None, remote: Remote | None, what: str, fetch: Callable[[Remote], str]
) -> str:
    if path is not None:
        return _read(path)
    if remote is None:
        raise AuditFailure(f"give {what}, or --url and --token to download it.")
    text: str = fetch(remote)
    return text


def _int(data: dict[str, Any], name: str, where: str) -> int:
    value = data.get(name)
    if type(value) is not int or value < 0:
        raise AuditFailure(f"{where}: {name} must be a non-negative integer. Download it again.")
    return value


def _hashes(data: dict[str, Any], where: str) -> list[bytes]:
    values = data.get("hashes")
    if not isinstance(values, list) or not all(
        isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) for v in values
    ):
        raise AuditFailure(f"{where}: hashes must be a list of 64-hex SHA-256 values.")
    return [bytes.fromhex(v) for v in values]


def parse_keys(text: str, where: str = "keys file", pins: tuple[str, ...] = ()) -> PublishedKeys:
    data = _json(text, where)
    fix = "Download the keys again (GET /audit/keys, or `trustanchor audit fetch`)."
    if not isinstance(data, dict):
        raise AuditFailure(f"{where} is not a JSON object. {fix}")
    issuer, origin = data.get("issuer"), data.get("origin")
    audit_keys, token_keys = data.get("audit_keys"), data.get("token_keys")
    if not isinstance(issuer, str) or not isinstance(origin, str):
        raise AuditFailure(f"{where}: issuer and origin are required strings. {fix}")
    if not isinstance(audit_keys, list) or not isinstance(token_keys, dict):
        raise AuditFailure(f"{where}: audit_keys (list) and token_keys (JWKS) required. {fix}")
    verifiers: list[Ed25519Verifier] = []
    for entry in audit_keys:
        vkey = entry.get("vkey") if isinstance(entry, dict) else entry
        try:
            verifiers.append(Ed25519Verifier.from_vkey(str(vkey)))
        except NoteError as exc:
            raise AuditFailure(f"{where}: audit key {vkey!r}: {exc}. {fix}") from exc
    if pins:
        verifiers = follow_audit_keys(audit_keys, origin, pins, where)
    tokens: dict[str, TokenKey] = {}
    jwks = token_keys.get("keys")
    if not isinstance(jwks, list):
        raise AuditFailure(f"{where}: token_keys must be a JWKS. {fix}")
    for jwk in jwks:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            raise AuditFailure(f"{where}: every token key needs a kid. {fix}")
        public = {k: v for k, v in jwk.items() if k not in ("created_at", "retired_at")}
        try:
            key = public_key_from_jwk(public)
        except JoseError as exc:
            raise AuditFailure(f"{where}: token key {jwk['kid']}: {exc}. {fix}") from exc
        created, retired = jwk.get("created_at"), jwk.get("retired_at")
        tokens[jwk["kid"]] = TokenKey(
            jwk["kid"],
            jwk.get("alg") if isinstance(jwk.get("alg"), str) else None,
            key,
            created if type(created) is int else None,
            retired if type(retired) is int else None,
        )
    return PublishedKeys(issuer, origin, tuple(verifiers), tokens)


def follow_audit_keys(
    audit_keys: list[Any], origin: str, pins: tuple[str, ...], where: str
) -> list[Ed25519Verifier]:
    """The audit keys an auditor holding ``pins`` (vkeys kept from earlier) can trust: the pins,
    and each published key whose ``introduced`` transition checks out against a key already
    trusted — a checkpoint signed by it, and the inclusion under that checkpoint of the entry
    ``operator_change audit_vkey <SHA-256 of the new vkey> generated`` (docs/AUDIT-FORMAT.md
    §2.3). Keys without such a transition are not trusted (reported on stderr)."""
    trusted: list[Ed25519Verifier] = []
    for pin in pins:
        try:
            trusted.append(Ed25519Verifier.from_vkey(pin))
        except NoteError as exc:
            raise AuditFailure(
                f"--pin {pin!r}: {exc}. Give a vkey you kept (name+id+key)."
            ) from exc
    if not any(v.name == origin for v in trusted):
        raise AuditFailure(
            f"no pinned audit key is named {origin!r} (the log origin of {where}). Pin a vkey of "
            "this log."
        )
    trusted_vkeys = {v.vkey for v in trusted}
    pending = [e for e in audit_keys if isinstance(e, dict) and e.get("vkey") not in trusted_vkeys]
    progress = True
    while pending and progress:
        progress = False
        for entry in list(pending):
            vkey = str(entry.get("vkey"))
            if _introduced_by(entry.get("introduced"), vkey, trusted, origin):
                verifier = Ed25519Verifier.from_vkey(vkey)
                trusted.append(verifier)
                pending.remove(entry)
                progress = True
                _ok(f"audit key {verifier.key_id:08x} followed from a pinned key's checkpoint")
    for entry in pending:
        click.echo(
            f"not trusted: audit key {entry.get('key_id')!r} of {where} (no transition signed "
            "by a pinned or followed key)",
            err=True,
        )
    return trusted


def _introduced_by(introduced: Any, vkey: str, trusted: list[Ed25519Verifier], origin: str) -> bool:
    if not isinstance(introduced, dict):
        return False
    try:
        checkpoint = verify_checkpoint(str(introduced["checkpoint"]), trusted, origin=origin)
        index, size = introduced["index"], introduced["size"]
        if type(index) is not int or type(size) is not int or size != checkpoint.size:
            return False
        text = str(introduced["entry"]).encode("utf-8")
        hashes = [bytes.fromhex(str(h)) for h in introduced["hashes"]]
        verify_inclusion(leaf_hash(text), index, size, hashes, checkpoint.root_hash)
        entry = parse_entry(text)
    except (KeyError, TypeError, ValueError, NoteError, ProofError, EntryError):
        return False
    return (
        isinstance(entry, OperatorChange)
        and entry.what == "audit_vkey"
        and entry.action == "generated"
        and entry.id == hashlib.sha256(vkey.encode("utf-8")).hexdigest()
    )


def verify_signed_checkpoint(note: str, keys: PublishedKeys, where: str) -> Checkpoint:
    try:
        return verify_checkpoint(note, keys.audit, origin=keys.origin)
    except NoteError as exc:
        raise AuditFailure(
            f"{where}: the checkpoint signature does not verify against the published audit "
            f"keys ({exc.reason}: {exc.detail}). It was not signed by the log {keys.origin!r}: "
            "do not trust it; fetch the checkpoint and the keys again from the service and "
            "report a forged checkpoint to the operator."
        ) from exc


def _time(checkpoint: Checkpoint) -> int | None:
    for line in checkpoint.extensions:
        if line.startswith("time "):
            return int(line[5:])
    return None


def _describe(checkpoint: Checkpoint) -> str:
    return (
        f"{checkpoint.origin} size {checkpoint.size} root {checkpoint.root_hash.hex()} "
        f"signed {_when(_time(checkpoint))}"
    )


def _ok(message: str) -> None:
    click.echo(f"ok  {message}")


# -- commands ------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """Audit the log: verify tokens, check consistency, replay the tree (docs/AUDIT-FORMAT.md)."""


_url = click.option("--url", help="The service (issuer URL); downloads what no file gives.")
_token = click.option(
    "--token", "auditor_token", envvar="TRUSTANCHOR_AUDIT_TOKEN", help="Access token (audit scope)."
)
_keys = click.option(
    "--keys", "keys_path", type=click.Path(path_type=Path, dir_okay=False), help="keys.json"
)
_pin = click.option(
    "--pin",
    "pins",
    multiple=True,
    metavar="VKEY",
    help="An audit verifier key you kept (repeatable). Then only it, and keys the log "
    "introduced under a checkpoint a trusted key signed, verify checkpoints (key rotation).",
)


def _load_keys(
    keys_path: Path | None, remote: Remote | None, pins: tuple[str, ...] = ()
) -> PublishedKeys:
    text = _material(keys_path, remote, "--keys", lambda r: r.get("/audit/keys"))
    return parse_keys(text, str(keys_path or "GET /audit/keys"), pins)


@audit.command()
@click.argument("token")
@_keys
@_pin
@click.option("--checkpoint", "checkpoint_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--proof", "proof_path", type=click.Path(path_type=Path, dir_okay=False))
@_url
@_token
def verify(
    token: str,
    keys_path: Path | None,
    pins: tuple[str, ...],
    checkpoint_path: Path | None,
    proof_path: Path | None,
    url: str | None,
    auditor_token: str | None,
) -> None:
    """Verify TOKEN (a JWS, or @FILE holding one) was issued by the service and logged."""
    if token.startswith("@"):
        token = _read(Path(token[1:])).strip()
    remote = _remote(url, auditor_token)
    keys = _load_keys(keys_path, remote, pins)
    # 1. signature, by a published token key (retired keys included)
    try:
        parsed = jws.parse(token, max_bytes=MAX_TOKEN_BYTES, allowed_algs=jws.ASYMMETRIC_ALGS)
        claims = parsed.claims()
    except JoseError as exc:
        raise AuditFailure(
            f"not a signed token ({exc}). Pass the token exactly as issued."
        ) from exc
    kid = parsed.header.get("kid")
    key = keys.tokens.get(kid) if isinstance(kid, str) else None
    if key is None:
        raise AuditFailure(
            f"the token's key {kid!r} is not among the published token keys. Download the keys "
            "again; if it is still missing, the service did not sign this token."
        )
    if key.alg is not None and key.alg != parsed.alg:
        raise AuditFailure(f"the token uses {parsed.alg} but key {kid} is for {key.alg}.")
    try:
        jws.verify_signature(parsed, key.key)
    except JoseError as exc:
        raise AuditFailure(
            f"the token's signature does not verify with key {kid}: it was altered or forged."
        ) from exc
    _ok(
        f"signature: {parsed.alg} by token key {kid} "
        f"(created {_when(key.created_at)}, retired {_when(key.retired_at)})"
    )
    # 2. claims sanity
    kind, client_id = _token_claims(parsed.header, claims, keys)
    exp = claims["exp"]
    _ok(
        f"claims: {kind} of {keys.issuer}, client {client_id}, jti {claims['jti']}, "
        f"iat {_when(claims['iat'])}, exp {_when(exp)}"
        + (" (expired now; still checked)" if exp <= int(datetime.now(UTC).timestamp()) else "")
    )
    # 3. checkpoint
    note = _material(
        checkpoint_path,
        remote,
        "--checkpoint",
        lambda r: r.get("/audit/checkpoint", accept="text/plain"),
    )
    checkpoint = verify_signed_checkpoint(
        note, keys, str(checkpoint_path or "GET /audit/checkpoint")
    )
    _ok(f"checkpoint: {_describe(checkpoint)}, signature by the log's audit key")
    # 4. the entry and its inclusion
    proof = _inclusion_material(proof_path, remote, claims["jti"], checkpoint.size)
    where = str(proof_path or "downloaded proof")
    index, size = _int(proof, "index", where), _int(proof, "size", where)
    entry_text = proof.get("entry")
    if not isinstance(entry_text, str):
        raise AuditFailure(f"{where}: entry (the canonical entry text) is required.")
    entry_bytes = entry_text.encode("utf-8")
    try:
        entry = parse_entry(entry_bytes)
    except EntryError as exc:
        raise AuditFailure(
            f"{where}: the entry does not parse ({exc}). Download it again."
        ) from exc
    if not isinstance(entry, TokenIssued) or entry.jti != claims["jti"]:
        raise AuditFailure(
            f"{where}: the entry is not the token_issued entry of jti {claims['jti']}."
        )
    mismatches = [
        name
        for name, ours, theirs in (
            ("token_kind", entry.token_kind, kind.replace(" ", "_")),
            ("client_id", entry.client_id, client_id),
            ("exp", entry.exp, exp),
        )
        if ours != theirs
    ]
    if mismatches:
        raise LogContradiction(
            f"LOGGED ENTRY DIFFERS FROM THE TOKEN: {', '.join(mismatches)} (entry #{index}). "
            "The log does not describe the token the service issued: report it to the operator."
        )
    leaf = leaf_hash(entry_bytes)
    stated = proof.get("leaf_hash")
    if stated is not None and stated != leaf.hex():
        raise AuditFailure(f"{where}: leaf_hash is not SHA-256(0x00 || entry). Download it again.")
    _ok(f"log entry #{index}: token_issued {entry.token_kind}, jti, client_id and exp match")
    if size != checkpoint.size:
        raise AuditFailure(
            f"{where}: the proof is for a tree of {size}, the checkpoint has {checkpoint.size}. "
            f"Fetch the proof for size {checkpoint.size} (GET /audit/proof/inclusion?index="
            f"{index}&size={checkpoint.size})."
        )
    try:
        verify_inclusion(leaf, index, size, _hashes(proof, where), checkpoint.root_hash)
    except ProofError as exc:
        raise LogContradiction(
            f"ENTRY #{index} IS NOT IN THE SIGNED TREE ({exc.reason}: {exc.detail}). Keep the "
            "token, the checkpoint and the proof, and report them to the operator."
        ) from exc
    _ok(f"inclusion: entry #{index} is leaf {index} of the tree of size {size} under that root")
    click.echo(
        "VERIFIED: the service signed this token and logged it under the signed checkpoint. "
        "Keep the checkpoint: later checkpoints must be consistent with it (`audit check`)."
    )


def _token_claims(
    header: dict[str, Any], claims: dict[str, Any], keys: PublishedKeys
) -> tuple[str, str]:
    """(kind, client_id) after the sanity checks every token of ours passes."""
    bad = "the token's claims are not those of a token of this service"
    if claims.get("iss") != keys.issuer:
        raise AuditFailure(f"{bad}: iss is {claims.get('iss')!r}, not {keys.issuer!r}.")
    for name in ("exp", "iat"):
        if type(claims.get(name)) is not int:
            raise AuditFailure(f"{bad}: {name} is not an integer.")
    if claims["exp"] <= claims["iat"]:
        raise AuditFailure(f"{bad}: exp is not after iat.")
    if not isinstance(claims.get("jti"), str):
        raise AuditFailure(f"{bad}: no jti, so no log entry can name it.")
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower() in (ACCESS_TOKEN_TYP, "application/at+jwt"):
        client_id = claims.get("client_id")
        if not isinstance(client_id, str):
            raise AuditFailure(f"{bad}: an access token without client_id.")
        return "access token", client_id
    aud = claims.get("aud")
    if not isinstance(aud, str) or not isinstance(claims.get("sub"), str):
        raise AuditFailure(f"{bad}: neither an access token (typ at+jwt) nor an ID token.")
    return "id token", aud


def _inclusion_material(
    proof_path: Path | None, remote: Remote | None, jti: str, size: int
) -> dict[str, Any]:
    if proof_path is not None:
        data = _json(_read(proof_path), str(proof_path))
    elif remote is not None:
        data = _download_inclusion(remote, jti, size)
    else:
        raise AuditFailure("give --proof, or --url and --token to download it.")
    if not isinstance(data, dict):
        raise AuditFailure("the proof file is not a JSON object. Download it again.")
    return data


def _download_inclusion(remote: Remote, ref: str, size: int) -> dict[str, Any]:
    entry = remote.json(f"/audit/entries/by-ref/{quote(ref, safe='')}")
    index = _int(entry, "index", "GET /audit/entries/by-ref")
    if index >= size:
        raise AuditFailure(
            f"entry #{index} is newer than the checkpoint of size {size}: download a newer "
            "checkpoint and try again."
        )
    proof = remote.json("/audit/proof/inclusion", index=index, size=size)
    return {
        "index": index,
        "size": size,
        "entry": entry.get("entry"),
        "leaf_hash": entry.get("leaf_hash"),
        "hashes": proof.get("hashes"),
    }


@audit.command()
@click.option(
    "--since",
    "since_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="A checkpoint you kept.",
)
@click.option("--checkpoint", "checkpoint_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--proof", "proof_path", type=click.Path(path_type=Path, dir_okay=False))
@_keys
@_pin
@_url
@_token
def check(
    since_path: Path,
    checkpoint_path: Path | None,
    proof_path: Path | None,
    keys_path: Path | None,
    pins: tuple[str, ...],
    url: str | None,
    auditor_token: str | None,
) -> None:
    """The log grew append-only from the checkpoint you kept (--since) to a newer one."""
    remote = _remote(url, auditor_token)
    keys = _load_keys(keys_path, remote, pins)
    old = verify_signed_checkpoint(_read(since_path), keys, str(since_path))
    _ok(f"old checkpoint: {_describe(old)}")
    note = _material(
        checkpoint_path,
        remote,
        "--checkpoint",
        lambda r: r.get("/audit/checkpoint", accept="text/plain"),
    )
    new = verify_signed_checkpoint(note, keys, str(checkpoint_path or "GET /audit/checkpoint"))
    _ok(f"new checkpoint: {_describe(new)}")
    evidence = f"Keep both checkpoints ({since_path} and the new one) as evidence and report them."
    if new.size < old.size:
        raise LogContradiction(
            f"ROLLBACK: the log shrank from {old.size} to {new.size} entries. Both checkpoints "
            f"carry the log's signature, so the log removed entries it had committed to. {evidence}"
        )
    if new.size == old.size:
        if new.root_hash != old.root_hash:
            raise LogContradiction(
                f"SPLIT VIEW: two signed checkpoints of size {new.size} with different roots "
                f"({old.root_hash.hex()} and {new.root_hash.hex()}): the log shows different "
                f"histories to different readers. {evidence}"
            )
        _ok("same size, same root: nothing was appended, nothing changed")
    else:
        if proof_path is not None:
            data = _json(_read(proof_path), str(proof_path))
        elif remote is not None:
            data = remote.json("/audit/proof/consistency", old=old.size, new=new.size)
        else:
            raise AuditFailure("give --proof, or --url and --token to download it.")
        where = str(proof_path or "GET /audit/proof/consistency")
        if not isinstance(data, dict):
            raise AuditFailure(f"{where} is not a JSON object. Download it again.")
        if (_int(data, "old", where), _int(data, "new", where)) != (old.size, new.size):
            raise AuditFailure(
                f"{where} proves {data['old']} → {data['new']}, the checkpoints are "
                f"{old.size} → {new.size}. Fetch GET /audit/proof/consistency?old={old.size}"
                f"&new={new.size}."
            )
        try:
            verify_consistency(
                old.size, new.size, old.root_hash, new.root_hash, _hashes(data, where)
            )
        except ProofError as exc:
            raise LogContradiction(
                f"INCONSISTENT LOG: the tree of {new.size} does not extend the tree of {old.size} "
                f"you kept ({exc.reason}). Entries you relied on were rewritten, or the service "
                f"shows you a split view. {evidence}"
            ) from exc
        _ok(f"consistency: the tree of {new.size} extends the tree of {old.size} (append-only)")
    old_time, new_time = _time(old), _time(new)
    if old_time is not None and new_time is not None and new_time < old_time:
        raise LogContradiction(
            f"TIME WENT BACKWARDS: the newer checkpoint is signed {_when(new_time)}, the one "
            f"you kept {_when(old_time)}. {evidence}"
        )
    click.echo(f"CONSISTENT: keep the new checkpoint ({new.size} entries) for your next check.")


@audit.command()
@click.option("--entries", "entries_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--checkpoint", "checkpoint_path", type=click.Path(path_type=Path, dir_okay=False))
@_keys
@_pin
@_url
@_token
def replay(
    entries_path: Path | None,
    checkpoint_path: Path | None,
    keys_path: Path | None,
    pins: tuple[str, ...],
    url: str | None,
    auditor_token: str | None,
) -> None:
    """Recompute the whole tree from the entries and compare it with the signed checkpoint."""
    remote = _remote(url, auditor_token)
    keys = _load_keys(keys_path, remote, pins)
    note = _material(
        checkpoint_path,
        remote,
        "--checkpoint",
        lambda r: r.get("/audit/checkpoint", accept="text/plain"),
    )
    checkpoint = verify_signed_checkpoint(
        note, keys, str(checkpoint_path or "GET /audit/checkpoint")
    )
    _ok(f"checkpoint: {_describe(checkpoint)}")
    if entries_path is not None:
        lines: Iterator[bytes] = _file_lines(entries_path)
    elif remote is not None:
        lines = _remote_lines(remote, checkpoint.size)
    else:
        raise AuditFailure("give --entries, or --url and --token to download them.")
    accumulator = MerkleAccumulator()
    size = checkpoint.size
    with click.progressbar(length=size, label="replaying", file=sys.stderr) as bar:
        for line in lines:
            index = accumulator.size
            if index == size:
                click.echo(f"note: entries beyond #{size - 1} are not covered by this checkpoint")
                break
            try:
                parse_entry(line)
            except EntryError as exc:
                raise AuditFailure(
                    f"entry #{index} (line {index + 1}) does not parse: {exc}. Each line must be "
                    "one canonical entry (docs/AUDIT-FORMAT.md §1.3); download the entries again. "
                    "If the service serves it like this, report entry #{index}."
                ) from exc
            accumulator.append(leaf_hash(line))
            bar.update(1)
    if accumulator.size < size:
        raise AuditFailure(
            f"only {accumulator.size} entries for a checkpoint of {size}: download the entries "
            f"again (GET /audit/entries, start={accumulator.size})."
        )
    if accumulator.root() != checkpoint.root_hash:
        raise LogContradiction(
            f"ROOT MISMATCH: the {size} entries produce root {accumulator.root().hex()}, the "
            f"signed checkpoint says {checkpoint.root_hash.hex()}. An entry was changed, added "
            "or removed. Download the entries again; if the service serves them like this, "
            "report it with the checkpoint."
        )
    _ok(f"replay: {size} entries parse and produce the signed root")
    click.echo("REPLAYED: the entries are exactly those the checkpoint commits to.")


def _file_lines(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as fh:
            for line in fh:
                yield line[:-1] if line.endswith(b"\n") else line
    except OSError as exc:
        raise AuditFailure(f"cannot read {path} ({exc.strerror}).") from exc


def _remote_lines(remote: Remote, size: int) -> Iterator[bytes]:
    for start in range(0, size, PAGE):
        page = remote.json("/audit/entries", start=start, end=min(start + PAGE, size))
        for item in page.get("entries", []):
            yield str(item["entry"]).encode("utf-8")


@audit.command()
@click.option("--url", required=True, help="The service (issuer URL).")
@click.option(
    "--token", "auditor_token", required=True, envvar="TRUSTANCHOR_AUDIT_TOKEN", help="Audit token."
)
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--ref", "refs", multiple=True, help="Also fetch the inclusion proof of this jti.")
@click.option(
    "--since",
    "since_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also fetch the consistency proof from this kept checkpoint.",
)
@click.option("--no-entries", is_flag=True, help="Skip downloading every entry.")
@_pin
def fetch(
    url: str,
    auditor_token: str,
    out_dir: Path,
    refs: tuple[str, ...],
    since_path: Path | None,
    no_entries: bool,
    pins: tuple[str, ...],
) -> None:
    """Download keys.json, checkpoint.txt, entries.jsonl and proofs into OUT for offline use.
    With --pin, the checkpoint must verify with a pinned key (or one the log introduced from
    it) before anything is saved."""
    remote = Remote(url, auditor_token)
    keys_text = remote.get("/audit/keys")
    keys = parse_keys(keys_text, "GET /audit/keys", pins)
    note = remote.get("/audit/checkpoint", accept="text/plain")
    checkpoint = verify_signed_checkpoint(note, keys, "GET /audit/checkpoint")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "keys.json").write_text(keys_text, encoding="utf-8")
    (out_dir / "checkpoint.txt").write_text(note, encoding="utf-8")
    click.echo(f"checkpoint.txt: {_describe(checkpoint)}")
    if not no_entries:
        with (
            (out_dir / "entries.jsonl").open("wb") as fh,
            click.progressbar(length=checkpoint.size, label="downloading", file=sys.stderr) as bar,
        ):
            for line in _remote_lines(remote, checkpoint.size):
                fh.write(line + b"\n")
                bar.update(1)
        click.echo(f"entries.jsonl: {checkpoint.size} entries")
    for ref in refs:
        name = ref if _SAFE_REF.fullmatch(ref) else hashlib.sha256(ref.encode()).hexdigest()
        proof = _download_inclusion(remote, ref, checkpoint.size)
        (out_dir / f"proof-{name}.json").write_text(strict_json.dumps_canonical(proof) + "\n")
        click.echo(f"proof-{name}.json: entry #{proof['index']} under size {checkpoint.size}")
    if since_path is not None:
        old = verify_signed_checkpoint(_read(since_path), keys, str(since_path))
        if old.size <= checkpoint.size:
            data = remote.json("/audit/proof/consistency", old=old.size, new=checkpoint.size)
            (out_dir / "consistency.json").write_text(strict_json.dumps_canonical(data) + "\n")
            click.echo(f"consistency.json: {old.size} → {checkpoint.size}")
        else:
            click.echo(f"no consistency proof: the log is now smaller than {old.size} (rollback?)")
    click.echo(f"saved in {out_dir}; check offline with `trustanchor audit verify|check|replay`.")
