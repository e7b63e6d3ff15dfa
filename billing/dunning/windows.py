"""Send windows on the client's wall clock (zoneinfo), including DST gaps and folds; see the package
docstring for the rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from billing.dunning.policy import _SEARCH_DAYS, SendWindow
from billing.errors import DunningError

# ---------------------------------------------------------------- wall-clock arithmetic


def _zone(timezone: str) -> ZoneInfo:
    if not isinstance(timezone, str) or not timezone.strip():
        raise DunningError(f"timezone: expected an IANA timezone such as 'Europe/Berlin', got {timezone!r}")
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise DunningError(f"timezone: unknown IANA timezone {timezone!r}") from None


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise DunningError(f"{name}: expected a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _reading(instant: datetime, zone: ZoneInfo) -> datetime:
    """What the client's wall clock shows at ``instant`` (naive)."""
    return instant.astimezone(zone).replace(tzinfo=None)


def _inside(instant: datetime, window: SendWindow, zone: ZoneInfo) -> bool:
    local = instant.astimezone(zone)
    return local.weekday() in window.weekdays and window.start <= local.time() < window.end


def _occurrences(local: datetime, zone: ZoneInfo) -> list[datetime]:
    """The UTC instants at which the clock shows ``local``: one, two (fall-back) or none (spring-forward)."""
    found: list[datetime] = []
    for fold in (0, 1):
        instant = local.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        if _reading(instant, zone) == local and instant not in found:
            found.append(instant)
    return sorted(found)


def _transition(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The first second after ``before`` at which the zone's offset is already that of ``after``
    (binary search, deterministic; zoneinfo has no public list of transitions)."""
    target = after.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, UTC).astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)


def _first_at_or_after(local: datetime, zone: ZoneInfo) -> datetime:
    """The earliest instant at which the clock shows ``local`` or later: its first occurrence, or, for a
    time skipped by a spring-forward change, the moment the clocks jump."""
    found = _occurrences(local, zone)
    if found:
        return found[0]
    # In a gap fold=1 uses the later (larger) offset, so it is the earlier instant: the jump lies between.
    a = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    b = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _transition(min(a, b), max(a, b), zone)


def _openings(day: date, window: SendWindow, zone: ZoneInfo) -> list[datetime]:
    """Every instant at which the window can open on ``day``: the clock reaching ``start`` (each time
    it does), and the clocks going back into the window after it had closed (``end`` repeated)."""
    start = datetime.combine(day, window.start)
    found = [_first_at_or_after(start, zone), *_occurrences(start, zone)]
    ends = _occurrences(datetime.combine(day, window.end), zone)
    if len(ends) == 2:
        found.append(_transition(ends[0], ends[1], zone))
    return found


def _next_in_window(instant: datetime, window: SendWindow, zone: ZoneInfo) -> datetime:
    if _inside(instant, window, zone):
        return instant
    today = _reading(instant, zone).date()
    best: datetime | None = None
    for n in range(-1, _SEARCH_DAYS):
        day = today + timedelta(days=n)
        if day.weekday() not in window.weekdays:
            continue
        for candidate in _openings(day, window, zone):
            if (
                candidate > instant
                and _inside(candidate, window, zone)
                and (best is None or candidate < best)
            ):
                best = candidate
    if best is None:
        raise DunningError(f"send_window: does not open within {_SEARCH_DAYS} days in {zone.key}")
    return best


def next_in_window(instant_utc: datetime, window: SendWindow, timezone: str) -> datetime:
    """The earliest instant at or after ``instant_utc`` at which the client's wall clock in ``timezone``
    shows an allowed weekday and a time in ``[window.start, window.end)``, as an aware UTC datetime.

    An instant already inside is returned unchanged (seconds included), so the function is idempotent
    and monotonic: a later input never gives an earlier slot. DST: see the module docstring."""
    return _next_in_window(_aware(instant_utc, "instant_utc"), window, _zone(timezone))
