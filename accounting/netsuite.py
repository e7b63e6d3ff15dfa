"""NetSuite connector: SuiteTalk REST web services (``https://<account>.suitetalk.api.netsuite.com``).

What Oracle's documentation says, and how this module follows it (looked up in the NetSuite Help Center):

- **Upsert by external id** ("Using the Upsert Operation", section_156335203191): ``PUT
  /services/rest/record/v1/<type>/eid:<external id>`` creates the record or updates it. Every record we
  write carries our own id as its external id (customer id, invoice id, payment id, credit note id), so
  a retry after a timeout updates what the first attempt created instead of duplicating it. A write
  answers ``204`` with ``Location`` ("Creating a Record Instance", section_1545141395); we read the
  record back by ``eid:`` for its internal id and totals. The item lines are replaced, not appended, on
  an update (``replace=item``: "Replacing a Sublist", section_1545297048); reads ask for
  ``expandSubResources=true`` to get the lines ("Format of Sublists and Subrecords", section_1545141947).
- **Asynchronous requests** carry ``X-NetSuite-Idempotency-Key`` ("Sending an Asynchronous Request Using
  an Idempotency Key", subsect_164494900632): the money writes (customer payment, credit memo) go with
  ``Prefer: respond-async`` and a key derived from ours (a UUID, as in Oracle's example). NetSuite
  answers ``202`` + the job's ``Location``; a reused key answers 400 ``IDEMPOTENCY_ERROR`` with the
  earlier job's ``Location``, which we then follow instead of writing again.
- **Customer payment** (record ``customerpayment``, article_0224093711): ``customer``, ``payment``,
  ``currency``, ``account``, and the ``apply`` sublist (``doc``, ``apply``, ``amount``) that settles the
  invoice. **Credit memo** (``creditmemo``) has the invoice's item lines and the same ``apply`` sublist.
- **Void**: REST has record actions (``/@action``) and transformations (``/!transform/<type>``,
  section_157901123882) but Oracle documents no void action for invoices (checks: "voiding is not
  supported in REST"), so a void is the invoice transformed into a credit memo (external id
  ``void-<invoice id>``, applied to it by NetSuite) and the invoice's memo marked ``Voided``.
- **Auth**: OAuth 2.0 client credentials (M2M), see ``accounting.netsuite_auth``.
- **Limits and errors**: see ``accounting.netsuite_http``. Inbound (SuiteQL): ``accounting.netsuite_changes``.

Mapping: a line's ``account_code`` is the NetSuite item's internal id (the item decides the income
account, as in QBO), ``tax_code`` a tax code's internal id (empty: no tax code on the line) and our
per-line tax share goes as ``tax1Amt``, so NetSuite's totals are ours to the cent. Currencies are
records too: ``INVOICEFLOW_NETSUITE_CURRENCY_IDS`` (``USD=1,EUR=4``) or, unset, looked up by symbol.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import httpx

from accounting.base import (
    AccountingCreditApplication,
    AccountingCreditNote,
    AccountingCustomer,
    AccountingInvoice,
    AccountingLine,
    AccountingPayment,
    RemoteInvoice,
    RemoteLine,
    RemoteState,
    SyncResult,
    SyncStatus,
    TokenProvider,
)
from accounting.errors import NotFound, ValidationFailed
from accounting.http import HttpSettings
from accounting.jsonnum import to_decimal
from accounting.netsuite_changes import NetSuiteChangeFeed
from accounting.netsuite_http import (
    RECORD,
    IdempotencyConflict,
    NetSuiteHttp,
    Reply,
    netsuite_http_settings,
    netsuite_policy,
    parse_netsuite_error,
)
from accounting.ratelimit import RateLimitPolicy, TenantLimiter

VOIDED_MEMO = "Voided"
IDEMPOTENCY_NAMESPACE = uuid.UUID("5b0e7c52-4a8e-4d59-9a53-8f3c2f0f6a11")


def base_url_for(account_id: str) -> str:
    """``1234567_SB1`` → ``https://1234567-sb1.suitetalk.api.netsuite.com`` (the account's own domain)."""
    return f"https://{account_id.lower().replace('_', '-')}.suitetalk.api.netsuite.com"


def idempotency_key(key: str) -> str:
    """A UUID derived from our key: stable across retries, the shape Oracle's example uses."""
    return str(uuid.uuid5(IDEMPOTENCY_NAMESPACE, key))


