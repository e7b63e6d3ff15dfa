"""Dunning policies: send windows across DST, schedules, merging, holds, late fees, JSON validation."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, localcontext
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.currency import MINOR_UNITS
from billing.dunning import (
    DEFAULT_POLICY,
    DEFAULT_SEND_WINDOW,
    MAX_FEE_APPLICATIONS,
    DunningPolicy,
    DunningStep,
    Escalation,
    LateFee,
    ScheduledReminder,
    SendWindow,
    dunning_schedule,
    late_fees,
    next_in_window,
    payment_hold,
    policy_from_dict,
    policy_to_dict,
    reminders_after_hold,
)
from billing.errors import DunningError, MoneyError

D = Decimal
EVERY_DAY = tuple(range(7))
LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def policy(
    *offsets: int, window: SendWindow = DEFAULT_SEND_WINDOW, escalation: Escalation | None = None
) -> DunningPolicy:
    tones = ("friendly", "firm", "final")
    steps = tuple(DunningStep(o, f"step{o}", tones[min(i, 2)]) for i, o in enumerate(offsets))
    return DunningPolicy("test", steps, send_window=window, escalation=escalation)


def instants(schedule: list[ScheduledReminder]) -> list[tuple[int, datetime]]:
    return [(r.offset_days, r.send_at) for r in schedule]


def inside(instant: datetime, window: SendWindow, timezone: str) -> bool:
    """Independent of the module: what the client's wall clock shows."""
    local = instant.astimezone(ZoneInfo(timezone))
    return local.weekday() in window.weekdays and window.start <= local.time() < window.end


# ---------------------------------------------------------------- concrete schedules


def test_saturday_step_goes_out_on_monday_at_nine_in_berlin() -> None:
    # 2026-05-15 is a Friday; +1 is Saturday. Monday 09:00 CEST (UTC+2) is 07:00 UTC.
    [summer] = dunning_schedule(policy(1), date(2026, 5, 15), "Europe/Berlin", LONG_AGO)
    assert (summer.local_date, summer.send_at, summer.offset_days) == (
        date(2026, 5, 18),
        utc(2026, 5, 18, 7),
        1,
    )
    # In winter (CET, UTC+1) the same rule gives 08:00 UTC.
    [winter] = dunning_schedule(policy(1), date(2026, 1, 16), "Europe/Berlin", LONG_AGO)
    assert (winter.local_date, winter.send_at) == (date(2026, 1, 19), utc(2026, 1, 19, 8))


def test_new_york_90_days_across_the_march_change() -> None:
    # Due Monday 2026-03-02; EST (UTC-5) until Sunday 2026-03-08, EDT (UTC-4) after.
    schedule = dunning_schedule(
        policy(-7, 0, 4, 6, 14, 30, 60, 83), date(2026, 3, 2), "America/New_York", LONG_AGO
    )
    assert instants(schedule) == [
        (-7, utc(2026, 2, 23, 14)),
        (0, utc(2026, 3, 2, 14)),
        (4, utc(2026, 3, 6, 14)),  # Friday, still EST
        (6, utc(2026, 3, 9, 13)),  # the DST Sunday itself moves to Monday, now EDT
        (14, utc(2026, 3, 16, 13)),
        (30, utc(2026, 4, 1, 13)),
        (60, utc(2026, 5, 1, 13)),
        (83, utc(2026, 5, 25, 13)),  # Sunday 2026-05-24 → Monday
    ]


def test_new_york_90_days_across_october_and_november() -> None:
    # Europe falls back on 2026-10-25, New York only on 2026-11-01: late October is still EDT there.
    offsets = (0, 30, 38, 41, 45, 47, 60, 90)
    schedule = dunning_schedule(policy(*offsets), date(2026, 9, 15), "America/New_York", LONG_AGO)
    assert instants(schedule) == [
        (0, utc(2026, 9, 15, 13)),
        (30, utc(2026, 10, 15, 13)),
        (38, utc(2026, 10, 23, 13)),
        (41, utc(2026, 10, 26, 13)),  # EDT (UTC-4) although Europe has changed
        (45, utc(2026, 10, 30, 13)),
        (47, utc(2026, 11, 2, 14)),  # Sunday 11-01 (the change) → Monday, EST (UTC-5)
        (60, utc(2026, 11, 16, 14)),  # Saturday → Monday
        (90, utc(2026, 12, 14, 14)),
    ]
    berlin = dunning_schedule(policy(*offsets), date(2026, 9, 15), "Europe/Berlin", LONG_AGO)
    assert instants(berlin)[2:4] == [(38, utc(2026, 10, 23, 7)), (41, utc(2026, 10, 26, 8))]


