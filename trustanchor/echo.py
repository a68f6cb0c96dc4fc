"""What of a caller's input an answer or a log line may repeat back.

A name the caller chose (a parameter's, a JSON member's) is repeated in an ``error_description``
only when it is :func:`echoable`: 1 to :data:`ECHO_MAX` characters of ``A-Z a-z 0-9 _ . ~ -``,
all of them characters RFC 6749 §5.2 allows there. Anything else is described without it ("a
parameter is repeated"), so that no request can put line breaks, markup or kilobytes into an
answer or a log line (the attack report of 2026-12-07, F2: 32 KB echoed per request, and forged
log lines)."""

from __future__ import annotations

import re

ECHO_MAX = 40
_ECHOABLE = re.compile(r"[A-Za-z0-9_.~-]{1,40}", re.ASCII)


def echoable(value: str) -> bool:
    """Whether ``value`` (a name the caller chose) may be repeated as it is."""
    return _ECHOABLE.fullmatch(value) is not None
