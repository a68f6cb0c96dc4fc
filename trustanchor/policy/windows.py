"""Where the window of a cumulative rule starts, for an instant (docs/POLICY.md, "Cumulative
limits").

A window is counted in buckets: ``calendar_day`` and ``calendar_month`` have one bucket each,
starting at local midnight (of the first of the month) in the anchor set's time zone, so
"today" is the day the people of that jurisdiction call today; ``rolling_24h`` ("the last 24
hours") is the sum of the last 24 hourly buckets, the current hour included, so a transfer is
counted for between 23 and 24 hours (a precision of one hour, for a fixed number of rows). Pure:
the instant and the zone are given.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Final
from zoneinfo import ZoneInfo

HOUR: Final = 3600
ROLLING_BUCKETS: Final = 24


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def bucket_start(window: str, at: int, time_zone: str) -> int:
    """The start (epoch seconds) of the bucket ``at`` falls in."""
    if window == "rolling_24h":
        return at - at % HOUR
    zone = _zone(time_zone)
    local = datetime.fromtimestamp(at, UTC).astimezone(zone).date()
    if window == "calendar_month":
        local = local.replace(day=1)
    elif window != "calendar_day":
        raise ValueError(f"unknown window {window!r}")
    return int(datetime.combine(local, time(0), tzinfo=zone).timestamp())


def earliest_bucket(window: str, at: int, time_zone: str) -> int:
    """The start of the oldest bucket the window at ``at`` sums (the bucket itself for a
    calendar window, 23 hours before the current hour for ``rolling_24h``)."""
    start = bucket_start(window, at, time_zone)
    if window == "rolling_24h":
        return start - (ROLLING_BUCKETS - 1) * HOUR
    return start