def test_step_after_the_window_moves_to_the_next_days_start() -> None:
    window = SendWindow()
    # Tuesday 18:00 CEST → Wednesday 09:00 CEST.
    assert next_in_window(utc(2026, 5, 12, 16), window, "Europe/Berlin") == utc(2026, 5, 13, 7)
    # The end is exclusive: 17:00 itself is outside, 16:59 inside (returned unchanged, seconds kept).
    assert next_in_window(utc(2026, 5, 12, 15), window, "Europe/Berlin") == utc(2026, 5, 13, 7)
    assert next_in_window(utc(2026, 5, 12, 14, 59, 30), window, "Europe/Berlin") == utc(
        2026, 5, 12, 14, 59, 30
    )
    # Friday 18:00 → Monday 09:00; before the start on a weekday → that day's start.
    assert next_in_window(utc(2026, 5, 15, 16), window, "Europe/Berlin") == utc(2026, 5, 18, 7)
    assert next_in_window(utc(2026, 5, 12, 5), window, "Europe/Berlin") == utc(2026, 5, 12, 7)
    # A window of a late start moves a step into the evening of the same day.
    evening = SendWindow(time(18, 0), time(20, 0), EVERY_DAY)
    [step] = dunning_schedule(policy(0, window=evening), date(2026, 5, 12), "Europe/Berlin", LONG_AGO)
    assert step.send_at == utc(2026, 5, 12, 16)


def test_auckland_uses_the_local_date_and_weekday() -> None:
    # NZDT (UTC+13) until 2026-04-05 03:00, then NZST (UTC+12). Local mornings are the previous UTC day.
    schedule = dunning_schedule(policy(0, 1, 4), date(2026, 4, 3), "Pacific/Auckland", LONG_AGO)
    assert [(r.local_date, r.send_at) for r in schedule] == [
        (date(2026, 4, 3), utc(2026, 4, 2, 20)),  # Friday 09:00 NZDT
        (date(2026, 4, 6), utc(2026, 4, 5, 21)),  # Saturday → Monday 09:00 NZST (a Sunday in UTC)
        (date(2026, 4, 7), utc(2026, 4, 6, 21)),
    ]


def test_kolkata_half_hour_offset() -> None:
    window = SendWindow()
    # Friday 2026-06-12 11:45 UTC is 17:15 IST → Monday 09:00 IST = 03:30 UTC.
    assert next_in_window(utc(2026, 6, 12, 11, 45), window, "Asia/Kolkata") == utc(2026, 6, 15, 3, 30)
    assert next_in_window(utc(2026, 6, 15, 3, 29), window, "Asia/Kolkata") == utc(2026, 6, 15, 3, 30)
    assert next_in_window(utc(2026, 6, 15, 11, 29), window, "Asia/Kolkata") == utc(2026, 6, 15, 11, 29)
    [step] = dunning_schedule(policy(0), date(2026, 6, 13), "Asia/Kolkata", LONG_AGO)  # Saturday
    assert step.send_at == utc(2026, 6, 15, 3, 30)


def test_window_edges_in_dst_changes_are_resolved_on_the_wall_clock() -> None:
    ny = "America/New_York"
    # 02:30 does not exist on 2026-03-08: the window opens when the clocks jump, 03:00 EDT.
    assert next_in_window(utc(2026, 3, 8), SendWindow(time(2, 30), time(17), EVERY_DAY), ny) == utc(
        2026, 3, 8, 7
    )
    # A window wholly inside the skipped hour does not open that day: next day 02:00 EDT.
    assert next_in_window(utc(2026, 3, 8), SendWindow(time(2), time(2, 30), EVERY_DAY), ny) == utc(
        2026, 3, 9, 6
    )
    # 01:30 happens twice on 2026-11-01: the first occurrence (EDT) opens the window.
    assert next_in_window(utc(2026, 11, 1), SendWindow(time(1, 30), time(3), EVERY_DAY), ny) == utc(
        2026, 11, 1, 5, 30
    )
    # 01:45 EDT is after a 00:00-01:30 window, but the clocks go back to 01:00 EST: inside again.
    early = SendWindow(time(0), time(1, 30), EVERY_DAY)
    assert next_in_window(utc(2026, 11, 1, 5, 45), early, ny) == utc(2026, 11, 1, 6)
    assert next_in_window(utc(2026, 11, 1, 6, 10), early, ny) == utc(2026, 11, 1, 6, 10)  # 01:10 EST
    # A step's nominal time falls in the gap the same way.
    gap = policy(0, window=SendWindow(time(2, 30), time(17), EVERY_DAY))
    assert dunning_schedule(gap, date(2026, 3, 8), ny, LONG_AGO)[0].send_at == utc(2026, 3, 8, 7)


def test_steps_landing_in_one_slot_merge_and_the_later_step_wins() -> None:
    # Friday due date: +1 Saturday, +2 Sunday and +3 Monday all land on Monday 09:00.
    schedule = dunning_schedule(policy(0, 1, 2, 3, 4), date(2026, 5, 15), "Europe/Berlin", LONG_AGO)
    assert [(r.step_index, r.merged, r.send_at) for r in schedule] == [
        (0, (), utc(2026, 5, 15, 7)),
        (3, (1, 2), utc(2026, 5, 18, 7)),
        (4, (), utc(2026, 5, 19, 7)),
    ]
    assert (schedule[1].template, schedule[1].tone) == ("step3", "final")


