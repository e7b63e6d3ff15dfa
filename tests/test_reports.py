"""Operator reports: aging per currency and the next workflow actions, through the real API,
a real worker on the Temporal dev server and PostgreSQL; the page in headless Chromium.

Invoices are created and opened through the API; aging needs invoices that are weeks overdue, so their
``due_date`` (and status) is backdated in PostgreSQL afterwards. The database is shared with the rest of
the suite, so per-currency totals are compared as the change from a report taken before this test's
invoices existed; per-customer lines belong to this test's customers only and are compared exactly.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.main import create_app
from api.routes.reports import next_action
from billing.aging import BUCKETS
from billing.dunning import policy_from_dict, policy_to_dict
from billing.money import format_money
from core.settings import Settings
from persistence.db import session_scope
from persistence.models import Invoice
from persistence.users import create_user
from tests.support import api_client, customer_body, eventually
from worker import build_worker
from workflows.invoice import InvoiceWorkflow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_BROWSER = CHROMIUM is None and os.environ.get("CI") != "true"
D = Decimal


def today_utc() -> date:
    return datetime.now(UTC).date()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# ---------------------------------------------------------------- helpers


async def new_customer(api: httpx.AsyncClient, **overrides: Any) -> dict[str, Any]:
    created = await api.post("/customers", json=customer_body(**overrides))
    assert created.status_code == 201, created.text
    return created.json()


async def new_invoice(
    api: httpx.AsyncClient, customer: dict[str, Any], amount: str, **extra: Any
) -> dict[str, Any]:
    """An invoice created through the API and waited for until its workflow has issued it (open)."""
    created = await api.post(
        "/invoices",
        json={
            "customer_id": customer["id"],
            "lines": [{"description": "Managed services", "unit_price": amount}],
            **extra,
        },
    )
    assert created.status_code == 201, created.text
    invoice_id = created.json()["id"]

    async def opened() -> dict[str, Any] | None:
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["status"] == "open" else None

    return await eventually(opened, what=f"invoice {invoice_id} open")


async def wait_status(api: httpx.AsyncClient, invoice_id: str, status: str) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["status"] == status else None

    return await eventually(reached, what=f"invoice {invoice_id} {status}")


async def pay(api: httpx.AsyncClient, invoice: dict[str, Any], amount: str) -> str:
    """Record a payment through the API; the invoice's status after it."""
    paid = await api.post(f"/invoices/{invoice['id']}/payments", json={"amount": amount})
    assert paid.status_code == 201, paid.text
    return str(paid.json()["status"])


def backdate(pg_url: str, invoice_id: str, due: date, status: str | None = None) -> None:
    """Move an invoice's due date (and optionally its status) in PostgreSQL: the report reads these rows."""
    with session_scope(pg_url) as session:
        invoice = session.get(Invoice, uuid.UUID(invoice_id))
        assert invoice is not None
        invoice.due_date = due
        if status is not None:
            invoice.status = status


def currency_totals(report: dict[str, Any]) -> dict[str, dict[str, Decimal]]:
    return {
        c["currency"]: {**{b: D(c["buckets"][b]) for b in BUCKETS}, "total": D(c["total"])}
        for c in report["currencies"]
    }


def line_of(report: dict[str, Any], customer_id: str, currency: str) -> dict[str, str] | None:
    for c in report["currencies"]:
        for line in c["customers"]:
            if line["customer_id"] == customer_id and c["currency"] == currency:
                return {**line["buckets"], "total": line["total"]}
    return None


def row(total: str, **buckets: str) -> dict[str, str]:
    """Expected bucket amounts as the API writes them (zeros at the currency's scale)."""
    zero = "0" if "." not in total else "0." + "0" * len(total.split(".")[1])
    named = {"current": "current", "d1_30": "1-30", "d31_60": "31-60", "d61_90": "61-90", "d90": "90+"}
    amounts = {bucket: zero for bucket in BUCKETS}
    amounts.update({named[key]: value for key, value in buckets.items()})
    return {**amounts, "total": total}


