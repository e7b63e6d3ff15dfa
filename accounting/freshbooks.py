"""FreshBooks connector (https://api.freshbooks.com/accounting/account/{account_id}/...).

FreshBooks has no idempotency key, so every create searches first: clients by email, invoices by
invoice number, payments by the marker we put in their note. A retry after a lost response therefore
finds the object instead of duplicating it. Money goes as decimal strings in ``{amount, code}``.
Invoices are created as drafts and then marked as sent, since drafts are not in FreshBooks' books.
FreshBooks has no line account codes; ``tax_code``/``tax_rate`` become ``taxName1``/``taxAmount1``.
Voiding is FreshBooks' delete (``vis_state`` 1): the invoice leaves the books but stays readable.

A credit note is a FreshBooks credit note (``credit_notes/credit_notes``, found by ``credit_number``
among the client's before creating). FreshBooks applies credit to an invoice from the client's credit
as a whole, not from one note: a payment of type "Credit" [K], found again by the marker in its note.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from accounting.base import (
    AccountingCreditApplication,
    AccountingCreditNote,
    AccountingCustomer,
    AccountingInvoice,
    AccountingPayment,
    RemoteInvoice,
    RemoteLine,
    RemoteState,
    SyncResult,
    SyncStatus,
    TokenProvider,
)
from accounting.errors import AccountingError, NotFound, ValidationFailed
from accounting.freshbooks_changes import FreshBooksChanges
from accounting.http import HttpSettings, ProviderHttp
from accounting.jsonnum import to_decimal
from accounting.ratelimit import FRESHBOOKS_POLICY, CallLimiter, RateLimitPolicy

FRESHBOOKS_BASE_URL = "https://api.freshbooks.com"
DELETED = 1  # vis_state: 0 active, 1 deleted, 2 archived
NOT_FOUND_ERRNO = 1012


def parse_freshbooks_error(response: httpx.Response, body: Any) -> AccountingError:
    """``{"response": {"errors": [{"errno", "field", "message", ...}]}}``, the newer
    ``{"errno", "message", "details"}``, or the OAuth ``{"error", "error_description"}``."""
    status = response.status_code
    errors: list[Mapping[str, Any]] = []
    text, code = "", ""
    if isinstance(body, dict):
        errors = ((body.get("response") or {}).get("errors")) or []
        if errors:
            text = "; ".join(str(e.get("message", "")) for e in errors)
            code = str(errors[0].get("errno", ""))
        elif "errno" in body:
            text = "; ".join([str(body.get("message", ""))] + [str(d) for d in body.get("details") or []])
            code = str(body["errno"])
        else:
            text = str(body.get("error_description") or body.get("error") or body)
    else:
        text = str(body or response.reason_phrase)
    if status == 404 or code == str(NOT_FOUND_ERRNO):
        return NotFound(text, provider="freshbooks", status_code=status, code=code)
    return ValidationFailed(text, provider="freshbooks", status_code=status, code=code)


def _money(value: Any) -> Decimal:
    return to_decimal((value or {}).get("amount", "0"))


def _payment_marker(payment_id: str) -> str:
    return f"invoiceflow:{payment_id}"


def _credit_marker(credit_note_id: str) -> str:
    return f"invoiceflow:credit_note:{credit_note_id}"


CREDIT_PAYMENT_TYPE = "Credit"  # [K] FreshBooks' payment type for credit applied to an invoice
PER_PAGE = 100


class FreshBooksConnector(FreshBooksChanges):
    """One FreshBooks business account."""

    provider = "freshbooks"

    def __init__(
        self,
        *,
        account_id: str,
        token_provider: TokenProvider,
        base_url: str = FRESHBOOKS_BASE_URL,
        payment_type: str = "Bank Transfer",
        settings: HttpSettings | None = None,
        policy: RateLimitPolicy = FRESHBOOKS_POLICY,
        limiter: CallLimiter | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.account_id = account_id
        self.payment_type = payment_type
        self.http = ProviderHttp(
            provider=self.provider,
            base_url=base_url,
            tenant=account_id,
            token_provider=token_provider,
            policy=policy,
            error_parser=parse_freshbooks_error,
            settings=settings or HttpSettings(),
            limiter=limiter,
            client=client,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    def _path(self, resource: str) -> str:
        return f"/accounting/account/{self.account_id}/{resource}"

    async def _call(
        self, method: str, resource: str, *, params: Mapping[str, str] | None = None, body: Any = None
    ) -> dict[str, Any]:
        found = await self.http.request(method, self._path(resource), params=params, body=body)
        return dict(((found or {}).get("response") or {}).get("result") or {})

    # Clients --------------------------------------------------------------------------------------

    async def ensure_customer(self, customer: AccountingCustomer, *, idempotency_key: str) -> SyncResult:
        """``idempotency_key`` is unused: FreshBooks has none, the email search stands in for it."""
        if customer.external_id:
            return SyncResult(customer.external_id, SyncStatus.EXISTING)
        found = await self._call("GET", "users/clients", params={"search[email]": customer.email})
        for client in found.get("clients") or []:
            if client.get("vis_state", 0) == 0 and client.get("organization") == customer.name:
                return SyncResult(str(client["id"]), SyncStatus.EXISTING)
        body = {
            "client": {
                "organization": customer.name,
                "email": customer.email,
                "currency_code": customer.currency,
            }
        }
        saved = (await self._call("POST", "users/clients", body=body))["client"]
        return SyncResult(str(saved["id"]), SyncStatus.CREATED)

    # Invoices -------------------------------------------------------------------------------------

    def _invoice_body(self, invoice: AccountingInvoice, customer_id: str) -> dict[str, Any]:
        return {
            "customerid": int(customer_id),
            "invoice_number": invoice.number,
            "create_date": invoice.issue_date.isoformat(),
            "due_offset_days": (invoice.due_date - invoice.issue_date).days,
            "currency_code": invoice.currency,
            "po_number": (invoice.reference or "")[:255],
            "lines": [
                {
                    "type": 0,
                    "name": line.description,
                    "qty": line.quantity,
                    "unit_cost": {"amount": format(line.unit_price, "f"), "code": invoice.currency},
                    "taxName1": line.tax_code if line.tax_rate else "",
                    "taxAmount1": line.tax_rate,
                }
                for line in invoice.lines
            ],
        }

    async def _find_by_number(self, number: str) -> dict[str, Any] | None:
        found = await self._call("GET", "invoices/invoices", params={"search[invoice_number]": number})
        matches = [i for i in found.get("invoices") or [] if i.get("invoice_number") == number]
        live = [i for i in matches if i.get("vis_state", 0) != DELETED]
        chosen = (live or matches or [None])[0]
        return dict(chosen) if chosen is not None else None

    async def _mark_sent(self, invoice: Mapping[str, Any]) -> Mapping[str, Any]:
        if invoice.get("v3_status") != "draft":
            return invoice
        body = {"invoice": {"action_mark_as_sent": True}}
        return dict((await self._call("PUT", f"invoices/invoices/{invoice['id']}", body=body))["invoice"])

    async def upsert_invoice(
        self, invoice: AccountingInvoice, *, idempotency_key: str, external_id: str | None = None
    ) -> SyncResult:
        customer_id = (
            invoice.customer.external_id
            or (
                await self.ensure_customer(invoice.customer, idempotency_key=f"{idempotency_key}:client")
            ).external_id
        )
        body = {"invoice": self._invoice_body(invoice, customer_id)}
        if external_id is None:
            existing = await self._find_by_number(invoice.number)
            if existing is None:
                saved = (await self._call("POST", "invoices/invoices", body=body))["invoice"]
                saved = await self._mark_sent(saved)
                return SyncResult(str(saved["id"]), SyncStatus.CREATED, str(saved.get("v3_status", "")))
            external_id = str(existing["id"])
        saved = (await self._call("PUT", f"invoices/invoices/{external_id}", body=body))["invoice"]
        saved = await self._mark_sent(saved)
        return SyncResult(str(saved["id"]), SyncStatus.UPDATED, str(saved.get("v3_status", "")))

    async def _get_invoice(self, external_id: str) -> dict[str, Any]:
        found = await self._call("GET", f"invoices/invoices/{external_id}", params={"include[]": "lines"})
        return dict(found["invoice"])

    async def fetch_invoice(self, external_id: str) -> RemoteInvoice:
        invoice = await self._get_invoice(external_id)
        lines = tuple(
            RemoteLine(
                description=str(line.get("name", "")),
                quantity=to_decimal(line.get("qty", 0)),
                unit_price=_money(line.get("unit_cost")),
                line_amount=_money(line.get("amount")),
                tax_code=str(line.get("taxName1") or ""),
            )
            for line in invoice.get("lines") or []
        )
        subtotal = sum((line.line_amount for line in lines), Decimal(0))
        total = _money(invoice.get("amount"))
        credited = Decimal(0)
        if (
            _money(invoice.get("paid")) > 0
        ):  # credit applied is a payment there; money paid is what we compare
            found = await self._call(
                "GET", "payments/payments", params={"search[invoiceid]": str(invoice["id"])}
            )
            credited = sum(
                (
                    _money(p.get("amount"))
                    for p in found.get("payments") or []
                    if p.get("type") == CREDIT_PAYMENT_TYPE and p.get("vis_state", 0) != DELETED
                ),
                Decimal(0),
            )
        if invoice.get("vis_state", 0) == DELETED:
            state = RemoteState.VOIDED
        elif invoice.get("payment_status") == "paid":
            state = RemoteState.PAID
        elif invoice.get("payment_status") == "partial":
            state = RemoteState.PARTIALLY_PAID
        elif invoice.get("v3_status") == "draft":
            state = RemoteState.DRAFT
        else:
            state = RemoteState.OPEN
        return RemoteInvoice(
            external_id=str(invoice["id"]),
            number=str(invoice.get("invoice_number", "")),
            currency=str(invoice.get("currency_code", "")),
            state=state,
            remote_status=str(invoice.get("v3_status", "")),
            lines=lines,
            subtotal=subtotal,
            tax=total - subtotal,
            total=total,
            amount_paid=_money(invoice.get("paid")) - credited,
            amount_due=_money(invoice.get("outstanding")),
        )

    async def void_invoice(self, external_id: str, *, idempotency_key: str) -> SyncResult:
        """Deleting twice is harmless, so no search is needed."""
        body = {"invoice": {"vis_state": DELETED}}
        saved = (await self._call("PUT", f"invoices/invoices/{external_id}", body=body))["invoice"]
        return SyncResult(str(saved["id"]), SyncStatus.VOIDED, str(saved.get("v3_status", "")))

    # Payments -------------------------------------------------------------------------------------

    async def record_payment(self, payment: AccountingPayment, *, idempotency_key: str) -> SyncResult:
        marker = _payment_marker(payment.payment_id)
        found = await self._call(
            "GET", "payments/payments", params={"search[invoiceid]": payment.invoice_external_id}
        )
        for existing in found.get("payments") or []:
            if str(existing.get("note", "")).startswith(marker) and existing.get("vis_state", 0) != DELETED:
                return SyncResult(str(existing["id"]), SyncStatus.EXISTING)
        body = {
            "payment": {
                "invoiceid": int(payment.invoice_external_id),
                "amount": {"amount": format(payment.amount, "f"), "code": payment.currency},
                "date": payment.date.isoformat(),
                "type": self.payment_type,
                "note": f"{marker} {payment.reference}".strip(),
            }
        }
        saved = (await self._call("POST", "payments/payments", body=body))["payment"]
        return SyncResult(str(saved["id"]), SyncStatus.RECORDED)

    async def remove_payment(
        self, external_id: str, *, invoice_external_id: str, idempotency_key: str
    ) -> SyncResult:
        """``PUT /payments/payments/{id}`` with ``vis_state: 1`` (deleted); the invoice is owed it again
        and the caller records what is left as a new payment. FreshBooks has no idempotency key:
        deleting a deleted payment is harmless, and it is looked up first."""
        found = await self._call(
            "GET", "payments/payments", params={"search[invoiceid]": invoice_external_id}
        )
        current = [p for p in found.get("payments") or [] if str(p.get("id")) == external_id]
        if not current or current[0].get("vis_state", 0) == DELETED:
            return SyncResult(external_id, SyncStatus.EXISTING, "deleted")
        body = {"payment": {"vis_state": DELETED}}
        await self._call("PUT", f"payments/payments/{external_id}", body=body)
        return SyncResult(external_id, SyncStatus.REMOVED, "deleted")

    async def apply_credit(
        self, application: AccountingCreditApplication, *, idempotency_key: str
    ) -> SyncResult:
        """A "Credit" payment on the invoice: FreshBooks takes it from the client's credit itself. Once:
        found by its marker on a retry."""
        marker = _payment_marker(application.application_id)
        found = await self._call(
            "GET", "payments/payments", params={"search[invoiceid]": application.invoice_external_id}
        )
        for existing in found.get("payments") or []:
            if str(existing.get("note", "")).startswith(marker) and existing.get("vis_state", 0) != DELETED:
                return SyncResult(str(existing["id"]), SyncStatus.EXISTING, "applied")
        body = {
            "payment": {
                "invoiceid": int(application.invoice_external_id),
                "amount": {"amount": format(application.amount, "f"), "code": application.currency},
                "date": application.date.isoformat(),
                "type": CREDIT_PAYMENT_TYPE,
                "note": f"{marker} customer credit",
            }
        }
        saved = (await self._call("POST", "payments/payments", body=body))["payment"]
        return SyncResult(str(saved["id"]), SyncStatus.RECORDED, "applied")

    # Credit notes ---------------------------------------------------------------------------------

    async def _find_credit_note(self, client_id: str, number: str) -> dict[str, Any] | None:
        """The client's credit note with this number, page by page (searching by client is what the
        public clients of the API do; a ``credit_number`` search filter is not documented [K])."""
        page, pages = 1, 1
        while page <= pages:
            found = await self.http.request(
                "GET",
                self._path("credit_notes/credit_notes"),
                params={"search[clientid]": client_id, "page": str(page), "per_page": str(PER_PAGE)},
            )
            result = ((found or {}).get("response") or {}).get("result") or {}
            for note in result.get("credit_notes") or []:
                if note.get("credit_number") == number and note.get("vis_state", 0) != DELETED:
                    return dict(note)
            pages, page = int(result.get("pages") or 1), page + 1
        return None

    async def record_credit_note(self, note: AccountingCreditNote, *, idempotency_key: str) -> SyncResult:
        """The credit note once (searched by number first: FreshBooks has no idempotency key), then up to
        ``note.allocate`` (and the invoice's outstanding amount) applied to the invoice as a "Credit"
        payment, once (found by its marker); the rest stays the client's credit in FreshBooks too."""
        doc = note.document
        client_id = (
            doc.customer.external_id
            or (
                await self.ensure_customer(doc.customer, idempotency_key=f"{idempotency_key}:client")
            ).external_id
        )
        saved = await self._find_credit_note(client_id, doc.number)
        status = SyncStatus.EXISTING
        if saved is None:
            lines = self._invoice_body(doc, client_id)["lines"]
            body = {
                "credit_note": {
                    "clientid": int(client_id),
                    "credit_number": doc.number,
                    "create_date": doc.issue_date.isoformat(),
                    "currency_code": doc.currency,
                    "credit_type": "goodwill",  # [K] the other documented value is "prepayment"
                    "notes": f"{_credit_marker(note.credit_note_id)} credits {doc.reference}".strip(),
                    "lines": lines,
                }
            }
            saved = (await self._call("POST", "credit_notes/credit_notes", body=body))["credit_note"]
            status = SyncStatus.CREATED
        credit_id = str(saved.get("creditid") or saved["id"])
        marker = _credit_marker(note.credit_note_id)
        found = await self._call(
            "GET", "payments/payments", params={"search[invoiceid]": note.invoice_external_id}
        )
        applied = any(
            str(p.get("note", "")).startswith(marker) and p.get("vis_state", 0) != DELETED
            for p in found.get("payments") or []
        )
        if note.allocate > 0 and not applied:
            invoice = await self._get_invoice(note.invoice_external_id)
            amount = min(note.allocate, _money(invoice.get("outstanding")))
            if amount > 0:
                body = {
                    "payment": {
                        "invoiceid": int(note.invoice_external_id),
                        "amount": {"amount": format(amount, "f"), "code": doc.currency},
                        "date": doc.issue_date.isoformat(),
                        "type": CREDIT_PAYMENT_TYPE,
                        "note": f"{marker} applies {doc.number}",
                    }
                }
                await self._call("POST", "payments/payments", body=body)
                applied = True
                status = SyncStatus.RECORDED if status == SyncStatus.EXISTING else status
        return SyncResult(credit_id, status, "applied" if applied else "unapplied")
