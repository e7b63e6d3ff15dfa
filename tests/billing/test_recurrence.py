"""The subscription calendar and catch-up rules (the workflow and the API preview both use these)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.errors import MoneyError
from billing.recurrence import (
    Cycle,
    Recurrence,
    cycles,
    decide_catch_up,
    due_cycles,
    local_midnight,
    next_cycles,
)


def dates(rec: Recurrence, count: int) -> list[str]:
    return [c.date.isoformat() for c in cycles(rec, count=count)]


def test_month_end_anchor_clamps_and_recovers() -> None:
    rec = Recurrence("month", 1, date(2026, 1, 31), "UTC", anchor_day=31)
    assert dates(rec, 5) == ["2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31"]


def test_anchor_after_the_start_day_starts_that_month_and_before_it_the_next() -> None:
    assert dates(Recurrence("month", 1, date(2026, 1, 10), "UTC", anchor_day=15), 2) == [
        "2026-01-15",
        "2026-02-15",
    ]
    assert dates(Recurrence("quarter", 1, date(2026, 1, 20), "UTC", anchor_day=15), 3) == [
        "2026-02-15",
        "2026-05-15",
        "2026-08-15",
    ]


def test_yearly_29_february_and_every_two_weeks() -> None:
    assert dates(Recurrence("year", 1, date(2028, 2, 29), "UTC"), 5) == [
        "2028-02-29",
        "2029-02-28",
        "2030-02-28",
        "2031-02-28",
        "2032-02-29",
    ]
    assert dates(Recurrence("week", 2, date(2026, 1, 5), "UTC"), 3) == [
        "2026-01-05",
        "2026-01-19",
        "2026-02-02",
    ]


def test_send_time_in_the_clients_timezone_across_dst() -> None:
    rec = Recurrence("month", 1, date(2026, 2, 28), "Europe/Berlin", send_time=time(9, 0), anchor_day=28)
    [feb, mar] = cycles(rec, count=2)
    assert feb.send_at == datetime(2026, 2, 28, 8, 0, tzinfo=UTC)  # CET
    assert mar.send_at == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # still CET (DST starts 29 March)
    apr = cycles(rec, from_index=2, count=1)[0]
    assert apr.send_at == datetime(2026, 4, 28, 7, 0, tzinfo=UTC)  # CEST


def test_end_date_and_max_cycles() -> None:
    assert dates(Recurrence("month", 1, date(2026, 1, 1), "UTC", end_date=date(2026, 3, 1)), 10) == [
        "2026-01-01",
        "2026-02-01",
        "2026-03-01",
    ]
    assert len(cycles(Recurrence("month", 1, date(2026, 1, 1), "UTC", max_cycles=4), count=10)) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interval": "day"}, "interval"),
        ({"interval_count": 0}, "interval_count"),
        ({"anchor_day": 32}, "anchor_day"),
        ({"interval": "week", "anchor_day": 3}, "weekday"),
        ({"end_date": date(2025, 1, 1)}, "end_date"),
        ({"timezone": "Moon/Base"}, "Moon/Base"),
        ({"max_cycles": 0}, "max_cycles"),
    ],
)
def test_invalid_calendars_are_refused(kwargs: dict, message: str) -> None:
    base = {"interval": "month", "interval_count": 1, "start_date": date(2026, 1, 1), "timezone": "UTC"}
    with pytest.raises(MoneyError, match=message):
        Recurrence(**(base | kwargs))


def test_next_cycles_skip_the_past() -> None:
    rec = Recurrence("month", 1, date(2026, 1, 1), "UTC")
    upcoming = next_cycles(rec, datetime(2026, 3, 15, tzinfo=UTC), count=2)
    assert [(c.index, c.date.isoformat()) for c in upcoming] == [(3, "2026-04-01"), (4, "2026-05-01")]


def test_local_midnight() -> None:
    rec = Recurrence("month", 1, date(2026, 1, 1), "America/New_York")
    assert local_midnight(rec, date(2026, 7, 4)) == datetime(2026, 7, 4, 4, 0, tzinfo=UTC)


def _due(now: datetime) -> list[Cycle]:
    return due_cycles(Recurrence("month", 1, date(2026, 1, 1), "UTC"), from_index=0, now=now)


@pytest.mark.parametrize(
    ("policy", "billed", "skipped"),
    [("all", [0, 1, 2, 3], []), ("latest", [3], [0, 1, 2]), ("none", [3], [0, 1, 2])],
)
def test_catch_up_policies(policy: str, billed: list[int], skipped: list[int]) -> None:
    now = datetime(2026, 4, 1, 12, 0, tzinfo=UTC)  # cycle 3 (1 April 09:00) is 3 h late: on time
    decision = decide_catch_up(_due(now), policy, now=now)
    assert [c.index for c in decision.bill] == billed
    assert [c.index for c in decision.skip] == skipped


def test_none_skips_everything_beyond_grace_and_latest_still_bills_one() -> None:
    now = datetime(2026, 4, 20, tzinfo=UTC)
    assert decide_catch_up(_due(now), "none", now=now).bill == ()
    assert [c.index for c in decide_catch_up(_due(now), "latest", now=now).bill] == [3]
    with pytest.raises(MoneyError, match="catch_up"):
        decide_catch_up(_due(now), "some", now=now)


@given(
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
    interval=st.sampled_from(["week", "month", "quarter", "year"]),
    count=st.integers(1, 4),
    anchor=st.one_of(st.none(), st.integers(1, 31)),
)
def test_cycles_are_strictly_increasing_on_or_after_start(
    start: date, interval: str, count: int, anchor: int | None
) -> None:
    if interval == "week":
        anchor = None
    rec = Recurrence(interval, count, start, "Europe/Berlin", anchor_day=anchor)
    found = cycles(rec, count=14)
    assert found[0].date >= start
    assert all(a.date < b.date and a.send_at < b.send_at for a, b in zip(found, found[1:], strict=False))
    if interval != "week":
        day = anchor or start.day
        for c in found:
            next_month_first = (c.date.replace(day=28) + timedelta(days=4)).replace(day=1)
            assert c.date.day == min(day, (next_month_first - timedelta(days=1)).day)
