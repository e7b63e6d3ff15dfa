"""The Xero connector's inbound half (``accounting.changes.ChangeFeed``) and its contact listing.

Xero has no payment webhook: a payment entered against an invoice is an ``INVOICE`` ``UPDATE`` event,
so a webhook names invoices and the invoice's ``Payments`` are read; the poll asks ``GET /Payments``,
``/Invoices`` and ``/CreditNotes`` with ``If-Modified-Since`` (UTC, ``yyyy-mm-ddThh:mm:ss``), 100 a
page. A deleted payment keeps its id with ``Status`` DELETED.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from accounting.changes import ChangeSet, RemoteContact, RemotePayment
from accounting.feedtime import next_cursor, since, xero_date
from accounting.http import ProviderHttp
from accounting.jsonnum import to_decimal

PAGE_SIZE = 100


def _remote_payment(payment: dict[str, Any], invoice: dict[str, Any] | None = None) -> RemotePayment | None:
    """A Xero payment on a sales invoice (``ACCRECPAYMENT``); None for other kinds."""
    target = payment.get("Invoice") or invoice or {}
    if payment.get("PaymentType", "ACCRECPAYMENT") != "ACCRECPAYMENT" or not target.get("InvoiceID"):
        return None
    return RemotePayment(
        external_id=str(payment["PaymentID"]),
        invoice_external_id=str(target["InvoiceID"]),
        amount=to_decimal(payment.get("Amount", 0)),
        date=xero_date(payment.get("Date")),
        currency=str(target.get("CurrencyCode") or (invoice or {}).get("CurrencyCode") or ""),
        reference=str(payment.get("Reference") or ""),
        deleted=payment.get("Status") == "DELETED",
        payment_id=str(payment["PaymentID"]),
        memo=str(payment.get("Reference") or ""),
    )


class XeroChanges:
    """Mixed into ``XeroConnector`` (which supplies ``http``)."""

    http: ProviderHttp

    async def _modified(self, path: str, key: str, modified_since: datetime, **params: str) -> list[Any]:
        header = {"If-Modified-Since": modified_since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")}
        found: list[Any] = []
        page = 1
        while True:
            body = await self.http.request("GET", path, params={**params, "page": str(page)}, headers=header)
            rows = list((body or {}).get(key) or [])
            found += rows
            if len(rows) < PAGE_SIZE:
                return found
            page += 1

    async def changes_since(self, cursor: str | None) -> ChangeSet:
        started = datetime.now(UTC)
        after = since(cursor, started)
        payments = await self._modified("/Payments", "Payments", after)
        invoices = await self._modified("/Invoices", "Invoices", after, where='Type=="ACCREC"')
        notes = await self._modified("/CreditNotes", "CreditNotes", after, where='Type=="ACCRECCREDIT"')
        return ChangeSet(
            payments=tuple(p for p in (_remote_payment(row) for row in payments) if p is not None),
            invoice_external_ids=tuple(str(i["InvoiceID"]) for i in invoices if i.get("Type") == "ACCREC"),
            credit_note_external_ids=tuple(str(n["CreditNoteID"]) for n in notes),
            next_cursor=next_cursor(started),
        )

    async def fetch_payment(self, external_id: str) -> tuple[RemotePayment, ...]:
        body = await self.http.request("GET", f"/Payments/{external_id}")
        rows = [_remote_payment(p) for p in (body or {}).get("Payments") or []]
        return tuple(p for p in rows if p is not None)

    async def invoice_payments(self, external_id: str) -> tuple[RemotePayment, ...]:
        """The payments an invoice lists (what an ``INVOICE`` webhook leads to)."""
        body = await self.http.request("GET", f"/Invoices/{external_id}")
        invoice = ((body or {}).get("Invoices") or [{}])[0]
        rows = [_remote_payment(p, invoice) for p in invoice.get("Payments") or []]
        return tuple(p for p in rows if p is not None)

    async def list_contacts(self) -> list[RemoteContact]:
        contacts: list[RemoteContact] = []
        page = 1
        while True:
            body = await self.http.request("GET", "/Contacts", params={"page": str(page)})
            rows = list((body or {}).get("Contacts") or [])
            contacts += [
                RemoteContact(
                    external_id=str(c["ContactID"]),
                    name=str(c.get("Name") or ""),
                    email=str(c.get("EmailAddress") or ""),
                    tax_id=str(c.get("TaxNumber") or ""),
                    currency=str(c.get("DefaultCurrency") or ""),
                )
                for c in rows
                if c.get("ContactStatus", "ACTIVE") == "ACTIVE"
            ]
            if len(rows) < PAGE_SIZE:
                return contacts
            page += 1
