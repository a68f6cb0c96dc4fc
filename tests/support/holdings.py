"""What a holder has after logging in and using the service, built at the repository level for
storage tests of issue 4's cascades: an identity recorded by a real SD-JWT VC login (the anchor
verifier, status list included), a deposit account and CBDC wallet bound through it and linked,
and an outstanding transfer grant whose decision relied on the anchor."""

from __future__ import annotations

from support.credentials import Issuer, Wallet
from trustanchor.anchors.base import Expectation
from trustanchor.anchors.fetcher import Fetcher
from trustanchor.anchors.sd_jwt_vc import SdJwtVcVerifier
from trustanchor.config.settings import LimitSettings
from trustanchor.domain.anchors import Anchor
from trustanchor.domain.identity import Identity
from trustanchor.storage import accounts_repo, grants_repo, identities_repo
from trustanchor.storage.database import Database

DEPOSIT = "acc_deposit0000000000"
WALLET = "acc_wallet00000000000"
LINK = "lnk_00000000000000000"
TRANSFER_GRANT = "grt_transfer"
NONCE = "n-0123456789abcdef"
AUD = "x509_san_dns:trustanchor.example"
LIMITS = LimitSettings(
    max_body_bytes=65536,
    max_jws_bytes=16384,
    max_json_depth=8,
    max_authorization_details=16,
    max_disclosures=128,
)


def subject_of(name: str) -> str:
    """The subject the anchor asserts: personal data, unlike the internal ids."""
    return f"jp-person-{name}-4711"


def log_in(
    database: Database,
    anchor: Anchor,
    issuer: Issuer,
    fetcher: Fetcher,
    name: str,
    *,
    status: tuple[str, int],
    at: int,
) -> Identity:
    """The login path: verify a fresh presentation (the status list fetched through ``fetcher``
    and checked), then record the identity with its status reference as ``idn_<name>`` of holder
    ``hol_<name>``; the credential's subject is :func:`subject_of` ``name``."""
    wallet = Wallet.generate()
    issuance = issuer.issue(
        wallet,
        claims={"sub": subject_of(name), "given_name": "Taro"},
        disclosable={"given_name"},
        iat=at - 60,
        status=status,
    )
    presentation = wallet.present(issuance, nonce=NONCE, aud=AUD, iat=at)
    verifier = SdJwtVcVerifier(anchor, fetcher=fetcher, limits=LIMITS, kb_max_age=300)
    verified = verifier.verify(presentation, expected=Expectation(nonce=NONCE, audience=AUD), at=at)
    assert verified.status_reference == {"uri": status[0], "idx": status[1]}
    with database.transaction() as conn:
        return identities_repo.record(
            conn,
            verified,
            new_holder_id=f"hol_{name}",
            new_identity_id=f"idn_{name}",
            now=at,
        )


def bind_accounts_and_grant(
    database: Database, identity: Identity, anchor_id: str, *, at: int
) -> None:
    """Bind DEPOSIT and WALLET through ``identity``, link them (LINK), and record an outstanding
    transfer grant (TRANSFER_GRANT) whose decision relied on ``anchor_id``."""
    with database.transaction() as conn:
        for account_id, kind in ((DEPOSIT, "bank_deposit"), (WALLET, "cbdc_wallet")):
            account, _ = accounts_repo.register(
                conn,
                account_id=account_id,
                client_id="bank",
                kind=kind,
                label=kind,
                reference_digest=f"ref-{kind}",
                now=at,
            )
            assert accounts_repo.bind(
                conn,
                account.id,
                registered_by="bank",
                holder_id=identity.holder_id,
                identity_id=identity.id,
                now=at,
            )
        accounts_repo.create_link(
            conn,
            link_id=LINK,
            holder_id=identity.holder_id,
            deposit_account_id=DEPOSIT,
            wallet_account_id=WALLET,
            now=at,
        )
        transfer = {
            "type": "value_transfer",
            "instructed_amount": {"currency": "JPY", "amount": "5000"},
            "debtor_account": WALLET,
            "creditor_account": "acc_other00000000000",
        }
        grants_repo.create_grant(
            conn,
            TRANSFER_GRANT,
            "bank",
            identity.holder_id,
            {
                "scope": [],
                "claims": None,
                "authorization_details": [transfer],
                "authentication": None,
                "subject": "pairwise-sub",
                "nonce": None,
                "anchor_set_id": "jp-cbdc",
            },
            now=at,
            expires_at=at + 86400,
        )
        grants_repo.record_reliance(
            conn, TRANSFER_GRANT, anchor_set_id="jp-cbdc", anchor_ids=[anchor_id], link_id=None
        )
