"""End to end through the real worker, Temporal dev server, PostgreSQL and SMTP: a German customer with
``einvoice_format: facturx`` gets a Factur-X PDF whose XML passes the CEN rules; an XRechnung invoice
missing what the KoSIT rules need is not sent, says why (status, rule ids and texts on the timeline),
and goes out, with its XML, once the customer's data is fixed."""

from __future__ import annotations

import asyncio

import pytest

from core.links import sign_invoice_page
from documents.einvoice.facturx import embedded_xml, xmp_facts
from documents.einvoice.validation import errors_of, failed_asserts
from tests.einvoice.cases import SELLER
from tests.support import api_client, customer_body, eventually, record_history, to, wait_mail
from worker import build_worker

LINES = [
    {
        "description": "Backend engineering",
        "quantity": "40",
        "unit_price": "125.00",
        "tax_rate": "19",
        "unit": "HUR",
    },
    {"description": "Technical handbook", "quantity": "1", "unit_price": "49.90", "tax_rate": "7"},
]


async def _status(api, invoice_id: str, wanted: str):  # type: ignore[no-untyped-def]
    async def probe():  # type: ignore[no-untyped-def]
        body = (await api.get(f"/invoices/{invoice_id}")).json()
        return body if body["status"] == wanted else None

    return await eventually(probe, timeout=60, what=f"invoice {wanted}")


