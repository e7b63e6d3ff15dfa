"""The approval acceptance story in a real browser (headless Chromium, phone viewport, a real uvicorn
server): the first approver approves from the emailed link, the second rejects with a comment, the
owner is told, the draft is edited and resubmitted, both approve from their new links, the client
receives the invoice, and the first round's link changes nothing."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

import pytest

from core.settings import Settings
from tests.support import api_client, customer_body, eventually, to, wait_mail
from worker import build_worker

pytestmark = pytest.mark.usefixtures("isolated_approval_rules")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
RULES = """
rules:
  - name: big
    match: {min_amount: "10000.00"}
    steps:
      - {approvers: [browser-approver@firm.example.com]}
      - {approvers: [browser-cfo@firm.example.com]}
"""
LINK = re.compile(r"(https?://[^\s\"<>]+/approvals/[A-Za-z0-9._\-]+)")

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip("Chromium is not installed (./scripts/test installs it when it can)", allow_module_level=True)


@pytest.fixture
def served(served_api) -> Settings:  # type: ignore[no-untyped-def]
    return served_api()


async def test_approver_clicks_approve_in_chromium(
    served: Settings, temporal_env, mailbox, tmp_path: Path
) -> None:
    from playwright.async_api import async_playwright

    assert CHROMIUM, "CI must have Chromium"
    client = temporal_env.client
    async with build_worker(client, served), api_client(served, client) as api:
        assert (
            await api.put("/approval-rules", content=RULES, headers={"Content-Type": "application/yaml"})
        ).status_code == 200
        customer = (await api.post("/customers", json=customer_body(name="Initech Browser Test"))).json()
        invoice = (
            await api.post(
                "/invoices",
                json={
                    "customer_id": customer["id"],
                    "lines": [{"description": "Data centre move", "unit_price": "15000.00"}],
                },
            )
        ).json()
        [request] = await wait_mail(mailbox, 1, where=to("browser-approver@firm.example.com"))
        link = LINK.search(request.text_body() or "").group(1)  # type: ignore[union-attr]
        assert link.startswith(served.public_url)
        assert "open.gif" not in (request.html_body() or "") and "/i/" not in (
            request.text_body() or ""
        )  # not the client's

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
            await page.goto(link)
            await page.get_by_text("Invoice for Initech Browser Test").wait_for()
            assert "15,000.00 USD" in await page.content()
            await page.screenshot(path=str(tmp_path / "approval-page.png"), full_page=True)
            await page.get_by_role("button", name="Approve").click()
            await page.get_by_role("heading", name="Approved").wait_for()
            assert (await api.get(f"/invoices/{invoice['id']}")).json()["status"] == "pending_approval"

            # Step 2: the CFO's email arrives only now; the CFO rejects in the browser with a comment.
            [second] = await wait_mail(mailbox, 1, where=to("browser-cfo@firm.example.com"))
            cfo_link = LINK.search(second.text_body() or "").group(1)  # type: ignore[union-attr]
            await page.goto(cfo_link)
            await page.get_by_text("Invoice for Initech Browser Test").wait_for()
            await page.fill("#comment", "PO number missing")
            await page.get_by_role("button", name="Reject").click()
            await page.get_by_role("heading", name="Rejected").wait_for()

            async def draft():  # type: ignore[no-untyped-def]
                body = (await api.get(f"/invoices/{invoice['id']}")).json()
                return body if body["status"] == "draft" else None

            await eventually(draft, what="back to draft")
            [owner_note] = await wait_mail(mailbox, 1, where=to(customer["owner_email"]))
            assert "PO number missing" in (owner_note.text_body() or "")

            # The draft is edited and resubmitted; both approve again from their new emails.
            edited = await api.patch(
                f"/invoices/{invoice['id']}",
                json={"lines": [{"description": "Data centre move (PO 4711)", "unit_price": "15000.00"}]},
            )
            assert edited.status_code == 200
            assert (await api.post(f"/invoices/{invoice['id']}/submit")).status_code == 200
            for approver, count in (
                ("browser-approver@firm.example.com", 2),
                ("browser-cfo@firm.example.com", 2),
            ):
                mails = await wait_mail(mailbox, count, where=to(approver))
                fresh = LINK.search(mails[-1].text_body() or "").group(1)  # type: ignore[union-attr]
                await page.goto(fresh)
                await page.get_by_role("button", name="Approve").click()
                await page.get_by_role("heading", name="Approved").wait_for()
            await page.goto(link)  # the first round's link: used and superseded, changes nothing
            assert await page.get_by_role("button", name="Approve").count() == 0
            await browser.close()

        async def sent():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            return body if body["status"] == "open" else None

        final = await eventually(sent, what="invoice issued after the click")
        [email] = await wait_mail(mailbox, 1, where=to(customer["emails"][0]))
        assert final["number"] in email.subject and email.attachments()[0].content_type == "application/pdf"
        approvals = [e for e in final["timeline"] if e["kind"] == "approval.approved"]
        assert len(approvals) == 3 and all(
            a["data"]["via"] == "link" and "Chrome" in a["data"]["user_agent"] for a in approvals
        )
        assert [e["kind"] for e in final["timeline"]].count("approval.rejected") == 1
    await asyncio.sleep(0)