def test_entries_at_or_before_issue_are_dropped_on_their_moved_time() -> None:
    due = date(2026, 5, 15)
    full = dunning_schedule(DEFAULT_POLICY, due, "Europe/Berlin", LONG_AGO)
    first = full[0].send_at  # 2026-05-12 07:00 UTC
    assert first == utc(2026, 5, 12, 7)
    assert dunning_schedule(DEFAULT_POLICY, due, "Europe/Berlin", first) == full[1:]
    assert dunning_schedule(DEFAULT_POLICY, due, "Europe/Berlin", first - timedelta(seconds=1)) == full
    # A Saturday step of an invoice issued on Sunday still goes out on Monday.
    [monday] = dunning_schedule(policy(1), due, "Europe/Berlin", utc(2026, 5, 17, 10))
    assert monday.send_at == utc(2026, 5, 18, 7)
    # Issued after every step: only the escalation is left, no burst of old reminders.
    late = dunning_schedule(DEFAULT_POLICY, due, "Europe/Berlin", utc(2026, 6, 15, 8))
    assert [(r.kind, r.send_at) for r in late] == [("escalation", utc(2026, 6, 16, 7))]
    with pytest.raises(DunningError, match="issued_at"):
        dunning_schedule(DEFAULT_POLICY, due, "Europe/Berlin", datetime(2026, 5, 1))


def test_escalation_follows_the_last_slot_inside_the_window() -> None:
    esc = Escalation(after_days=1, template="handover", recipients=("account_owner", "finance_lead"))
    schedule = dunning_schedule(policy(0, escalation=esc), date(2026, 5, 15), "Europe/Berlin", LONG_AGO)
    assert [(r.kind, r.step_index, r.offset_days, r.send_at) for r in schedule] == [
        ("step", 0, 0, utc(2026, 5, 15, 7)),
        ("escalation", 1, 1, utc(2026, 5, 18, 7)),  # Saturday → Monday
    ]
    assert (schedule[1].template, schedule[1].recipients, schedule[1].tone) == (
        "handover",
        ("account_owner", "finance_lead"),
        "final",
    )
    # Counted from the day the last step really went out (Monday), not its nominal Saturday.
    moved = dunning_schedule(
        policy(1, escalation=Escalation(2)), date(2026, 5, 15), "Europe/Berlin", LONG_AGO
    )
    assert [r.send_at for r in moved] == [utc(2026, 5, 18, 7), utc(2026, 5, 20, 7)]


def test_default_policy_schedule() -> None:
    schedule = dunning_schedule(DEFAULT_POLICY, date(2026, 5, 15), "Europe/Berlin", LONG_AGO)
    assert [(r.kind, r.offset_days, r.tone, r.recipients, r.local_date) for r in schedule] == [
        ("step", -3, "friendly", ("client",), date(2026, 5, 12)),
        ("step", 0, "friendly", ("client",), date(2026, 5, 15)),
        ("step", 7, "firm", ("client",), date(2026, 5, 22)),
        ("step", 14, "firm", ("client",), date(2026, 5, 29)),
        ("step", 30, "final", ("client", "account_owner"), date(2026, 6, 15)),  # Sunday → Monday
        ("escalation", 32, "final", ("account_owner",), date(2026, 6, 16)),
    ]


def test_unknown_timezone_and_naive_instants_are_refused() -> None:
    with pytest.raises(DunningError, match="timezone: unknown IANA timezone 'Mars/Olympus'"):
        dunning_schedule(DEFAULT_POLICY, date(2026, 5, 15), "Mars/Olympus", LONG_AGO)
    with pytest.raises(DunningError, match="instant_utc: expected a timezone-aware"):
        next_in_window(datetime(2026, 5, 12, 16), SendWindow(), "Europe/Berlin")


# ---------------------------------------------------------------- holds


def berlin_schedule() -> list[ScheduledReminder]:
    # 07:00 UTC on 05-12, 05-15, 05-22, 05-29, 06-15 (steps 0-4) and 06-16 (escalation, index 5).
    return dunning_schedule(DEFAULT_POLICY, date(2026, 5, 15), "Europe/Berlin", LONG_AGO)


def hold(hold_from: datetime, hold_until: datetime | None, now: datetime):  # type: ignore[no-untyped-def]
    return reminders_after_hold(
        berlin_schedule(),
        hold_from,
        hold_until,
        now,
        window=DEFAULT_POLICY.send_window,
        timezone="Europe/Berlin",
    )