# ---------------------------------------------------------------- aging through the API


async def test_aging_buckets_per_currency_and_only_receivables(
    temporal_env, make_settings, pg_url: str
) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    as_of = today_utc()
    async with build_worker(client, settings), api_client(settings, client) as api:
        before = (await api.get("/reports/aging", params={"as_of": as_of.isoformat()})).json()
        alpha = await new_customer(api, name=f"Aging Alpha {uuid.uuid4().hex[:6]}", currency="USD")
        beta = await new_customer(api, name=f"Aging Beta {uuid.uuid4().hex[:6]}", currency="EUR")

        a1 = await new_invoice(api, alpha, "1000.00")
        a2 = await new_invoice(api, alpha, "250.50")
        await new_invoice(api, alpha, "99.99")  # net_14 from today: current
        a4 = await new_invoice(api, alpha, "400.00", currency="EUR")
        b1 = await new_invoice(api, beta, "1234.56")
        b2 = await new_invoice(api, beta, "500.00")
        b3 = await new_invoice(api, beta, "700.00")  # paid: nothing due (and not its total either)
        b4 = await new_invoice(api, beta, "800.00")
        b5 = await new_invoice(api, beta, "650.00")
        b6 = await new_invoice(api, beta, "30000", currency="JPY")

        assert await pay(api, b2, "200.00") == "partially_paid"
        assert await pay(api, b3, "700.00") == "paid"
        assert (await api.post(f"/invoices/{b4['id']}/void", json={"reason": "duplicate"})).status_code == 200
        assert (
            await api.post(f"/invoices/{b5['id']}/uncollectible", json={"reason": "insolvent"})
        ).status_code == 200
        await wait_status(api, b4["id"], "void")
        await wait_status(api, b5["id"], "uncollectible")

        # A draft: its workflow waits on a task queue no worker polls, so it is never issued.
        async with api_client(make_settings(client), client) as unpolled:
            draft = await unpolled.post(
                "/invoices",
                json={"customer_id": beta["id"], "lines": [{"description": "Draft", "unit_price": "900.00"}]},
            )
            assert draft.status_code == 201 and draft.json()["status"] == "draft"

        def days(n: int) -> date:
            return as_of - timedelta(days=n)

        backdate(pg_url, a1["id"], days(10), "overdue")  # 1-30
        backdate(pg_url, a2["id"], days(45), "overdue")  # 31-60
        backdate(pg_url, a4["id"], days(100), "overdue")  # 90+
        backdate(pg_url, b1["id"], days(75), "overdue")  # 61-90
        backdate(pg_url, b2["id"], days(30))  # 1-30 (30 days is the upper edge), still partially_paid
        backdate(pg_url, b6["id"], days(91), "overdue")  # 90+ (91 days)
        for closed in (b3, b4, b5, draft.json()):  # were they counted, they would land in 31-60
            backdate(pg_url, closed["id"], days(40))

        response = await api.get("/reports/aging", params={"as_of": as_of.isoformat()})
        assert response.status_code == 200, response.text
        report = response.json()
        assert report["as_of"] == as_of.isoformat() and report["buckets"] == list(BUCKETS)

        # Per customer per currency, exactly; partially paid counts its amount due, not its total.
        assert line_of(report, alpha["id"], "USD") == row(
            "1350.49", current="99.99", d1_30="1000.00", d31_60="250.50"
        )
        assert line_of(report, alpha["id"], "EUR") == row("400.00", d90="400.00")
        assert line_of(report, beta["id"], "EUR") == row("1534.56", d1_30="300.00", d61_90="1234.56")
        assert line_of(report, beta["id"], "JPY") == row("30000", d90="30000")
        names = {
            line["customer_id"]: line["customer_name"]
            for c in report["currencies"]
            for line in c["customers"]
        }
        assert (names[alpha["id"]], names[beta["id"]]) == (alpha["name"], beta["name"])
        assert line_of(report, alpha["id"], "JPY") is None and line_of(report, beta["id"], "USD") is None

        # Per currency: exactly what this test added, in its own currency only (never USD + EUR).
        old, new = currency_totals(before), currency_totals(report)
        zero = {key: D(0) for key in (*BUCKETS, "total")}
        added = {code: {k: new[code][k] - old.get(code, zero)[k] for k in zero} for code in new}
        assert added["USD"] == zero | {
            "current": D("99.99"),
            "1-30": D("1000.00"),
            "31-60": D("250.50"),
            "total": D("1350.49"),
        }
        assert added["EUR"] == zero | {
            "1-30": D("300.00"),
            "61-90": D("1234.56"),
            "90+": D("400.00"),
            "total": D("1934.56"),
        }
        assert added["JPY"] == zero | {"90+": D("30000"), "total": D("30000")}
        for c in report["currencies"]:  # each total is its own lines' sum, bucket by bucket
            for bucket in BUCKETS:
                assert D(c["buckets"][bucket]) == sum(
                    (D(line["buckets"][bucket]) for line in c["customers"]), D(0)
                )
            assert D(c["total"]) == sum((D(c["buckets"][b]) for b in BUCKETS), D(0))
        assert [c["currency"] for c in report["currencies"]] == sorted(
            {c["currency"] for c in report["currencies"]}
        )

        # Another day, other buckets: 30 days later the 99.99 is 16 days overdue (net_14 from today).
        later = (
            await api.get("/reports/aging", params={"as_of": (as_of + timedelta(days=30)).isoformat()})
        ).json()
        assert line_of(later, alpha["id"], "USD") == row(
            "1350.49", d1_30="99.99", d31_60="1000.00", d61_90="250.50"
        )

        # Default as_of is today in UTC; a bad date is a 422; no token, no report.
        assert (await api.get("/reports/aging")).json()["as_of"] == today_utc().isoformat()
        assert (await api.get("/reports/aging", params={"as_of": "25.11.2026"})).status_code == 422
        assert (await api.get("/reports/aging", headers={"Authorization": "Bearer nope"})).status_code == 401

        # The page: bearer header or a console session, nothing else; not cached; the numbers of the report.
        page = await api.get("/reports/aging/page", params={"as_of": as_of.isoformat()})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert (
            page.headers["cache-control"] == "no-store" and page.headers["referrer-policy"] == "no-referrer"
        )
        for c in report["currencies"]:
            assert format_money(D(c["total"]), c["currency"]) in page.text
        assert alpha["name"] in page.text and "1,350.49" in page.text and "30,000 JPY" in page.text
        assert "<script" not in page.text and "http://" not in page.text.replace(
            "http://www.w3.org/2000/svg", ""
        )
        bare = httpx.ASGITransport(app=create_app(settings, client))
        async with httpx.AsyncClient(
            transport=bare, base_url="http://invoiceflow.test"
        ) as anonymous:  # no header
            # No session: the login form, then back here; a token in the URL no longer opens it.
            bounced = await anonymous.get("/reports/aging/page")
            assert bounced.status_code == 303
            assert bounced.headers["location"] == "/app/login?next=/reports/aging/page"
            by_query = await anonymous.get("/reports/aging/page", params={"token": settings.api_token})
            assert by_query.status_code == 303 and settings.api_token not in by_query.text
            assert (
                await anonymous.get("/reports/aging", params={"token": settings.api_token})
            ).status_code == 401