@pytest.mark.slow
async def test_facturx_sent_and_invalid_xrechnung_held_until_fixed(
    temporal_env, make_settings, mailbox
) -> None:  # type: ignore[no-untyped-def]
    client = temporal_env.client
    settings = make_settings(client, **SELLER)
    async with build_worker(client, settings), api_client(settings, client) as api:
        # 1. Factur-X for a German B2B customer.
        german = (
            await api.post(
                "/customers",
                json=customer_body(
                    currency="EUR",
                    address={
                        "line1": "Königsallee 1",
                        "city": "Düsseldorf",
                        "postal_code": "40212",
                        "country": "DE",
                    },
                    tax_id="DE987654321",
                    einvoice_format="facturx",
                ),
            )
        ).json()
        created = await api.post(
            "/invoices", json={"customer_id": german["id"], "lines": LINES, "purchase_order": "PO-9"}
        )
        assert created.status_code == 201, created.text
        invoice = await _status(api, created.json()["id"], "open")
        assert invoice["einvoice"]["status"] == "valid" and invoice["einvoice"]["format"] == "facturx"
        [email] = await wait_mail(mailbox, 1, where=to(german["emails"][0]))
        [attachment] = email.attachments()
        assert attachment.content_type == "application/pdf"
        xml = embedded_xml(attachment.payload)
        assert errors_of(failed_asserts(xml, ["cen-cii"])) == []
        assert invoice["number"].encode() in xml and b"PO-9" in xml
        assert xmp_facts(attachment.payload)["fx:ConformanceLevel"] == "EN 16931"
        download = await api.get(f"/invoices/{invoice['id']}/einvoice")
        assert download.status_code == 200 and download.content == attachment.payload
        # Another format on demand, validated on the way out: XRechnung needs a buyer reference.
        xr = await api.get(f"/invoices/{invoice['id']}/einvoice", params={"format": "xrechnung-cii"})
        assert xr.status_code == 422 and "BR-DE-15" in {e["id"] for e in xr.json()["detail"]["errors"]}
        cii = await api.get(f"/invoices/{invoice['id']}/einvoice", params={"format": "cii"})
        assert cii.status_code == 200 and errors_of(failed_asserts(cii.content, ["cen-cii"])) == []
        # The hosted invoice page offers the same document.
        token = sign_invoice_page(settings.secret_key, invoice["id"])
        page = await api.get(f"/i/{token}")
        assert "Download e-invoice" in page.text
        hosted = await api.get(f"/i/{token}/einvoice")
        assert hosted.status_code == 200 and hosted.content == attachment.payload
        # A partial credit note, as Factur-X (PDF/A-3 with its CII: type 381, the invoice it credits).
        credited = await api.post(
            f"/invoices/{invoice['id']}/credit-notes",
            json={
                "reason": "Two hours not delivered",
                "lines": [{**{k: v for k, v in LINES[0].items() if k != "unit"}, "quantity": "2"}],
                "idempotency_key": "cn-1",
            },
        )
        assert credited.status_code == 201, credited.text
        note = credited.json()["credit_note"]
        cn = await api.get(f"/credit-notes/{note['id']}/einvoice", params={"format": "facturx"})
        assert cn.status_code == 200 and cn.headers["content-type"] == "application/pdf", cn.text
        cn_xml = embedded_xml(cn.content)
        assert errors_of(failed_asserts(cn_xml, ["cen-cii"])) == []
        assert b"<ram:TypeCode>381</ram:TypeCode>" in cn_xml and invoice["number"].encode() in cn_xml
        assert xmp_facts(cn.content)["pdfaid:part"] == "3"
        # The credit note's own email carries it as Factur-X too.
        mails = await wait_mail(mailbox, 2, where=to(german["emails"][0]))
        [cn_mail] = [m for m in mails if note["number"] in (m.subject or "")]
        [cn_pdf] = cn_mail.attachments()
        cn_sent_xml = embedded_xml(cn_pdf.payload)
        assert b"<ram:TypeCode>381</ram:TypeCode>" in cn_sent_xml
        assert errors_of(failed_asserts(cn_sent_xml, ["cen-cii"])) == []

        # 2. XRechnung for a public buyer whose address lacks city and post code (BR-DE-8, BR-DE-9).
        public = (
            await api.post(
                "/customers",
                json=customer_body(
                    currency="EUR",
                    address={"line1": "Rathausplatz 1", "country": "DE"},
                    buyer_reference="991-01234-56",
                    endpoint="0204:991-01234-56",
                    einvoice_format="xrechnung",
                ),
            )
        ).json()
        created = await api.post("/invoices", json={"customer_id": public["id"], "lines": LINES})
        assert created.status_code == 201, created.text
        held = await _status(api, created.json()["id"], "einvoice_invalid")
        rules = {e["id"] for e in held["einvoice"]["errors"]}
        assert {"BR-DE-8", "BR-DE-9"} <= rules
        [event] = [e for e in held["timeline"] if e["kind"] == "status.einvoice_invalid"]
        assert "BR-DE-8" in event["data"]["rules"] and "Buyer city" in event["data"]["errors"]
        # A second one, held the same way, can still be voided while it waits (the workflow lets go of
        # its lock meanwhile), and is then never sent.
        other = await api.post("/invoices", json={"customer_id": public["id"], "lines": LINES[:1]})
        other_held = await _status(api, other.json()["id"], "einvoice_invalid")
        voided = await api.post(f"/invoices/{other_held['id']}/void", json={"reason": "issued by mistake"})
        assert voided.status_code == 200, voided.text
        assert voided.json()["status"] == "void"
        await asyncio.sleep(1.0)
        assert [m for m in mailbox.store.list() if to(public["emails"][0])(m)] == []  # nothing was sent

        fixed = await api.patch(
            f"/customers/{public['id']}",
            json={
                "address": {
                    "line1": "Rathausplatz 1",
                    "city": "Musterstadt",
                    "postal_code": "12345",
                    "country": "DE",
                }
            },
        )
        assert fixed.status_code == 200, fixed.text
        retried = await api.post(f"/invoices/{held['id']}/einvoice/retry")
        assert retried.status_code == 202, retried.text
        sent = await _status(api, held["id"], "open")
        assert sent["einvoice"]["status"] == "valid" and sent["einvoice"]["errors"] == []
        [email] = await wait_mail(mailbox, 1, where=to(public["emails"][0]))
        kinds = {a.content_type: a for a in email.attachments()}
        assert set(kinds) == {"application/pdf", "application/xml"}
        xml = kinds["application/xml"].payload
        assert errors_of(failed_asserts(xml, ["cen-ubl", "xrechnung-ubl"])) == []
        assert b"991-01234-56" in xml
        retry_again = await api.post(f"/invoices/{held['id']}/einvoice/retry")
        assert retry_again.status_code == 409  # nothing waits any more
        handle = client.get_workflow_handle(held["workflow_id"])
        await record_history(handle, "einvoice_invalid_then_fixed_and_sent")