def test_released_hold_sends_only_the_latest_missed_reminder_in_the_window() -> None:
    # Disputed from 05-13 until Saturday 05-30: steps 1, 2, 3 were missed; step 3 goes out Monday 09:00.
    decision = hold(utc(2026, 5, 13), utc(2026, 5, 30, 12), utc(2026, 5, 30, 12))
    assert [r.step_index for r in decision.skipped] == [1, 2]
    assert decision.released is not None
    assert (decision.released.step_index, decision.released.send_at) == (3, utc(2026, 6, 1, 7))
    assert decision.released.local_date == date(2026, 6, 1)
    assert [(r.step_index, r.send_at) for r in decision.send] == [
        (0, utc(2026, 5, 12, 7)),
        (3, utc(2026, 6, 1, 7)),
        (4, utc(2026, 6, 15, 7)),
        (5, utc(2026, 6, 16, 7)),
    ]
    assert decision.suspended == ()


def test_release_at_18_00_sends_the_next_morning() -> None:
    # Released Tuesday 18:00 CEST: step 2 (05-22) fires Wednesday 09:00 CEST, step 1 is skipped.
    decision = hold(utc(2026, 5, 13), utc(2026, 5, 26, 16), utc(2026, 5, 26, 16))
    assert decision.released is not None
    assert (decision.released.step_index, decision.released.send_at) == (2, utc(2026, 5, 27, 7))
    assert [r.step_index for r in decision.skipped] == [1]


def test_missed_reminder_is_dropped_when_a_regular_one_is_due_by_then() -> None:
    # Released Sunday 06-14: the first slot is Monday 06-15 09:00, step 4's own slot.
    decision = hold(utc(2026, 5, 13), utc(2026, 6, 14, 12), utc(2026, 6, 14, 12))
    assert decision.released is None
    assert [r.step_index for r in decision.skipped] == [1, 2, 3]
    assert [r.step_index for r in decision.send] == [0, 4, 5]


def test_hold_that_misses_nothing_changes_nothing() -> None:
    decision = hold(utc(2026, 5, 16), utc(2026, 5, 18), utc(2026, 5, 18))
    assert decision.send == tuple(berlin_schedule())
    assert (decision.skipped, decision.suspended, decision.released) == ((), (), None)


def test_open_hold_suspends_everything_and_already_skips_older_misses() -> None:
    decision = hold(utc(2026, 5, 13), None, utc(2026, 5, 25))
    assert [r.step_index for r in decision.send] == [0]
    assert [r.step_index for r in decision.skipped] == [1]
    assert [r.step_index for r in decision.suspended] == [2, 3, 4, 5]
    with pytest.raises(DunningError, match="hold_until: must not be before hold_from"):
        hold(utc(2026, 5, 13), utc(2026, 5, 12), utc(2026, 5, 25))


def test_payment_in_flight_hold_ends_on_resolution_or_after_the_grace() -> None:
    started = utc(2026, 5, 13, 10)
    assert payment_hold(started) == (started, utc(2026, 5, 18, 10))
    assert payment_hold(started, utc(2026, 5, 14)) == (started, utc(2026, 5, 14))
    assert payment_hold(started, utc(2026, 7, 1)) == (started, utc(2026, 5, 18, 10))
    assert payment_hold(started, grace=timedelta(days=2)) == (started, utc(2026, 5, 15, 10))
    with pytest.raises(DunningError, match="resolved_at"):
        payment_hold(started, utc(2026, 5, 12))
    with pytest.raises(DunningError, match="grace"):
        payment_hold(started, grace=timedelta(0))
    # Used as a hold: the 05-15 reminder is missed and goes out when the 5-day grace ends (Monday).
    decision = hold(*payment_hold(started), utc(2026, 5, 13, 10))
    assert decision.released is not None
    assert (decision.released.step_index, decision.released.send_at) == (1, utc(2026, 5, 18, 10))


# ---------------------------------------------------------------- late fees


def test_fixed_fee_is_charged_once_after_the_grace_days() -> None:
    fee = LateFee("fixed", D("25.00"), after_days=30)
    due = date(2026, 1, 1)
    assert late_fees(fee, D("1000.00"), "USD", due, date(2026, 1, 30)) == []
    [charge] = late_fees(fee, D("1000.00"), "USD", due, date(2026, 1, 31))
    assert (charge.sequence, charge.assessed_on, charge.base, charge.amount, charge.currency) == (
        1,
        date(2026, 1, 31),
        None,
        D("25.00"),
        "USD",
    )
    assert late_fees(fee, D("1000.00"), "USD", due, date(2026, 12, 31)) == [charge]
    assert late_fees(fee, D("1000.00"), "USD", due, date(2026, 12, 31), already_applied=1) == []
    assert late_fees(None, D("1000.00"), "USD", due, date(2026, 12, 31)) == []