# ---------------------------------------------------------------- next actions through the API


async def test_next_actions_are_what_the_workflows_will_do(temporal_env, make_settings) -> None:
    client = temporal_env.client
    now = datetime.now(UTC)
    soon = now + timedelta(hours=2)
    # The send hour makes the first reminder (3 days before the due date) fall 1-2 hours from now.
    settings = make_settings(client, reminder_send_hour=soon.hour)
    async with build_worker(client, settings), api_client(settings, client) as api:
        gamma = await new_customer(api, currency="GBP")  # settings' default offsets -3,0,7,14,30
        delta = await new_customer(api, currency="GBP", reminder_offsets=[-2, 5])
        near = await new_invoice(api, gamma, "120.00", due_date=(soon.date() + timedelta(days=3)).isoformat())
        due_today = await new_invoice(
            api, gamma, "80.00", due_date=now.date().isoformat(), reminder_offsets=[]
        )
        far = await new_invoice(api, delta, "60.00", due_date=(now.date() + timedelta(days=30)).isoformat())
        settled = await new_invoice(
            api, gamma, "45.00", due_date=(soon.date() + timedelta(days=3)).isoformat()
        )
        paid = await api.post(f"/invoices/{settled['id']}/payments", json={"amount": "45.00"})
        assert paid.status_code == 201 and paid.json()["status"] == "paid", paid.text

        response = await api.get("/reports/next-actions")
        assert response.status_code == 200, response.text
        listing = response.json()
        assert listing["hours"] == 24
        items = {item["invoice_id"]: item for item in listing["items"]}
        reminder_at = datetime.combine(soon.date(), time(soon.hour), UTC)
        got = items[near["id"]]
        facts = ("action", "offset_days", "number", "customer_name", "amount_due", "currency")
        assert [got[key] for key in facts] == ["reminder", -3, near["number"], gamma["name"], "120.00", "GBP"]
        assert datetime.fromisoformat(got["at"]) == reminder_at
        tomorrow = datetime.combine(now.date() + timedelta(days=1), time(0), UTC)
        becomes_overdue = items[due_today["id"]]
        assert (becomes_overdue["action"], datetime.fromisoformat(becomes_overdue["at"])) == (
            "overdue",
            tomorrow,
        )
        assert far["id"] not in items  # its first reminder is 28 days away
        assert settled["id"] not in items  # same plan as `near`, but paid: nothing more will happen
        instants = [datetime.fromisoformat(item["at"]) for item in listing["items"]]
        assert instants == sorted(instants)
        start, end = datetime.fromisoformat(listing["now"]), datetime.fromisoformat(listing["until"])
        assert end - start == timedelta(hours=24) and all(start < at <= end for at in instants)

        # A month's window shows the far invoice with its customer's own offsets (-2 before 5).
        month = {
            i["invoice_id"]: i
            for i in (await api.get("/reports/next-actions", params={"hours": 720})).json()["items"]
        }
        assert (month[far["id"]]["action"], month[far["id"]]["offset_days"]) == ("reminder", -2)
        far_at = datetime.combine(now.date() + timedelta(days=28), time(soon.hour), UTC)
        assert datetime.fromisoformat(month[far["id"]]["at"]) == far_at

        # The same instants the workflows themselves will wake up at.
        for invoice, expected in ((near, reminder_at), (due_today, tomorrow), (far, far_at)):
            state = await client.get_workflow_handle(invoice["workflow_id"]).query(InvoiceWorkflow.state)
            assert state.next_reminder_at == expected, invoice["id"]

        # A voided invoice has no next action; the window is validated.
        assert (
            await api.post(f"/invoices/{due_today['id']}/void", json={"reason": "sent in error"})
        ).status_code == 200
        await wait_status(api, due_today["id"], "void")
        after = {i["invoice_id"] for i in (await api.get("/reports/next-actions")).json()["items"]}
        assert near["id"] in after and due_today["id"] not in after
        for bad in ("0", "721", "soon"):
            assert (await api.get("/reports/next-actions", params={"hours": bad})).status_code == 422
        assert (
            await api.get("/reports/next-actions", headers={"Authorization": "Bearer nope"})
        ).status_code == 401


