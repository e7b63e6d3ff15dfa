"""A finance team's day in the console, in a real browser (Debian's Chromium, a real uvicorn server, the
worker, PostgreSQL, Temporal, SMTP): sign in, create a customer and an invoice and watch it go out,
record a partial payment, issue a credit note, record the rest, see a refusal in the workflow's words,
decide an approval from the inbox, replay an unmatched webhook, resend an invoice email; a viewer sees
no action and a forged post from one is refused; a post without the CSRF token is refused; five wrong
passwords throttle.
axe-core checks every page at desktop and phone width; screenshots go to test-artifacts/console."""

from __future__ import annotations

import asyncio
import os
import re
import uuid

import httpx
import pytest

from core.settings import Settings
from standins import webhooks as send_as
from tests.console_browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PASSWORD,
    audit,
    axe_script,
    flash,
    sign_in,
    status_of,
    until_status,
    user,
)
from tests.support import api_client, customer_body, eventually, to, wait_mail
from worker import build_worker

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("isolated_approval_rules")]
SECRET = "console-generic-secret"

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip("Chromium is not installed (./scripts/test installs it when it can)", allow_module_level=True)


async def test_a_day_in_the_console(served_api, temporal_env, mailbox) -> None:  # type: ignore[no-untyped-def]
    from playwright.async_api import async_playwright

    axe_script()  # fetch axe-core before the clock of the story starts (or skip without npm)
    served: Settings = served_api(generic_webhook_secret=SECRET)
    base = served.public_url
    finance, viewer = user(served, "finance"), user(served, "viewer")
    client = temporal_env.client
    async with build_worker(client, served), api_client(served, client) as api, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))

        # Signing in: the login page, then home.
        await page.goto(f"{base}/app/invoices")
        assert "/app/login" in page.url
        await audit(page, "login")
        # By keyboard alone, with a visible focus ring: the email field has focus, Tab, Enter.
        assert await page.evaluate("document.activeElement.id") == "email"
        await page.keyboard.type(finance)
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "password"
        outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline not in ("", "none"), outline
        await page.keyboard.type(PASSWORD)
        await page.keyboard.press("Enter")
        await page.get_by_role("heading", name="Invoices").wait_for()  # back where it was going
        await page.keyboard.press("Tab")  # the first stop on every page: skip to the content
        assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
        await page.goto(f"{base}/app")
        await page.get_by_role("heading", name="Needs a person now").wait_for()
        await audit(page, "home-empty", phone_too=False)

        # A customer, then an invoice for it, which goes out by email.
        name = f"Initech Console {uuid.uuid4().hex[:6]}"
        billing = f"ap-{uuid.uuid4().hex[:6]}@initech.example.com"
        await page.goto(f"{base}/app/customers")
        await page.fill("#c-name", name)
        await page.fill("#c-emails", billing)
        await page.fill("#c-currency", "EUR")
        await page.get_by_role("button", name="Create customer").click()
        assert f"Customer {name} created." in await flash(page)
        await audit(page, "customers")
        await page.get_by_role("row", name=re.compile(name)).get_by_role("link", name="new invoice").click()
        await audit(page, "invoice-new")
        await page.fill("#description0", "Network redesign")
        await page.fill("#quantity0", "10")
        await page.fill("#unit_price0", "150.00")
        await page.fill("#tax_rate0", "19")
        await page.get_by_role("button", name="Preview totals and approval").click()
        assert await page.locator("#preview-total").text_content() == "1,785.00 EUR"
        assert "none: it goes out at once" in (await page.locator("#preview-chain").text_content() or "")
        assert await page.input_value("#unit_price0") == "150.00"  # the form as it was filled in
        await page.get_by_role("button", name="Create and send").click()
        assert "Invoice created (1785.00 EUR)" in await flash(page)
        invoice_id = page.url.rsplit("/", 1)[1]
        await until_status(page, "open")
        [sent] = await wait_mail(mailbox, 1, where=to(billing))
        assert any(a.filename.endswith(".pdf") for a in sent.attachments())
        # The client never got it: sent again, once (the workflow's resend Update), and who did it.
        await page.fill("#resend-reason", "client never got it")
        await page.get_by_role("button", name="Resend to the customer").click()
        assert "The invoice email is sent to the customer again." in await flash(page)
        assert len(await wait_mail(mailbox, 2, where=to(billing))) == 2
        assert f"invoice.resent · {finance} (finance) · client never got it" in (
            await page.locator("#timeline").text_content() or ""
        )

        # A partial payment, a credit note, then the rest: each through the workflow.
        await page.fill("#pay-amount", "500.00")
        await page.fill("#pay-reference", "WIRE-1")
        await page.get_by_role("button", name="Record payment").click()
        assert "now partially paid, 1285.00 due" in await flash(page)
        await page.fill("#cn-reason", "Two hours not worked")
        await page.fill("#cn-amount", "100.00")
        await page.fill("#cn-tax", "19")
        await page.get_by_role("button", name="Issue credit note").click()
        assert re.search(r"Credit note CN-\d{4}-\d{6} issued: 1166.00 due", await flash(page)), await flash(
            page
        )
        assert "1,166.00 EUR" in (await page.locator("#amount-due").text_content() or "")
        await audit(page, "invoice")
        # An action the workflow refuses comes back in the workflow's words, and changes nothing.
        csrf = await page.locator("input[name=csrf_token]").first.get_attribute("value")
        await page.evaluate(
            """([url, csrf]) => { const f = document.createElement('form'); f.method = 'post'; f.action = url;
                 const i = document.createElement('input'); i.name = 'csrf_token'; i.value = csrf;
                 f.appendChild(i); document.body.appendChild(f); f.submit(); }""",
            [f"/app/invoices/{invoice_id}/approve", csrf],
        )
        await page.wait_for_load_state()
        await page.locator(".flash-error").wait_for()
        assert "invoice is partially_paid; only an invoice pending approval can be approved" in await flash(
            page
        )
        assert await status_of(page) == "partially paid"

        # A dispute: dunning held (the list's "on hold" filter finds it), then released.
        await page.fill("#hold-reason", "Client disputes two hours")
        await page.get_by_role("button", name="Hold", exact=True).click()
        assert "Dunning is on hold for this invoice." in await flash(page)
        await page.goto(f"{base}/app/invoices?held=yes")
        await page.get_by_role("row", name=re.compile(name)).get_by_role("link").click()
        await page.fill("#release-reason", "agreed with the client")
        await page.get_by_role("button", name="Release hold").click()
        assert "The hold is released" in await flash(page)

        # The amount is prefilled with what is due.
        await page.get_by_role("button", name="Record payment").click()
        assert "now paid, 0.00 due" in await flash(page)
        assert await status_of(page) == "paid"
        timeline = await page.locator("#timeline").text_content() or ""
        assert f"created · {finance} (finance)" in timeline and "operator" not in timeline
        stored = (await api.get(f"/invoices/{invoice_id}")).json()
        assert stored["status"] == "paid" and stored["amount_credited"] == "119.00"
        assert {e["actor"] for e in stored["timeline"] if e["kind"].startswith("payment")} == {
            f"{finance} (finance)"
        }

        # The list: search, filter, CSV.
        await page.goto(f"{base}/app/invoices?q={name[:20]}&status=paid")
        await page.get_by_role("link", name=re.compile(r"INV-")).first.wait_for()
        await audit(page, "invoices")
        csv = await page.request.get(f"{base}/app/invoices.csv?q={name[:20]}")
        assert csv.ok and name in await csv.text() and "paid" in await csv.text()

        # The approvals inbox: a large invoice waits for its chain; the operator decides for the approver.
        rules = (
            'rules:\n  - name: large\n    match: {min_amount: "20000.00"}\n    steps:\n'
            "      - {approvers: [cfo-console@firm.example.com]}\n"
        )
        put = await api.put("/approval-rules", content=rules, headers={"Content-Type": "application/yaml"})
        assert put.status_code == 200
        customer = (
            await api.post("/customers", json=customer_body(name=f"Big Co {uuid.uuid4().hex[:6]}"))
        ).json()
        big = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Migration", "unit_price": "25000.00"}],
                },
            )
        ).json()
        await eventually(lambda: _status(api, big["id"], "pending_approval"), what="pending approval")
        await page.goto(f"{base}/app/approvals")
        row = page.get_by_role("row", name=re.compile(customer["name"]))
        await row.get_by_text("cfo-console@firm.example.com").wait_for()
        await audit(page, "approvals")
        await row.get_by_role("link", name="decide for an approver").click()
        await page.fill("#decide-comment", "fine by me")
        await page.get_by_role("button", name="Approve", exact=True).click()
        assert "Decision recorded: approve." in await flash(page)
        await eventually(lambda: _status(api, big["id"], "open"), what="issued after approval")

        # A webhook nobody could route, replayed once its project exists.
        ref = f"PORT-{uuid.uuid4().hex[:6]}"
        async with httpx.AsyncClient(base_url=base) as http:
            delivery = send_as.generic_event(
                f"evt-{uuid.uuid4().hex[:8]}",
                "milestone.completed",
                SECRET,
                ref={"system": "jira", "id": ref},
            )
            assert (await send_as.send(http, delivery)).status_code < 300
        await page.goto(f"{base}/app/webhooks")
        unmatched = page.locator("#unmatched").get_by_role("row", name=re.compile(ref))
        await unmatched.wait_for()
        await audit(page, "webhooks")
        project = await api.post(
            "/projects",
            json={
                "customer_id": customer["id"],
                "name": "Portal",
                "milestones": [
                    {"key": "m1", "name": "Design", "amount": "800.00", "external_refs": {"jira": ref}}
                ],
            },
        )
        assert project.status_code == 201, project.text
        await unmatched.get_by_role("button", name="Replay").click()
        assert "Replayed: the event is dispatched" in await flash(page), await flash(page)

        async def milestone_invoice() -> bool:
            listed = (await api.get("/invoices", params={"customer_id": customer["id"]})).json()["items"]
            return any(i["total"] == "800.00" for i in listed)

        await eventually(milestone_invoice, what="the milestone's invoice")

        for path, name_ in (("/app/accounting", "accounting"), ("/app/tokens", "tokens")):
            await page.goto(base + path)
            await audit(page, name_)
        await page.goto(f"{base}/app")
        await audit(page, "home")
        await page.goto(f"{base}/app/invoices/{big['id']}")
        await audit(page, "invoice-open")

        # A post without the CSRF token is refused (and records nothing).
        forged = await page.request.post(
            f"{base}/app/invoices/{big['id']}/payment", form={"amount": "1.00"}, max_redirects=0
        )
        assert forged.status == 403
        assert (await api.get(f"/invoices/{big['id']}")).json()["amount_paid"] in ("0", "0.00")
        unsigned = await page.request.post(
            f"{base}/app/invoices/{big['id']}/resend", form={"reason": "x"}, max_redirects=0
        )
        assert unsigned.status == 403

        # A viewer: no action buttons, and a forged post with a valid session and token is a 403.
        watcher = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await sign_in(watcher, base, viewer)
        await watcher.goto(f"{base}/app/invoices/{big['id']}")
        await watcher.get_by_role("heading", name="Lines").wait_for()
        assert await watcher.locator("main button").count() == 0
        assert await watcher.get_by_role("button", name="Record payment").count() == 0
        await audit(watcher, "invoice-viewer", phone_too=False)
        token = await watcher.locator("input[name=csrf_token]").first.get_attribute("value")
        refused = await watcher.request.post(
            f"{base}/app/invoices/{big['id']}/payment",
            form={"amount": "1.00", "csrf_token": token or ""},
            max_redirects=0,
        )
        assert refused.status == 403 and "finance role" in await refused.text()
        assert (await api.get(f"/invoices/{big['id']}")).json()["amount_paid"] in ("0", "0.00")
        assert await watcher.get_by_role("button", name="Resend to the customer").count() == 0
        resend = await watcher.request.post(
            f"{base}/app/invoices/{big['id']}/resend", form={"csrf_token": token or ""}, max_redirects=0
        )
        assert resend.status == 403
        timeline = (await api.get(f"/invoices/{big['id']}")).json()["timeline"]
        assert not [e for e in timeline if e["kind"] == "invoice.resent"]  # and nothing was sent

        # Five wrong passwords: the account is throttled, even with the right password next.
        stranger = await (await browser.new_context(viewport=DESKTOP)).new_page()
        for _ in range(5):
            await sign_in(stranger, base, finance, "not the password")
            assert "Wrong email or password." in (await stranger.locator("#login-error").text_content() or "")
        await sign_in(stranger, base, finance)
        assert "Too many failed sign-ins" in (await stranger.locator("#login-error").text_content() or "")
        assert "/app/login" in stranger.url
        await browser.close()


async def _status(api: httpx.AsyncClient, invoice_id: str, wanted: str) -> bool:
    return (await api.get(f"/invoices/{invoice_id}")).json()["status"] == wanted
