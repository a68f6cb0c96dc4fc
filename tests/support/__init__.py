"""Test-side helpers shared by unit and end-to-end flow tests (independent implementations of
the parties the service talks to: credential issuers, wallets, ...)."""
