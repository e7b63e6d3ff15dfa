"""Xero Accounting API connector (https://api.xero.com/api.xro/2.0), shapes per xero_accounting.yaml.

Every write carries ``Idempotency-Key`` (Xero replays the stored response for the same key and body
for about 6 minutes). Past that window the natural keys protect us: a contact is found by its
ContactNumber (our customer id), an invoice by its unique InvoiceNumber, a payment by its reference,
amount and date on the invoice, a credit note by its unique CreditNoteNumber (looked up first) and its
allocation by the invoice it is allocated to.
"""

from __future__ import annotations

from collections.abc import Mapping
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
from accounting.errors import AccountingError, LockedByPayments, NotFound, ValidationFailed
from accounting.http import HttpSettings, ProviderHttp
from accounting.jsonnum import to_decimal
from accounting.keys import bounded_key
from accounting.ratelimit import XERO_POLICY, CallLimiter, RateLimitPolicy
from accounting.xero_changes import XeroChanges
from billing.money import decimals_of

XERO_BASE_URL = "https://api.xero.com/api.xro/2.0"
IDEMPOTENCY_KEY_MAX = 128
UNIT_DP = 4  # Xero stores unit amounts to at most 4 decimals (with unitdp=4)


def parse_xero_error(response: httpx.Response, body: Any) -> AccountingError:
    """Xero's ``Error`` schema (ValidationException with Elements[].ValidationErrors[]), its
    problem-details 401/403 bodies, or the plain-text 404."""
    status = response.status_code
    if isinstance(body, dict):
        messages: list[str] = []
        for element in body.get("Elements") or []:
            messages += [e.get("Message", "") for e in element.get("ValidationErrors") or []]
            for line in element.get("LineItems") or []:
                messages += [e.get("Message", "") for e in line.get("ValidationErrors") or []]
        text = "; ".join(m for m in messages if m) or str(
            body.get("Message") or body.get("Detail") or body.get("Title") or body
        )
        code = str(body.get("ErrorNumber", ""))
    else:
        text, code = str(body or response.reason_phrase), ""
    if status == 404:
        return NotFound(text, provider="xero", status_code=status, code=code)
    if "cannot be edited as it has a payment" in text:
        return LockedByPayments(text, provider="xero", status_code=status, code=code)
    return ValidationFailed(text, provider="xero", status_code=status, code=code)


def _state(invoice: Mapping[str, Any]) -> str:
    status = invoice.get("Status", "")
    if status in ("DRAFT", "SUBMITTED"):
        return RemoteState.DRAFT
    if status == "PAID":
        return RemoteState.PAID
    if status in ("VOIDED", "DELETED"):
        return RemoteState.VOIDED
    return RemoteState.PARTIALLY_PAID if to_decimal(invoice.get("AmountPaid", 0)) > 0 else RemoteState.OPEN


NAME_TAKEN = "is already assigned to another contact"
CONTACT_NAME_MAX = 255


def unique_contact_name(name: str, customer_id: str) -> str:
    """``"Acme GmbH (3f2a9c1e)"``: the name with the start of our customer id, within Xero's 255."""
    suffix = f" ({customer_id[:8]})"
    return name[: CONTACT_NAME_MAX - len(suffix)].rstrip() + suffix


