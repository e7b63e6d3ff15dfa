"""The console for admins and for billing plans, in a real browser: users, approval rules as YAML,
a project's milestone and a customer's hold by hand, a subscription paused and resumed, an estimate
accepted on the client's behalf, an own API token; and a failed accounting sync retried against the
Xero stand-in, then a reconcile run. axe-core on every page, as in test_console_browser."""

from __future__ import annotations

import asyncio
import os
import re
import uuid

import httpx
import pytest

from core.settings import Settings
from tests.console_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PASSWORD,
    audit,
    axe_script,
    flash,
    sign_in,
    user,
)
from tests.support import api_client, customer_body, eventually
from worker import build_worker

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_approval_rules")]

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip("Chromium is not installed (./scripts/test installs it when it can)", allow_module_level=True)


async def test_admin_and_billing_plans_in_the_console(served_api, temporal_env) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    axe_script()
    served: Settings = served_api()
    base = served.public_url
    admin = user(served, "admin")
    client = temporal_env.client
    async with build_worker(client, served), api_client(served, client) as api, async_playwright() as pw:
        customer = (await api.post("/customers", json=customer_body())).json()
        project = (
            await api.post(
                "/projects",
                json={
                    "customer_id": customer["id"],
                    "name": "Data platform",
                    "milestones": [{"key": "m1", "name": "Pilot", "amount": "1200.00"}],
                },
            )
        ).json()
        subscription = await api.post(
            "/subscriptions",
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "Managed services", "unit_price": "900.00"}],
                "interval": "month",
                "start_date": "2027-01-31",
                "anchor_day": 31,
            },
        )
        assert subscription.status_code == 201, subscription.text
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await (await browser.new_context(viewport=DESKTOP)).new_page()
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
        await sign_in(page, base, admin)
        await page.get_by_role("heading", name="Needs a person now").wait_for()

        # Users: an admin creates a finance user, who can then sign in.
        await page.get_by_role("link", name="Users").click()
        newcomer = f"newcomer-{uuid.uuid4().hex[:6]}@firm.example.com"
        await page.fill("#u-email", newcomer)
        await page.select_option("#u-role", "finance")
        await page.fill("#u-password", PASSWORD)
        await page.get_by_role("button", name="Create user").click()
        assert f"Created {newcomer}." in await flash(page)
        await audit(page, "users")

        # Rules: invalid YAML is refused with the API's message; valid YAML replaces the rules.
        await page.goto(f"{base}/app/rules")
        await page.fill("#rules-yaml", "rules:\n  - name: broken\n    steps: []\n")
        await page.get_by_role("button", name="Save rules").click()
        assert "Not saved:" in await flash(page)
        good = (
            'rules:\n  - name: huge\n    match: {min_amount: "90000.00"}\n    steps:\n'
            "      - {approvers: [cfo@firm.example.com]}\n"
        )
        await page.fill("#rules-yaml", good)
        await page.get_by_role("button", name="Save rules").click()
        assert "1 approval rule(s) saved." in await flash(page)
        assert [r["name"] for r in (await api.get("/approval-rules")).json()] == ["huge"]
        # Dunning policies: created and edited as YAML, refused in the API's words.
        policy = f"console-{uuid.uuid4().hex[:6]}"
        step = "{offset_days: 3, template: reminder, tone: %s}"
        await page.fill("#policy-new", f"name: {policy}\nsteps:\n  - {step % 'angry'}\n")
        await page.get_by_role("button", name="Create policy").click()
        assert "Policy not saved:" in await flash(page) and "steps[0].tone" in await flash(page)
        await page.fill("#policy-new", f"name: {policy}\nsteps:\n  - {step % 'firm'}\n")
        await page.get_by_role("button", name="Create policy").click()
        assert f"Dunning policy {policy} saved." in await flash(page)
        editor = page.get_by_label(f"Policy {policy} (YAML)")
        await editor.fill((await editor.input_value()).replace("offset_days: 3", "offset_days: 10"))
        await page.get_by_role("button", name=f"Save policy {policy}").click()
        assert f"Dunning policy {policy} saved." in await flash(page)
        stored_policy = (await api.get(f"/dunning-policies/{policy}")).json()["policy"]
        assert [s["offset_days"] for s in stored_policy["steps"]] == [10]
        await audit(page, "rules")

        # A project's milestone billed by hand.
        await page.goto(f"{base}/app/projects")
        await page.get_by_role("link", name="Data platform").first.click()
        await audit(page, "project")
        await page.fill("#ref-m1", "accepted in the steering meeting")
        await page.get_by_role("button", name="Done: bill it (Pilot)").click()
        assert "Milestone m1 done" in await flash(page)

        async def billed() -> bool:
            body = (await api.get(f"/projects/{project['id']}")).json()
            return body["billed"] in ("1200.00", "1200")

        await eventually(billed, what="the milestone billed")

        # The customer: edited with the API's validation, then its dunning held and released.
        await page.goto(f"{base}/app/customers")
        await page.get_by_role("link", name=customer["name"]).click()
        await page.fill("#e-emails", "not an email")
        await page.get_by_role("button", name="Save").click()
        assert "Not done:" in await flash(page) and "email" in await flash(page)
        await page.fill("#e-emails", "ap@renamed.example.com, cfo@renamed.example.com")
        await page.get_by_role("button", name="Save").click()
        assert "Saved." in await flash(page)
        stored = (await api.get(f"/customers/{customer['id']}")).json()
        assert stored["emails"] == ["ap@renamed.example.com", "cfo@renamed.example.com"]
        await page.fill("#ch-reason", "Contract renegotiation")
        await page.get_by_role("button", name="Hold customer").click()
        assert "Dunning is on hold for this customer" in await flash(page)
        assert "on hold since" in (await page.locator("#customer-hold").text_content() or "")
        await audit(page, "customer")
        await page.get_by_role("button", name="Release").click()
        assert "Released: reminders resume" in await flash(page)
        assert (await page.locator("#customer-hold").text_content() or "").strip() == "running"

        # A subscription paused and resumed.
        await page.goto(f"{base}/app/subscriptions")
        await audit(page, "subscriptions")
        row = page.get_by_role("row", name=re.compile(customer["name"]))
        await row.get_by_role("button", name="Pause").click()
        assert "Paused." in await flash(page)
        sub = (await api.get(f"/subscriptions/{subscription.json()['id']}")).json()
        assert sub["status"] == "paused"
        await (
            page.get_by_role("row", name=re.compile(customer["name"]))
            .get_by_role("button", name="Resume")
            .click()
        )
        assert "Resumed." in await flash(page)
        # New terms from the next cycle on, through the API's terms Update.
        row = page.get_by_role("row", name=re.compile(customer["name"]))
        await row.get_by_text("Change terms").click()
        await audit(page, "subscription-terms", phone_too=False)
        await row.get_by_label("Unit price (USD)").first.fill("950.00")
        await row.get_by_role("button", name="Save terms").click()
        assert "New terms" in await flash(page), await flash(page)
        sub = (await api.get(f"/subscriptions/{subscription.json()['id']}")).json()
        assert [t["lines"][0]["unit_price"] for t in sub["terms"]][-1] in ("950.00", "950")

        # An estimate the client accepted by phone: accepted here, it becomes an invoice.
        from datetime import date, timedelta

        estimate = await api.post(
            "/estimates",
            json={
                "customer_id": customer["id"],
                "lines": [{"description": "Security audit", "unit_price": "3000.00"}],
                "valid_until": (date.today() + timedelta(days=30)).isoformat(),
            },
        )
        assert estimate.status_code == 201, estimate.text
        await page.goto(f"{base}/app/estimates")
        await page.get_by_role("link", name=estimate.json()["number"]).click()
        await audit(page, "estimate")
        await page.fill("#conv-note", "accepted on the phone")
        await page.get_by_role("button", name="Accept and invoice").click()
        assert "Accepted on the client's behalf" in await flash(page)

        async def converted() -> bool:
            body = (await api.get(f"/estimates/{estimate.json()['id']}")).json()
            return body["status"] == "accepted" and body["invoice_id"] is not None

        await eventually(converted, what="the estimate converted")

        # Their own API token: shown once, works, revoked.
        await page.goto(f"{base}/app/tokens")
        await page.fill("#t-name", "reporting")
        await page.select_option("#t-role", "viewer")
        await page.get_by_role("button", name="Create token").click()
        secret = (await page.locator("#new-token").text_content() or "").strip()
        assert secret.startswith("ifk_")
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {secret}"}) as script:
            assert (await script.get("/customers")).status_code == 200
            assert (await script.post("/customers", json=customer_body())).status_code == 403
            await page.goto(f"{base}/app/tokens")
            assert secret not in await page.content()
            await page.get_by_role("button", name="Revoke token reporting").click()
            assert "Token revoked." in await flash(page)
            assert (await script.get("/customers")).status_code == 401
        await browser.close()


