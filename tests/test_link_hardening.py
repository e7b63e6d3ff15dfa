"""Signed links after use: a used or superseded approval link shows no preview PDF; token pages send
headers that keep the token out of frames, referrers, caches and sniffing; a draft whose status says
``draft`` right after a rejection takes an edit at once (it answered 409 for as long as the return to
draft took)."""

from __future__ import annotations

import uuid

import pytest

from core.links import sign_invoice_page
from tests.support import api_client, customer_body, eventually, record_history
from tests.test_approvals import link_for
from worker import build_worker

pytestmark = pytest.mark.usefixtures("isolated_approval_rules")

RULES = """
rules:
  - name: big
    match: {min_amount: "5000.00"}
    steps:
      - {approvers: [APPROVER], mode: any}
"""
PAGE_HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def assert_page_headers(response) -> None:  # type: ignore[no-untyped-def]
    for name, value in PAGE_HEADERS.items():
        assert response.headers.get(name) == value, (response.request.url.path, name, response.headers)


async def test_links_after_use_and_an_edit_right_after_rejection(
    temporal_env, make_settings, mailbox
) -> None:
    client = temporal_env.client
    settings = make_settings(client)
    approver = f"lead-{uuid.uuid4().hex[:8]}@firm.example.com"  # the mailbox is shared by the session
    async with build_worker(client, settings), api_client(settings, client) as api:
        put = await api.put(
            "/approval-rules",
            content=RULES.replace("APPROVER", approver),
            headers={"Content-Type": "application/yaml"},
        )
        assert put.status_code == 200, put.text
        customer = (await api.post("/customers", json=customer_body())).json()
        line = {"description": "Data platform", "quantity": "1", "unit_price": "6000.00"}
        invoice = (await api.post("/invoices", json={"customer_id": customer["id"], "lines": [line]})).json()
        [link] = await link_for(mailbox, invoice, approver)
        shown = await api.get(link)
        assert shown.status_code == 200
        assert_page_headers(shown)
        preview = await api.get(f"{link}/preview.pdf")
        assert preview.headers["content-type"] == "application/pdf"
        assert_page_headers(preview)

        # A comment PostgreSQL could not store is refused at the page (it made the decision's
        # timeline write fail forever, and the request hang on the workflow Update).
        unstorable = await api.post(link, data={"decision": "reject", "comment": "wrong\x00PO"})
        assert unstorable.status_code == 422 and "comment" in unstorable.text
        rejected = await api.post(link, data={"decision": "reject", "comment": "wrong PO"})
        assert rejected.status_code == 200, rejected.text
        # Right after the rejection, while the workflow is still returning the invoice to draft (and
        # the status may already say draft), an edit is taken: it waits for the draft instead of a 409.
        edited = await api.patch(f"/invoices/{invoice['id']}", json={"notes": "PO 4711"})
        assert edited.status_code == 200, edited.text
        assert edited.json()["status"] == "draft" and edited.json()["notes"] == "PO 4711"

        # The used link: its page says so, and its preview is no PDF.
        used = await api.get(f"{link}/preview.pdf")
        assert used.status_code == 409 and "application/pdf" not in used.headers["content-type"]
        assert_page_headers(used)

        assert (await api.post(f"/invoices/{invoice['id']}/submit")).status_code == 200
        [_, fresh] = await link_for(mailbox, invoice, approver, count=2)
        assert (await api.get(f"{fresh}/preview.pdf")).headers["content-type"] == "application/pdf"
        # An operator decides instead: the fresh link is superseded, so no preview either.
        decided = await api.post(
            f"/invoices/{invoice['id']}/decisions",
            json={"approver": approver, "decision": "approve"},
        )
        assert decided.status_code == 200, decided.text
        superseded = await api.get(f"{fresh}/preview.pdf")
        assert superseded.status_code == 409 and "application/pdf" not in superseded.headers["content-type"]

        async def issued():  # type: ignore[no-untyped-def]
            body = (await api.get(f"/invoices/{invoice['id']}")).json()
            return body if body["pdf_url"] else None

        await eventually(issued, what="issued after approval")
        await record_history(client.get_workflow_handle(invoice["workflow_id"]), "edit_right_after_rejection")
        token = sign_invoice_page(settings.secret_key, invoice["id"])
        for path in (f"/i/{token}", f"/i/{token}/pdf", f"/i/{token}/open.gif"):
            page = await api.get(path)
            assert page.status_code == 200, (path, page.text[:200])
            assert_page_headers(page)
