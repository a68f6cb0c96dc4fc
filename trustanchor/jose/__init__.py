"""JOSE building blocks shared by every protocol module: strict JWK import, compact JWS parsing
with hard limits, signature verification with an explicit algorithm allow-list, and signing.

Signatures are verified by pyca/cryptography, called directly with the parameters PyJWT's
algorithm objects used (``jws.verify_signature``); ``jws.sign`` is PyJWT's and ``jws_encoder``
the direct encoder of our tokens. The checks around them (sizes, header rules, key sanity) are
ours so they are identical for DPoP proofs, client assertions, credentials and tokens.
"""

from trustanchor.jose.errors import JoseError

__all__ = ["JoseError"]
