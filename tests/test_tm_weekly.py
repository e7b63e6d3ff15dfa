"""A time & materials project billed weekly over six simulated weeks on the time-skipping server, with the
real worker, activities, PostgreSQL and SMTP: each week is billed at 00:00 on Monday in the client's
timezone (not a minute before), entries that arrive late go on the next week's invoice, entries sent twice
(API retried, a webhook redelivered or re-sent) are billed once, and a voided week's entries come back
on the next one. Every week's invoice is asserted exactly."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from billing.time_materials import boundary_instant, period_end
from standins import webhooks as send_as
from standins.webhooks import send
from tests.support import api_client, customer_body, eventually, record_history
from tests.webhooks.test_receivers import SECRETS, uid
from worker import build_worker

TZ = "America/Los_Angeles"


@pytest.mark.slow
async def test_weekly_time_and_materials_over_six_weeks(time_env, make_settings) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(time_env.client, **SECRETS)
    async with build_worker(time_env.client, settings), api_client(settings, time_env.client) as api:
        customer = (await api.post("/customers", json=customer_body(timezone=TZ, reminder_offsets=[]))).json()
        response = await api.post(
            "/projects",
            json={
                "customer_id": customer["id"],
                "name": f"Platform team {uid()}",
                "currency": "USD",
                "time_and_materials": {"rate": "100.00", "bill_every": "week"},
            },
        )
        assert response.status_code == 201, response.text
        pid = response.json()["id"]

        now = await time_env.get_current_time()
        ends = [period_end("week", now.astimezone(ZoneInfo(TZ)).date())]
        for _ in range(5):
            ends.append(ends[-1] + timedelta(days=7))

        def day(week: int, weekday: int) -> str:
            return (ends[week] - timedelta(days=7 - weekday)).isoformat()

        async def log(person: str, hours: str, on: str, ext: str, expect: int = 201) -> dict[str, Any]:
            body = {"person": person, "date": on, "hours": hours, "description": "Work", "external_id": ext}
            response = await api.post(f"/projects/{pid}/time-entries", json=body)
            assert response.status_code == expect, response.text
            return response.json()

        async def at(instant: datetime) -> None:
            await time_env.sleep(instant - await time_env.get_current_time())

        async def invoices(count: int) -> list[dict[str, Any]]:
            async def probe():  # type: ignore[no-untyped-def]
                body = (await api.get(f"/projects/{pid}")).json()
                return body["invoices"] if len(body["invoices"]) >= count else None

            return await eventually(probe, what=f"{count} weekly invoice(s)")

        async def hours_by_line(invoice_id: str) -> list[tuple[str, Decimal]]:
            detail = (await api.get(f"/invoices/{invoice_id}")).json()
            return [
                (line["description"].split(": ")[1].split(",")[0], Decimal(line["quantity"]))
                for line in detail["lines"]
            ]

        # Week 0: Ada 8 h (sent twice by the API), Bob 5 h from a time tracker through the generic webhook
        # (delivered twice, then re-sent as a new event for the same entry); Ada logs 6 h of next week early.
        await log("Ada", "8", day(0, 0), "A")
        again = await log("Ada", "8", day(0, 0), "A", expect=200)
        assert again["created"] is False
        secret = SECRETS["generic_webhook_secret"]
        fields = {
            "hours": "5",
            "date": day(0, 1),
            "person": "Bob",
            "description": "Reviews",
            "external_id": "B",
        }
        for event_id in ("gB-1", "gB-1", "gB-2"):
            delivery = send_as.generic_event(
                f"{event_id}-{pid}", "time.logged", secret, project_id=pid, fields=fields
            )
            assert (await send(api, delivery)).status_code == 200
        await log("Ada", "6", day(1, 0), "C")

        async def entries(count: int) -> None:
            async def probe():  # type: ignore[no-untyped-def]
                body = (await api.get(f"/projects/{pid}")).json()
                return body["time_and_materials"]["entries"] >= count

            await eventually(probe, what=f"{count} entries")

        await entries(3)
        # One minute before Monday 00:00 in Los Angeles nothing is billed yet ...
        boundary = boundary_instant(ends[0], TZ)
        assert boundary.astimezone(ZoneInfo(TZ)).hour == 0
        await at(boundary - timedelta(minutes=1))
        body = (await api.get(f"/projects/{pid}")).json()
        assert body["invoices"] == []
        # ... and at midnight the week is.
        await at(boundary + timedelta(minutes=1))
        [week0] = await invoices(1)
        assert week0["total"] == "1300.00"  # 8 h + 5 h; next week's 6 h wait
        assert await hours_by_line(week0["id"]) == [("Ada", Decimal(8)), ("Bob", Decimal(5))]

        # Week 1: Bob's 2 h of week 0 arrive late; Ada logs 4 h.
        await log("Bob", "2", day(0, 2), "D")
        await log("Ada", "4", day(1, 1), "E")
        await at(boundary_instant(ends[1], TZ) + timedelta(minutes=1))
        week1 = (await invoices(2))[1]
        assert week1["total"] == "1200.00"  # Ada 6 + 4, Bob's late 2
        assert await hours_by_line(week1["id"]) == [("Ada", Decimal(10)), ("Bob", Decimal(2))]

        # Week 2 is billed, then voided: its entry goes back and is billed with week 3.
        await log("Ada", "10", day(2, 3), "F")
        await at(boundary_instant(ends[2], TZ) + timedelta(minutes=1))
        week2 = (await invoices(3))[2]
        assert week2["total"] == "1000.00"

        async def issued():  # type: ignore[no-untyped-def]
            return (await api.get(f"/invoices/{week2['id']}")).json()["status"] == "open"

        await eventually(issued, what="week 2 invoice open")
        voided = await api.post(f"/invoices/{week2['id']}/void", json={"reason": "wrong PO"})
        assert voided.status_code == 200, voided.text
        await log("Bob", "3", day(3, 4), "G")
        await at(boundary_instant(ends[3], TZ) + timedelta(minutes=1))
        week3 = (await invoices(4))[3]
        assert week3["total"] == "1300.00"  # Ada's released 10 h + Bob's 3 h

        # Week 4: nothing logged, nothing billed. Week 5: Ada 1.5 h.
        await at(boundary_instant(ends[4], TZ) + timedelta(minutes=1))
        await log("Ada", "1.5", day(5, 0), "H")
        await at(boundary_instant(ends[5], TZ) + timedelta(minutes=1))
        all_invoices = await invoices(5)
        assert [i["total"] for i in all_invoices] == ["1300.00", "1200.00", "1000.00", "1300.00", "150.00"]
        assert [i["status"] for i in all_invoices][2] == "void"

        # Each entry is billed once, on the invoice that carries it now.
        items = (await api.get(f"/customers/{customer['id']}/billable-items")).json()
        assert sorted(Decimal(i["quantity"]) for i in items) == sorted(
            Decimal(h) for h in ("8", "5", "6", "2", "4", "10", "3", "1.5")
        )
        carried = {str(i["invoice_id"]) for i in items}
        assert carried == {all_invoices[k]["id"] for k in (0, 1, 3, 4)}
        body = (await api.get(f"/projects/{pid}")).json()
        assert body["time_and_materials"]["billed"] == "3950.00"  # the void week no longer counts
        assert body["time_and_materials"]["unbilled_hours"] == "0"
        await record_history(time_env.client.get_workflow_handle(body["workflow_id"]), "project_tm_weekly")


def test_the_weekly_calendar_is_monday_to_sunday_in_the_clients_timezone() -> None:
    assert period_end("week", date(2026, 12, 6)) == date(2026, 12, 7)  # a Sunday → the Monday after
    assert period_end("week", date(2026, 12, 7)) == date(2026, 12, 14)
    assert period_end("month", date(2026, 12, 31)) == date(2027, 1, 1)
    # 00:00 in Los Angeles is 08:00 UTC in winter and 07:00 UTC in summer.
    assert boundary_instant(date(2026, 12, 7), TZ).isoformat() == "2026-12-07T08:00:00+00:00"
    assert boundary_instant(date(2026, 7, 6), TZ).isoformat() == "2026-07-06T07:00:00+00:00"