def test_percent_fee_of_the_principal_rounds_half_up() -> None:
    fee = LateFee("percent", D(2), after_days=1)
    [charge] = late_fees(fee, D("1234.56"), "usd", date(2026, 1, 1), date(2026, 3, 1))
    assert (charge.base, charge.amount) == (D("1234.56"), D("24.69"))  # 24.6912
    # Not compounding: earlier fees (say, another policy's) never become part of the base.
    again = late_fees(fee, D("1234.56"), "USD", date(2026, 1, 1), date(2026, 3, 1), applied_total=D("100.00"))
    assert again == [charge]
    # 10 % of 105 JPY is 10.5: half-up gives 11 (banker's rounding would give 10).
    [yen] = late_fees(
        LateFee("percent", D(10), after_days=1), D(105), "JPY", date(2026, 1, 1), date(2026, 1, 2)
    )
    assert yen.amount == D(11) and yen.amount.as_tuple().exponent == 0


def test_compounding_fee_applies_to_principal_plus_earlier_fees_per_period() -> None:
    fee = LateFee("percent", D("1.5"), after_days=30, compounding=True, max_applications=3)
    due, principal = date(2026, 1, 1), D("1000.00")
    charges = late_fees(fee, principal, "USD", due, date(2026, 12, 31))
    assert [(c.sequence, c.assessed_on, c.base, c.amount) for c in charges] == [
        (1, date(2026, 1, 31), D("1000.00"), D("15.00")),
        (2, date(2026, 3, 2), D("1015.00"), D("15.23")),  # 15.225 → 15.23
        (3, date(2026, 4, 1), D("1030.23"), D("15.45")),  # 15.45345 → 15.45, then the cap
    ]
    assert len(late_fees(fee, principal, "USD", due, date(2026, 3, 1))) == 1  # the day before the second
    assert late_fees(fee, principal, "USD", due, date(2026, 12, 31), already_applied=1) == charges[1:]
    # With the fees really charged so far (the principal was different then), they are the base.
    later = late_fees(
        fee, principal, "USD", due, date(2026, 12, 31), already_applied=1, applied_total=D("20.00")
    )
    assert [(c.base, c.amount) for c in later] == [(D("1020.00"), D("15.30")), (D("1035.30"), D("15.53"))]


def test_compounding_fixed_fee_recurs_and_unlimited_fee_keeps_going() -> None:
    fee = LateFee("fixed", D(500), after_days=10, compounding=True, period_days=7)
    charges = late_fees(fee, D(100000), "JPY", date(2026, 1, 1), date(2026, 1, 31))
    assert [(c.assessed_on, c.amount) for c in charges] == [
        (date(2026, 1, 11), D(500)),
        (date(2026, 1, 18), D(500)),
        (date(2026, 1, 25), D(500)),
    ]


def test_unlimited_compounding_stops_at_the_hard_cap() -> None:
    fee = LateFee("fixed", D(1), after_days=1, compounding=True, period_days=1)
    assert fee.limit == MAX_FEE_APPLICATIONS == 1000
    charges = late_fees(fee, D(100), "USD", date(2026, 1, 1), date(2030, 1, 1))
    assert len(charges) == 1000 and charges[-1].assessed_on == date(2026, 1, 2) + timedelta(days=999)
    assert LateFee("percent", D(1), 1).limit == 1


def test_late_fee_inputs_are_checked() -> None:
    due, as_of = date(2026, 1, 1), date(2026, 6, 1)
    assert late_fees(LateFee("fixed", D(5), 1), D(0), "USD", due, as_of) == []
    assert late_fees(LateFee("fixed", D(5), 1), D("-3.00"), "USD", due, as_of) == []
    with pytest.raises(DunningError, match="late_fee.value: USD allows 2 decimal places"):
        late_fees(LateFee("fixed", D("12.345"), 1), D(100), "USD", due, as_of)
    with pytest.raises(DunningError, match="late_fee.value: JPY has no minor units"):
        late_fees(LateFee("fixed", D("0.50"), 1), D(100), "JPY", due, as_of)
    with pytest.raises(DunningError, match="principal: floats are not accepted"):
        late_fees(LateFee("fixed", D(5), 1), 100.0, "USD", due, as_of)  # type: ignore[arg-type]
    with pytest.raises(DunningError, match="currency: unknown ISO 4217 code 'ABC'"):
        late_fees(LateFee("fixed", D(5), 1), D(100), "ABC", due, as_of)
    with pytest.raises(DunningError, match="value: floats are not accepted"):
        LateFee("fixed", 5.0, 1)  # type: ignore[arg-type]
    with pytest.raises(DunningError, match="max_applications: a fee that does not compound is charged once"):
        LateFee("percent", D(1), 30, max_applications=3)
    with pytest.raises(DunningError, match="value: a percent fee is at most 100"):
        LateFee("percent", D(101), 30)


# ---------------------------------------------------------------- JSON


