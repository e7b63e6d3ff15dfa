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

from persistence.db import session_scope
from persistence.models import Invoice
from tests.support import api_client, customer_body, eventually
from worker import build_worker
from workflows.subscription import SubscriptionWorkflow


class Scenario:
    def __init__(self, env, settings, api: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
        self.env, self.settings, self.api = env, settings, api
        self.customer: dict[str, Any] = {}
        self.sub: dict[str, Any] = {}

    async def start(self, customer: dict[str, Any] | None = None, **subscription: Any) -> dict[str, Any]:
        # No reminders: these tests are about cycles, and years of reminder emails only slow them down.
        self.customer = (await self.api.post("/customers", json=customer_body(reminder_offsets=[], **(customer or {})))).json()
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
                statuses = s.scalars(select(Invoice.status).where(Invoice.subscription_id == uuid.UUID(self.sub["id"]))).all()
            return all(st not in ("draft",) for st in statuses)

        await eventually(settled, what="cycle invoices issued")

    def billed(self) -> list[tuple[int, str, str]]:
        """(cycle, period date, total) of every invoice of the subscription, in cycle order."""
        with session_scope(self.settings.require_database_url()) as s:
            rows = s.scalars(
                select(Invoice).where(Invoice.subscription_id == uuid.UUID(self.sub["id"])).order_by(Invoice.subscription_cycle)
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
        sub = await sc.start(anchor_day=31, start_date=start.isoformat(), timezone="Europe/Berlin", catch_up="all")
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
            issued = s.scalars(select(Invoice.issued_at).where(Invoice.subscription_id == uuid.UUID(sub["id"]))).all()
        assert {t.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") for t in issued} == {"09:00"}
