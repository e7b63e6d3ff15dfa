"""QuickBooks Online connector (https://quickbooks.api.intuit.com/v3/company/{realmId}/...).

Every write carries ``requestid`` (QBO replays the original response for a repeated id) and every call
``minorversion``. Updates are sparse and need the current ``SyncToken``; a stale one (fault 5010) is
settled here by re-reading and retrying under a derived request id, since reusing the first id would
only replay the stale error. ``DocNumber`` is not unique in QBO by default, so an invoice or a credit
memo without a known id is looked up by number before it is created.

A credit note is a ``CreditMemo`` with the invoice's line shape; QBO applies it to an invoice through a
ReceivePayment of ``TotalAmt`` 0 whose two lines link the Invoice and the CreditMemo for the same amount.

QBO has no account code on an invoice line: the Item decides the income account. ``item_refs`` maps our
line ``account_code`` to an Item id (identity when absent); ``tax_code`` is a TaxCode id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
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
from accounting.errors import AccountingError, NotFound, StaleObject, ValidationFailed
from accounting.http import HttpSettings, ProviderHttp
from accounting.jsonnum import to_decimal
from accounting.keys import bounded_key, derived_key
from accounting.qbo_changes import QboChanges
from accounting.ratelimit import QBO_POLICY, CallLimiter, RateLimitPolicy

QBO_BASE_URL = "https://quickbooks.api.intuit.com"
QBO_SANDBOX_BASE_URL = "https://sandbox-quickbooks.api.intuit.com"
MINOR_VERSION = "75"
REQUEST_ID_MAX = 50
PAYMENT_REF_MAX = 21  # PaymentRefNum's maximum length
STALE = "5010"
DUPLICATE_NAME = "6240"


def parse_qbo_error(response: httpx.Response, body: Any) -> AccountingError:
    """``{"Fault": {"Error": [{"Message", "Detail", "code"}], "type"}}`` (401s use lower-case keys)."""
    fault = body.get("Fault") or body.get("fault") if isinstance(body, dict) else None
    errors = (fault or {}).get("Error") or (fault or {}).get("error") or []
    first = errors[0] if errors else {}
    code = str(first.get("code", ""))
    message = str(first.get("Message") or first.get("message") or "")
    detail = str(first.get("Detail") or first.get("detail") or "")
    text = (
        detail if detail.startswith(message) else f"{message}: {detail}" if detail else message or str(body)
    )
    if first.get("element"):
        text = f"{text} ({first['element']})"
    status = response.status_code
    if code == STALE:
        return StaleObject(text, provider="qbo", status_code=status)
    if status == 404 or code == "610":
        return NotFound(text, provider="qbo", status_code=status, code=code)
    return ValidationFailed(text, provider="qbo", status_code=status, code=code)


def _quote(value: str) -> str:
    """A QBO query string literal: apostrophes are backslash-escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _is_voided(invoice: Mapping[str, Any]) -> bool:
    return str(invoice.get("PrivateNote", "")).startswith("Voided")


