"""The token endpoint's grants, one small module each (node-oidc-provider's
``lib/actions/grants/`` is the model): ``authorization_code``, ``refresh_token`` (a standing
authorization's movements included) and ``client_credentials``. Each exposes ``grant(services,
client, form, proof, at)``; ``services/token.py`` authenticates the client, checks the grant
type and the DPoP proof once, and dispatches through its table. Tokens are minted in one place,
:mod:`trustanchor.services.grants.issuing`."""
