"""Dunning policies under the time-skipping test server with the real activities, PostgreSQL and SMTP:
a send window moves a Saturday reminder to Monday 09:00 client time; a 90-day run across
the end of March in Berlin sends every reminder at 09:00 local on the right days; a dispute hold pauses
the reminders and its release sends only the latest missed one."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.support import (
    api_client,
    customer_body,
    eventually,
    kind_of,
    record_history,
    settled_query,
    to,
    wait_mail,
)
from worker import build_worker
from workflows.invoice import InvoiceWorkflow
from workflows.payloads import InvoiceState


def next_weekday(start: date, weekday: int) -> date:
    return start + timedelta(days=(weekday - start.weekday()) % 7)


def local(day: date, tz: str, at: time = time(9, 0)) -> datetime:
    return datetime.combine(day, at, ZoneInfo(tz)).astimezone(UTC)


def dunning_mail(messages, audience: str = "client") -> list[int]:  # type: ignore[no-untyped-def]
    """Step indices of the policy emails among ``messages`` (key invoice:<id>:dunning:<step>:<audience>)."""
    keys = [(m.header("X-Invoiceflow-Key") or "").split(":") for m in messages if kind_of(m) == "dunning"]
    return sorted(int(k[3]) for k in keys if k[4] == audience)


async def setup(api, tz: str, policy: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    name = f"{policy.pop('name', 'Policy')} {uuid.uuid4().hex[:8]}"
    created = await api.post("/dunning-policies", json={"name": name, **policy})
    assert created.status_code == 201, created.text
    customer = await api.post("/customers", json=customer_body(timezone=tz, dunning_policy=name))
    assert customer.status_code == 201, customer.text
    return customer.json()


async def query_state(handle) -> InvoiceState:  # type: ignore[no-untyped-def]
    return await settled_query(handle, InvoiceWorkflow.state)  # type: ignore[no-any-return]


async def open_invoice(api, client, customer: dict[str, Any], due: date):  # type: ignore[no-untyped-def]
    invoice = (
        await api.post(
            "/invoices",
            json={
                "customer_id": customer["id"],
                "due_date": due.isoformat(),
                "lines": [{"description": "Managed services", "unit_price": "2400.00"}],
            },
        )
    ).json()
    handle = client.get_workflow_handle_for(InvoiceWorkflow.run, invoice["workflow_id"])

    async def is_open() -> InvoiceState | None:
        state = await query_state(handle)
        return state if state.status == "open" else None

    await eventually(is_open, what="open")
    return invoice, handle


async def sleep_until(env, instant: datetime) -> None:  # type: ignore[no-untyped-def]
    now = await env.get_current_time()
    assert instant > now, (instant, now)
    await env.sleep(instant - now)


def sent_at(state: InvoiceState, kind: str = "email.reminder") -> list[datetime]:
    """Workflow time at which each email of ``kind`` was recorded as sent (the workflow's own timeline)."""
    return [e.at for e in state.timeline if e.kind == kind and e.detail.startswith("sent")]


async def test_send_window_moves_a_saturday_reminder_to_monday_nine(time_env, make_settings, mailbox) -> None:
    client, tz = time_env.client, "America/New_York"
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = await setup(
            api,
            tz,
            {
                "name": "Window",
                "steps": [
                    {
                        "offset_days": 0,
                        "template": "reminder",
                        "tone": "firm",
                        "recipients": ["client", "account_owner"],
                    }
                ],
            },
        )
        today = (await time_env.get_current_time()).astimezone(ZoneInfo(tz)).date()
        saturday = next_weekday(today + timedelta(days=3), 5)
        monday_nine = local(saturday + timedelta(days=2), tz)
        invoice, handle = await open_invoice(api, client, customer, saturday)

        [planned] = (await api.get(f"/invoices/{invoice['id']}/reminders")).json()["reminders"]
        assert datetime.fromisoformat(planned["send_at"]) == monday_nine
        assert planned["weekday"] == "Monday" and datetime.fromisoformat(
            planned["local_time"]
        ).time() == time(9, 0)
        assert (planned["template"], planned["tone"], planned["status"]) == ("reminder", "firm", "pending")
        assert planned["recipients"] == ["client", "account_owner"]

        client_mail = customer["emails"][0]
        await sleep_until(time_env, local(saturday, tz, time(12, 0)))
        await asyncio.sleep(1)
        assert (
            dunning_mail(m for m in mailbox.store.list() if client_mail in m.rcpt_tos) == []
        )  # not on Saturday
        await sleep_until(time_env, monday_nine - timedelta(minutes=1))
        await asyncio.sleep(1)
        assert (
            dunning_mail(m for m in mailbox.store.list() if client_mail in m.rcpt_tos) == []
        )  # nor before 09:00
        await sleep_until(time_env, monday_nine + timedelta(hours=1))
        messages = await wait_mail(mailbox, 2, where=to(client_mail))
        assert dunning_mail(messages) == [0]
        [reminder] = [m for m in messages if kind_of(m) == "dunning"]
        assert "Overdue" in reminder.subject and "priority" in (reminder.text_body() or "")  # the firm tone
        assert "/i/" in (reminder.text_body() or "")  # the hosted invoice link, like every client reminder
        # The account owner is told, in an internal notice: not the client's text, no client link.
        [notice] = await wait_mail(mailbox, 1, where=to(customer["owner_email"]))
        assert dunning_mail([notice], "internal") == [0] and client_mail not in notice.rcpt_tos
        owner_text = notice.text_body() or ""
        assert "internal notice" in owner_text and client_mail in owner_text
        assert "/i/" not in owner_text and "If you have already paid" not in owner_text

        state = await query_state(handle)
        [arrived] = sent_at(state)
        assert monday_nine <= arrived < monday_nine + timedelta(minutes=5), (
            arrived
        )  # workflow time: Monday 09:00 NY
        timeline = (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]
        assert [e["kind"] for e in timeline].count("email.reminder.sent") == 1
        assert [
            r["status"] for r in (await api.get(f"/invoices/{invoice['id']}/reminders")).json()["reminders"]
        ] == ["sent"]

        paid = await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": "2400.00"})
        assert paid.json()["status"] == "paid"
        await asyncio.wait_for(handle.result(), timeout=30)
        await record_history(handle, "dunning_policy_saturday_to_monday")


async def test_ninety_days_of_dunning_across_the_end_of_march_in_berlin(
    time_env, make_settings, mailbox
) -> None:
    client, tz = time_env.client, "Europe/Berlin"
    settings = make_settings(client, finance_lead_email="finance-lead@firm.example.com")
    # Start in February 2027 (virtual time), so the run crosses the clocks going forward on 28 March.
    now = await time_env.get_current_time()
    feb = datetime(2027, 2, 1, 12, tzinfo=UTC)
    if now < feb:
        await time_env.sleep(feb - now)
    offsets = list(range(0, 91, 10))
    policy = {
        "name": "Ninety",
        "steps": [
            {"offset_days": o, "template": "reminder", "tone": "friendly" if o < 30 else "firm"}
            for o in offsets
        ],
        "escalation": {"after_days": 3, "recipients": ["account_owner", "finance_lead"]},
    }
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = await setup(api, tz, policy)
        due = date(2027, 2, 15)  # a Monday
        invoice, handle = await open_invoice(api, client, customer, due)

        # The expected days, worked out by hand: a weekend step goes out on the Monday after.
        def workday(day: date) -> date:
            return day + timedelta(days=(7 - day.weekday()) % 7) if day.weekday() >= 5 else day

        days = [workday(due + timedelta(days=o)) for o in offsets]
        assert days[2] == date(2027, 3, 8) and days[4] == date(2027, 3, 29)  # Sun 7 Mar, Sat 27 Mar
        escalation_day = workday(days[-1] + timedelta(days=3))
        expected = [local(d, tz) for d in days]
        assert expected[3] == datetime(2027, 3, 17, 8, tzinfo=UTC) and expected[4] == datetime(
            2027, 3, 29, 7, tzinfo=UTC
        )
        preview = (await api.get(f"/invoices/{invoice['id']}/reminders")).json()["reminders"]
        assert [datetime.fromisoformat(r["send_at"]) for r in preview] == [
            *expected,
            local(escalation_day, tz),
        ]

        await sleep_until(time_env, local(escalation_day, tz) + timedelta(hours=2))
        client_mail, owner = customer["emails"][0], customer["owner_email"]
        messages = await wait_mail(mailbox, 1 + len(offsets), where=to(client_mail), timeout=60)
        assert len(messages) == 1 + len(offsets)  # the invoice and exactly one reminder per step
        assert dunning_mail(messages) == list(range(len(offsets)))
        [escalation] = await wait_mail(mailbox, 1, where=to(owner))
        assert (
            "finance-lead@firm.example.com" in escalation.rcpt_tos and client_mail not in escalation.rcpt_tos
        )
        assert (escalation.header("X-Invoiceflow-Key") or "").endswith(f":dunning:{len(offsets)}:internal")

        state = await query_state(handle)
        arrivals = sent_at(state)
        assert len(arrivals) == len(offsets)
        for arrived, planned in zip(arrivals, expected, strict=True):
            assert planned <= arrived < planned + timedelta(minutes=5), (arrived, planned)
            assert arrived.astimezone(ZoneInfo(tz)).strftime("%H:%M") == "09:00"
        assert [a.astimezone(ZoneInfo(tz)).date() for a in arrivals] == days
        [escalated] = sent_at(state, "email.escalation")
        assert local(escalation_day, tz) <= escalated < local(escalation_day, tz) + timedelta(minutes=5)
        statuses = [
            r["status"] for r in (await api.get(f"/invoices/{invoice['id']}/reminders")).json()["reminders"]
        ]
        assert statuses == ["sent"] * (len(offsets) + 1)


async def test_dispute_hold_pauses_and_release_sends_only_the_latest_missed(
    time_env, make_settings, mailbox
) -> None:
    client, tz = time_env.client, "Europe/Berlin"
    settings = make_settings(client)
    policy = {"name": "Weekly", "steps": [{"offset_days": o, "template": "reminder"} for o in (0, 7, 14, 21)]}
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = await setup(api, tz, policy)
        today = (await time_env.get_current_time()).astimezone(ZoneInfo(tz)).date()
        due = next_weekday(today + timedelta(days=3), 0)  # a Monday: every step lands on a Monday
        invoice, handle = await open_invoice(api, client, customer, due)
        client_mail = customer["emails"][0]

        held = await api.post(f"/invoices/{invoice['id']}/hold", json={"reason": "client disputes the hours"})
        assert held.status_code == 201, held.text
        # Thursday after the second step: neither step 0 nor step 1 went out.
        thursday_noon = local(due + timedelta(days=10), tz, time(12, 0))
        await sleep_until(time_env, thursday_noon)
        await asyncio.sleep(1)
        assert dunning_mail(m for m in mailbox.store.list() if client_mail in m.rcpt_tos) == []
        assert {
            r["status"] for r in (await api.get(f"/invoices/{invoice['id']}/reminders")).json()["reminders"]
        } == {"held"}
        assert (await api.get(f"/invoices/{invoice['id']}")).json()[
            "status"
        ] == "overdue"  # money state unchanged

        released = await api.post(f"/invoices/{invoice['id']}/release", json={"reason": "hours confirmed"})
        assert released.status_code == 200, released.text
        messages = await wait_mail(mailbox, 2, where=to(client_mail))
        assert dunning_mail(messages) == [1]  # only the latest missed one, at once (inside the window)
        preview = (await api.get(f"/invoices/{invoice['id']}/reminders")).json()["reminders"]
        assert [r["status"] for r in preview] == ["skipped", "sent", "pending", "pending"]
        assert (
            thursday_noon
            <= datetime.fromisoformat(preview[1]["send_at"])
            < thursday_noon + timedelta(minutes=5)
        )

        await sleep_until(time_env, local(due + timedelta(days=22), tz))
        messages = await wait_mail(mailbox, 4, where=to(client_mail))
        assert dunning_mail(messages) == [1, 2, 3]
        state = await query_state(handle)
        arrivals = sent_at(state)
        assert len(arrivals) == 3
        assert (
            local(due + timedelta(days=14), tz)
            <= arrivals[1]
            < local(due + timedelta(days=14), tz) + timedelta(minutes=5)
        )
        kinds = [e["kind"] for e in (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]]
        assert {
            "dunning.hold_placed",
            "dunning.hold_released",
            "dunning.reminder_skipped",
            "dunning.reminder_rescheduled",
        } <= set(kinds)

        paid = await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": "2400.00"})
        assert paid.json()["status"] == "paid"
        await asyncio.wait_for(handle.result(), timeout=30)
        await record_history(handle, "dunning_hold_released")


async def test_hold_with_a_resume_date_resumes_at_the_window_start(time_env, make_settings, mailbox) -> None:
    client, tz = time_env.client, "America/New_York"
    settings = make_settings(client)
    policy = {"name": "Resume", "steps": [{"offset_days": o, "template": "reminder"} for o in (0, 14)]}
    async with build_worker(client, settings), api_client(settings, client) as api:
        customer = await setup(api, tz, policy)
        today = (await time_env.get_current_time()).astimezone(ZoneInfo(tz)).date()
        due = next_weekday(today + timedelta(days=3), 0)
        invoice, handle = await open_invoice(api, client, customer, due)
        resume_on = due + timedelta(days=3)  # a Thursday
        held = await api.post(
            f"/invoices/{invoice['id']}/hold",
            json={"reason": "PO pending", "resume_on": resume_on.isoformat()},
        )
        assert held.status_code == 201 and datetime.fromisoformat(held.json()["resume_at"]) == local(
            resume_on, tz, time(0, 0)
        )

        await sleep_until(time_env, local(resume_on, tz) + timedelta(hours=1))
        messages = await wait_mail(mailbox, 2, where=to(customer["emails"][0]))
        assert dunning_mail(messages) == [0]
        state = await query_state(handle)
        assert state.holds == []
        [arrived] = sent_at(state)
        assert (
            local(resume_on, tz) <= arrived < local(resume_on, tz) + timedelta(minutes=5)
        )  # 09:00 on the resume day


async def test_late_fees_once_or_compounding_as_the_policy_says(time_env, make_settings, mailbox) -> None:
    client, tz = time_env.client, "Europe/Berlin"
    settings = make_settings(client)
    async with build_worker(client, settings), api_client(settings, client) as api:
        once = await setup(
            api,
            tz,
            {
                "name": "Fee once",
                "steps": [{"offset_days": 0, "template": "reminder"}],
                "late_fee": {"kind": "fixed", "value": "25.00", "after_days": 5},
            },
        )
        compounding = await setup(
            api,
            tz,
            {
                "name": "Fee monthly",
                "steps": [{"offset_days": 0, "template": "reminder"}],
                "late_fee": {
                    "kind": "percent",
                    "value": "1.5",
                    "after_days": 5,
                    "compounding": True,
                    "period_days": 30,
                    "max_applications": 2,
                },
            },
        )
        today = (await time_env.get_current_time()).astimezone(ZoneInfo(tz)).date()
        due = today + timedelta(days=5)
        first, first_handle = await open_invoice(api, client, once, due)
        second, second_handle = await open_invoice(api, client, compounding, due)
        planned = (await api.get(f"/invoices/{second['id']}/reminders")).json()["late_fees"]
        assert [(f["sequence"], f["status"]) for f in planned] == [(1, "pending"), (2, "pending")]
        assert datetime.fromisoformat(planned[0]["assess_at"]) == local(
            due + timedelta(days=5), tz, time(0, 0)
        )

        await sleep_until(time_env, local(due + timedelta(days=6), tz))
        body = (await api.get(f"/invoices/{first['id']}")).json()
        assert (body["total"], body["amount_due"], body["status"]) == ("2425.00", "2425.00", "overdue")
        assert [line["description"] for line in body["lines"]][-1].startswith("Late fee")
        assert (await api.get(f"/invoices/{second['id']}")).json()[
            "amount_due"
        ] == "2436.00"  # 1.5 % of 2400.00

        await sleep_until(time_env, local(due + timedelta(days=100), tz))
        body = (await api.get(f"/invoices/{first['id']}")).json()
        assert body["amount_due"] == "2425.00"  # once: never compounding unless the policy says so
        assert [e["kind"] for e in body["timeline"]].count("late_fee.applied") == 1
        second_body = (await api.get(f"/invoices/{second['id']}")).json()
        assert second_body["amount_due"] == "2472.54"  # + 1.5 % of 2436.00 = 36.54, then no more (max 2)
        fees = (await api.get(f"/invoices/{second['id']}/reminders")).json()["late_fees"]
        assert [(f["status"], f["amount"]) for f in fees] == [("applied", "36.00"), ("applied", "36.54")]
        assert (await query_state(second_handle)).amount_due == "2472.54"

        paid = await api.post(f"/invoices/{first['id']}/payments", json={"amount": "2425.00"})
        assert paid.json()["status"] == "paid", paid.text
        await asyncio.wait_for(first_handle.result(), timeout=30)
        await record_history(first_handle, "dunning_late_fee_then_paid")
