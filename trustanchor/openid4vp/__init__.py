"""The verifier side of OpenID for Verifiable Presentations 1.0 (OpenID4VP), for wallet login.

One module per concept, no Flask, time passed in:

- ``dcql``: the Digital Credentials Query Language query we send (build + strict validation);
- ``request_object``: our identity towards wallets (Client Identifier Prefix) and the signed
  Request Object served at the ``request_uri`` (JAR, ``typ`` ``oauth-authz-req+jwt``);
- ``links``: the authorization request URL for the QR code and the same-device link;
- ``response``: parsing the wallet's ``direct_post`` response and the JSON we answer with.

The presentation itself (SD-JWT VC + Key Binding JWT) is verified elsewhere, by the anchor's
verifier, against that anchor's keys only.
"""