def _ref(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    return str(value.get("id", "")) if isinstance(value, dict) else str(value or "")


class NetSuiteConnector(NetSuiteChangeFeed):
    """One NetSuite account; also its ``ChangeFeed`` (SuiteQL over customer payments)."""

    provider = "netsuite"

    def __init__(
        self,
        *,
        account_id: str,
        token_provider: TokenProvider,
        base_url: str | None = None,
        currency_ids: Mapping[str, str] | None = None,
        deposit_account_id: str | None = None,
        subsidiary_id: str | None = None,
        settings: HttpSettings | None = None,
        policy: RateLimitPolicy | None = None,
        limiter: TenantLimiter | None = None,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.account_id = account_id
        self.deposit_account_id = deposit_account_id
        self.subsidiary_id = subsidiary_id
        self._currency_ids = {k.upper(): str(v) for k, v in (currency_ids or {}).items()}
        self.http = NetSuiteHttp(
            provider=self.provider,
            base_url=base_url or base_url_for(account_id),
            tenant=account_id,
            token_provider=token_provider,
            policy=policy or netsuite_policy(5),
            error_parser=parse_netsuite_error,
            settings=settings or netsuite_http_settings(30.0),
            limiter=limiter,
            client=client,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    # --- plumbing ----------------------------------------------------------------------------------

    async def _get(self, kind: str, ref: str, *, expand: bool = False) -> dict[str, Any]:
        params = {"expandSubResources": "true"} if expand else None
        return dict((await self.http.call("GET", f"{RECORD}/{kind}/{ref}", params=params)).body or {})

    async def _find(self, kind: str, external_id: str, *, expand: bool = False) -> dict[str, Any] | None:
        try:
            return await self._get(kind, f"eid:{external_id}", expand=expand)
        except NotFound:
            return None

    async def _upsert(
        self, kind: str, external_id: str, body: dict[str, Any], *, key: str | None = None, **params: str
    ) -> None:
        """``PUT eid:``; with ``key``, as an asynchronous request under ``X-NetSuite-Idempotency-Key``."""
        path = f"{RECORD}/{kind}/eid:{external_id}"
        if key is None:
            await self.http.call("PUT", path, params=params or None, body=body)
            return
        headers = {"Prefer": "respond-async", "X-NetSuite-Idempotency-Key": idempotency_key(key)}
        try:
            reply = await self.http.call("PUT", path, params=params or None, body=body, headers=headers)
        except IdempotencyConflict as conflict:  # sent before (a retry after a timeout): follow that job
            if not conflict.location:
                raise
            reply = Reply(202, None, conflict.location)
        if reply.status == 202 and reply.location:
            await self.http.wait_for_job(reply.location)

    async def _load_currencies(self) -> None:
        rows = await self.suiteql("SELECT id, symbol FROM currency")
        self._currency_ids.update({str(r["symbol"]).upper(): str(r["id"]) for r in rows})

    async def currency_id(self, code: str) -> str:
        code = code.upper()
        if code not in self._currency_ids:
            await self._load_currencies()
        if code not in self._currency_ids:
            raise ValidationFailed(
                f"no NetSuite currency with symbol {code}: enable it or map it in "
                "INVOICEFLOW_NETSUITE_CURRENCY_IDS",
                provider=self.provider,
                status_code=None,
            )
        return self._currency_ids[code]

    async def currency_code(self, currency_id: str) -> str:
        """The ISO code of a currency record (its symbol), for comparing with ours."""
        if currency_id not in self._currency_ids.values():
            await self._load_currencies()
        return next((code for code, known in self._currency_ids.items() if known == currency_id), currency_id)

    # --- customers ---------------------------------------------------------------------------------

    async def ensure_customer(self, customer: AccountingCustomer, *, idempotency_key: str) -> SyncResult:
        if customer.external_id:
            return SyncResult(customer.external_id, SyncStatus.EXISTING)
        found = await self._find("customer", customer.customer_id)
        if found is not None:
            return SyncResult(str(found["id"]), SyncStatus.EXISTING)
        body: dict[str, Any] = {
            "companyName": customer.name,
            "email": customer.email,
            "isPerson": False,
            "currency": {"id": await self.currency_id(customer.currency)},
        }
        if self.subsidiary_id:
            body["subsidiary"] = {"id": self.subsidiary_id}
        await self._upsert("customer", customer.customer_id, body)
        saved = await self._get("customer", f"eid:{customer.customer_id}")
        return SyncResult(str(saved["id"]), SyncStatus.CREATED)

    # --- invoices ----------------------------------------------------------------------------------

    @staticmethod
    def _line(line: AccountingLine) -> dict[str, Any]:
        body: dict[str, Any] = {
            "item": {"id": line.account_code},
            "description": line.description,
            "quantity": line.quantity,
            "rate": line.unit_price,
            "amount": line.line_amount,
            "tax1Amt": line.tax_amount,
        }
        if line.tax_code:
            body["taxCode"] = {"id": line.tax_code}
        return body

    async def _document(self, doc: AccountingInvoice, customer_id: str, memo: str) -> dict[str, Any]:
        return {
            "entity": {"id": customer_id},
            "tranId": doc.number,
            "tranDate": doc.issue_date.isoformat(),
            "currency": {"id": await self.currency_id(doc.currency)},
            "memo": memo,
            "item": {"items": [self._line(line) for line in doc.lines]},
        }

    async def _customer_id(self, doc: AccountingInvoice, key: str) -> str:
        if doc.customer.external_id:
            return doc.customer.external_id
        return (await self.ensure_customer(doc.customer, idempotency_key=f"{key}:customer")).external_id

    async def upsert_invoice(
        self, invoice: AccountingInvoice, *, idempotency_key: str, external_id: str | None = None
    ) -> SyncResult:
        customer_id = await self._customer_id(invoice, idempotency_key)
        body = await self._document(invoice, customer_id, f"invoiceflow:{invoice.invoice_id}")
        body["dueDate"] = invoice.due_date.isoformat()
        await self._upsert("invoice", invoice.invoice_id, body, replace="item")
        saved = await self._get("invoice", f"eid:{invoice.invoice_id}")
        status = SyncStatus.CREATED if external_id is None else SyncStatus.UPDATED
        return SyncResult(str(saved["id"]), status, _status_name(saved))

    async def void_invoice(self, external_id: str, *, idempotency_key: str) -> SyncResult:
        invoice = await self._get("invoice", external_id)
        if str(invoice.get("memo", "")).startswith(VOIDED_MEMO):
            return SyncResult(external_id, SyncStatus.EXISTING, "VOIDED")
        marker = f"void-{invoice.get('externalId') or external_id}"
        memo = await self._find("creditmemo", marker)
        if memo is None:
            await self.http.call(
                "POST",
                f"{RECORD}/invoice/{external_id}/!transform/creditMemo",
                body={"externalId": marker, "memo": f"Voids {invoice.get('tranId', external_id)}"},
            )
            memo = await self._get("creditmemo", f"eid:{marker}")
        await self.http.call(
            "PATCH",
            f"{RECORD}/invoice/{external_id}",
            body={"memo": f"{VOIDED_MEMO} by invoiceflow (credit memo {memo.get('tranId', memo['id'])})"},
        )
        return SyncResult(external_id, SyncStatus.VOIDED, "VOIDED")

    async def fetch_invoice(self, external_id: str) -> RemoteInvoice:
        invoice = await self._get("invoice", external_id, expand=True)
        lines = tuple(
            RemoteLine(
                description=str(line.get("description", "")),
                quantity=to_decimal(line.get("quantity", 0)),
                unit_price=to_decimal(line.get("rate", 0)),
                line_amount=to_decimal(line.get("amount", 0)),
                account_code=_ref(line, "item"),
                tax_code=_ref(line, "taxCode"),
                tax_amount=to_decimal(line.get("tax1Amt", 0)),
            )
            for line in (invoice.get("item") or {}).get("items") or []
        )
        total = to_decimal(invoice.get("total", 0))
        remaining = to_decimal(invoice.get("amountRemaining", total))
        paid = sum(
            (p.amount for p in await self.payments_applied_to(str(invoice["id"])) if not p.deleted),
            Decimal(0),
        )
        if str(invoice.get("memo", "")).startswith(VOIDED_MEMO):
            state = RemoteState.VOIDED
        elif remaining == 0 and total > 0:
            state = RemoteState.PAID
        elif remaining < total:
            state = RemoteState.PARTIALLY_PAID
        else:
            state = RemoteState.OPEN
        return RemoteInvoice(
            external_id=str(invoice["id"]),
            number=str(invoice.get("tranId", "")),
            currency=await self.currency_code(_ref(invoice, "currency")),
            state=state,
            remote_status="VOIDED" if state == RemoteState.VOIDED else _status_name(invoice),
            lines=lines,
            subtotal=to_decimal(invoice.get("subtotal", 0)),
            tax=to_decimal(invoice.get("taxTotal", 0)),
            total=total,
            amount_paid=paid,
            amount_due=remaining,
        )

    # --- payments and credit memos -----------------------------------------------------------------

    async def record_payment(self, payment: AccountingPayment, *, idempotency_key: str) -> SyncResult:
        found = await self._find("customerpayment", payment.payment_id)
        if found is not None:  # written by an earlier attempt whose answer we never saw
            return SyncResult(str(found["id"]), SyncStatus.EXISTING, _status_name(found))
        customer_id = payment.customer_external_id
        if customer_id is None:
            customer_id = _ref(await self._get("invoice", payment.invoice_external_id), "entity")
        body: dict[str, Any] = {
            "customer": {"id": customer_id},
            "payment": payment.amount,
            "tranDate": payment.date.isoformat(),
            "currency": {"id": await self.currency_id(payment.currency)},
            "memo": f"invoiceflow:{payment.payment_id} {payment.reference}".strip(),
            "apply": {
                "items": [
                    {"doc": {"id": payment.invoice_external_id}, "apply": True, "amount": payment.amount}
                ]
            },
        }
        if self.deposit_account_id:
            body["account"] = {"id": self.deposit_account_id}
        await self._upsert("customerpayment", payment.payment_id, body, key=idempotency_key)
        saved = await self._get("customerpayment", f"eid:{payment.payment_id}")
        return SyncResult(str(saved["id"]), SyncStatus.RECORDED, _status_name(saved))

    async def remove_payment(
        self, external_id: str, *, invoice_external_id: str, idempotency_key: str
    ) -> SyncResult:
        """Not synced to NetSuite yet: a refund of a recorded payment stops the sync with this message
        (``sync_failed``, visible to an operator) instead of leaving the books silently different."""
        raise ValidationFailed(
            "a refund of a recorded payment is not synced to NetSuite yet: enter it in NetSuite, then "
            "retry the sync",
            provider=self.provider,
            status_code=None,
        )

    async def apply_credit(
        self, application: AccountingCreditApplication, *, idempotency_key: str
    ) -> SyncResult:
        """Not synced to NetSuite yet (see ``remove_payment``): the sync stops visibly."""
        raise ValidationFailed(
            "customer credit applied to an invoice is not synced to NetSuite yet: apply the credit memo "
            "in NetSuite, then retry the sync",
            provider=self.provider,
            status_code=None,
        )

    async def record_credit_note(self, note: AccountingCreditNote, *, idempotency_key: str) -> SyncResult:
        """The credit memo and its application to the invoice in one write (the ``apply`` sublist), so
        a retry finds it by external id and applies nothing twice."""
        found = await self._find("creditmemo", note.credit_note_id)
        if found is not None:
            return SyncResult(str(found["id"]), SyncStatus.EXISTING, _applied(found))
        doc = note.document
        customer_id = await self._customer_id(doc, idempotency_key)
        body = await self._document(
            doc, customer_id, f"invoiceflow:{note.credit_note_id} credits {doc.reference}"
        )
        invoice = await self._get("invoice", note.invoice_external_id)
        amount = min(note.allocate, to_decimal(invoice.get("amountRemaining", 0)), doc.totals.total)
        if amount > 0:
            body["apply"] = {
                "items": [{"doc": {"id": note.invoice_external_id}, "apply": True, "amount": amount}]
            }
        await self._upsert("creditmemo", note.credit_note_id, body, key=idempotency_key)
        saved = await self._get("creditmemo", f"eid:{note.credit_note_id}")
        return SyncResult(str(saved["id"]), SyncStatus.CREATED, _applied(saved))


def _status_name(record: Mapping[str, Any]) -> str:
    status = record.get("status")
    if isinstance(status, dict):
        return str(status.get("refName") or status.get("id") or "")
    return str(status or "")


def _applied(memo: Mapping[str, Any]) -> str:
    return "Applied" if to_decimal(memo.get("applied", 0)) > 0 else "Unapplied"
