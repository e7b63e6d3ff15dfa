"""Reminder schedules: DST-correct UTC instants, escalation, not_before, validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from billing.errors import MoneyError
from billing.reminders import (
    DEFAULT_REMINDER_OFFSETS,
    ReminderStep,
    ScheduleError,
    parse_offsets,
    reminder_schedule,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_default_offsets() -> None:
    assert DEFAULT_REMINDER_OFFSETS == (-3, 0, 7, 14, 30)


def test_berlin_schedule_across_spring_forward() -> None:
    # Berlin switches from CET (UTC+1) to CEST (UTC+2) on 2026-03-29.
    steps = reminder_schedule(date(2026, 3, 28), DEFAULT_REMINDER_OFFSETS, "Europe/Berlin")
    assert steps == (
        ReminderStep("reminder", -3, date(2026, 3, 25), utc(2026, 3, 25, 8)),
        ReminderStep("reminder", 0, date(2026, 3, 28), utc(2026, 3, 28, 8)),
        ReminderStep("reminder", 7, date(2026, 4, 4), utc(2026, 4, 4, 7)),
        ReminderStep("reminder", 14, date(2026, 4, 11), utc(2026, 4, 11, 7)),
        ReminderStep("reminder", 30, date(2026, 4, 27), utc(2026, 4, 27, 7)),
        ReminderStep("escalation", 30, date(2026, 4, 27), utc(2026, 4, 27, 8)),
    )
    for step in steps:
        assert step.send_at.utcoffset() == timedelta(0)
        assert step.send_at.astimezone(ZoneInfo("Europe/Berlin")).hour == (
            9 if step.kind == "reminder" else 10
        )


def test_berlin_nonexistent_and_ambiguous_hours() -> None:
    # 02:00 does not exist on 2026-03-29: fold=0 takes the pre-change offset, i.e. 03:00 CEST.
    [spring] = reminder_schedule(date(2026, 3, 29), (0,), "Europe/Berlin", send_hour=2, escalate=False)
    assert spring.send_at == utc(2026, 3, 29, 1)
    # 02:00 happens twice on 2026-10-25: fold=0 takes the first one, still CEST (UTC+2).
    [autumn] = reminder_schedule(date(2026, 10, 25), (0,), "Europe/Berlin", send_hour=2, escalate=False)
    assert autumn.send_at == utc(2026, 10, 25, 0)


def test_new_york_schedule_across_both_changes() -> None:
    # New York: EST (UTC-5) → EDT (UTC-4) on 2026-03-08, back to EST on 2026-11-01.
    spring = reminder_schedule(date(2026, 3, 6), (-1, 0, 3), "America/New_York")
    assert [(s.kind, s.local_date, s.send_at) for s in spring] == [
        ("reminder", date(2026, 3, 5), utc(2026, 3, 5, 14)),
        ("reminder", date(2026, 3, 6), utc(2026, 3, 6, 14)),
        ("reminder", date(2026, 3, 9), utc(2026, 3, 9, 13)),
        ("escalation", date(2026, 3, 9), utc(2026, 3, 9, 14)),
    ]
    autumn = reminder_schedule(date(2026, 10, 31), (0, 1), "America/New_York", escalate=False)
    assert [s.send_at for s in autumn] == [utc(2026, 10, 31, 13), utc(2026, 11, 1, 14)]
    [gap] = reminder_schedule(date(2026, 3, 8), (0,), "America/New_York", send_hour=2, escalate=False)
    assert gap.send_at == utc(2026, 3, 8, 7)  # 03:00 EDT
    [twice] = reminder_schedule(date(2026, 11, 1), (0,), "America/New_York", send_hour=1, escalate=False)
    assert twice.send_at == utc(2026, 11, 1, 5)  # the first 01:00, still EDT


def test_offsets_are_sorted_and_escalation_follows_the_last_reminder() -> None:
    steps = reminder_schedule(date(2026, 6, 15), [14, -3, 0], "Asia/Kolkata", send_hour=10)
    assert [(s.kind, s.offset_days) for s in steps] == [
        ("reminder", -3),
        ("reminder", 0),
        ("reminder", 14),
        ("escalation", 14),
    ]
    assert steps[0].send_at == utc(2026, 6, 12, 4, 30)  # 10:00 IST = 04:30 UTC
    assert steps[-1].send_at - steps[-2].send_at == timedelta(hours=1)
    assert steps[-1].local_date == steps[-2].local_date == date(2026, 6, 29)


def test_escalate_false_and_empty_offsets() -> None:
    steps = reminder_schedule(date(2026, 6, 15), (0, 7), "UTC", escalate=False)
    assert [s.kind for s in steps] == ["reminder", "reminder"]
    assert reminder_schedule(date(2026, 6, 15), (), "UTC") == ()


def test_not_before_drops_steps_in_the_past() -> None:
    due = date(2026, 1, 10)
    everything = reminder_schedule(due, (-3, 0, 7), "UTC")
    assert len(everything) == 4
    # Issued exactly when the due-date reminder would fire: that one is dropped too (send_at <= not_before).
    late = reminder_schedule(due, (-3, 0, 7), "UTC", not_before=utc(2026, 1, 10, 9))
    assert [(s.kind, s.offset_days) for s in late] == [("reminder", 7), ("escalation", 7)]
    just_before = reminder_schedule(due, (-3, 0, 7), "UTC", not_before=utc(2026, 1, 10, 8, 59, 59))
    assert [s.offset_days for s in just_before] == [0, 7, 7]
    # An aware datetime in another zone is the same instant: 10:00 Berlin = 09:00 UTC.
    berlin = datetime(2026, 1, 10, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    assert reminder_schedule(due, (-3, 0, 7), "UTC", not_before=berlin) == late
    only_escalation = reminder_schedule(due, (-3, 0, 7), "UTC", not_before=utc(2026, 1, 17, 9, 30))
    assert [(s.kind, s.send_at) for s in only_escalation] == [("escalation", utc(2026, 1, 17, 10))]
    assert reminder_schedule(due, (-3, 0, 7), "UTC", not_before=utc(2026, 1, 17, 10)) == ()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offsets": (1, 1)}, r"^reminder_offsets: each day may appear only once, repeated: 1$"),
        ({"offsets": (366,)}, r"^reminder_offsets: 366 is outside -365..365 days$"),
        ({"offsets": (-366,)}, r"^reminder_offsets: -366 is outside"),
        ({"offsets": (True,)}, r"^reminder_offsets: True is not a whole number of days$"),
        ({"offsets": (1.5,)}, r"^reminder_offsets: 1.5 is not a whole number of days$"),
        ({"offsets": "0,7"}, r"^reminder_offsets: expected a list"),
        ({"timezone": "Mars/Base"}, r"^timezone: unknown IANA timezone 'Mars/Base'"),
        ({"timezone": "../../etc/passwd"}, r"^timezone: unknown IANA timezone"),
        ({"timezone": ""}, r"^timezone: expected an IANA timezone"),
        ({"send_hour": 24}, r"^send_hour: must be a whole hour from 0 to 23, got 24$"),
        ({"send_hour": -1}, r"^send_hour: "),
        ({"send_hour": True}, r"^send_hour: "),
        ({"not_before": datetime(2026, 1, 1)}, r"^not_before: must be a timezone-aware datetime"),
    ],
)
def test_schedule_validation(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"due_date": date(2026, 1, 1), "offsets": (0,), "timezone": "UTC"} | kwargs
    with pytest.raises(ScheduleError, match=message) as error:
        reminder_schedule(**arguments)  # type: ignore[arg-type]
    assert isinstance(error.value, ValueError)


def test_offset_limits_are_inclusive() -> None:
    steps = reminder_schedule(date(2026, 1, 1), (-365, 365), "UTC", escalate=False)
    assert [s.local_date for s in steps] == [date(2025, 1, 1), date(2027, 1, 1)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("-3,0,7,14,30", (-3, 0, 7, 14, 30)),
        (" 14, -3,0 ", (-3, 0, 14)),
        ("", ()),
        ("  ", ()),
        ("+7", (7,)),
        ("365,-365", (-365, 365)),
    ],
)
def test_parse_offsets(text: str, expected: tuple[int, ...]) -> None:
    assert parse_offsets(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1,x", r"'x' is not a whole number of days"),
        ("3.5", r"'3.5' is not a whole number of days"),
        ("1_0", r"'1_0' is not a whole number of days"),
        ("٣", r"'٣' is not a whole number of days"),
        ("1 2", r"'1 2' is not a whole number of days"),
        ("1,,2", r"entry 2 is empty"),
        ("0,7,", r"entry 3 is empty"),
        ("7,0,7", r"only once, repeated: 7$"),
        ("400", r"400 is outside -365..365 days"),
    ],
)
def test_parse_offsets_rejects_garbage(text: str, message: str) -> None:
    with pytest.raises(MoneyError, match=r"^reminder_offsets: .*" + message):
        parse_offsets(text)
