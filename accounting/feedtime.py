"""Time helpers of the change feeds: cursors are UTC instants as ISO strings, read back with an overlap.

A poll hands out as its next cursor the moment it *started*, less an overlap, so a change committed at
the provider while the poll ran (or with a clock a little behind ours) is read again next time instead
of being missed; reading a change twice is harmless, payments are keyed by the provider's id.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

LOOKBACK = timedelta(days=1)  # a first poll (no cursor yet) reads the last day
OVERLAP = timedelta(minutes=2)
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def since(cursor: str | None, now: datetime) -> datetime:
    """The instant to read changes after: the cursor, or now minus the lookback on a first poll."""
    if not cursor:
        return now - LOOKBACK
    parsed = datetime.fromisoformat(cursor)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def next_cursor(started: datetime) -> str:
    return (started - OVERLAP).astimezone(UTC).isoformat()


def xero_date(value: object) -> date:
    """Xero's ``/Date(1552262400000+0000)/`` or an ISO date, as a date."""
    text = str(value or "")
    match = _MS_DATE.match(text)
    if match:
        return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC).date()
    return date.fromisoformat(text[:10])
