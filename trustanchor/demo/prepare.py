"""Generate the demo ecosystem's keys once: for each demo trust anchor an issuer key (the
private half stays under keys/demo for the demo wallet issuer; the public JWKS is what the anchor
declaration in config/demo.toml points to), a private_key_jwt key for the demo intermediary (and
its branch counter), and one for the demo ledger, which authenticates with it to the service's
introspection endpoint.
Then the demo wallet's part: a holder key per demo person (keys/demo/holders/<person>.key.pem)
and each person's SD-JWT VC, issued by their anchor's key into
var/demo/credentials/<person>.json.

Idempotent: existing keys are kept; a credential is issued again only when it is missing, no
longer matches the keys, the anchor declaration or the person's data, or expires within 30 days
(so deleting var/demo/credentials and running this again reproduces them from the keys). Refuses
to run unless the configuration is in demo mode.

    python -m trustanchor.demo.prepare [--config config/demo.toml] [--state-dir var/demo]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustanchor.clock import Clock, SystemClock
from trustanchor.config import ConfigError, Settings, load_settings
from trustanchor.jose.jwk import public_jwk, thumbprint
from trustanchor.randomness import Randomness, SystemRandomness

from .holder import HeldCredential
from .issuer import (
    AnchorIssuer,
    IssuedCredential,
    IssuerError,
    credential_path,
    holder_key_path,
    issue_for_person,
    load_ec_private_key,
)
from .jpki_ca import prepare_jpki
from .people import PeopleError, Person, load_people

DEFAULT_STATE_DIR = "var/demo"
RENEW_BEFORE = 30 * 86400  # a credential expiring sooner than this is issued again
# (directory under keys/demo, name): issuers of the demo trust anchors and the demo bank's key.
DEMO_KEYS = (
    ("anchors", "jp-national-id"),
    ("anchors", "eu-pid"),
    ("clients", "demo-bank"),
    ("clients", "demo-bank-branch"),  # the branch's counter terminal (branch.py)
    # The demo ledger's introspection client (ledger_desk.py). Made at the next start of a demo
    # prepared before the ledger introspected: every key missing here is created, none replaced.
    ("clients", "demo-ledger"),
    ("ekyc-bank", "op-signing"),  # the demo eKYC bank's ID token key (ekyc_op.py)
)


def ensure_key(directory: Path, name: str) -> tuple[bool, Path]:
    """Create ``<name>.key.pem`` (0600) and ``<name>.jwks.json`` unless they exist."""
    directory.mkdir(parents=True, exist_ok=True)
    pem_path = directory / f"{name}.key.pem"
    jwks_path = directory / f"{name}.jwks.json"
    if pem_path.exists() and jwks_path.exists():
        return False, jwks_path
    key = _new_private_key(pem_path, replace=True)  # a key without its JWKS is replaced
    jwk = public_jwk(key)
    entry = {**jwk, "kid": thumbprint(jwk), "alg": "ES256", "use": "sig"}
    jwks_path.write_text(json.dumps({"keys": [entry]}, indent=2) + "\n", encoding="utf-8")
    return True, jwks_path


def prepare(demo_root: Path) -> list[str]:
    messages = []
    for group, name in DEMO_KEYS:
        created, path = ensure_key(demo_root / group, name)
        messages.append(f"{'created' if created else 'kept'} {path}")
    return messages


def ensure_private_key(path: Path) -> bool:
    """Create a P-256 private key at ``path`` (PEM, 0600) unless one exists; True if created."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    _new_private_key(path, replace=False)
    return True


def _new_private_key(path: Path, *, replace: bool) -> ec.EllipticCurvePrivateKey:
    """A new P-256 key written to ``path`` as PKCS#8 PEM, readable by its owner only (0600);
    without ``replace`` an existing file is an error (O_EXCL), never overwritten."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if replace else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key


def prepare_wallet(
    settings: Settings,
    *,
    keys_dir: Path,
    state_dir: Path,
    clock: Clock,
    randomness: Randomness,
    people: tuple[Person, ...] | None = None,
) -> list[str]:
    """Holder keys and credentials of the demo people (after :func:`prepare` made the anchor
    keys). Raises :class:`IssuerError` when an anchor cannot issue (say, keys missing)."""
    messages = []
    issuers: dict[str, AnchorIssuer] = {}
    for person in people if people is not None else load_people():
        if not person.smartphone:
            continue  # no phone, no wallet credential (their My Number Card: jpki_ca)
        key_path = holder_key_path(keys_dir, person.id)
        created = ensure_private_key(key_path)
        messages.append(f"{'created' if created else 'kept'} {key_path}")
        holder_key = load_ec_private_key(key_path)
        if person.anchor not in issuers:
            issuers[person.anchor] = AnchorIssuer.from_settings(
                settings, person.anchor, keys_dir=keys_dir
            )
        anchor_issuer = issuers[person.anchor]
        path = credential_path(state_dir, person.id)
        if _credential_current(path, person, anchor_issuer, holder_key, now=clock.now()):
            messages.append(f"kept {path}")
            continue
        issue_for_person(
            person, anchor_issuer, holder_key, clock=clock, randomness=randomness
        ).save(path)
        messages.append(f"issued {path}")
    return messages


def _credential_current(
    path: Path,
    person: Person,
    anchor_issuer: AnchorIssuer,
    holder_key: ec.EllipticCurvePrivateKey,
    *,
    now: int,
) -> bool:
    """Whether the stored credential still fits the keys, the declaration and the person."""
    try:
        stored = IssuedCredential.load(path)
        held = HeldCredential.parse(
            stored.credential,
            holder_key,
            credential_id=person.id,
            anchor_id=stored.anchor,
            issuer_name=stored.issuer_name,
        )
    except (IssuerError, ValueError):
        return False
    return (
        stored.person == person.id
        and stored.anchor == anchor_issuer.anchor_id
        and stored.issuer_kid == anchor_issuer.kid
        and dict(stored.issuer_name) == dict(anchor_issuer.display_name)
        and held.issuer == anchor_issuer.issuer
        and held.vct == anchor_issuer.vct
        and held.disclosable_claims() == person.credential_claims()
        and stored.expires_at - now > RENEW_BEFORE
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=os.environ.get("TRUSTANCHOR_CONFIG", "config/demo.toml")
    )
    parser.add_argument(
        "--state-dir",
        default=DEFAULT_STATE_DIR,
        help="the demo parties' state (credentials are written to <state-dir>/credentials)",
    )
    args = parser.parse_args(argv)
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    if settings.service.mode != "demo":
        print("refusing: the demo keys are only for a configuration in demo mode", file=sys.stderr)
        return 2
    keys_dir = Path(settings.service.keys_dir)  # absolute: shown relative to here if below
    if keys_dir.is_relative_to(Path.cwd()):
        keys_dir = keys_dir.relative_to(Path.cwd())
    for message in prepare(keys_dir):
        print(message)
    try:
        messages = prepare_wallet(
            settings,
            keys_dir=keys_dir,
            state_dir=Path(args.state_dir),
            clock=SystemClock(),
            randomness=SystemRandomness(),
        )
    except (IssuerError, PeopleError) as exc:
        print(f"cannot issue the demo credentials: {exc}", file=sys.stderr)
        return 2
    for message in messages:
        print(message)
    # The demo JPKI-style CA and the My Number Cards of the demo people (trustanchor.demo.jpki_ca).
    for message in prepare_jpki(keys_dir, SystemClock()):
        print(message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
