"""The ledger side of a value transfer or a funding movement: a resource-server module for the
system that moves the money (another organisation's ledger), usable without Flask and without the
service's database.

It verifies a DPoP-bound JWT access token issued by trustanchor, checks the concrete transfer
instruction against the token's ``value_transfer`` authorization_details (or the concrete funding
instruction against its ``funding`` entry), and spends the token once. Every refusal is
:class:`LedgerRefusal` with a stable ``reason`` (docs/LEDGER.md lists them). Depends only on the
framework-free parts of trustanchor (jose, oauth.dpop, oauth.value_transfer, oauth.funding,
domain.money) and SQLAlchemy Core for the optional SQL replay store.
"""

from trustanchor.ledger.authorize import (
    Introspector,
    authorize_funding,
    authorize_transfer,
    consume_token,
    require_active,
)
from trustanchor.ledger.errors import REASONS, LedgerRefusal
from trustanchor.ledger.funding_check import ApprovedFunding, FundingInstruction, check_funding
from trustanchor.ledger.keys import JwksCache, KeySource, StaticJwks
from trustanchor.ledger.replay_store import (
    TOKEN_NAMESPACE,
    InMemoryReplayStore,
    ReplayStore,
    SqlReplayStore,
    replay_table,
)
from trustanchor.ledger.token_check import LedgerTokenVerifier, VerifiedAccessToken
from trustanchor.ledger.transfer_check import ApprovedTransfer, TransferInstruction, check_transfer

__all__ = [
    "REASONS",
    "TOKEN_NAMESPACE",
    "ApprovedFunding",
    "ApprovedTransfer",
    "FundingInstruction",
    "InMemoryReplayStore",
    "Introspector",
    "JwksCache",
    "KeySource",
    "LedgerRefusal",
    "LedgerTokenVerifier",
    "ReplayStore",
    "SqlReplayStore",
    "StaticJwks",
    "TransferInstruction",
    "VerifiedAccessToken",
    "authorize_funding",
    "authorize_transfer",
    "check_funding",
    "check_transfer",
    "consume_token",
    "replay_table",
    "require_active",
]
