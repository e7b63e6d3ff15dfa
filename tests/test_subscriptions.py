"""Recurring billing over simulated years on the time-skipping server, with the real worker, activities,
PostgreSQL and SMTP server. Every test asserts the exact list of billed periods and amounts: no
duplicates, no gaps, nothing outside the rules."""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import select

from persistence import subscriptions as subs
from persistence.db import session_scope
from persistence.models import Invoice
from tests.support import api_client, customer_body, eventually, record_history, wait_mail
from worker import build_worker
from workflows.payloads import SubscriptionWorkflowInput, recurrence_spec
from workflows.subscription import SubscriptionWorkflow


class Scenario:
    def __init__(self, env, settings, api: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
        self.env, self.settings, self.api = env, settings, api
        self.customer: dict[str, Any] = {}
        self.sub: dict[str, Any] = {}

    async def start(self, customer: dict[str, Any] | None = None, **subscription: Any) -> dict[str, Any]:
        # No reminders: these tests are about cycles, and years of reminder emails only slow them down.
        self.customer = (
            await self.api.post("/customers", json=customer_body(reminder_offsets=[], **(customer or {})))
        ).json()
        body = {
            "customer_id": self.customer["id"],
            "lines": [{"description": "Managed services", "quantity": "1", "unit_price": "2400.00"}],
            "interval": "month",
            **subscription,
        }
        response = await self.api.post("/subscriptions", json=body)
        assert response.status_code == 201, response.text
        self.sub = response.json()
        return self.sub

    async def now(self) -> datetime:
        return await self.env.get_current_time()

    async def advance_to(self, day: date, hour: int = 12) -> None:
        target = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
        await self.env.sleep(target - await self.now())

    async def update(self, action: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.api.post(f"/subscriptions/{self.sub['id']}/{action}", json=body or {})
        assert response.status_code == 200, response.text
        return response.json()

    async def settle(self) -> None:
        """Wait until every cycle invoice created so far is out of draft (issued and sent)."""

        async def settled() -> bool:
            with session_scope(self.settings.require_database_url()) as s:
                statuses = s.scalars(
                    select(Invoice.status).where(Invoice.subscription_id == uuid.UUID(self.sub["id"]))
                ).all()
            return all(st not in ("draft",) for st in statuses)

        await eventually(settled, what="cycle invoices issued")

    def billed(self) -> list[tuple[int, str, str]]:
        """(cycle, period date, total) of every invoice of the subscription, in cycle order."""
        with session_scope(self.settings.require_database_url()) as s:
            rows = s.scalars(
                select(Invoice)
                .where(Invoice.subscription_id == uuid.UUID(self.sub["id"]))
                .order_by(Invoice.subscription_cycle)
            ).unique()
            return [(i.subscription_cycle, i.period_date.isoformat(), str(i.total)) for i in rows]

    async def detail(self) -> dict[str, Any]:
        return (await self.api.get(f"/subscriptions/{self.sub['id']}")).json()


@asynccontextmanager
async def scenario(env, make_settings):  # type: ignore[no-untyped-def]
    settings = make_settings(env.client)
    async with build_worker(env.client, settings), api_client(settings, env.client) as api:
        yield Scenario(env, settings, api)


def month_ends(first: date, count: int) -> list[str]:
    out, year, month = [], first.year, first.month
    for _ in range(count):
        nxt = date(year + month // 12, month % 12 + 1, 1)
        out.append((nxt - timedelta(days=1)).isoformat())
        year, month = nxt.year, nxt.month
    return out


async def test_monthly_on_the_31st_for_two_years(time_env, make_settings) -> None:
    async with scenario(time_env, make_settings) as sc:
        today = (await sc.now()).date()
        start = date(today.year + 1, 1, 31)
        sub = await sc.start(
            anchor_day=31, start_date=start.isoformat(), timezone="Europe/Berlin", catch_up="all"
        )
        assert [c["date"] for c in sub["next_invoice_dates"]] == month_ends(start, 5)
        await sc.advance_to(date(start.year + 2, 2, 1))
        await sc.settle()
        expected = month_ends(start, 25)  # Jan 31 of year 1 to Jan 31 of year 3
        assert sc.billed() == [(i, d, "2400.00") for i, d in enumerate(expected)]
        detail = await sc.detail()
        assert [e["cycle"] for e in detail["history"] if e["kind"] == "cycle.billed"] == list(range(25))
        assert detail["next_invoice_dates"][0]["date"] == month_ends(start, 26)[-1]
        # Issued at 09:00 Berlin time, before and after both DST changes of each year.
        with session_scope(sc.settings.require_database_url()) as s:
            issued = s.scalars(
                select(Invoice.issued_at).where(Invoice.subscription_id == uuid.UUID(sub["id"]))
            ).all()
        assert {t.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") for t in issued} == {"09:00"}
        handle = sc.env.client.get_workflow_handle(sub["workflow_id"])
        first_run = (await handle.describe()).raw_description.workflow_execution_info.first_run_id
        await record_history(
            sc.env.client.get_workflow_handle(sub["workflow_id"], run_id=first_run),
            "subscription_monthly_first_run",
        )


async def test_quarterly_with_a_price_change_mid_year(time_env, make_settings) -> None:
    async with scenario(time_env, make_settings) as sc:
        year = (await sc.now()).year + 1
        await sc.start(
            interval="quarter", anchor_day=15, start_date=f"{year}-01-10", timezone="America/New_York"
        )
        await sc.advance_to(date(year, 5, 1))
        changed = await sc.update(
            "terms",
            {"lines": [{"description": "Managed services (v2)", "unit_price": "3000.00", "tax_rate": "10"}]},
        )
        assert [(t["version"], t["effective_from_cycle"]) for t in changed["terms"]] == [(1, 0), (2, 2)]
        await sc.advance_to(date(year + 2, 1, 1))
        await sc.settle()
        quarters = [f"{y}-{m:02d}-15" for y in (year, year + 1) for m in (1, 4, 7, 10)]
        assert sc.billed() == [(i, d, "2400.00" if i < 2 else "3300.00") for i, d in enumerate(quarters)]


async def test_yearly_on_29_february(time_env, make_settings) -> None:
    async with scenario(time_env, make_settings) as sc:
        now = await sc.now()
        leap = next(y for y in range(now.year + 1, now.year + 9) if y % 4 == 0)
        sub = await sc.start(
            interval="year", start_date=f"{leap}-02-29", timezone="Australia/Sydney", send_time="08:30"
        )
        assert [c["date"] for c in sub["next_invoice_dates"][:3]] == [
            f"{leap}-02-29",
            f"{leap + 1}-02-28",
            f"{leap + 2}-02-28",
        ]
        await sc.advance_to(date(leap + 2, 3, 2))
        await sc.settle()
        assert [d for _, d, _ in sc.billed()] == [f"{leap}-02-29", f"{leap + 1}-02-28", f"{leap + 2}-02-28"]


async def test_pause_and_resume_across_cycles(time_env, make_settings) -> None:
    async with scenario(time_env, make_settings) as sc:
        year = (await sc.now()).year + 1
        await sc.start(anchor_day=10, start_date=f"{year}-01-10", catch_up="none")
        await sc.advance_to(date(year, 2, 15))
        paused = await sc.update("pause")
        assert paused["status"] == "paused"
        assert (await sc.api.post(f"/subscriptions/{sc.sub['id']}/pause", json={})).status_code == 409
        await sc.advance_to(date(year, 5, 20))
        assert (await sc.update("resume"))["status"] == "active"
        # A pause with a resume date resumes by itself.
        await sc.advance_to(date(year, 6, 20))
        await sc.update("pause", {"resume_on": f"{year}-08-05"})
        await sc.advance_to(date(year, 9, 20))
        await sc.settle()
        # Resumed on 5 August by itself, so the 10 August cycle is on time.
        assert [d for _, d, _ in sc.billed()] == [f"{year}-{m:02d}-10" for m in (1, 2, 6, 8, 9)]
        history = (await sc.detail())["history"]
        skipped = [(e["cycle"], e["data"]["period"]) for e in history if e["kind"] == "cycle.skipped"]
        assert skipped == [
            (2, f"{year}-03-10"),
            (3, f"{year}-04-10"),
            (4, f"{year}-05-10"),
            (6, f"{year}-07-10"),
        ]
        kinds = [e["kind"] for e in history if e["kind"] in ("paused", "resumed")]
        assert kinds == ["paused", "resumed", "paused", "resumed"]
        assert [e["data"].get("by") for e in history if e["kind"] == "resumed"] == ["operator", "resume date"]
        await record_history(
            sc.env.client.get_workflow_handle(sc.sub["workflow_id"]), "subscription_paused_and_resumed"
        )


async def _outage(time_env, make_settings, policy: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Three cycles pass while the subscription's workflow does not run, then it wakes up.

    The time-skipping server cannot move its clock while no worker polls (it waits for the worker), so
    the outage is the run being terminated and started again from its carried-over state, exactly as
    continue-as-new would pass it: the same wake-up path a worker returning from an outage takes."""
    async with scenario(time_env, make_settings) as sc:
        year = (await sc.now()).year + 1
        sub = await sc.start(anchor_day=1, start_date=f"{year}-01-01", catch_up=policy)
        await sc.advance_to(date(year, 2, 15))
        await sc.settle()
        handle = sc.env.client.get_workflow_handle_for(SubscriptionWorkflow.run, sub["workflow_id"])
        carried = await handle.query(SubscriptionWorkflow.state)
        assert carried.next_cycle == 2
        await handle.terminate("simulated outage")
        await sc.advance_to(date(year, 5, 20))  # 1 March, 1 April and 1 May pass unbilled
        assert len(sc.billed()) == 2
        original = (await handle.describe()).raw_description.workflow_execution_info
        assert original.status == 5  # TERMINATED
        with session_scope(sc.settings.require_database_url()) as s:
            rec = subs.recurrence_of(subs.get(s, uuid.UUID(sub["id"])))
        await sc.env.client.start_workflow(
            SubscriptionWorkflow.run,
            SubscriptionWorkflowInput(
                subscription_id=sub["id"],
                customer_id=sc.customer["id"],
                currency="USD",
                recurrence=recurrence_spec(rec),
                catch_up=policy,
                next_cycle=carried.next_cycle,
                terms_version=carried.terms_version,
            ),
            id=sub["workflow_id"],
            task_queue=sc.settings.task_queue,
        )
        await sc.advance_to(date(year, 7, 15))
        await sc.settle()
        return [d for _, d, _ in sc.billed()]


async def test_outage_of_three_cycles_bill_all(time_env, make_settings) -> None:
    year = (await time_env.get_current_time()).year + 1
    assert await _outage(time_env, make_settings, "all") == [f"{year}-{m:02d}-01" for m in range(1, 8)]


async def test_outage_of_three_cycles_bill_latest(time_env, make_settings) -> None:
    year = (await time_env.get_current_time()).year + 1
    assert await _outage(time_env, make_settings, "latest") == [f"{year}-{m:02d}-01" for m in (1, 2, 5, 6, 7)]


async def test_outage_of_three_cycles_bill_none(time_env, make_settings) -> None:
    year = (await time_env.get_current_time()).year + 1
    assert await _outage(time_env, make_settings, "none") == [f"{year}-{m:02d}-01" for m in (1, 2, 6, 7)]


async def test_cancel_at_period_end_and_now(time_env, make_settings) -> None:
    async with scenario(time_env, make_settings) as sc:
        year = (await sc.now()).year + 1
        await sc.start(anchor_day=5, start_date=f"{year}-01-05")
        await sc.advance_to(date(year, 2, 20))
        canceling = await sc.update("cancel", {"at_period_end": True})
        assert canceling["status"] == "canceling" and canceling["next_invoice_dates"] == []
        await sc.advance_to(date(year, 3, 6))

        async def canceled():  # type: ignore[no-untyped-def]
            return (await sc.detail())["status"] == "canceled"

        await eventually(canceled, what="canceled at period end")
        await sc.advance_to(date(year, 6, 1))
        await sc.settle()
        assert [d for _, d, _ in sc.billed()] == [f"{year}-01-05", f"{year}-02-05"]
        assert (await sc.api.post(f"/subscriptions/{sc.sub['id']}/resume", json={})).status_code == 409

    async with scenario(time_env, make_settings) as sc:
        year = (await sc.now()).year + 1
        await sc.start(anchor_day=5, start_date=f"{year}-01-05")
        await sc.advance_to(date(year, 1, 20))
        assert (await sc.update("cancel", {"at_period_end": False}))["status"] == "canceled"
        await sc.advance_to(date(year, 4, 1))
        await sc.settle()
        assert [d for _, d, _ in sc.billed()] == [f"{year}-01-05"]


async def test_start_in_the_past_with_latest_bills_one_now(time_env, make_settings) -> None:
    async with scenario(time_env, make_settings) as sc:
        today = (await sc.now()).date()
        sub = await sc.start(start_date=(today - timedelta(days=100)).isoformat(), catch_up="latest")
        handle = sc.env.client.get_workflow_handle_for(SubscriptionWorkflow.run, sub["workflow_id"])

        async def one_billed():  # type: ignore[no-untyped-def]
            state = await handle.query(SubscriptionWorkflow.state)
            return state if state.billed_cycles else None

        state = await eventually(one_billed, what="the latest cycle billed")
        assert len(state.billed_cycles) == 1 and len(state.skipped_cycles) == 3
        await sc.settle()
        [(cycle, period, _)] = sc.billed()
        assert cycle == 3 and date.fromisoformat(period) <= today
        upcoming = (await sc.detail())["next_invoice_dates"]
        assert upcoming[0]["cycle"] == 4 and date.fromisoformat(upcoming[0]["date"]) > today


async def test_expenses_and_time_roll_into_the_next_invoice_once(time_env, make_settings, mailbox) -> None:
    async with scenario(time_env, make_settings) as sc:
        year = (await sc.now()).year + 1
        sub = await sc.start(anchor_day=1, start_date=f"{year}-01-01", catch_up="all")
        customer_id = sc.customer["id"]
        small = (
            await sc.api.post(
                f"/customers/{customer_id}/expenses",
                json={
                    "description": "Train to client site",
                    "amount": "86.40",
                    "incurred_on": f"{year - 1}-12-12",
                    "receipt_ref": "R-1",
                },
            )
        ).json()
        big = (
            await sc.api.post(
                f"/customers/{customer_id}/expenses",
                json={
                    "description": "Replacement firewall",
                    "amount": "1200.00",
                    "incurred_on": f"{year - 1}-12-14",
                },
            )
        ).json()
        hours = (
            await sc.api.post(
                f"/customers/{customer_id}/time-entries",
                json={
                    "description": "Out-of-hours incident",
                    "hours": "2.5",
                    "rate": "120.00",
                    "incurred_on": f"{year - 1}-12-20",
                },
            )
        ).json()
        unbillable = (
            await sc.api.post(
                f"/customers/{customer_id}/expenses",
                json={
                    "description": "Internal lunch",
                    "amount": "30.00",
                    "incurred_on": f"{year - 1}-12-21",
                    "billable": False,
                },
            )
        ).json()
        assert (small["status"], big["status"], hours["status"], hours["amount"]) == (
            "approved",
            "pending_approval",
            "approved",
            "300.00",
        )
        assert unbillable["status"] == "approved" and unbillable["billable"] is False
        floaty = await sc.api.post(
            f"/customers/{customer_id}/expenses",
            json={"description": "x", "amount": 9.99, "incurred_on": "2026-01-01"},
        )
        assert floaty.status_code == 422 and "float" in floaty.text

        await sc.advance_to(date(year, 1, 15))
        await sc.settle()
        # January: fee + the two approved items; the firewall still waits for approval.
        assert sc.billed() == [(0, f"{year}-01-01", "2786.40")]

        approved = await sc.api.post(
            f"/billable-items/{big['id']}/approve", json={"comment": "agreed with client"}
        )
        assert approved.json()["status"] == "approved"
        assert (await sc.api.post(f"/billable-items/{big['id']}/approve", json={})).status_code == 409
        await sc.advance_to(date(year, 3, 15))
        await sc.settle()
        assert sc.billed() == [
            (0, f"{year}-01-01", "2786.40"),
            (1, f"{year}-02-01", "3600.00"),
            (2, f"{year}-03-01", "2400.00"),
        ]
        items = (await sc.api.get(f"/customers/{customer_id}/billable-items")).json()
        billed_on = {i["description"]: i["invoice_id"] for i in items}
        invoices = {i["cycle"]: i["invoice_id"] for i in (await sc.detail())["invoices"]}
        assert billed_on == {
            "Train to client site": invoices[0],
            "Out-of-hours incident": invoices[0],
            "Replacement firewall": invoices[1],
            "Internal lunch": None,
        }
        lines = [
            line["description"] for line in (await sc.api.get(f"/invoices/{invoices[1]}")).json()["lines"]
        ]
        assert lines == ["Managed services", f"Replacement firewall ({year - 1}-12-14)"]

        # Voiding February's invoice releases the firewall to the next cycle.
        voided = await sc.api.post(
            f"/invoices/{invoices[1]}/void", json={"reason": "firewall billed separately by mistake"}
        )
        assert voided.status_code == 200
        released = [e for e in voided.json()["timeline"] if e["kind"] == "status.void"][0]["data"]
        assert released["released_billable_items"] == "1"
        await sc.advance_to(date(year, 4, 15))
        await sc.settle()
        assert sc.billed()[-1] == (3, f"{year}-04-01", "3600.00")
        assert sub["id"]


async def test_cycles_that_need_approval_wait_for_an_operator(time_env, make_settings, mailbox) -> None:
    async with scenario(time_env, make_settings) as sc:
        year = (await sc.now()).year + 1
        await sc.start(anchor_day=1, start_date=f"{year}-01-01", auto_send=False)
        await sc.advance_to(date(year, 1, 2))
        [invoice] = (await sc.detail())["invoices"]

        async def pending():  # type: ignore[no-untyped-def]
            return (await sc.api.get(f"/invoices/{invoice['invoice_id']}")).json()[
                "status"
            ] == "pending_approval"

        await eventually(pending, what="pending approval")
        assert invoice["number"] is None  # nothing numbered or sent before sign-off
        assert not [m for m in mailbox.store.list() if sc.customer["emails"][0] in m.rcpt_tos]
        approved = await sc.api.post(f"/invoices/{invoice['invoice_id']}/approve", json={"comment": "ok"})
        assert approved.status_code == 200, approved.text

        async def sent():  # type: ignore[no-untyped-def]
            body = (await sc.api.get(f"/invoices/{invoice['invoice_id']}")).json()
            return body if body["status"] == "open" else None

        body = await eventually(sent, what="sent after approval")
        assert body["number"] and any(e["kind"] == "approved" for e in body["timeline"])
        await wait_mail(mailbox, 1, where=lambda m: sc.customer["emails"][0] in m.rcpt_tos)
        again = await sc.api.post(f"/invoices/{invoice['invoice_id']}/approve", json={})
        assert again.status_code == 409
        await record_history(
            sc.env.client.get_workflow_handle(body["workflow_id"]), "approved_by_operator_then_open"
        )