def test_policy_json_round_trip() -> None:
    data = {
        "name": "  Strict  ",
        "steps": [
            {"offset_days": -3, "template": "gentle_nudge", "tone": "friendly"},
            {
                "offset_days": 10,
                "template": "firm.v2",
                "tone": "firm",
                "recipients": ["client", "finance_lead"],
            },
        ],
        "send_window": {"start": "08:30", "end": "18:00", "weekdays": ["fri", "mon", "sat"]},
        "late_fee": {
            "kind": "percent",
            "value": "1.50",
            "after_days": 15,
            "compounding": True,
            "max_applications": 6,
        },
        "escalation": {"after_days": 3, "recipients": ["finance_lead"]},
    }
    parsed = policy_from_dict(data)
    assert parsed == DunningPolicy(
        name="Strict",
        steps=(
            DunningStep(-3, "gentle_nudge", "friendly", ("client",)),
            DunningStep(10, "firm.v2", "firm", ("client", "finance_lead")),
        ),
        send_window=SendWindow(time(8, 30), time(18), (0, 4, 5)),
        late_fee=LateFee("percent", D("1.50"), 15, compounding=True, max_applications=6),
        escalation=Escalation(3, "escalation", ("finance_lead",)),
    )
    stored = json.loads(json.dumps(policy_to_dict(parsed)))
    assert stored["send_window"] == {"start": "08:30", "end": "18:00", "weekdays": ["mon", "fri", "sat"]}
    assert stored["late_fee"]["value"] == "1.50"
    assert policy_from_dict(stored) == parsed
    minimal = policy_from_dict({"name": "Quiet", "steps": []})
    assert (minimal.send_window, minimal.late_fee, minimal.escalation) == (SendWindow(), None, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"late_fee": {"kind": "fixed", "value": 12.5, "after_days": 30}},
            "late_fee.value: floats are not accepted",
        ),
        (
            {"late_fee": {"kind": "fixed", "value": "1e3", "after_days": 30}},
            "late_fee.value: '1e3' is not a plain",
        ),
        (
            {"late_fee": {"kind": "flat", "value": "5", "after_days": 30}},
            "late_fee.kind: 'flat' is not one of",
        ),
        (
            {"late_fee": {"kind": "fixed", "value": "5", "after_days": 0}},
            "late_fee.after_days: must be between 1",
        ),
        ({"late_fee": {"kind": "fixed", "value": "5"}}, "late_fee.after_days: required"),
        (
            {"steps": [{"offset_days": 0, "template": "x", "tone": "angry"}]},
            "steps[0].tone: 'angry' is not one of",
        ),
        ({"steps": [{"offset_days": 1.0, "template": "x"}]}, "steps[0].offset_days: expected a whole number"),
        (
            {"steps": [{"offset_days": True, "template": "x"}]},
            "steps[0].offset_days: expected a whole number",
        ),
        (
            {"steps": [{"offset_days": 400, "template": "x"}]},
            "steps[0].offset_days: must be between -365 and 365",
        ),
        ({"steps": [{"offset_days": 0}]}, "steps[0].template: required"),
        (
            {"steps": [{"offset_days": 0, "template": "../etc"}]},
            "steps[0].template: expected a template name",
        ),
        (
            {"steps": [{"offset_days": 0, "template": "x", "recipients": ["client", "ceo"]}]},
            "steps[0].recipients: 'ceo' is not one of client, account_owner, finance_lead",
        ),
        (
            {"steps": [{"offset_days": 0, "template": "x", "recipients": "client"}]},
            "steps[0].recipients: expected a non-empty list",
        ),
        (
            {"steps": [{"offset_days": 7, "template": "x"}, {"offset_days": 7, "template": "y"}]},
            "steps[1].offset_days: must be after steps[0] (7)",
        ),
        ({"steps": [{"offset_days": 0, "template": "x", "when": 1}]}, "steps[0]: unknown field(s) when"),
        ({"send_window": {"start": "17:00", "end": "09:00"}}, "send_window.end: must be after start (17:00)"),
        ({"send_window": {"start": "9:00"}}, "send_window.start: expected a local time as HH:MM"),
        ({"send_window": {"weekdays": []}}, "send_window.weekdays: at least one weekday"),
        ({"send_window": {"weekdays": ["monday"]}}, "send_window.weekdays: 'monday' is not one of"),
        (
            {"send_window": {"weekdays": ["mon", "mon"]}},
            "send_window.weekdays: each weekday may appear only once",
        ),
        (
            {"escalation": {"recipients": ["client"]}},
            "escalation.recipients: 'client' is not one of account_owner",
        ),
        ({"escalation": {"after_days": 0}}, "escalation.after_days: must be between 1"),
        ({"name": " "}, "name: required"),
        ({"version": 2}, "version: this release reads version 1"),
        ({"colour": "red"}, "policy: unknown field(s) colour"),
    ],
)
def test_policy_validation_names_the_field(change: dict[str, object], message: str) -> None:
    data: dict[str, object] = {"name": "P", "steps": [{"offset_days": 0, "template": "reminder"}], **change}
    with pytest.raises(DunningError) as raised:
        policy_from_dict(data)
    assert str(raised.value).startswith(message)
    assert isinstance(raised.value, MoneyError) and isinstance(raised.value, ValueError)