async def test_a_failed_sync_is_retried_from_the_console(served_api, temporal_env) -> None:  # type: ignore[no-untyped-def]
    """The Xero stand-in refuses an unknown revenue account; once it exists, Retry syncs it, once."""
    from datetime import UTC, datetime, timedelta

    from playwright.async_api import async_playwright

    from accounting.tokens import TokenGrant, save_connection, token_cipher
    from standins.accounting.xero import PREFIX, TOKEN_PATH, XeroState, create_xero_app
    from standins.server import serve

    axe_script()
    state = XeroState(tenant_id=f"tenant-{uuid.uuid4().hex[:8]}", tokens={"xero-token"})
    xero_app, _ = create_xero_app(state)
    with serve(xero_app) as xero:
        served: Settings = served_api(
            accounting_provider="xero",
            xero_base_url=xero.base_url + PREFIX,
            xero_token_url=xero.base_url + TOKEN_PATH,
            xero_tenant_id=state.tenant_id,
            xero_client_id="xero-client",
            xero_client_secret="xero-secret",
            accounting_tax_codes="0=NONE",
            accounting_timeout_s=5.0,
            accounting_sales_account="4711",
        )
        state.oauth.add_refresh_token("rt-1")
        save_connection(
            served.require_database_url(),
            token_cipher(served),
            "xero",
            state.tenant_id,
            TokenGrant("xero-token", "rt-1", datetime.now(UTC) + timedelta(hours=1)),
        )
        base, finance, client = served.public_url, user(served, "finance"), temporal_env.client
        async with build_worker(client, served), api_client(served, client) as api, async_playwright() as pw:
            customer = (await api.post("/customers", json=customer_body())).json()
            invoice = (
                await api.post(
                    "/invoices",
                    json={
                        "customer_id": customer["id"],
                        "lines": [{"description": "Support", "unit_price": "500.00"}],
                    },
                )
            ).json()

            async def accounting(wanted: str) -> bool:
                body = (await api.get(f"/invoices/{invoice['id']}")).json()
                return bool(body["accounting"]) and body["accounting"]["status"] == wanted

            await eventually(lambda: accounting("sync_failed"), what="sync failed")
            number = (await api.get(f"/invoices/{invoice['id']}")).json()["number"]
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = await (await browser.new_context(viewport=DESKTOP)).new_page()
            await sign_in(page, base, finance)
            await page.get_by_role("heading", name="Needs a person now").wait_for()
            await page.goto(f"{base}/app/accounting")
            failed = page.locator("#failed").get_by_role("row", name=re.compile(number))
            assert "4711" in (await failed.text_content() or "")
            await audit(page, "accounting-failed")
            state.add_account("4711", "Consulting revenue", "REVENUE")
            await failed.get_by_role("button", name=re.compile("Retry")).click()
            assert "The accounting sync runs again." in await flash(page)
            await eventually(lambda: accounting("synced"), what="synced after the retry")
            assert sum(1 for i in state.invoices.values() if i.get("InvoiceNumber") == number) == 1
            # The connection's state, and a reconcile run: the books agree with us.
            await page.goto(f"{base}/app/accounting")
            connected = page.locator("p", has_text=f"Connected: xero organisation {state.tenant_id}")
            assert await connected.count() == 1
            await page.get_by_role("button", name="Run reconcile").click()
            await page.locator("#differences").wait_for()
            assert number not in (await page.locator("#differences").text_content() or "")
            assert "The books agree" in (await page.locator("#differences").text_content() or "")
            await audit(page, "accounting-reconciled", phone_too=False)
            await browser.close()