class XeroConnector(XeroChanges):
    """One Xero organisation (tenant)."""

    provider = "xero"

    def __init__(
        self,
        *,
        tenant_id: str,
        token_provider: TokenProvider,
        base_url: str = XERO_BASE_URL,
        payment_account_code: str = "090",
        settings: HttpSettings | None = None,
        policy: RateLimitPolicy = XERO_POLICY,
        limiter: CallLimiter | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.tenant_id = tenant_id
        self.payment_account_code = payment_account_code  # a BANK account, or one with payments enabled
        self.http = ProviderHttp(
            provider=self.provider,
            base_url=base_url,
            tenant=tenant_id,
            token_provider=token_provider,
            policy=policy,
            error_parser=parse_xero_error,
            settings=settings or HttpSettings(),
            headers={"xero-tenant-id": tenant_id},
            limiter=limiter,
            client=client,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def _write(self, method: str, path: str, body: Any, key: str, **params: str) -> Any:
        return await self.http.request(
            method,
            path,
            params=params or None,
            body=body,
            headers={"Idempotency-Key": bounded_key(key, IDEMPOTENCY_KEY_MAX)},
        )

    # Contacts -------------------------------------------------------------------------------------

    async def ensure_customer(self, customer: AccountingCustomer, *, idempotency_key: str) -> SyncResult:
        if customer.external_id:
            return SyncResult(customer.external_id, SyncStatus.EXISTING)
        # Not GET /Contacts/{ContactNumber}: our ids are UUIDs, which Xero would take for a ContactID.
        found = await self.http.request("GET", "/Contacts", params={"searchTerm": customer.customer_id})
        for contact in found.get("Contacts") or []:
            if (
                contact.get("ContactNumber") == customer.customer_id
                and contact.get("ContactStatus") == "ACTIVE"
            ):
                return SyncResult(contact["ContactID"], SyncStatus.EXISTING, "ACTIVE")
        try:
            created = await self._put_contact(customer, customer.name, idempotency_key)
        except ValidationFailed as exc:
            if NAME_TAKEN not in exc.provider_message:
                raise
            # Xero wants names unique across active contacts; ours need not be (two "Acme GmbH" in two
            # cities). The second one gets our id's start after its name, and is found by ContactNumber.
            created = await self._put_contact(
                customer, unique_contact_name(customer.name, customer.customer_id), f"{idempotency_key}:name"
            )
        contact = created["Contacts"][0]
        return SyncResult(contact["ContactID"], SyncStatus.CREATED, contact.get("ContactStatus", ""))

    async def _put_contact(self, customer: AccountingCustomer, name: str, idempotency_key: str) -> Any:
        body = {
            "Contacts": [
                {
                    "Name": name,
                    "ContactNumber": customer.customer_id,  # "used to identify contacts in external systems"
                    "EmailAddress": customer.email,
                    "DefaultCurrency": customer.currency,
                }
            ]
        }
        return await self._write("PUT", "/Contacts", body, idempotency_key, summarizeErrors="true")

    # Invoices -------------------------------------------------------------------------------------

    def _invoice_body(self, invoice: AccountingInvoice, contact_id: str) -> dict[str, Any]:
        for index, line in enumerate(invoice.lines):
            if decimals_of(line.unit_price) > UNIT_DP:
                raise ValidationFailed(
                    f"lines[{index}].unit_price: Xero keeps at most {UNIT_DP} decimals, got "
                    f"{line.unit_price}",
                    provider=self.provider,
                    status_code=None,
                )
        return {
            "Type": "ACCREC",
            "Contact": {"ContactID": contact_id},  # only the id: other fields would update the contact
            "InvoiceNumber": invoice.number,
            "Reference": invoice.reference or invoice.invoice_id,
            "Date": invoice.issue_date.isoformat(),
            "DueDate": invoice.due_date.isoformat(),
            "CurrencyCode": invoice.currency,
            "LineAmountTypes": "Exclusive",
            "Status": "AUTHORISED",
            "LineItems": [
                {
                    "Description": line.description,
                    "Quantity": line.quantity,
                    "UnitAmount": line.unit_price,
                    "AccountCode": line.account_code,
                    "TaxType": line.tax_code,
                    "TaxAmount": line.tax_amount,  # our share of the rate group's tax: see AccountingLine
                    "LineAmount": line.line_amount,
                }
                for line in invoice.lines
            ],
        }

    async def _find_by_number(self, number: str) -> dict[str, Any] | None:
        found = await self.http.request("GET", "/Invoices", params={"InvoiceNumbers": number, "unitdp": "4"})
        matches = [i for i in found.get("Invoices") or [] if i.get("InvoiceNumber") == number]
        return matches[0] if matches else None

    async def upsert_invoice(
        self, invoice: AccountingInvoice, *, idempotency_key: str, external_id: str | None = None
    ) -> SyncResult:
        contact_id = (
            invoice.customer.external_id
            or (
                await self.ensure_customer(invoice.customer, idempotency_key=f"{idempotency_key}:contact")
            ).external_id
        )
        body = self._invoice_body(invoice, contact_id)
        if external_id is None:
            try:
                created = await self._write(
                    "PUT",
                    "/Invoices",
                    {"Invoices": [body]},
                    idempotency_key,
                    summarizeErrors="true",
                    unitdp=str(UNIT_DP),
                )
            except ValidationFailed as error:
                if "must be unique" not in error.provider_message:
                    raise
                existing = await self._find_by_number(invoice.number)
                if existing is None:
                    raise
                external_id = existing["InvoiceID"]  # created earlier, its response lost: update it
            else:
                saved = created["Invoices"][0]
                return SyncResult(saved["InvoiceID"], SyncStatus.CREATED, saved.get("Status", ""))
        updated = await self._write(
            "POST",
            f"/Invoices/{external_id}",
            {"Invoices": [{**body, "InvoiceID": external_id}]},
            f"{idempotency_key}:update",
            unitdp=str(UNIT_DP),
        )
        saved = updated["Invoices"][0]
        return SyncResult(saved["InvoiceID"], SyncStatus.UPDATED, saved.get("Status", ""))

    async def _get_invoice(self, external_id: str) -> dict[str, Any]:
        found = await self.http.request("GET", f"/Invoices/{external_id}", params={"unitdp": str(UNIT_DP)})
        return dict(found["Invoices"][0])

    async def fetch_invoice(self, external_id: str) -> RemoteInvoice:
        invoice = await self._get_invoice(external_id)
        lines = tuple(
            RemoteLine(
                description=item.get("Description", ""),
                quantity=to_decimal(item.get("Quantity", 0)),
                unit_price=to_decimal(item.get("UnitAmount", 0)),
                line_amount=to_decimal(item.get("LineAmount", 0)),
                account_code=item.get("AccountCode", ""),
                tax_code=item.get("TaxType", ""),
                tax_amount=to_decimal(item.get("TaxAmount", 0)),
            )
            for item in invoice.get("LineItems") or []
        )
        return RemoteInvoice(
            external_id=invoice["InvoiceID"],
            number=invoice.get("InvoiceNumber", ""),
            currency=invoice.get("CurrencyCode", ""),
            state=_state(invoice),
            remote_status=invoice.get("Status", ""),
            lines=lines,
            subtotal=to_decimal(invoice.get("SubTotal", 0)),
            tax=to_decimal(invoice.get("TotalTax", 0)),
            total=to_decimal(invoice.get("Total", 0)),
            amount_paid=to_decimal(invoice.get("AmountPaid", 0)),
            amount_due=to_decimal(invoice.get("AmountDue", 0)),
        )

    async def void_invoice(self, external_id: str, *, idempotency_key: str) -> SyncResult:
        body = {"Invoices": [{"InvoiceID": external_id, "Status": "VOIDED"}]}
        try:
            saved = (await self._write("POST", f"/Invoices/{external_id}", body, idempotency_key))[
                "Invoices"
            ][0]
        except ValidationFailed:
            current = await self._get_invoice(external_id)
            if current.get("Status") in ("VOIDED", "DELETED"):
                return SyncResult(external_id, SyncStatus.EXISTING, current["Status"])
            raise
        return SyncResult(external_id, SyncStatus.VOIDED, saved.get("Status", ""))

    # Payments -------------------------------------------------------------------------------------

    async def record_payment(self, payment: AccountingPayment, *, idempotency_key: str) -> SyncResult:
        reference = payment.reference or payment.payment_id
        invoice = await self._get_invoice(payment.invoice_external_id)
        for existing in invoice.get("Payments") or []:  # recorded before, past the idempotency window
            if (
                existing.get("Reference") == reference
                and to_decimal(existing.get("Amount", 0)) == payment.amount
                and existing.get("Status", "AUTHORISED") != "DELETED"
            ):
                return SyncResult(existing["PaymentID"], SyncStatus.EXISTING, invoice.get("Status", ""))
        body = {
            "Payments": [
                {
                    "Invoice": {"InvoiceID": payment.invoice_external_id},
                    "Account": {"Code": self.payment_account_code},
                    "Date": payment.date.isoformat(),
                    "Amount": payment.amount,
                    "Reference": reference,
                }
            ]
        }
        saved = await self._write("PUT", "/Payments", body, idempotency_key, summarizeErrors="true")
        recorded = saved["Payments"][0]
        invoice_status = (recorded.get("Invoice") or {}).get("Status", "")
        return SyncResult(recorded["PaymentID"], SyncStatus.RECORDED, invoice_status)

    async def remove_payment(
        self, external_id: str, *, invoice_external_id: str, idempotency_key: str
    ) -> SyncResult:
        """``POST /Payments/{id}`` ``Status: DELETED``: Xero lets a payment be deleted, never changed, so a
        refund removes it and the caller records what is left as a new payment."""
        invoice = await self._get_invoice(invoice_external_id)
        if not any(p.get("PaymentID") == external_id for p in invoice.get("Payments") or []):
            return SyncResult(external_id, SyncStatus.EXISTING, "DELETED")  # removed on an earlier try
        body = {"Payments": [{"PaymentID": external_id, "Status": "DELETED"}]}
        await self._write("POST", f"/Payments/{external_id}", body, idempotency_key)
        return SyncResult(external_id, SyncStatus.REMOVED, "DELETED")

    async def apply_credit(
        self, application: AccountingCreditApplication, *, idempotency_key: str
    ) -> SyncResult:
        """Allocate the customer's credit notes to the invoice, oldest first, up to ``amount``; what a
        note already allocated to this invoice counts (a retry allocates only the rest)."""
        left, status, first = application.amount, SyncStatus.EXISTING, ""
        notes = [await self._find_credit_note(number) for _, number in application.sources]
        for note in notes:
            if note is None:
                continue
            for allocation in note.get("Allocations") or []:
                if (allocation.get("Invoice") or {}).get("InvoiceID") == application.invoice_external_id:
                    left -= to_decimal(allocation.get("Amount", 0))
                    first = first or note["CreditNoteID"]
        for note in notes:
            if note is None or left <= 0:
                continue
            invoice = await self._get_invoice(application.invoice_external_id)
            amount = min(left, to_decimal(note.get("RemainingCredit", 0)), to_decimal(invoice["AmountDue"]))
            if amount <= 0:
                continue
            body = {
                "Allocations": [
                    {
                        "Invoice": {"InvoiceID": application.invoice_external_id},
                        "Amount": amount,
                        "Date": application.date.isoformat(),
                    }
                ]
            }
            note_id = note["CreditNoteID"]
            await self._write(
                "PUT", f"/CreditNotes/{note_id}/Allocations", body, f"{idempotency_key}:{note_id}"
            )
            left, status, first = left - amount, SyncStatus.RECORDED, first or note_id
        return SyncResult(first or application.application_id, status, "ALLOCATED" if first else "")

    # Credit notes ---------------------------------------------------------------------------------

    async def _find_credit_note(self, number: str) -> dict[str, Any] | None:
        found = await self.http.request(
            "GET", "/CreditNotes", params={"where": f'CreditNoteNumber=="{number}"', "unitdp": str(UNIT_DP)}
        )
        matches = [c for c in found.get("CreditNotes") or [] if c.get("CreditNoteNumber") == number]
        return matches[0] if matches else None

    async def record_credit_note(self, note: AccountingCreditNote, *, idempotency_key: str) -> SyncResult:
        """``PUT /CreditNotes`` (type ACCRECCREDIT) once per number, then allocate it to the invoice (at
        most ``note.allocate`` and what the invoice still has due there); the rest stays credit on the
        contact, as it does with us."""
        doc = note.document
        contact_id = (
            doc.customer.external_id
            or (
                await self.ensure_customer(doc.customer, idempotency_key=f"{idempotency_key}:contact")
            ).external_id
        )
        saved = await self._find_credit_note(doc.number)
        status = SyncStatus.EXISTING
        if saved is None:
            body = self._invoice_body(doc, contact_id)
            for key in ("InvoiceNumber", "DueDate"):
                body.pop(key)
            body |= {
                "Type": "ACCRECCREDIT",
                "CreditNoteNumber": doc.number,
                "Reference": doc.reference or doc.invoice_id,
            }
            created = await self._write(
                "PUT",
                "/CreditNotes",
                {"CreditNotes": [body]},
                idempotency_key,
                summarizeErrors="true",
                unitdp=str(UNIT_DP),
            )
            saved, status = created["CreditNotes"][0], SyncStatus.CREATED
        credit_id = saved["CreditNoteID"]
        allocated = [
            a
            for a in saved.get("Allocations") or []
            if (a.get("Invoice") or {}).get("InvoiceID") == note.invoice_external_id
        ]
        if not allocated and note.allocate > 0:
            invoice = await self._get_invoice(note.invoice_external_id)
            remaining = to_decimal(saved.get("RemainingCredit", doc.totals.total))
            amount = min(note.allocate, to_decimal(invoice.get("AmountDue", 0)), remaining)
            if amount > 0:
                body = {
                    "Allocations": [
                        {
                            "Invoice": {"InvoiceID": note.invoice_external_id},
                            "Amount": amount,
                            "Date": doc.issue_date.isoformat(),
                        }
                    ]
                }
                await self._write(
                    "PUT", f"/CreditNotes/{credit_id}/Allocations", body, f"{idempotency_key}:allocate"
                )
                status = SyncStatus.RECORDED if status == SyncStatus.EXISTING else status
        return SyncResult(credit_id, status, saved.get("Status", ""))
