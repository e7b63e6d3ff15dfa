"""The QuickBooks Online connector's inbound half (``accounting.changes.ChangeFeed``) and its customers.

The poll is one ``ChangeDataCapture`` call (``GET /cdc?entities=Payment,Invoice,CreditMemo&changedSince=``,
QBO keeps 30 days); a deleted entity comes back as ``{"Id", "status": "Deleted"}`` only. One QBO Payment
can settle several invoices, so each of its invoice lines is its own ``RemotePayment`` keyed
``<payment id>:<invoice id>``. A zero payment that links a CreditMemo is a credit application, not
money, and is reported as the credit memo's change instead.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from accounting.changes import ChangeSet, RemoteContact, RemotePayment
from accounting.feedtime import next_cursor, since
from accounting.jsonnum import to_decimal

CDC_ENTITIES = "Payment,Invoice,CreditMemo"


def payment_key(payment_id: str, invoice_id: str) -> str:
    return f"{payment_id}:{invoice_id}"


def remote_payments(payment: dict[str, Any]) -> tuple[list[RemotePayment], list[str]]:
    """A QBO Payment's applications to invoices, and the credit memos it uses (credit, not money)."""
    payment_id = str(payment["Id"])
    if str(payment.get("status", "")).lower() == "deleted":
        return [
            RemotePayment(
                external_id=payment_id,
                invoice_external_id="",
                amount=to_decimal(0),
                date=date.today(),
                currency="",
                deleted=True,
                payment_id=payment_id,
            )
        ], []
    lines = payment.get("Line") or []
    memos = [
        str(t.get("TxnId"))
        for line in lines
        for t in line.get("LinkedTxn") or []
        if t.get("TxnType") == "CreditMemo"
    ]
    if memos and to_decimal(payment.get("TotalAmt", 0)) == 0:
        return [], memos
    found = []
    for line in lines:
        for linked in line.get("LinkedTxn") or []:
            if linked.get("TxnType") != "Invoice":
                continue
            invoice_id = str(linked.get("TxnId"))
            found.append(
                RemotePayment(
                    external_id=payment_key(payment_id, invoice_id),
                    invoice_external_id=invoice_id,
                    amount=to_decimal(line.get("Amount", 0)),
                    date=date.fromisoformat(str(payment.get("TxnDate"))[:10]),
                    currency=str((payment.get("CurrencyRef") or {}).get("value") or ""),
                    reference=str(payment.get("PaymentRefNum") or ""),
                    payment_id=payment_id,
                    memo=str(payment.get("PrivateNote") or ""),
                )
            )
    return found, memos


class QboChanges:
    """Mixed into ``QboConnector`` (which supplies ``_get`` and ``_query``)."""

    if TYPE_CHECKING:

        async def _get(self, entity: str, **params: str) -> Any: ...  # provided by QboConnector

    if TYPE_CHECKING:

        async def _query(self, statement: str) -> dict[str, Any]: ...  # provided by QboConnector

    async def changes_since(self, cursor: str | None) -> ChangeSet:
        started = datetime.now(UTC)
        after = since(cursor, started)
        body = await self._get(
            "cdc", entities=CDC_ENTITIES, changedSince=after.astimezone(UTC).isoformat(timespec="seconds")
        )
        entities: dict[str, list[dict[str, Any]]] = {}
        for response in (body or {}).get("CDCResponse") or []:
            for group in response.get("QueryResponse") or []:
                for name in ("Payment", "Invoice", "CreditMemo"):
                    entities.setdefault(name, []).extend(group.get(name) or [])
        payments: list[RemotePayment] = []
        memos: list[str] = [str(m["Id"]) for m in entities.get("CreditMemo", [])]
        for payment in entities.get("Payment", []):
            found, used = remote_payments(payment)
            payments += found
            memos += [m for m in used if m not in memos]
        return ChangeSet(
            payments=tuple(payments),
            invoice_external_ids=tuple(str(i["Id"]) for i in entities.get("Invoice", [])),
            credit_note_external_ids=tuple(memos),
            next_cursor=next_cursor(started),
        )

    async def fetch_payment(self, external_id: str) -> tuple[RemotePayment, ...]:
        payment = (await self._get(f"payment/{external_id.split(':', 1)[0]}"))["Payment"]
        return tuple(remote_payments(payment)[0])

    async def list_contacts(self) -> list[RemoteContact]:
        contacts: list[RemoteContact] = []
        start = 1
        while True:
            found = await self._query(f"select * from Customer STARTPOSITION {start} MAXRESULTS 1000")
            rows = list(found.get("Customer") or [])
            contacts += [
                RemoteContact(
                    external_id=str(c["Id"]),
                    name=str(c.get("DisplayName") or ""),
                    email=str((c.get("PrimaryEmailAddr") or {}).get("Address") or ""),
                    tax_id=str(c.get("PrimaryTaxIdentifier") or c.get("ResaleNum") or ""),
                    currency=str((c.get("CurrencyRef") or {}).get("value") or ""),
                )
                for c in rows
                if c.get("Active", True)
            ]
            if len(rows) < 1000:
                return contacts
            start += 1000