def test_escalation_needs_a_step() -> None:
    with pytest.raises(DunningError, match="escalation: needs at least one step"):
        policy_from_dict({"name": "P", "steps": [], "escalation": {}})


# ---------------------------------------------------------------- properties

ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "Asia/Kathmandu",  # +05:45
    "Australia/Lord_Howe",  # a 30-minute DST change
    "Pacific/Chatham",  # +12:45/+13:45
    "America/Santiago",  # changes at midnight
    "America/Havana",  # changes at midnight
    "Asia/Tehran",
]
zones = st.sampled_from(ZONES)


@st.composite
def windows(draw: st.DrawFn) -> SendWindow:
    start = draw(st.integers(0, 24 * 60 - 2))
    end = draw(st.integers(start + 1, 24 * 60 - 1))
    days = draw(st.sets(st.integers(0, 6), min_size=1))
    return SendWindow(time(*divmod(start, 60)), time(*divmod(end, 60)), tuple(days))


instants_2024_2030 = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@settings(deadline=None, max_examples=100)
@given(instant=instants_2024_2030, window=windows(), zone=zones)
def test_next_in_window_is_the_earliest_instant_inside(
    instant: datetime, window: SendWindow, zone: str
) -> None:
    result = next_in_window(instant, window, zone)
    assert result.tzinfo is UTC and result >= instant
    assert inside(result, window, zone)
    assert next_in_window(result, window, zone) == result
    if result != instant:
        assert not inside(instant, window, zone)
        # Window edges and UTC offsets are whole minutes, so checking every whole minute is exhaustive.
        probe = instant.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while probe < result:
            assert not inside(probe, window, zone), probe
            probe += timedelta(minutes=1)


@settings(deadline=None)
@given(
    a=instants_2024_2030, gap=st.timedeltas(timedelta(0), timedelta(days=10)), window=windows(), zone=zones
)
def test_next_in_window_is_monotonic(a: datetime, gap: timedelta, window: SendWindow, zone: str) -> None:
    assert next_in_window(a, window, zone) <= next_in_window(a + gap, window, zone)


@st.composite
def policies(draw: st.DrawFn) -> DunningPolicy:
    offsets = sorted(draw(st.sets(st.integers(-60, 120), max_size=10)))
    steps = tuple(
        DunningStep(
            o,
            draw(st.sampled_from(["reminder", "firm_notice", "last.call"])),
            draw(st.sampled_from(["friendly", "firm", "final"])),
            tuple(
                draw(
                    st.lists(
                        st.sampled_from(["client", "account_owner", "finance_lead"]), min_size=1, unique=True
                    )
                )
            ),
        )
        for o in offsets
    )
    escalation = draw(st.none() | st.builds(Escalation, st.integers(1, 30))) if steps else None
    fee = draw(
        st.none()
        | st.builds(
            LateFee,
            st.sampled_from(["fixed", "percent"]),
            st.decimals(D("0.01"), D(100), places=2),
            st.integers(1, 90),
            st.booleans(),
            st.none(),
            st.integers(1, 60),
        )
    )
    return DunningPolicy(
        draw(st.text(min_size=1, max_size=20).filter(str.strip)), steps, draw(windows()), fee, escalation
    )


@settings(deadline=None, max_examples=150)
@given(
    p=policies(),
    due=st.dates(date(2024, 1, 1), date(2030, 12, 31)),
    zone=zones,
    issued_offset=st.timedeltas(timedelta(days=-90), timedelta(days=150)),
)
def test_schedule_lands_in_the_window_and_is_strictly_increasing(
    p: DunningPolicy, due: date, zone: str, issued_offset: timedelta
) -> None:
    full = dunning_schedule(p, due, zone, LONG_AGO)
    issued = datetime.combine(due, time(12), UTC) + issued_offset
    schedule = dunning_schedule(p, due, zone, issued)
    assert schedule == [r for r in full if r.send_at > issued]
    times = [r.send_at for r in full]
    assert times == sorted(set(times))  # strictly increasing: no two messages at one instant
    covered: list[int] = []
    for r in full:
        assert r.send_at.tzinfo is UTC
        assert inside(r.send_at, p.send_window, zone)
        assert r.local_date == r.send_at.astimezone(ZoneInfo(zone)).date()
        nominal = datetime.combine(due + timedelta(days=r.offset_days), p.send_window.start)
        assert (
            r.send_at.astimezone(ZoneInfo(zone)).replace(tzinfo=None) >= nominal
        )  # never earlier than asked
        if r.kind == "step":
            step = p.steps[r.step_index]
            assert (r.offset_days, r.template, r.tone, r.recipients) == (
                step.offset_days,
                step.template,
                step.tone,
                step.recipients,
            )
            covered += [*r.merged, r.step_index]
        else:
            assert r.step_index == len(p.steps) and "client" not in r.recipients
            assert r is full[-1]
    assert covered == list(range(len(p.steps)))  # every step once, in order, sent or merged