# ---------------------------------------------------------------- the next-action rule itself


def plan(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "status": "open",
        "due_date": date(2026, 6, 15),
        "issued_at": utc(2026, 6, 1, 8),
        "timezone": "UTC",
        "invoice_offsets": None,
        "customer_offsets": None,
        "default_offsets": (-3, 0, 7),
        "send_hour": 9,
        "now": utc(2026, 6, 1, 12),
    }
    values.update(overrides)
    return next_action(**values)


def test_next_action_rule() -> None:
    first = plan()
    assert (first.kind, first.offset_days, first.at) == ("reminder", -3, utc(2026, 6, 12, 9))
    # Precedence: invoice offsets, then customer offsets, then the settings' defaults; [] means none.
    assert plan(customer_offsets=[-1]).offset_days == -1
    assert plan(invoice_offsets=[0], customer_offsets=[-1]).offset_days == 0
    assert plan(customer_offsets=[7]).kind == "overdue"  # the due date passes before day 7
    assert (plan(invoice_offsets=[]).kind, plan(invoice_offsets=[]).at) == ("overdue", utc(2026, 6, 16))
    # The escalation comes an hour after the last reminder.
    escalation = plan(now=utc(2026, 6, 22, 9, 30))
    assert (escalation.kind, escalation.offset_days, escalation.at) == ("escalation", 7, utc(2026, 6, 22, 10))
    assert plan(now=utc(2026, 6, 22, 10)) is None  # everything done
    # Steps up to the issue instant were dropped by the workflow, so they never come (even when this
    # server's clock is behind the worker's that issued the invoice).
    late = plan(issued_at=utc(2026, 6, 14, 12), now=utc(2026, 6, 10))
    assert (late.kind, late.offset_days, late.at) == ("reminder", 0, utc(2026, 6, 15, 9))
    # Overdue is the start of the next local day; an overdue invoice does not become overdue again.
    berlin = plan(invoice_offsets=[], timezone="Europe/Berlin")
    assert berlin.at == utc(2026, 6, 15, 22)
    assert plan(invoice_offsets=[], status="overdue") is None
    assert plan(status="overdue", now=utc(2026, 6, 20)).at == utc(2026, 6, 22, 9)
    # On a tie the workflow settles the status before it sends the reminder.
    tie = plan(invoice_offsets=[1], send_hour=0, now=utc(2026, 6, 15, 12))
    assert (tie.kind, tie.at) == ("overdue", utc(2026, 6, 16))
    # Reminders go out at the send hour in the client's timezone (10:00 IST is 04:30 UTC).
    kolkata = plan(timezone="Asia/Kolkata", send_hour=10)
    assert kolkata.at == utc(2026, 6, 12, 4, 30)


