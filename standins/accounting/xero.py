"""Xero Accounting API stand-in: ``/api.xro/2.0`` Contacts, Invoices, Payments, Accounts, TaxRates.

Faithful where our connector depends on it (shapes from xero_accounting.yaml, checked in tests):
bearer token + ``xero-tenant-id`` (403 without it), ``Idempotency-Key`` replay for 6 minutes (a reused
key with another body → 400), per-tenant 60/min, 5 concurrent and 5,000/day quotas answered with 429,
``Retry-After`` and ``X-Rate-Limit-Problem``, ValidationException bodies with Elements[].ValidationErrors,
AUTHORISED → PAID on full payment, VOIDED only without payments, unique InvoiceNumber; CreditNotes
(ACCRECCREDIT, unique CreditNoteNumber, ``where=CreditNoteNumber=="..."``) and their Allocations to
invoices (no more than the credit left or the invoice's amount due; AmountCredited, AmountDue and PAID
follow). Validation messages marked [K] are plausible wording, not verified against live Xero.
"""

from __future__ import annotations

import email.utils
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from accounting.jsonnum import to_decimal
from billing.currency import MINOR_UNITS
from standins.accounting.common import (
    Core,
    Faults,
    HandlerResult,
    OAuthServer,
    Quota,
    RecordedCall,
    Replays,
    Tokens,
    Traffic,
    json_response,
    money,
)
from standins.accounting.hooks import WebhookOutbox, XeroEvents

PREFIX = "/api.xro/2.0"
TOKEN_PATH = "/identity/connect/token"  # identity.xero.com/connect/token, on the stand-in's one host
IDEMPOTENCY_TTL_S = 6 * 60.0
XERO_QUOTA = Quota(per_window=60, window_s=60.0, concurrent=5, per_day=5000)


def ms_date(moment: date | datetime) -> str:
    """Xero's ``/Date(1552262400000+0000)/``."""
    if not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    return f"/Date({int(moment.timestamp() * 1000)}+0000)/"


def _now_ms() -> str:
    return ms_date(datetime.now(UTC))


