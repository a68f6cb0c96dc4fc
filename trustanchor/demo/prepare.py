"""Generate the demo ecosystem's keys once: for each demo trust anchor an issuer key (the
private half stays under keys/demo for the demo wallet issuer; the public JWKS is what the anchor
declaration in config/demo.toml points to), and a private_key_jwt key for the demo intermediary.

Idempotent: existing keys are kept. Refuses to run unless the configuration is in demo mode.

    python -m trustanchor.demo.prepare [--config config/demo.toml]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from trustanchor.config import ConfigError, load_settings
from trustanchor.jose.jwk import public_jwk, thumbprint

# (directory under keys/demo, name): issuers of the demo trust anchors and the demo bank's key.
DEMO_KEYS = (
    ("anchors", "jp-national-id"),
    ("anchors", "eu-pid"),
    ("clients", "demo-bank"),
)


def ensure_key(directory: Path, name: str) -> tuple[bool, Path]:
    """Create ``<name>.key.pem`` (0600) and ``<name>.jwks.json`` unless they exist."""
    directory.mkdir(parents=True, exist_ok=True)
    pem_path = directory / f"{name}.key.pem"
    jwks_path = directory / f"{name}.jwks.json"
    if pem_path.exists() and jwks_path.exists():
        return False, jwks_path
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(pem_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", default=os.environ.get("TRUSTANCHOR_CONFIG", "config/demo.toml")
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
    for message in prepare(Path(settings.service.keys_dir)):
        print(message)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
