"""Service secrets (pairwise-subject key, cookie key). Production takes them from the settings
(environment); demo and test modes generate them once into ``<keys_dir>/secrets.json`` (0600)."""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from trustanchor.config.settings import Settings

FILE = "secrets.json"


@dataclass(frozen=True, slots=True)
class ServiceSecrets:
    pairwise: bytes
    cookie: bytes

    def __repr__(self) -> str:  # never print secrets
        return "ServiceSecrets(<redacted>)"


class SecretsMissing(Exception):
    pass


def load_secrets(settings: Settings, *, create: bool) -> ServiceSecrets:
    svc = settings.service
    if svc.pairwise_secret and svc.cookie_secret:
        return ServiceSecrets(svc.pairwise_secret.encode(), svc.cookie_secret.encode())
    if settings.is_production:
        raise SecretsMissing("set TRUSTANCHOR_SERVICE_PAIRWISE_SECRET and _COOKIE_SECRET")
    path = Path(svc.keys_dir) / FILE
    if not path.exists():
        if not create:
            raise SecretsMissing(f"{path} is missing: run `trustanchor init`")
        path.parent.mkdir(parents=True, exist_ok=True)
        data = {"pairwise": secrets.token_urlsafe(32), "cookie": secrets.token_urlsafe(32)}
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
    data = json.loads(path.read_text(encoding="utf-8"))
    return ServiceSecrets(
        (svc.pairwise_secret or data["pairwise"]).encode(),
        (svc.cookie_secret or data["cookie"]).encode(),
    )
