"""A demo person's phone, without its pages: the credentials prepare issued to them (each bound
to their holder key) and a :class:`~trustanchor.demo.holder.Holder` that answers the service —
the one verifier pre-registered with the demo wallet.

Used by the wallet's pages and by the launcher's seed step (:mod:`trustanchor.demo.autopilot`),
so that both present exactly the same credentials the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from .holder import HeldCredential, Holder, HttpClient, TrustedVerifier
from .issuer import IssuedCredential, credential_path, holder_key_path
from .issuer import load_ec_private_key as load_key
from .people import Person
from .site import DemoSite


def service_verifier(site: DemoSite, display_name: Mapping[str, str]) -> TrustedVerifier:
    """The service as pre-registered with the wallet: its client_id is its issuer identifier (no
    Client Identifier Prefix) and its Request Object keys are published at ``/jwks``."""
    parts = urlsplit(site.service_url)
    return TrustedVerifier(
        client_id=site.service_url,
        display_name=dict(display_name),
        origin=f"{parts.scheme}://{parts.netloc}",
        jwks_uri=site.service("/jwks"),
    )


def held_credentials(site: DemoSite, person: Person) -> list[HeldCredential]:
    """The person's credentials as prepare stored them. Raises ``ValueError`` (or
    :class:`~trustanchor.demo.issuer.IssuerError`) when they are missing or unreadable."""
    stored = IssuedCredential.load(credential_path(site.state_dir, person.id))
    key = load_key(holder_key_path(site.keys_dir, person.id))
    return [
        HeldCredential.parse(
            stored.credential,
            key,
            credential_id=f"{person.id}-{stored.anchor}",
            anchor_id=stored.anchor,
            issuer_name=stored.issuer_name,
        )
    ]


def holder(
    site: DemoSite,
    http: HttpClient,
    verifier: TrustedVerifier,
    *,
    allow_http_loopback: bool = True,
) -> Holder:
    """A holder answering only ``verifier``; ``http`` only ever on loopback hosts."""
    return Holder(
        http=http,
        clock=site.clock,
        randomness=site.randomness,
        verifiers=[verifier],
        allow_http_loopback=allow_http_loopback,
    )
