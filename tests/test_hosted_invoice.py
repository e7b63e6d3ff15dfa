"""The hosted invoice page in a real browser on the dev server: a signed Stripe `invoice.paid` event for
an open invoice makes it paid and ends its reminders; the page shows it paid, the view is on the
timeline, the open pixel is recorded as a weak signal, and a changed link shows nothing."""

from __future__ import annotations

import os
import re
import shutil

import httpx
import pytest

from core.links import sign_invoice_page
from core.settings import Settings
from standins import webhooks as send_as
from tests.support import api_client, customer_body, eventually, to, wait_mail
from worker import build_worker

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SECRET = "whsec_hosted_test"


@pytest.fixture
def served(served_api) -> Settings:  # type: ignore[no-untyped-def]
    return served_api(
        stripe_webhook_secret=SECRET,
        payment_link_template="https://buy.stripe.com/test_abc?client_reference_id={invoice_id}",
    )


async def test_paid_by_stripe_then_seen_on_the_hosted_page(served: Settings, temporal_env, mailbox) -> None:  # type: ignore[no-untyped-def]
    if CHROMIUM is None:
        if os.environ.get("CI") == "true":
            raise AssertionError("CI must have Chromium")
        pytest.skip("Chromium is not installed")
    from playwright.async_api import async_playwright

    client = temporal_env.client
    async with build_worker(client, served), api_client(served, client) as api:
        customer = (await api.post("/customers", json=customer_body())).json()
        invoice = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Managed services, November", "unit_price": "2400.00"}],
                },
            )
        ).json()

        async def is_open():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            return body if body["status"] == "open" else None

        await eventually(is_open, what="invoice open")
        [email] = await wait_mail(mailbox, 1, where=to(customer["emails"][0]))
        links = set(re.findall(r"https?://[^\s\"<>]+/i/[A-Za-z0-9._\-]+", email.text_body() or ""))
        link = f"{served.public_url}/i/{sign_invoice_page(served.secret_key, invoice['id'])}"
        assert links == {link}, links  # the emailed link is the hosted page
        assert f"{link}/open.gif" in (email.html_body() or "")  # and the HTML part carries the pixel
        async with httpx.AsyncClient() as http:
            before = await http.get(link)
            assert (
                before.status_code == 200
                and "Pay 2,400.00 USD" in before.text
                and invoice["id"] in before.text
            )
            pixel = await http.get(f"{link}/open.gif")
            assert pixel.headers["content-type"] == "image/gif"
            assert (await http.get(link[:-3] + "AAA")).status_code == 400

        objects = send_as.stripe_payment_objects(invoice["id"], 240000)
        paid = await send_as.send(api, send_as.stripe_event("invoice.paid", objects["invoice.paid"], SECRET))
        assert paid.status_code == 200, paid.text
        result = await client.get_workflow_handle(
            invoice["workflow_id"]
        ).result()  # reminders end with the workflow
        assert result["status"] == "paid"

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
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(link)
            assert await page.get_attribute("[data-status]", "data-status") == "paid"
            assert (await page.text_content("[data-amount-due]")) == "0.00 USD"
            assert await page.get_by_role("link", name="Pay 0.00 USD").count() == 0  # nothing left to pay
            kinds = await page.eval_on_selector_all(
                "ol.timeline li", "items => items.map(i => i.dataset.kind)"
            )
            await browser.close()
        assert {"email.invoice.sent", "opened", "viewed", "payment.recorded", "status.paid"} <= set(kinds), (
            kinds
        )
        timeline = (await api.get(f"/invoices/{invoice['id']}")).json()["timeline"]
        viewed = [e for e in timeline if e["kind"] == "viewed"]
        assert viewed and any("Chrome" in e["data"]["user_agent"] for e in viewed)
        assert (await api.get(f"/invoices/{invoice['id']}")).json()[
            "amount_paid"
        ] == "2400.00"  # the open changed no money
