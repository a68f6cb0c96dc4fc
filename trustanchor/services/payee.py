"""Who a payment goes to, in words a person recognises, and no more than the payee's own bank
would show: the label the payee's intermediary registered for the account (another party's
free text, so bounded and stripped of anything but printable characters here, escaped by the
page), beside that intermediary's registered name and a masked account reference.

The consent page shows it, and the transaction data a wallet signs for a transfer carries the
same words (``openid4vp/transaction_data.py``), so that what the person approves on the phone is
what the page showed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from sqlalchemy import Connection

from trustanchor.services.container import Services
from trustanchor.storage import accounts_repo

MAX_SHOWN_LABEL = 40
MASK_VISIBLE = 4
MAX_COMBINING = 2  # marks kept after one base character ("stacked" marks hide what is under)
# Letters that show as nothing (Unicode Default_Ignorable_Code_Point letters and fillers outside
# the C categories, and the Braille blank): a label must not hide text in them.
_INVISIBLE = frozenset(
    {0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x2800, 0x3164, 0xFFA0}
    | set(range(0x180B, 0x1810))
    | set(range(0xFE00, 0xFE10))
    | set(range(0xE0100, 0xE01F0))
)
_COMBINING_RUN = re.compile(
    r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{3,}"
)


@dataclass(frozen=True, slots=True)
class Payee:
    """``label``: the registered label, at most :data:`MAX_SHOWN_LABEL` characters (clipped
    with "…"); ``intermediary``: the display name of the intermediary that registered the
    account, in the asked language; ``account_reference``: the account id masked to its last
    :data:`MASK_VISIBLE` characters ("…8Q2x")."""

    label: str
    intermediary: str
    account_reference: str


def shown_label(label: str) -> str:
    """The label as shown: NFC, white space (line breaks and tabs included) as one space,
    other control and format characters and invisible letters dropped, runs of combining marks
    cut to :data:`MAX_COMBINING`, at most :data:`MAX_SHOWN_LABEL` characters. (Look-alike
    letters of other scripts stay: the page says whose bank registered the label.)"""
    text = unicodedata.normalize("NFC", label)
    # Line breaks and tabs separate words ("Refund\nfrom" is two words); other control and
    # format characters (bidi overrides among them) are dropped.
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or (unicodedata.category(ch)[0] != "C" and ord(ch) not in _INVISIBLE)
    )
    text = _COMBINING_RUN.sub(lambda m: m.group(0)[:MAX_COMBINING], text)
    text = " ".join(text.split())
    if len(text) > MAX_SHOWN_LABEL:
        text = text[: MAX_SHOWN_LABEL - 1] + "…"
    return text


def masked_reference(account_id: str) -> str:
    return "…" + account_id[-MASK_VISIBLE:]


def describe(
    services: Services, conn: Connection, account_id: str, *, language: str
) -> Payee | None:
    """The payee of ``account_id``, or None for an account we do not know."""
    account = accounts_repo.get(conn, account_id)
    if account is None:
        return None
    client = services.clients.get(account.client_id)
    intermediary = client.name(language) if client is not None else account.client_id
    return Payee(
        label=shown_label(account.label),
        intermediary=shown_label(intermediary),
        account_reference=masked_reference(account.id),
    )