def test_next_action_follows_the_dunning_policy_frozen_on_the_invoice() -> None:
    """With a policy on the invoice, the next reminder is the policy's (send window included), not the
    default offsets'. 2026-06-13 is a Saturday: a step due then goes out on Monday at the window start."""
    policy = policy_to_dict(
        policy_from_dict(
            {
                "name": "weekday mornings",
                "steps": [{"offset_days": -2, "template": "reminder"}],
                "send_window": {
                    "start": "10:30",
                    "end": "16:00",
                    "weekdays": ["mon", "tue", "wed", "thu", "fri"],
                },
            }
        )
    )
    step = plan(policy=policy, timezone="Europe/Berlin", now=utc(2026, 6, 12, 12))
    assert (step.kind, step.offset_days, step.at) == (
        "reminder",
        -2,
        utc(2026, 6, 15, 8, 30),
    )  # Mon 10:30 CEST
    # Once that step is behind us, what is left is becoming overdue (no escalation in this policy).
    assert plan(policy=policy, timezone="Europe/Berlin", now=utc(2026, 6, 15, 9)).kind == "overdue"


# ---------------------------------------------------------------- the page in Chromium


@pytest.fixture
def served(served_api) -> Settings:  # type: ignore[no-untyped-def]
    return served_api()


@pytest.mark.skipif(NO_BROWSER, reason="Chromium is not installed (./scripts/test installs it when it can)")
async def test_aging_page_in_chromium_on_a_phone(
    served: Settings, temporal_env, pg_url: str, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    assert CHROMIUM, "CI must have Chromium"
    client = temporal_env.client
    as_of = today_utc()
    async with build_worker(client, served), api_client(served, client) as api:
        customer = await new_customer(api, name=f"Chart & <Co> {uuid.uuid4().hex[:6]}", currency="CHF")
        old = await new_invoice(api, customer, "4200.00")
        await new_invoice(api, customer, "1050.00")  # current
        yen = await new_invoice(api, customer, "125000", currency="JPY")
        backdate(pg_url, old["id"], as_of - timedelta(days=50), "overdue")
        backdate(pg_url, yen["id"], as_of - timedelta(days=20), "overdue")
        report = (await api.get("/reports/aging", params={"as_of": as_of.isoformat()})).json()
        upcoming = (await api.get("/reports/next-actions")).json()["items"]

    url = f"{served.public_url}/reports/aging/page?as_of={as_of.isoformat()}"
    email, password = f"aging-{uuid.uuid4().hex[:6]}@firm.example.com", "aging page password"
    with session_scope(pg_url) as session:
        create_user(session, email, "viewer", password, actor="test")
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        await page.goto(url)  # no session: the console's login form, then back to the page
        await page.fill("#email", email)
        await page.fill("#password", password)
        async with page.expect_navigation(url=re.compile(r"/reports/aging/page")) as navigation:
            await page.get_by_role("button", name="Sign in").click()
        response = await navigation.value
        assert response is not None and response.status == 200
        await page.get_by_role("heading", name="Receivables aging").wait_for()
        await page.screenshot(path=str(tmp_path / "aging-page.png"), full_page=True)

        codes = [c["currency"] for c in report["currencies"]]
        assert {"CHF", "JPY"} <= set(codes)
        assert await page.locator("svg rect").count() == len(BUCKETS) * len(codes)
        for c in report["currencies"]:
            chart = page.locator(f'figure.chart[data-currency="{c["currency"]}"]')
            rects = chart.locator("svg rect")
            assert await rects.count() == len(BUCKETS)
            assert [await rects.nth(i).get_attribute("data-bucket") for i in range(len(BUCKETS))] == list(
                BUCKETS
            )
            total_text = format_money(D(c["total"]), c["currency"])
            assert (await chart.locator("figcaption .total").inner_text()).strip() == total_text
            texts = [await t.text_content() or "" for t in await chart.locator("text.amount").all()]
            labels = [re.sub(r"\s+", " ", text).strip() for text in texts]
            assert labels == [format_money(D(c["buckets"][b]), c["currency"]) for b in BUCKETS]
            # Heights are proportional to the amounts (the largest bucket is the full height).
            heights = [
                float(await rects.nth(i).get_attribute("height") or "nan") for i in range(len(BUCKETS))
            ]
            amounts = [D(c["buckets"][b]) for b in BUCKETS]
            top = max(amounts)
            for height, amount in zip(heights, amounts, strict=True):
                assert height == pytest.approx(float(amount / top) * max(heights), abs=0.02)
            assert max(heights) > 100  # the largest bar is drawn full height, not flat
            assert await chart.locator("svg").bounding_box() is not None

        # This test's customer: its line in the CHF table (its name escaped, shown as typed) and in JPY.
        assert line_of(report, customer["id"], "CHF") == row("5250.00", current="1050.00", d31_60="4200.00")
        chf_table = await page.locator('section.currency[data-currency="CHF"] table').inner_text()
        assert customer["name"] in chf_table and "4,200.00" in chf_table and "5,250.00" in chf_table
        assert "125,000" in await page.locator('section.currency[data-currency="JPY"] table').inner_text()

        # The next-actions list is the API's list, in its order.
        shown = [await li.inner_text() for li in await page.locator("#next-actions li").all()]
        assert len(shown) == len(upcoming)
        assert all(
            (item["number"] or item["invoice_id"]) in text for item, text in zip(upcoming, shown, strict=True)
        )

        # Readable on a phone: nothing wider than the screen (wide tables scroll inside their card).
        overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        font_px = await page.evaluate(
            "(() => { const s = document.querySelector('figure.chart svg');"
            " return s.getBoundingClientRect().width / s.viewBox.baseVal.width * 11; })()"
        )
        assert font_px >= 9.5  # the chart is not shrunk to illegible labels at phone width
        assert all(r.startswith(served.public_url) for r in requests), requests  # no external assets
        await browser.close()