@settings(deadline=None)
@given(p=policies())
def test_policy_round_trips_through_json(p: DunningPolicy) -> None:
    stored = json.loads(json.dumps(policy_to_dict(p)))
    assert policy_from_dict(stored) == p
    assert policy_to_dict(policy_from_dict(stored)) == stored


@st.composite
def valid_fees(draw: st.DrawFn) -> LateFee:
    compounding, kind = draw(st.booleans()), draw(st.sampled_from(["fixed", "percent"]))
    return LateFee(
        kind,
        D(draw(st.integers(1, 50))) if kind == "fixed" else draw(st.decimals(D("0.1"), D(50), places=1)),
        draw(st.integers(1, 60)),
        compounding,
        draw(st.none() | st.integers(1, 12)) if compounding else draw(st.sampled_from([None, 1])),
        draw(st.integers(7, 45)),
    )


@settings(deadline=None)  # the timing varies with the number of compounding periods drawn
@given(
    fee=valid_fees(),
    currency=st.sampled_from(["USD", "JPY", "KWD", "EUR"]),
    principal_minor=st.integers(-10_000, 10**9),
    days=st.integers(-30, 800),
    split=st.integers(0, 800),
)
def test_late_fees_properties(
    fee: LateFee, currency: str, principal_minor: int, days: int, split: int
) -> None:
    due = date(2026, 1, 1)
    principal = D(principal_minor).scaleb(-MINOR_UNITS[currency])
    as_of = due + timedelta(days=days)
    charges = late_fees(fee, principal, currency, due, as_of)
    if principal <= 0:
        assert charges == []
        return
    if not fee.compounding:  # never compounds unless asked: one charge at most, on the principal alone
        assert len(charges) <= 1
        for charge in charges:
            expected = fee.value if fee.kind == "fixed" else (principal * fee.value / 100)
            assert charge.amount == expected.quantize(
                D(1).scaleb(-MINOR_UNITS[currency]), rounding=ROUND_HALF_UP
            )
        assert late_fees(fee, principal, currency, due, as_of + timedelta(days=400), already_applied=1) == []
    if fee.max_applications is not None:
        assert len(charges) <= fee.max_applications
    assert [c.sequence for c in charges] == list(range(1, len(charges) + 1))
    for charge in charges:
        assert charge.amount.as_tuple().exponent == -MINOR_UNITS[currency] and charge.amount > 0
        assert due + timedelta(days=fee.after_days) <= charge.assessed_on <= as_of
    if fee.kind == "percent" and fee.compounding:
        with localcontext(Context(prec=200)):  # the module computes exactly; so must the check
            assert [c.base for c in charges[1:]] == [c.base + c.amount for c in charges[:-1]]  # type: ignore[operator]
    # Charging in two runs (as_of earlier, then the rest) gives exactly the charges of one run.
    first = late_fees(fee, principal, currency, due, min(as_of, due + timedelta(days=split)))
    assert first == charges[: len(first)]
    assert first + late_fees(fee, principal, currency, due, as_of, already_applied=len(first)) == charges


@settings(deadline=None)
@given(
    hold_start=st.integers(-20 * 24, 60 * 24),
    hold_hours=st.integers(0, 40 * 24),
    now_hours=st.integers(0, 40 * 24),
    zone=zones,
)
def test_hold_partitions_the_schedule(hold_start: int, hold_hours: int, now_hours: int, zone: str) -> None:
    due = date(2026, 3, 20)
    schedule = dunning_schedule(DEFAULT_POLICY, due, zone, LONG_AGO)
    window = DEFAULT_POLICY.send_window
    start = datetime.combine(due, time(0), UTC) + timedelta(hours=hold_start)
    until = start + timedelta(hours=hold_hours)
    released = reminders_after_hold(schedule, start, until, until, window=window, timezone=zone)
    indices = sorted(r.step_index for r in (*released.send, *released.skipped))
    assert indices == [r.step_index for r in schedule] and released.suspended == ()
    sent = [r.send_at for r in released.send]
    assert sent == sorted(set(sent))
    assert not any(start <= t < until for t in sent)  # nothing goes out during the hold
    missed = [r for r in schedule if start <= r.send_at < until]
    if released.released is not None:
        assert released.released.step_index == missed[-1].step_index
        assert released.released.send_at >= until and inside(released.released.send_at, window, zone)
    assert len(released.skipped) >= len(missed) - 1
    # While the hold was open, anything it already skipped stays skipped at the release.
    now = start + timedelta(hours=min(now_hours, hold_hours))
    still_open = reminders_after_hold(schedule, start, None, now, window=window, timezone=zone)
    assert {r.step_index for r in still_open.skipped} <= {r.step_index for r in released.skipped}
    assert not any(r.send_at >= start for r in still_open.send)
    assert len(still_open.send) + len(still_open.skipped) + len(still_open.suspended) == len(schedule)