class QboConnector(QboChanges):
    """One QuickBooks Online company (realm)."""

    provider = "qbo"

    def __init__(
        self,
        *,
        realm_id: str,
        token_provider: TokenProvider,
        base_url: str = QBO_BASE_URL,
        minor_version: str = MINOR_VERSION,
        item_refs: Mapping[str, str] | None = None,
        deposit_account_id: str | None = None,
        max_stale_retries: int = 3,
        settings: HttpSettings | None = None,
        policy: RateLimitPolicy = QBO_POLICY,
        limiter: CallLimiter | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.realm_id = realm_id
        self.minor_version = minor_version
        self.item_refs = dict(item_refs or {})
        self.deposit_account_id = deposit_account_id  # else QBO puts payments in Undeposited Funds
        self.max_stale_retries = max_stale_retries
        self.http = ProviderHttp(
            provider=self.provider,
            base_url=base_url,
            tenant=realm_id,
            token_provider=token_provider,
            policy=policy,
            error_parser=parse_qbo_error,
            settings=settings or HttpSettings(),
            limiter=limiter,
            client=client,
        )
        self._item_accounts = {item: code for code, item in self.item_refs.items()}

    async def aclose(self) -> None:
        await self.http.aclose()

    def _path(self, entity: str) -> str:
        return f"/v3/company/{self.realm_id}/{entity}"

    async def _get(self, entity: str, **params: str) -> Any:
        return await self.http.request(
            "GET", self._path(entity), params={**params, "minorversion": self.minor_version}
        )

    async def _post(self, entity: str, body: Any, key: str, **params: str) -> Any:
        params = {**params, "minorversion": self.minor_version, "requestid": bounded_key(key, REQUEST_ID_MAX)}
        return await self.http.request("POST", self._path(entity), params=params, body=body)

    async def _query(self, statement: str) -> dict[str, Any]:
        return dict((await self._get("query", query=statement)).get("QueryResponse") or {})

    async def _with_fresh_token(
        self,
        entity_id: str,
        key: str,
        write: Callable[[dict[str, Any], str], Awaitable[Any]],
        current: dict[str, Any] | None = None,
    ) -> Any:
        """Run a write that needs the current SyncToken, re-reading on 5010 under a new request id."""
        for attempt in range(self.max_stale_retries + 1):
            if current is None:
                current = (await self._get(f"invoice/{entity_id}"))["Invoice"]
            request_key = key if attempt == 0 else derived_key(key, f"stale{attempt}")
            try:
                return await write(current, request_key)
            except StaleObject:
                if attempt >= self.max_stale_retries:
                    raise
                current = None
        raise AssertionError("unreachable")

    # Customers ------------------------------------------------------------------------------------

    async def _customer_by_name(self, name: str) -> dict[str, Any] | None:
        found = await self._query(f"select * from Customer where DisplayName = {_quote(name)}")
        customers = found.get("Customer") or []
        return customers[0] if customers else None

    async def ensure_customer(self, customer: AccountingCustomer, *, idempotency_key: str) -> SyncResult:
        if customer.external_id:
            return SyncResult(customer.external_id, SyncStatus.EXISTING)
        existing = await self._customer_by_name(customer.name)
        if existing:
            return SyncResult(existing["Id"], SyncStatus.EXISTING, version=existing.get("SyncToken", ""))
        body = {
            "DisplayName": customer.name,
            "PrimaryEmailAddr": {"Address": customer.email},
            "CurrencyRef": {"value": customer.currency},
        }
        try:
            saved = (await self._post("customer", body, idempotency_key))["Customer"]
        except ValidationFailed as error:
            if error.code != DUPLICATE_NAME:  # created concurrently by a sibling task: use theirs
                raise
            existing = await self._customer_by_name(customer.name)
            if existing is None:
                raise
            return SyncResult(existing["Id"], SyncStatus.EXISTING, version=existing.get("SyncToken", ""))
        return SyncResult(saved["Id"], SyncStatus.CREATED, version=saved.get("SyncToken", ""))

    # Invoices -------------------------------------------------------------------------------------

    def _invoice_body(self, invoice: AccountingInvoice, customer_id: str) -> dict[str, Any]:
        return {
            "CustomerRef": {"value": customer_id},
            "DocNumber": invoice.number,
            "TxnDate": invoice.issue_date.isoformat(),
            "DueDate": invoice.due_date.isoformat(),
            "CurrencyRef": {"value": invoice.currency},
            "BillEmail": {"Address": invoice.customer.email},
            "PrivateNote": f"invoiceflow:{invoice.invoice_id}",
            "GlobalTaxCalculation": "TaxExcluded",
            "Line": [
                {
                    "DetailType": "SalesItemLineDetail",
                    "Amount": line.line_amount,
                    "Description": line.description,
                    "SalesItemLineDetail": {
                        "ItemRef": {"value": self.item_refs.get(line.account_code, line.account_code)},
                        "Qty": line.quantity,
                        "UnitPrice": line.unit_price,
                        "TaxCodeRef": {"value": line.tax_code},
                    },
                }
                for line in invoice.lines
            ],
            # Our tax, computed by our rounding rules, instead of QBO's own calculation.
            "TxnTaxDetail": {"TotalTax": invoice.totals.tax},
        }

    async def upsert_invoice(
        self, invoice: AccountingInvoice, *, idempotency_key: str, external_id: str | None = None
    ) -> SyncResult:
        customer_id = (
            invoice.customer.external_id
            or (
                await self.ensure_customer(invoice.customer, idempotency_key=f"{idempotency_key}:customer")
            ).external_id
        )
        body = self._invoice_body(invoice, customer_id)
        current: dict[str, Any] | None = None
        if external_id is None:
            found = await self._query(f"select * from Invoice where DocNumber = {_quote(invoice.number)}")
            mine = [
                i
                for i in found.get("Invoice") or []
                if i.get("PrivateNote") == body["PrivateNote"]
                or i.get("CustomerRef", {}).get("value") == customer_id
            ]
            if not mine:
                saved = (await self._post("invoice", body, idempotency_key))["Invoice"]
                return SyncResult(saved["Id"], SyncStatus.CREATED, version=saved.get("SyncToken", ""))
            current = mine[0]
            external_id = str(current["Id"])

        async def update(latest: dict[str, Any], key: str) -> Any:
            sparse = {**body, "Id": external_id, "SyncToken": latest["SyncToken"], "sparse": True}
            return (await self._post("invoice", sparse, key))["Invoice"]

        saved = await self._with_fresh_token(external_id, f"{idempotency_key}:update", update, current)
        return SyncResult(saved["Id"], SyncStatus.UPDATED, version=saved.get("SyncToken", ""))

    async def void_invoice(self, external_id: str, *, idempotency_key: str) -> SyncResult:
        current = (await self._get(f"invoice/{external_id}"))["Invoice"]
        if _is_voided(current):
            return SyncResult(
                external_id, SyncStatus.EXISTING, "Voided", version=current.get("SyncToken", "")
            )

        async def void(latest: dict[str, Any], key: str) -> Any:
            body = {"Id": external_id, "SyncToken": latest["SyncToken"]}
            return (await self._post("invoice", body, key, operation="void"))["Invoice"]

        saved = await self._with_fresh_token(external_id, idempotency_key, void, current)
        return SyncResult(saved["Id"], SyncStatus.VOIDED, "Voided", version=saved.get("SyncToken", ""))

    async def fetch_invoice(self, external_id: str) -> RemoteInvoice:
        invoice = (await self._get(f"invoice/{external_id}"))["Invoice"]
        lines = []
        for line in invoice.get("Line") or []:
            if line.get("DetailType") != "SalesItemLineDetail":
                continue  # SubTotalLineDetail and friends are summaries, not lines
            detail = line.get("SalesItemLineDetail") or {}
            item = (detail.get("ItemRef") or {}).get("value", "")
            lines.append(
                RemoteLine(
                    description=line.get("Description", ""),
                    quantity=to_decimal(detail.get("Qty", 0)),
                    unit_price=to_decimal(detail.get("UnitPrice", 0)),
                    line_amount=to_decimal(line.get("Amount", 0)),
                    account_code=self._item_accounts.get(item, item),
                    tax_code=(detail.get("TaxCodeRef") or {}).get("value", ""),
                )
            )
        total = to_decimal(invoice.get("TotalAmt", 0))
        balance = to_decimal(invoice.get("Balance", 0))
        credited = await self._credit_applied(invoice) if balance < total else Decimal(0)
        if _is_voided(invoice):
            state = RemoteState.VOIDED
        elif balance == 0 and total > 0:
            state = RemoteState.PAID
        elif balance < total:
            state = RemoteState.PARTIALLY_PAID
        else:
            state = RemoteState.OPEN
        return RemoteInvoice(
            external_id=str(invoice["Id"]),
            number=invoice.get("DocNumber", ""),
            currency=(invoice.get("CurrencyRef") or {}).get("value", ""),
            state=state,
            remote_status="Voided"
            if state == RemoteState.VOIDED
            else ("Paid" if state == RemoteState.PAID else "Open"),
            lines=tuple(lines),
            subtotal=sum((line.line_amount for line in lines), to_decimal(0)),
            tax=to_decimal((invoice.get("TxnTaxDetail") or {}).get("TotalTax", 0)),
            total=total,
            amount_paid=total - balance - credited,  # money received, as Xero's AmountPaid (credit apart)
            amount_due=balance,
            version=str(invoice.get("SyncToken", "")),
        )

    async def _credit_applied(self, invoice: Mapping[str, Any]) -> Decimal:
        """How much of the invoice's Balance reduction is credit memos, not money: read from the payments
        linked to it, each counting the lesser of the credit it uses and what it applies here (exact for
        the zero payments ``record_credit_note`` makes; one extra read per linked payment)."""
        credited = Decimal(0)
        for linked in invoice.get("LinkedTxn") or []:
            if linked.get("TxnType") != "Payment":
                continue
            payment = (await self._get(f"payment/{linked['TxnId']}"))["Payment"]
            here = used = Decimal(0)
            for line in payment.get("Line") or []:
                for txn in line.get("LinkedTxn") or []:
                    if txn.get("TxnType") == "CreditMemo":
                        used += to_decimal(line.get("Amount", 0))
                    elif txn.get("TxnType") == "Invoice" and str(txn.get("TxnId")) == str(invoice["Id"]):
                        here += to_decimal(line.get("Amount", 0))
            credited += min(used, here)
        return credited

    # Payments -------------------------------------------------------------------------------------

    async def record_payment(self, payment: AccountingPayment, *, idempotency_key: str) -> SyncResult:
        """Deduplicated by ``requestid`` (QBO documents no expiry for it)."""
        customer_id = payment.customer_external_id
        if customer_id is None:
            invoice = (await self._get(f"invoice/{payment.invoice_external_id}"))["Invoice"]
            customer_id = invoice["CustomerRef"]["value"]
        reference = payment.reference or payment.payment_id
        body: dict[str, Any] = {
            "CustomerRef": {"value": customer_id},
            "TotalAmt": payment.amount,
            "TxnDate": payment.date.isoformat(),
            "CurrencyRef": {"value": payment.currency},
            "PaymentRefNum": reference[:PAYMENT_REF_MAX],
            "PrivateNote": f"invoiceflow:{payment.payment_id} {reference}",
            "Line": [
                {
                    "Amount": payment.amount,
                    "LinkedTxn": [{"TxnId": payment.invoice_external_id, "TxnType": "Invoice"}],
                }
            ],
        }
        if self.deposit_account_id:
            body["DepositToAccountRef"] = {"value": self.deposit_account_id}
        saved = (await self._post("payment", body, idempotency_key))["Payment"]
        return SyncResult(saved["Id"], SyncStatus.RECORDED, version=saved.get("SyncToken", ""))

    async def remove_payment(
        self, external_id: str, *, invoice_external_id: str, idempotency_key: str
    ) -> SyncResult:
        """``POST /payment?operation=delete``: the invoice's Balance rises by the payment; the caller
        records what is left as a new payment. Deleted already: nothing to do."""
        try:
            payment = (await self._get(f"payment/{external_id}"))["Payment"]
        except NotFound:
            return SyncResult(external_id, SyncStatus.EXISTING, "Deleted")
        body = {"Id": external_id, "SyncToken": payment["SyncToken"]}
        await self._post("payment", body, idempotency_key, operation="delete")
        return SyncResult(external_id, SyncStatus.REMOVED, "Deleted")

    async def apply_credit(
        self, application: AccountingCreditApplication, *, idempotency_key: str
    ) -> SyncResult:
        """One zero payment per credit memo, linking it to the invoice (as ``record_credit_note`` does),
        oldest memo first, up to ``amount``. Payments already linked to the invoice by this application
        (found by their PrivateNote) count, so a retry applies only the rest."""
        marker = f"invoiceflow:{application.application_id} "
        invoice = (await self._get(f"invoice/{application.invoice_external_id}"))["Invoice"]
        left, used_memos, status, first = application.amount, set(), SyncStatus.EXISTING, ""
        for linked in invoice.get("LinkedTxn") or []:
            if linked.get("TxnType") != "Payment":
                continue
            payment = (await self._get(f"payment/{linked['TxnId']}"))["Payment"]
            if not str(payment.get("PrivateNote", "")).startswith(marker):
                continue
            first = first or str(payment["Id"])
            for line in payment.get("Line") or []:
                for txn in line.get("LinkedTxn") or []:
                    if txn.get("TxnType") == "CreditMemo":
                        used_memos.add(str(txn.get("TxnId")))
                        left -= to_decimal(line.get("Amount", 0))
        balance = to_decimal(invoice.get("Balance", 0))
        for memo_id, number in application.sources:
            if left <= 0 or balance <= 0 or memo_id in used_memos:
                continue
            memo = (await self._get(f"creditmemo/{memo_id}"))["CreditMemo"]
            amount = min(left, balance, to_decimal(memo.get("Balance", 0)))
            if amount <= 0:
                continue
            body: dict[str, Any] = {
                "CustomerRef": {"value": application.customer_external_id},
                "TotalAmt": 0,
                "TxnDate": application.date.isoformat(),
                "CurrencyRef": {"value": application.currency},
                "PrivateNote": f"{marker}applies {number}",
                "Line": [
                    {
                        "Amount": amount,
                        "LinkedTxn": [{"TxnId": application.invoice_external_id, "TxnType": "Invoice"}],
                    },
                    {"Amount": amount, "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"}]},
                ],
            }
            saved = (await self._post("payment", body, derived_key(idempotency_key, memo_id)))["Payment"]
            left, balance, status = left - amount, balance - amount, SyncStatus.RECORDED
            first = first or str(saved["Id"])
        return SyncResult(first or application.application_id, status, "Applied" if first else "")

    # Credit notes ---------------------------------------------------------------------------------

    async def _find_credit_memo(
        self, number: str, private_note: str, customer_id: str
    ) -> dict[str, Any] | None:
        found = await self._query(f"select * from CreditMemo where DocNumber = {_quote(number)}")
        mine = [
            m
            for m in found.get("CreditMemo") or []
            if m.get("PrivateNote") == private_note
            or (m.get("CustomerRef") or {}).get("value") == customer_id
        ]
        return mine[0] if mine else None

    async def record_credit_note(self, note: AccountingCreditNote, *, idempotency_key: str) -> SyncResult:
        """The CreditMemo once per number (looked up first, ``requestid`` on the create), then applied to
        the invoice (at most ``note.allocate``, the invoice's Balance and the memo's unapplied Balance) by a
        zero payment; what is left stays the customer's credit in QBO, as it does with us. A memo whose
        Balance is already below its total has been applied: not applied twice."""
        doc = note.document
        customer_id = (
            doc.customer.external_id
            or (
                await self.ensure_customer(doc.customer, idempotency_key=f"{idempotency_key}:customer")
            ).external_id
        )
        body = self._invoice_body(doc, customer_id)
        body.pop("DueDate")  # a CreditMemo has none
        body["PrivateNote"] = f"invoiceflow:{note.credit_note_id} credits {doc.reference}".strip()
        memo = await self._find_credit_memo(doc.number, body["PrivateNote"], customer_id)
        status = SyncStatus.EXISTING
        if memo is None:
            memo = (await self._post("creditmemo", body, idempotency_key))["CreditMemo"]
            status = SyncStatus.CREATED
        memo_id = str(memo["Id"])
        total, unapplied = to_decimal(memo.get("TotalAmt", 0)), to_decimal(memo.get("Balance", 0))
        applied = unapplied < total
        if note.allocate > 0 and not applied:
            invoice = (await self._get(f"invoice/{note.invoice_external_id}"))["Invoice"]
            amount = min(note.allocate, to_decimal(invoice.get("Balance", 0)), unapplied)
            if amount > 0:
                application: dict[str, Any] = {
                    "CustomerRef": {"value": customer_id},
                    "TotalAmt": 0,
                    "TxnDate": doc.issue_date.isoformat(),
                    "CurrencyRef": {"value": doc.currency},
                    "PrivateNote": f"invoiceflow:{note.credit_note_id} applies {doc.number}",
                    "Line": [
                        {
                            "Amount": amount,
                            "LinkedTxn": [{"TxnId": note.invoice_external_id, "TxnType": "Invoice"}],
                        },
                        {"Amount": amount, "LinkedTxn": [{"TxnId": memo_id, "TxnType": "CreditMemo"}]},
                    ],
                }
                await self._post("payment", application, derived_key(idempotency_key, "apply"))
                applied = True
                status = SyncStatus.RECORDED if status == SyncStatus.EXISTING else status
        return SyncResult(
            memo_id, status, "Applied" if applied else "Unapplied", version=str(memo.get("SyncToken", ""))
        )