class Invalid(Exception):
    """A ValidationException for one element."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass
class XeroState:
    """One Xero organisation. Tests read ``contacts``/``invoices``/``payments`` and flip ``faults``."""

    tenant_id: str = "tenant-1"
    tokens: set[str] = field(default_factory=lambda: {"xero-token"})
    quota: Quota | None = XERO_QUOTA
    client_id: str = "xero-client"
    client_secret: str = "xero-secret"
    core: Core = field(init=False)
    oauth: OAuthServer = field(init=False)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    tax_rates: dict[str, Decimal] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhooks: WebhookOutbox = field(default_factory=WebhookOutbox)
    events: XeroEvents = field(init=False)

    def __post_init__(self) -> None:
        self.core = Core(Tokens(self.tokens), Traffic(self.quota), Replays(IDEMPOTENCY_TTL_S))
        self.events = XeroEvents(self.tenant_id)
        # Access tokens last 30 minutes; refresh tokens rotate on every use.
        self.oauth = OAuthServer(
            self.core,
            provider="xero",
            client_id=self.client_id,
            client_secret=self.client_secret,
            expires_in=1800,
            extra={"scope": "offline_access accounting.transactions accounting.contacts"},
        )
        if not self.accounts:
            self.add_account("200", "Sales", "REVENUE")
            self.add_account("090", "Business Bank Account", "BANK")
        if not self.tax_rates:
            self.tax_rates.update({"NONE": Decimal(0), "OUTPUT": Decimal(15), "OUTPUT2": Decimal(20)})

    @property
    def faults(self) -> Faults:
        return self.core.faults

    @property
    def calls(self) -> list[RecordedCall]:
        return self.core.calls

    def add_account(
        self, code: str, name: str = "", type_: str = "REVENUE", *, payments: bool = False
    ) -> None:
        """Add to the chart of accounts (fixes "Account code ... is not a valid code")."""
        with self.core.lock:
            self.accounts[code] = {
                "AccountID": str(uuid.uuid4()),
                "Code": code,
                "Name": name or f"Account {code}",
                "Type": type_,
                "Status": "ACTIVE",
                "TaxType": "NONE",
                "EnablePaymentsToAccount": payments,
            }

    def add_tax_rate(self, tax_type: str, rate: Decimal) -> None:
        with self.core.lock:
            self.tax_rates[tax_type] = rate

    def expire_token(self, token: str) -> None:
        with self.core.lock:
            self.core.tokens.expire(token)

    def notify(self, category: str, event_type: str, resource_id: str) -> None:
        """Send the webhook Xero sends for this change (a no-op unless ``webhooks`` is configured)."""
        self.webhooks.send(self.events.build(category, event_type, resource_id))


PAGE_SIZE = 100


def _ms_datetime(value: Any) -> datetime:
    match = re.match(r"/Date\((-?\d+)", str(value or ""))
    return (
        datetime.fromtimestamp(int(match.group(1)) / 1000, UTC) if match else datetime.min.replace(tzinfo=UTC)
    )


def modified_since(header: str | None) -> datetime | None:
    """``If-Modified-Since``: Xero takes ``yyyy-mm-ddThh:mm:ss`` (UTC) as well as an HTTP date."""
    if not header:
        return None
    try:
        parsed = datetime.fromisoformat(header.strip())
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(header)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def changed_page(
    rows: list[dict[str, Any]], since: datetime | None, page: str | None
) -> list[dict[str, Any]]:
    """Rows changed after ``since`` (``UpdatedDateUTC``), ordered by it, one page of 100 if asked."""
    if since is not None:
        rows = [r for r in rows if _ms_datetime(r.get("UpdatedDateUTC")) > since]
        rows.sort(key=lambda r: _ms_datetime(r.get("UpdatedDateUTC")))
    if page and page.isdigit() and int(page) > 0:
        start = (int(page) - 1) * PAGE_SIZE
        rows = rows[start : start + PAGE_SIZE]
    return rows


def _validation(elements: list[dict[str, Any]]) -> HandlerResult:
    return 400, {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": elements,
    }


def _envelope(key: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "invoiceflow stand-in",
        "DateTimeUTC": _now_ms(),
        key: items,
    }


def _parse_date(value: Any, field_name: str, errors: list[str]) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        errors.append(f"{field_name} must be a valid date (YYYY-MM-DD)")  # [K]
        return None


class _Handlers:
    """Request handlers; each runs under the state lock, so checks and writes are atomic."""

    def __init__(self, state: XeroState) -> None:
        self.s = state

    # Contacts

    def _find_contact(self, ref: str) -> dict[str, Any] | None:
        if ref in self.s.contacts:
            return self.s.contacts[ref]
        return next((c for c in self.s.contacts.values() if c.get("ContactNumber") == ref), None)

    def get_contact(self, ref: str) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            contact = self._find_contact(ref)
            if contact is None:
                return 404, "The resource you're looking for cannot be found"
            return 200, _envelope("Contacts", [contact])

        return run

    def list_contacts(self, search: str, page: str | None = None) -> Callable[[Any], HandlerResult]:
        """``searchTerm``: case-insensitive, across Name, FirstName, LastName, ContactNumber, EmailAddress."""

        def run(_: Any) -> HandlerResult:
            fields = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")
            found = [
                c
                for c in self.s.contacts.values()
                if not search or any(search.lower() in str(c.get(f, "")).lower() for f in fields)
            ]
            return 200, _envelope("Contacts", changed_page(found, None, page))

        return run

    def put_contacts(self, body: Any) -> HandlerResult:
        created, elements, failed = [], [], False
        for element in (body or {}).get("Contacts") or []:
            errors: list[str] = []
            name = str(element.get("Name") or "").strip()
            if not name:
                errors.append("The contact name must be specified.")  # [K]
            elif any(
                c["Name"].lower() == name.lower() and c["ContactStatus"] == "ACTIVE"
                for c in self.s.contacts.values()
            ):
                errors.append(
                    f"The contact name {name} is already assigned to another contact. "
                    "The contact name must be unique across all active contacts."
                )
            elements.append({**element, "ValidationErrors": [{"Message": m} for m in errors]})
            failed = failed or bool(errors)
            if not errors:
                created.append(element)
        if failed or not elements:
            return _validation(elements or [{"ValidationErrors": [{"Message": "No contacts given"}]}])
        saved = []
        for element in created:
            contact = {
                "ContactID": str(uuid.uuid4()),
                "ContactStatus": "ACTIVE",
                "Name": element["Name"].strip(),
                "EmailAddress": element.get("EmailAddress", ""),
                "BankAccountDetails": "",
                "Addresses": [],
                "Phones": [],
                "UpdatedDateUTC": _now_ms(),
                "ContactGroups": [],
                "IsSupplier": False,
                "IsCustomer": False,
                "SalesTrackingCategories": [],
                "PurchasesTrackingCategories": [],
                "ContactPersons": [],
                "HasValidationErrors": False,
            }
            if element.get("ContactNumber"):
                contact["ContactNumber"] = element["ContactNumber"]
            if element.get("DefaultCurrency"):
                contact["DefaultCurrency"] = element["DefaultCurrency"]
            if element.get("TaxNumber"):
                contact["TaxNumber"] = element["TaxNumber"]
            self.s.contacts[contact["ContactID"]] = contact
            saved.append(contact)
            self.s.notify("CONTACT", "CREATE", contact["ContactID"])
        return 200, _envelope("Contacts", saved)

    # Invoices

    def _lines(
        self, items: list[dict[str, Any]], currency: str, unitdp: int, errors: list[str]
    ) -> list[dict[str, Any]]:
        places = MINOR_UNITS.get(currency, 2)
        lines: list[dict[str, Any]] = []
        for item in items:
            code = str(item.get("AccountCode") or "")
            account = self.s.accounts.get(code)
            if account is None or account["Type"] == "BANK":
                errors.append(f"Account code '{code}' is not a valid code for this document.")
            tax_type = str(item.get("TaxType") or "NONE")
            rate = self.s.tax_rates.get(tax_type)
            if rate is None:
                errors.append(
                    f"The TaxType code '{tax_type}' does not exist or cannot be used for this "
                    "type of transaction."
                )
                rate = Decimal(0)
            quantity = money(to_decimal(item.get("Quantity", 1)), 4)
            unit = money(to_decimal(item.get("UnitAmount", 0)), unitdp)  # more decimals: rounded, silently
            amount = money(quantity * unit, places)
            if "LineAmount" in item and money(to_decimal(item["LineAmount"]), places) != amount:
                errors.append(
                    f"The line amount {item['LineAmount']} does not equal the quantity "
                    f"{quantity} multiplied by the unit amount {unit}."
                )  # [K]
            tax = (
                money(to_decimal(item["TaxAmount"]), places)
                if item.get("TaxAmount") is not None
                else money(amount * rate / 100, places)
            )
            lines.append(
                {
                    "LineItemID": item.get("LineItemID") or str(uuid.uuid4()),
                    "Description": str(item.get("Description") or ""),
                    "Quantity": quantity,
                    "UnitAmount": unit,
                    "TaxType": tax_type,
                    "TaxAmount": tax,
                    "LineAmount": amount,
                    "AccountCode": code,
                    "Tracking": [],
                    "ValidationErrors": [],
                }
            )
        return lines

    def _build(self, element: dict[str, Any], current: dict[str, Any] | None, unitdp: int) -> dict[str, Any]:
        """The invoice as stored after applying ``element`` (a create when ``current`` is None)."""
        errors: list[str] = []
        invoice = dict(
            current
            or {
                "Type": "ACCREC",
                "InvoiceID": str(uuid.uuid4()),
                "Payments": [],
                "CreditNotes": [],
                "Prepayments": [],
                "Overpayments": [],
                "AmountPaid": Decimal("0.00"),
                "AmountCredited": Decimal("0.00"),
                "SentToContact": False,
                "CurrencyRate": Decimal("1.000000"),
                "HasErrors": False,
                "IsDiscounted": False,
                "Status": "DRAFT",
                "LineAmountTypes": "Exclusive",
                "CurrencyCode": "USD",
                "LineItems": [],
            }
        )
        if current is None and element.get("Type", "ACCREC") != "ACCREC":
            errors.append("Only ACCREC invoices are modelled by this stand-in")
        status = element.get("Status", invoice["Status"])
        if current is not None:
            if current["Status"] in ("VOIDED", "DELETED"):
                raise Invalid(["Invoice not of valid status for modification"])
            changes_money = "LineItems" in element or status in ("VOIDED", "DELETED")
            if (current["AmountPaid"] > 0 or current.get("AmountCredited", 0) > 0) and changes_money:
                raise Invalid(
                    ["This document cannot be edited as it has a payment or credit note allocated to it."]
                )
            if status == "VOIDED" and current["Status"] != "AUTHORISED":
                raise Invalid(["Invoice not of valid status for modification"])  # drafts are DELETED
            if status == "DELETED" and current["Status"] not in ("DRAFT", "SUBMITTED"):
                raise Invalid(["Invoice not of valid status for modification"])
        if status not in ("DRAFT", "SUBMITTED", "AUTHORISED", "VOIDED", "DELETED"):
            errors.append(f"Invalid status {status}")  # [K]
        contact_ref = (element.get("Contact") or {}).get("ContactID")
        if contact_ref is not None or current is None:
            contact = self.s.contacts.get(str(contact_ref or ""))
            if contact is None:
                errors.append("A Contact must be specified for this type of transaction")  # [K]
            else:
                invoice["Contact"] = dict(contact)
        number = element.get("InvoiceNumber")
        if number is None and current is None:
            number = f"INV-{len(self.s.invoices) + 1:04d}"
        if number is not None:
            taken = any(
                i["InvoiceNumber"] == number and i["InvoiceID"] != invoice["InvoiceID"]
                for i in self.s.invoices.values()
            )
            if taken:
                errors.append("Invoice # must be unique.")
            invoice["InvoiceNumber"] = number
        for key in ("Reference", "LineAmountTypes"):
            if key in element:
                invoice[key] = element[key]
        if "CurrencyCode" in element:
            invoice["CurrencyCode"] = str(element["CurrencyCode"]).upper()
        for key in ("Date", "DueDate"):
            if key in element:
                parsed = _parse_date(element[key], key, errors)
                if parsed is not None:
                    invoice[key] = ms_date(parsed)
                    invoice[f"{key}String"] = f"{parsed.isoformat()}T00:00:00"
        if current is None and "Date" not in invoice:
            today = datetime.now(UTC).date()
            invoice["Date"], invoice["DateString"] = ms_date(today), f"{today.isoformat()}T00:00:00"
        if status == "AUTHORISED" and "DueDate" not in invoice:
            errors.append("Due Date is mandatory for AUTHORISED invoices")  # [K]
        if invoice.get("LineAmountTypes") != "Exclusive":
            errors.append("Only Exclusive line amounts are modelled by this stand-in")
        if "LineItems" in element:
            invoice["LineItems"] = self._lines(
                list(element["LineItems"] or []), invoice["CurrencyCode"], unitdp, errors
            )
        if errors:
            raise Invalid(errors)
        places = MINOR_UNITS.get(invoice["CurrencyCode"], 2)
        zero = money(Decimal(0), places)
        invoice["SubTotal"] = sum((i["LineAmount"] for i in invoice["LineItems"]), zero)
        invoice["TotalTax"] = sum((i["TaxAmount"] for i in invoice["LineItems"]), zero)
        invoice["Total"] = invoice["SubTotal"] + invoice["TotalTax"]
        invoice["AmountPaid"] = money(invoice["AmountPaid"], places)
        credited = money(invoice.get("AmountCredited", zero), places)
        invoice["AmountDue"] = (
            zero if status in ("VOIDED", "DELETED") else invoice["Total"] - invoice["AmountPaid"] - credited
        )
        invoice["Status"] = status
        invoice["UpdatedDateUTC"] = _now_ms()
        return invoice

    def _save(
        self, elements: list[dict[str, Any]], unitdp: int, lookup: Callable[[dict[str, Any]], Any]
    ) -> HandlerResult:
        built, echoes, failed = [], [], False
        for element in elements:
            current = lookup(element)
            try:
                invoice = self._build(element, current, unitdp)
            except Invalid as invalid:
                failed = True
                echoes.append(
                    {
                        **element,
                        "HasErrors": True,
                        "ValidationErrors": [{"Message": m} for m in invalid.messages],
                    }
                )
                continue
            built.append(invoice)
            echoes.append(element)
        if failed or not elements:
            return _validation(echoes or [{"ValidationErrors": [{"Message": "No invoices given"}]}])
        for invoice in built:
            created = invoice["InvoiceID"] not in self.s.invoices
            self.s.invoices[invoice["InvoiceID"]] = invoice
            self.s.notify("INVOICE", "CREATE" if created else "UPDATE", invoice["InvoiceID"])
        return 200, _envelope("Invoices", [{**i, "StatusAttributeString": "OK"} for i in built])

    def put_invoices(self, unitdp: int) -> Callable[[Any], HandlerResult]:
        return lambda body: self._save(list((body or {}).get("Invoices") or []), unitdp, lambda e: None)

    def _find_invoice(self, ref: str) -> dict[str, Any] | None:
        if ref in self.s.invoices:
            return self.s.invoices[ref]
        return next((i for i in self.s.invoices.values() if i["InvoiceNumber"] == ref), None)

    def post_invoices(self, unitdp: int, path_ref: str | None) -> Callable[[Any], HandlerResult]:
        def lookup(element: dict[str, Any]) -> dict[str, Any] | None:
            ref = path_ref or element.get("InvoiceID") or element.get("InvoiceNumber")
            return self._find_invoice(str(ref)) if ref else None

        def run(body: Any) -> HandlerResult:
            if path_ref is not None and self._find_invoice(path_ref) is None:
                return 404, "The resource you're looking for cannot be found"
            return self._save(list((body or {}).get("Invoices") or []), unitdp, lookup)

        return run

    def get_invoices(
        self, query: dict[str, str], since: datetime | None = None
    ) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            found = list(self.s.invoices.values())
            if query.get("InvoiceNumbers"):
                wanted = {n.strip().strip('"') for n in query["InvoiceNumbers"].split(",")}
                found = [i for i in found if i["InvoiceNumber"] in wanted]
            if query.get("IDs"):
                ids = {n.strip() for n in query["IDs"].split(",")}
                found = [i for i in found if i["InvoiceID"] in ids]
            if query.get("Statuses"):
                statuses = {n.strip() for n in query["Statuses"].split(",")}
                found = [i for i in found if i["Status"] in statuses]
            return 200, _envelope("Invoices", changed_page(found, since, query.get("page")))

        return run

    def get_invoice(self, ref: str) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            invoice = self._find_invoice(ref)
            if invoice is None:
                return 404, "The resource you're looking for cannot be found"
            return 200, _envelope("Invoices", [invoice])

        return run

    # Payments

    def _payment(self, element: dict[str, Any]) -> dict[str, Any]:
        errors: list[str] = []
        ref = (
            (element.get("Invoice") or {}).get("InvoiceID")
            or (element.get("Invoice") or {}).get("InvoiceNumber")
            or element.get("InvoiceNumber")
        )
        invoice = self._find_invoice(str(ref)) if ref else None
        if invoice is None:
            raise Invalid(["Invoice could not be found"])  # [K]
        account_ref = element.get("Account") or {}
        account = self.s.accounts.get(str(account_ref.get("Code") or element.get("Code") or "")) or next(
            (a for a in self.s.accounts.values() if a["AccountID"] == account_ref.get("AccountID")), None
        )
        if account is None or not (account["Type"] == "BANK" or account["EnablePaymentsToAccount"]):
            errors.append("Account type is invalid for making a payment to/from")  # [K]
        paid_on = _parse_date(element.get("Date"), "Date", errors)
        if paid_on is None and not errors:
            errors.append("Payment Date is required")  # [K]
        amount = to_decimal(element.get("Amount", 0))
        if amount <= 0:
            errors.append("Payment amount must be greater than zero")  # [K]
        if invoice["Status"] != "AUTHORISED":
            errors.append("Payment can only be made against an AUTHORISED document")  # [K]
        elif amount > invoice["AmountDue"]:
            errors.append("Payment amount exceeds the amount outstanding on this document")  # [K]
        if errors:
            raise Invalid(errors)
        assert account is not None and paid_on is not None
        places = MINOR_UNITS.get(invoice["CurrencyCode"], 2)
        amount = money(amount, places)
        payment_id = str(uuid.uuid4())
        invoice["AmountPaid"] += amount
        invoice["AmountDue"] -= amount
        if invoice["AmountDue"] == 0:
            invoice["Status"] = "PAID"
            invoice["FullyPaidOnDate"] = ms_date(paid_on)
        invoice["UpdatedDateUTC"] = _now_ms()
        summary = {
            "PaymentID": payment_id,
            "Date": ms_date(paid_on),
            "Amount": amount,
            "Reference": str(element.get("Reference") or ""),
            "CurrencyRate": Decimal("1.000000"),
            "HasAccount": True,
            "HasValidationErrors": False,
        }
        invoice["Payments"] = [*invoice["Payments"], summary]
        payment = {
            **summary,
            "BankAmount": amount,
            "PaymentType": "ACCRECPAYMENT",
            "Status": "AUTHORISED",
            "UpdatedDateUTC": _now_ms(),
            "IsReconciled": False,
            "Account": {"AccountID": account["AccountID"], "Code": account["Code"]},
            "Invoice": {
                k: invoice[k]
                for k in (
                    "Type",
                    "InvoiceID",
                    "InvoiceNumber",
                    "Status",
                    "Total",
                    "AmountDue",
                    "AmountPaid",
                    "CurrencyCode",
                )
            }
            | {"Contact": {k: invoice["Contact"][k] for k in ("ContactID", "Name")}},
        }
        self.s.payments[payment_id] = payment
        return payment

    def put_payments(self, body: Any) -> HandlerResult:
        elements = list((body or {}).get("Payments") or ([] if "Payments" in (body or {}) else [body or {}]))
        saved, echoes, failed = [], [], False
        snapshot = {k: dict(v) for k, v in self.s.invoices.items()}
        for element in elements:
            try:
                saved.append(self._payment(element))
                echoes.append(element)
            except Invalid as invalid:
                failed = True
                echoes.append({**element, "ValidationErrors": [{"Message": m} for m in invalid.messages]})
        if failed:
            self.s.invoices.clear()  # all or nothing, as with summarizeErrors=true
            self.s.invoices.update(snapshot)
            for payment in saved:
                self.s.payments.pop(payment["PaymentID"], None)
            return _validation(echoes)
        for payment in saved:
            self.s.notify("INVOICE", "UPDATE", payment["Invoice"]["InvoiceID"])
        return 200, _envelope("Payments", saved)

    def get_payment(self, ref: str) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            payment = self.s.payments.get(ref)
            if payment is None:
                return 404, "The resource you're looking for cannot be found"
            return 200, _envelope("Payments", [payment])

        return run

    def delete_payment(self, ref: str) -> Callable[[Any], HandlerResult]:
        """``POST /Payments/{id}`` with ``{"Status": "DELETED"}``: the only change Xero allows a payment."""

        def run(body: Any) -> HandlerResult:
            payment = self.s.payments.get(ref)
            if payment is None:
                return 404, "The resource you're looking for cannot be found"
            elements = list((body or {}).get("Payments") or [body or {}])
            if not elements or elements[0].get("Status") != "DELETED":
                return _validation([{"ValidationErrors": [{"Message": "Payments can only be deleted"}]}])
            if payment["Status"] == "DELETED":
                return _validation([{"ValidationErrors": [{"Message": "Payment has been deleted"}]}])  # [K]
            invoice = self.s.invoices[payment["Invoice"]["InvoiceID"]]
            amount = payment["Amount"]
            invoice["AmountPaid"] -= amount
            invoice["AmountDue"] += amount
            if invoice["Status"] == "PAID":
                invoice["Status"] = "AUTHORISED"
                invoice.pop("FullyPaidOnDate", None)
            invoice["Payments"] = [p for p in invoice["Payments"] if p["PaymentID"] != ref]
            invoice["UpdatedDateUTC"] = payment["UpdatedDateUTC"] = _now_ms()
            payment["Status"] = "DELETED"
            self.s.notify("INVOICE", "UPDATE", invoice["InvoiceID"])
            return 200, _envelope("Payments", [payment])

        return run

    # Credit notes

    def _find_credit_note(self, ref: str) -> dict[str, Any] | None:
        if ref in self.s.credit_notes:
            return self.s.credit_notes[ref]
        return next((c for c in self.s.credit_notes.values() if c["CreditNoteNumber"] == ref), None)

    def put_credit_notes(self, unitdp: int) -> Callable[[Any], HandlerResult]:
        def run(body: Any) -> HandlerResult:
            elements = list((body or {}).get("CreditNotes") or [])
            built, echoes, failed = [], [], False
            for element in elements:
                errors: list[str] = []
                if element.get("Type") != "ACCRECCREDIT":
                    errors.append("Only ACCRECCREDIT credit notes are modelled by this stand-in")
                contact = self.s.contacts.get(str((element.get("Contact") or {}).get("ContactID") or ""))
                if contact is None:
                    errors.append("A Contact must be specified for this type of transaction")  # [K]
                number = str(element.get("CreditNoteNumber") or f"CN-{len(self.s.credit_notes) + 1:04d}")
                if any(c["CreditNoteNumber"] == number for c in self.s.credit_notes.values()):
                    errors.append("Credit Note # must be unique.")  # [K]
                currency = str(element.get("CurrencyCode") or "USD").upper()
                issued = _parse_date(element.get("Date"), "Date", errors)
                if element.get("LineAmountTypes", "Exclusive") != "Exclusive":
                    errors.append("Only Exclusive line amounts are modelled by this stand-in")
                lines = self._lines(list(element.get("LineItems") or []), currency, unitdp, errors)
                if errors:
                    failed = True
                    echoes.append(
                        {**element, "HasErrors": True, "ValidationErrors": [{"Message": m} for m in errors]}
                    )
                    continue
                assert contact is not None and issued is not None
                zero = money(Decimal(0), MINOR_UNITS.get(currency, 2))
                subtotal = sum((line["LineAmount"] for line in lines), zero)
                tax = sum((line["TaxAmount"] for line in lines), zero)
                built.append(
                    {
                        "Type": "ACCRECCREDIT",
                        "CreditNoteID": str(uuid.uuid4()),
                        "CreditNoteNumber": number,
                        "Contact": dict(contact),
                        "Date": ms_date(issued),
                        "DateString": f"{issued.isoformat()}T00:00:00",
                        "Status": element.get("Status", "AUTHORISED"),
                        "LineAmountTypes": "Exclusive",
                        "LineItems": lines,
                        "SubTotal": subtotal,
                        "TotalTax": tax,
                        "Total": subtotal + tax,
                        "RemainingCredit": subtotal + tax,
                        "CurrencyCode": currency,
                        "Reference": str(element.get("Reference") or ""),
                        "Allocations": [],
                        "UpdatedDateUTC": _now_ms(),
                    }
                )
                echoes.append(element)
            if failed or not elements:
                return _validation(echoes or [{"ValidationErrors": [{"Message": "No credit notes given"}]}])
            for note in built:
                self.s.credit_notes[note["CreditNoteID"]] = note
                self.s.notify("CREDITNOTE", "CREATE", note["CreditNoteID"])
            return 200, _envelope("CreditNotes", built)

        return run

    def get_credit_notes(
        self, query: dict[str, str], since: datetime | None = None
    ) -> Callable[[Any], HandlerResult]:
        """Only the filters the connectors use: ``where=CreditNoteNumber=="CN-..."`` or ``Type=="..."``."""

        def run(_: Any) -> HandlerResult:
            found = list(self.s.credit_notes.values())
            where = query.get("where", "")
            if where:
                field_name, _, value = where.partition("==")
                if field_name.strip() not in ("CreditNoteNumber", "Type"):
                    return _validation([{"ValidationErrors": [{"Message": f"unsupported where {where!r}"}]}])
                found = [c for c in found if c[field_name.strip()] == value.strip().strip('"')]
            return 200, _envelope("CreditNotes", changed_page(found, since, query.get("page")))

        return run

    def put_allocations(self, ref: str) -> Callable[[Any], HandlerResult]:
        def run(body: Any) -> HandlerResult:
            note = self._find_credit_note(ref)
            if note is None:
                return 404, "The resource you're looking for cannot be found"
            saved = []
            for element in list((body or {}).get("Allocations") or []):
                invoice_ref = (element.get("Invoice") or {}).get("InvoiceID")
                invoice = self._find_invoice(str(invoice_ref or ""))
                amount = to_decimal(element.get("Amount", 0))
                errors: list[str] = []
                if invoice is None:
                    errors.append("Invoice could not be found")  # [K]
                elif invoice["Status"] != "AUTHORISED":
                    errors.append("Allocations can only be made against an AUTHORISED invoice")  # [K]
                elif amount <= 0 or amount > note["RemainingCredit"] or amount > invoice["AmountDue"]:
                    errors.append(
                        "The amount allocated exceeds the credit remaining or the amount due"
                    )  # [K]
                if errors:
                    return _validation([{**element, "ValidationErrors": [{"Message": m} for m in errors]}])
                assert invoice is not None
                amount = money(amount, MINOR_UNITS.get(invoice["CurrencyCode"], 2))
                allocation = {
                    "AllocationID": str(uuid.uuid4()),
                    "Amount": amount,
                    "Date": element.get("Date"),
                    "Invoice": {"InvoiceID": invoice["InvoiceID"], "InvoiceNumber": invoice["InvoiceNumber"]},
                }
                note["Allocations"] = [*note["Allocations"], allocation]
                note["RemainingCredit"] -= amount
                if note["RemainingCredit"] == 0:
                    note["Status"] = "PAID"
                invoice["AmountCredited"] = invoice.get("AmountCredited", Decimal(0)) + amount
                invoice["AmountDue"] -= amount
                invoice["CreditNotes"] = [
                    *invoice.get("CreditNotes", []),
                    {
                        "CreditNoteID": note["CreditNoteID"],
                        "CreditNoteNumber": note["CreditNoteNumber"],
                        "AppliedAmount": amount,
                    },
                ]
                if invoice["AmountDue"] == 0:
                    invoice["Status"] = "PAID"
                invoice["UpdatedDateUTC"] = note["UpdatedDateUTC"] = _now_ms()
                saved.append(allocation)
                self.s.notify("INVOICE", "UPDATE", invoice["InvoiceID"])
            return 200, _envelope("Allocations", saved)

        return run

    def get_collection(
        self, key: str, since: datetime | None = None, page: str | None = None
    ) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            if key == "Accounts":
                return 200, _envelope(key, list(self.s.accounts.values()))
            if key == "Payments":
                rows = changed_page(list(self.s.payments.values()), since, page)
                return 200, _envelope(key, rows)
            if key == "Contacts":
                return 200, _envelope(key, list(self.s.contacts.values()))
            rates = [
                {"Name": t, "TaxType": t, "Status": "ACTIVE", "EffectiveRate": r, "DisplayTaxRate": r}
                for t, r in self.s.tax_rates.items()
            ]
            return 200, _envelope(key, rates)

        return run


class _XeroFlavor:
    def __init__(self, state: XeroState) -> None:
        self.s = state

    @staticmethod
    def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
        return json_response(
            status,
            {
                "Type": None,
                "Title": title,
                "Status": status,
                "Detail": detail,
                "Instance": str(uuid.uuid4()),
                "Extensions": {},
            },
            headers,
        )

    def unauthorized(self, reason: str) -> Response:
        detail = "TokenExpired: token expired" if reason == "expired" else "AuthenticationUnsuccessful"
        return self._problem(
            401, "Unauthorized", detail, {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )

    def forbidden(self) -> Response:
        return self._problem(403, "Forbidden", "AuthenticationUnsuccessful")

    def unavailable(self) -> Response:
        return self._problem(503, "Service Unavailable", "The Xero API is temporarily unavailable")

    def headers(self, tenant: str) -> dict[str, str]:
        traffic, quota = self.s.core.traffic, self.s.quota
        if quota is None:
            return {}
        minute = max(quota.per_window - len(traffic.sent.get(tenant, ())), 0)
        day = max((quota.per_day or 0) - traffic.day.get(tenant, 0), 0)
        return {
            "X-MinLimit-Remaining": str(minute),
            "X-DayLimit-Remaining": str(day),
            "X-AppMinLimit-Remaining": "9999",
        }

    def rate_limited(self, tenant: str, problem: str, retry_after: int | None) -> Response:
        headers = {**self.headers(tenant), "X-Rate-Limit-Problem": problem}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        return self._problem(429, "Too Many Requests", f"Rate limit exceeded: {problem}", headers)

    def replay_mismatch(self) -> Response:
        return json_response(
            400,
            {
                "ErrorNumber": 10,
                "Type": "ValidationException",
                "Message": "A validation exception occurred",
                "Elements": [
                    {
                        "ValidationErrors": [
                            {"Message": "The Idempotency-Key has already been used with a different request"}
                        ]
                    }
                ],
            },
        )  # [K] wording


def create_xero_app(state: XeroState | None = None) -> tuple[Starlette, XeroState]:
    """The ASGI app and its inspectable state; serve with ``standins.server.serve``."""
    state = state or XeroState()
    flavor, handlers = _XeroFlavor(state), _Handlers(state)

    def precheck(request: Request) -> Callable[[], Response | None]:
        def check() -> Response | None:
            tenant = request.headers.get("xero-tenant-id")
            return None if tenant == state.tenant_id else flavor.forbidden()

        return check

    async def run(request: Request, handler: Callable[[Any], HandlerResult], *, write: bool) -> Response:
        key = request.headers.get("idempotency-key") if write else None
        return await state.core.handle(
            request,
            flavor,
            tenant=request.headers.get("xero-tenant-id", ""),
            write=write,
            handler=handler,
            replay_key=key,
            precheck=precheck(request),
        )

    def unitdp(request: Request) -> int:
        return 4 if request.query_params.get("unitdp") == "4" else 2

    async def contacts(request: Request) -> Response:
        if request.method == "GET":
            return await run(
                request,
                handlers.list_contacts(
                    request.query_params.get("searchTerm", ""), request.query_params.get("page")
                ),
                write=False,
            )
        return await run(request, handlers.put_contacts, write=True)

    async def contact(request: Request) -> Response:
        return await run(request, handlers.get_contact(request.path_params["ref"]), write=False)

    async def invoices(request: Request) -> Response:
        if request.method == "GET":
            since = modified_since(request.headers.get("if-modified-since"))
            return await run(request, handlers.get_invoices(dict(request.query_params), since), write=False)
        if request.method == "PUT":
            return await run(request, handlers.put_invoices(unitdp(request)), write=True)
        return await run(request, handlers.post_invoices(unitdp(request), None), write=True)

    async def invoice(request: Request) -> Response:
        ref = request.path_params["ref"]
        if request.method == "GET":
            return await run(request, handlers.get_invoice(ref), write=False)
        return await run(request, handlers.post_invoices(unitdp(request), ref), write=True)

    async def payments(request: Request) -> Response:
        if request.method == "GET":
            since = modified_since(request.headers.get("if-modified-since"))
            listing = handlers.get_collection("Payments", since, request.query_params.get("page"))
            return await run(request, listing, write=False)
        return await run(request, handlers.put_payments, write=True)

    async def payment(request: Request) -> Response:
        ref = request.path_params["ref"]
        if request.method == "GET":
            return await run(request, handlers.get_payment(ref), write=False)
        return await run(request, handlers.delete_payment(ref), write=True)

    async def credit_notes(request: Request) -> Response:
        if request.method == "GET":
            since = modified_since(request.headers.get("if-modified-since"))
            return await run(
                request, handlers.get_credit_notes(dict(request.query_params), since), write=False
            )
        return await run(request, handlers.put_credit_notes(unitdp(request)), write=True)

    async def allocations(request: Request) -> Response:
        return await run(request, handlers.put_allocations(request.path_params["ref"]), write=True)

    async def collection(request: Request) -> Response:
        key = request.url.path.rsplit("/", 1)[-1]
        return await run(request, handlers.get_collection(key), write=False)

    app = Starlette(
        routes=[
            Route(f"{PREFIX}/Contacts", contacts, methods=["GET", "PUT", "POST"]),
            Route(f"{PREFIX}/Contacts/{{ref}}", contact, methods=["GET"]),
            Route(f"{PREFIX}/Invoices", invoices, methods=["GET", "PUT", "POST"]),
            Route(f"{PREFIX}/Invoices/{{ref}}", invoice, methods=["GET", "POST"]),
            Route(f"{PREFIX}/Payments", payments, methods=["GET", "PUT", "POST"]),
            Route(f"{PREFIX}/Payments/{{ref}}", payment, methods=["GET", "POST"]),
            Route(f"{PREFIX}/CreditNotes", credit_notes, methods=["GET", "PUT"]),
            Route(f"{PREFIX}/CreditNotes/{{ref}}/Allocations", allocations, methods=["PUT"]),
            Route(f"{PREFIX}/Accounts", collection, methods=["GET"]),
            Route(f"{PREFIX}/TaxRates", collection, methods=["GET"]),
            Route(TOKEN_PATH, state.oauth.endpoint, methods=["POST"]),
        ]
    )
    return app, state
