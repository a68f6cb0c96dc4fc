"""The demo bank: an intermediary that is a proper OAuth client of the service (PAR, PKCE,
private_key_jwt, DPoP, authorization_details). ``client`` speaks to the service (no Flask),
``store`` keeps the bank's state, ``pages`` is the ``/bank`` blueprint of the parties app."""
