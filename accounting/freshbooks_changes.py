"""The FreshBooks connector's inbound half (``accounting.changes.ChangeFeed``), its clients, and the
verification of a webhook callback.

The poll lists payments, invoices and credit notes with ``search[updated_min]`` (``YYYY-MM-DD HH:MM:SS``)
page by page. A deleted payment stays readable with ``vis_state`` 1. Payments of type "Credit" are
credit applied from the client's credit, not money: they are reported as credit-note changes. A
webhook callback becomes active once its verifier is sent back (``PUT /events/account/<id>/events/
callbacks/<callback id>``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from accounting.changes import ChangeSet, RemoteContact, RemotePayment
from accounting.feedtime import next_cursor, since
from accounting.http import ProviderHttp
from accounting.jsonnum import to_decimal

PER_PAGE = 100
DELETED = 1
CREDIT = "Credit"


def remote_payment(payment: dict[str, Any]) -> RemotePayment | None:
    if payment.get("type") == CREDIT:
        return None
    amount = payment.get("amount") or {}
    return RemotePayment(
        external_id=str(payment["id"]),
        invoice_external_id=str(payment.get("invoiceid") or ""),
        amount=to_decimal(amount.get("amount", "0")),
        date=date.fromisoformat(str(payment.get("date"))[:10]),
        currency=str(amount.get("code") or ""),
        reference=str(payment.get("note") or ""),
        deleted=payment.get("vis_state", 0) == DELETED,
        payment_id=str(payment["id"]),
        memo=str(payment.get("note") or ""),
    )


class FreshBooksChanges:
    """Mixed into ``FreshBooksConnector`` (which supplies ``http``, ``account_id`` and ``_path``)."""

    http: ProviderHttp
    account_id: str

    if TYPE_CHECKING:

        def _path(self, resource: str) -> str: ...  # provided by FreshBooksConnector

    async def _pages(self, resource: str, key: str, **params: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        page, pages = 1, 1
        while page <= pages:
            body = await self.http.request(
                "GET",
                self._path(resource),
                params={**params, "page": str(page), "per_page": str(PER_PAGE)},
            )
            result = ((body or {}).get("response") or {}).get("result") or {}
            rows += list(result.get(key) or [])
            pages, page = int(result.get("pages") or 1), page + 1
        return rows

    async def changes_since(self, cursor: str | None) -> ChangeSet:
        started = datetime.now(UTC)
        after = since(cursor, started).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        payments = await self._pages("payments/payments", "payments", **{"search[updated_min]": after})
        invoices = await self._pages("invoices/invoices", "invoices", **{"search[updated_min]": after})
        notes = await self._pages(
            "credit_notes/credit_notes", "credit_notes", **{"search[updated_min]": after}
        )
        found = [remote_payment(p) for p in payments]
        return ChangeSet(
            payments=tuple(p for p in found if p is not None),
            invoice_external_ids=tuple(str(i["id"]) for i in invoices),
            credit_note_external_ids=tuple(str(n.get("creditid") or n["id"]) for n in notes),
            next_cursor=next_cursor(started),
        )

    async def fetch_payment(self, external_id: str) -> tuple[RemotePayment, ...]:
        body = await self.http.request("GET", self._path(f"payments/payments/{external_id}"))
        payment = (((body or {}).get("response") or {}).get("result") or {}).get("payment")
        found = remote_payment(payment) if payment else None
        return (found,) if found is not None else ()

    async def list_contacts(self) -> list[RemoteContact]:
        return [
            RemoteContact(
                external_id=str(c["id"]),
                name=str(c.get("organization") or f"{c.get('fname', '')} {c.get('lname', '')}".strip()),
                email=str(c.get("email") or ""),
                tax_id=str(c.get("vat_number") or ""),
                currency=str(c.get("currency_code") or ""),
            )
            for c in await self._pages("users/clients", "clients")
            if c.get("vis_state", 0) == 0
        ]

    async def verify_callback(self, callback_id: str, verifier: str) -> None:
        """Send the verifier back, which activates the callback at FreshBooks."""
        await self.http.request(
            "PUT",
            f"/events/account/{self.account_id}/events/callbacks/{callback_id}",
            body={"callback": {"verifier": verifier}},
        )
