"""Pairwise subject identifiers (OIDC Core §8.1): the same person looks different to each sector."""

from __future__ import annotations

from trustanchor.digests import keyed_digest


def pairwise_subject(secret: bytes, sector_identifier: str, holder_id: str) -> str:
    return keyed_digest(secret, "pairwise-v1", sector_identifier, holder_id)
