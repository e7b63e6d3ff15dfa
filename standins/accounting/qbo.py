"""QuickBooks Online stand-in: ``/v3/company/{realmId}/`` customer, invoice, creditmemo, payment and query.

Faithful where our connector depends on it: bearer auth (401 with the lower-case ``fault`` body),
``requestid`` replay with no expiry, ``SyncToken`` checked on every update and void (stale → 400 Fault
5010) and incremented on every write, Fault/Error bodies with codes (2500 unknown reference, 6070 amount
≠ qty × price, 6240 duplicate name, 610 not found, 2050 too long), 500/min + 10 concurrent per realm
answered with 429 ThrottleExceeded (no Retry-After: QBO's docs just say wait 60 s), voided invoices with
zero amounts and "Voided" in the private note. A CreditMemo has invoice lines and a Balance (its credit
not yet applied); a payment's lines may link Invoices (amounts applied to them) and CreditMemos (credit
used), TotalAmt = invoices − credit memos, so a TotalAmt 0 payment applies a credit memo to an invoice.
Messages marked [K] are plausible, not verified.
"""

from __future__ import annotations

import re
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
from standins.accounting.hooks import WebhookOutbox, qbo_event

TOKEN_PATH = "/oauth2/v1/tokens/bearer"  # oauth.platform.intuit.com, on the stand-in's one host
QBO_QUOTA = Quota(per_window=500, window_s=60.0, concurrent=10)
PAYMENT_REF_MAX = 21
_QUERY = re.compile(
    r"^\s*select\s+\*\s+from\s+(\w+)(?:\s+where\s+(\w+)\s*=\s*'((?:[^'\\]|\\.)*)')?"
    r"(?:\s+startposition\s+(\d+))?(?:\s+maxresults\s+(\d+))?\s*$",
    re.IGNORECASE,
)
CDC_TABLES = {
    "Payment": "payments",
    "Invoice": "invoices",
    "CreditMemo": "credit_memos",
    "Customer": "customers",
}


def _time() -> str:
    return datetime.now(UTC).astimezone().isoformat(timespec="milliseconds")


def _fault(code: str, message: str, detail: str, element: str = "", *, status: int = 400) -> HandlerResult:
    return status, {
        "Fault": {
            "Error": [{"Message": message, "Detail": detail, "code": code, "element": element}],
            "type": "ValidationFault",
        },
        "time": _time(),
    }


def _invalid_ref(kind: str, value: str, element: str) -> HandlerResult:
    return _fault(
        "2500",
        "Invalid Reference Id",
        f"Invalid Reference Id : {kind} {value} is not found or has been made inactive",
        element,
    )  # [K]


def _not_found(entity: str, entity_id: str) -> HandlerResult:
    return _fault(
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. "
        f"Check the fields with accounts, customers, items, vendors or employees. ({entity} {entity_id})",
    )


class _Refused(Exception):
    def __init__(self, result: HandlerResult) -> None:
        super().__init__(str(result))
        self.result = result


@dataclass
class QboState:
    """One QBO company. ``items`` are what invoice lines reference (each carries an income account);
    ``tax_codes`` maps a TaxCode id to its rate in percent."""

    realm_id: str = "9130350000000001"
    tokens: set[str] = field(default_factory=lambda: {"qbo-token"})
    quota: Quota | None = QBO_QUOTA
    client_id: str = "qbo-client"
    client_secret: str = "qbo-secret"
    core: Core = field(init=False)
    oauth: OAuthServer = field(init=False)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    tax_codes: dict[str, Decimal] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    credit_memos: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 100
    send_retry_after: bool = False  # QBO documents no Retry-After on 429; tests may turn it on
    stale_next: int = 0  # the next N invoice updates/voids race a concurrent edit (→ 5010)
    webhooks: WebhookOutbox = field(default_factory=WebhookOutbox)
    deleted: dict[tuple[str, str], str] = field(default_factory=dict)  # (entity, id) → when deleted

    def __post_init__(self) -> None:
        self.core = Core(Tokens(self.tokens), Traffic(self.quota), Replays(None, match_body=False))
        # Access tokens last an hour; the refresh token may change on any refresh (persist the newest).
        self.oauth = OAuthServer(
            self.core,
            provider="qbo",
            client_id=self.client_id,
            client_secret=self.client_secret,
            expires_in=3600,
            extra={"x_refresh_token_expires_in": 8726400},
        )
        if not self.items:
            self.add_item("1", "Services", income_account="79")
        if not self.tax_codes:
            self.tax_codes.update({"NON": Decimal(0), "TAX": Decimal("8.875")})

    @property
    def faults(self) -> Faults:
        return self.core.faults

    @property
    def calls(self) -> list[RecordedCall]:
        return self.core.calls

    def add_item(self, item_id: str, name: str = "", *, income_account: str = "79") -> None:
        """Add an Item (fixes "Invalid Reference Id" for a line's ItemRef)."""
        with self.core.lock:
            self.items[item_id] = {
                "Id": item_id,
                "Name": name or f"Item {item_id}",
                "Type": "Service",
                "IncomeAccountRef": {"value": income_account},
                "Active": True,
            }

    def add_tax_code(self, code: str, rate: Decimal) -> None:
        with self.core.lock:
            self.tax_codes[code] = rate

    def expire_token(self, token: str) -> None:
        with self.core.lock:
            self.core.tokens.expire(token)

    def touch(self, invoice_id: str) -> None:
        """Someone else edited the invoice in QBO: its SyncToken moves on (our next update is stale)."""
        with self.core.lock:
            invoice = self.invoices[invoice_id]
            invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def notify(self, name: str, entity_id: str, operation: str) -> None:
        """The webhook QBO sends for this change (a no-op unless ``webhooks`` is configured)."""
        self.webhooks.send(qbo_event(self.realm_id, name, entity_id, operation))


def _meta(created: str | None = None) -> dict[str, str]:
    now = _time()
    return {"CreateTime": created or now, "LastUpdatedTime": now}


class _Handlers:
    def __init__(self, state: QboState) -> None:
        self.s = state

    # query

    def query(self, statement: str) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            match = _QUERY.match(statement or "")
            if match is None:
                return _fault(
                    "4000",
                    "Error parsing query",
                    f"QueryParserError: Encountered an unsupported query: {statement}",
                )  # [K]
            entity, column, value = match.group(1).capitalize(), match.group(2), match.group(3)
            entity = {"Creditmemo": "CreditMemo"}.get(entity, entity)
            table = {
                "Customer": self.s.customers,
                "Invoice": self.s.invoices,
                "Payment": self.s.payments,
                "CreditMemo": self.s.credit_memos,
            }.get(entity)
            if table is None:
                return _fault("4001", "Invalid query", f"Unsupported entity {entity}")  # [K]
            rows = [self._public(row) for row in table.values()]
            if column is not None:
                wanted = re.sub(r"\\(.)", r"\1", value)
                rows = [r for r in rows if str(r.get(column, "")) == wanted]
            start, limit = int(match.group(4) or 1), int(match.group(5) or 100)  # QBO's default page: 100
            rows = rows[start - 1 : start - 1 + limit]
            if not rows:
                return 200, {"QueryResponse": {}, "time": _time()}
            return 200, {
                "QueryResponse": {entity: rows, "startPosition": 1, "maxResults": len(rows)},
                "time": _time(),
            }

        return run

    # customers

    def create_customer(self, body: Any) -> HandlerResult:
        body = body or {}
        name = str(body.get("DisplayName") or "").strip()
        if not name:
            return _fault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter DisplayName is missing in the request",
                "DisplayName",
            )
        if any(c["DisplayName"].lower() == name.lower() for c in self.s.customers.values()):
            return _fault(
                "6240",
                "Duplicate Name Exists Error",
                "The name supplied already exists. : Another customer, vendor or employee is "
                "already using this name. Please use a different name.",
            )
        customer: dict[str, Any] = {
            "Id": self.s.new_id(),
            "SyncToken": "0",
            "DisplayName": name,
            "Active": True,
            "Balance": Decimal(0),
            "PrimaryEmailAddr": body.get("PrimaryEmailAddr") or {},
            "CurrencyRef": body.get("CurrencyRef") or {"value": "USD"},
            "domain": "QBO",
            "sparse": False,
            "MetaData": _meta(),
        }
        self.s.customers[customer["Id"]] = customer
        return 200, {"Customer": customer, "time": _time()}

    def get(self, table: str, entity: str, entity_id: str) -> Callable[[Any], HandlerResult]:
        def run(_: Any) -> HandlerResult:
            found = getattr(self.s, table).get(entity_id)
            return (
                (200, {entity: self._public(found), "time": _time()})
                if found
                else _not_found(entity, entity_id)
            )

        return run

    # invoices

    def _apply(self, invoice: dict[str, Any], body: dict[str, Any]) -> None:
        """Apply create/sparse-update fields and recompute amounts; raises _Refused."""
        if "CustomerRef" in body:
            ref = str((body["CustomerRef"] or {}).get("value", ""))
            if ref not in self.s.customers:
                raise _Refused(_invalid_ref("Customer", ref, "CustomerRef"))
            invoice["CustomerRef"] = {"value": ref, "name": self.s.customers[ref]["DisplayName"]}
        for key in (
            "DocNumber",
            "TxnDate",
            "DueDate",
            "BillEmail",
            "PrivateNote",
            "GlobalTaxCalculation",
            "CurrencyRef",
            "CustomerMemo",
        ):
            if key in body:
                invoice[key] = body[key]
        currency = (invoice.get("CurrencyRef") or {}).get("value", "USD")
        places = MINOR_UNITS.get(currency, 2)
        if "Line" in body:
            lines = []
            for number, line in enumerate(
                [l for l in body["Line"] or [] if l.get("DetailType") == "SalesItemLineDetail"], start=1
            ):
                detail = line.get("SalesItemLineDetail") or {}
                item = str((detail.get("ItemRef") or {}).get("value", ""))
                if item not in self.s.items:
                    raise _Refused(_invalid_ref("Item", item, "Line.SalesItemLineDetail.ItemRef"))
                tax_code = str((detail.get("TaxCodeRef") or {}).get("value", "NON"))
                if tax_code not in self.s.tax_codes:
                    raise _Refused(_invalid_ref("TaxCode", tax_code, "Line.SalesItemLineDetail.TaxCodeRef"))
                qty, price = to_decimal(detail.get("Qty", 1)), to_decimal(detail.get("UnitPrice", 0))
                amount = to_decimal(line.get("Amount", 0))
                if money(qty * price, places) != amount:
                    raise _Refused(
                        _fault(
                            "6070",
                            "Amount is not equal to UnitPrice * Qty",
                            f"Amount is not equal to UnitPrice * Qty. Supplied value:{amount}",
                        )
                    )
                lines.append(
                    {
                        "Id": str(number),
                        "LineNum": number,
                        "Description": line.get("Description", ""),
                        "Amount": amount,
                        "DetailType": "SalesItemLineDetail",
                        "SalesItemLineDetail": {
                            "ItemRef": {"value": item, "name": self.s.items[item]["Name"]},
                            "Qty": qty,
                            "UnitPrice": price,
                            "TaxCodeRef": {"value": tax_code},
                            "ItemAccountRef": self.s.items[item]["IncomeAccountRef"],
                        },
                    }
                )
            if not lines:
                raise _Refused(
                    _fault(
                        "6000",
                        "A business validation error has occurred while processing your request",
                        "Business Validation Error: You must fill out at least one split line.",
                    )
                )
            invoice["Line"] = lines
        sales = [l for l in invoice.get("Line") or [] if l.get("DetailType") == "SalesItemLineDetail"]
        subtotal = sum((l["Amount"] for l in sales), money(Decimal(0), places))
        if "TxnTaxDetail" in body and (body["TxnTaxDetail"] or {}).get("TotalTax") is not None:
            tax = money(to_decimal(body["TxnTaxDetail"]["TotalTax"]), places)
        else:
            groups: dict[str, Decimal] = {}
            for line in sales:
                code = line["SalesItemLineDetail"]["TaxCodeRef"]["value"]
                groups[code] = groups.get(code, Decimal(0)) + line["Amount"]
            tax = sum(
                (money(base * self.s.tax_codes[c] / 100, places) for c, base in groups.items()),
                money(Decimal(0), places),
            )
        invoice["Line"] = sales + [
            {"Amount": subtotal, "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}}
        ]
        invoice["TxnTaxDetail"] = {"TotalTax": tax}
        paid = invoice.get("_paid", Decimal(0))
        invoice["TotalAmt"] = subtotal + tax
        invoice["Balance"] = invoice["TotalAmt"] - paid
        if invoice["Balance"] < 0:
            raise _Refused(
                _fault(
                    "6000",
                    "A business validation error has occurred while processing your request",
                    "Business Validation Error: The invoice total is less than the payments applied to it.",
                )
            )  # [K]

    @staticmethod
    def _public(invoice: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in invoice.items() if not k.startswith("_")}

    def post_invoice(self, operation: str | None) -> Callable[[Any], HandlerResult]:
        def run(body: Any) -> HandlerResult:
            body = dict(body or {})
            try:
                if operation == "void":
                    return self._void(body)
                if body.get("Id"):
                    return self._update(body)
                return self._create(body)
            except _Refused as refused:
                return refused.result

        return run

    def _create(self, body: dict[str, Any]) -> HandlerResult:
        if "CustomerRef" not in body:
            return _fault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter CustomerRef is missing in the request",
                "CustomerRef",
            )
        invoice: dict[str, Any] = {
            "Id": self.s.new_id(),
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "TxnDate": date.today().isoformat(),
            "CurrencyRef": {"value": "USD"},
            "LinkedTxn": [],
            "MetaData": _meta(),
        }
        self._apply(invoice, body)
        self.s.invoices[invoice["Id"]] = invoice
        return 200, {"Invoice": self._public(invoice), "time": _time()}

    def create_credit_memo(self, body: Any) -> HandlerResult:
        """A new CreditMemo (updates are not modelled: the connector never changes one)."""
        body = dict(body or {})
        if body.get("Id"):
            return _fault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: credit memo updates are not modelled by this stand-in",
            )
        if "CustomerRef" not in body:
            return _fault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter CustomerRef is missing in the request",
                "CustomerRef",
            )
        memo: dict[str, Any] = {
            "Id": self.s.new_id(),
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "TxnDate": date.today().isoformat(),
            "CurrencyRef": {"value": "USD"},
            "LinkedTxn": [],
            "MetaData": _meta(),
        }
        try:
            self._apply(memo, {k: v for k, v in body.items() if k != "DueDate"})
        except _Refused as refused:
            return refused.result
        memo["RemainingCredit"] = memo["Balance"]
        self.s.credit_memos[memo["Id"]] = memo
        return 200, {"CreditMemo": self._public(memo), "time": _time()}

    def _current(self, body: dict[str, Any]) -> dict[str, Any]:
        invoice = self.s.invoices.get(str(body.get("Id")))
        if invoice is None:
            raise _Refused(_not_found("Invoice", str(body.get("Id"))))
        if self.s.stale_next > 0:  # someone saved the invoice in QBO just before this request arrived
            self.s.stale_next -= 1
            invoice["SyncToken"] = str(int(invoice["SyncToken"]) + 1)
        if str(body.get("SyncToken")) != invoice["SyncToken"]:
            raise _Refused(
                _fault(
                    "5010",
                    "Stale Object Error",
                    "Stale Object Error : You and another user were working on the same thing. If you "
                    "continue, "
                    "you may erase their changes. Go back and make your changes again.",
                )
            )
        return invoice

    def _update(self, body: dict[str, Any]) -> HandlerResult:
        current = self._current(body)
        if not body.get("sparse"):
            return _fault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: only sparse updates are modelled by this stand-in",
            )
        updated = dict(current)
        self._apply(updated, body)
        updated["SyncToken"] = str(int(current["SyncToken"]) + 1)
        updated["MetaData"] = _meta(current["MetaData"]["CreateTime"])
        self.s.invoices[updated["Id"]] = updated
        return 200, {"Invoice": self._public(updated), "time": _time()}

    def _void(self, body: dict[str, Any]) -> HandlerResult:
        current = self._current(body)
        voided = dict(current)
        zero = Decimal(0)
        voided["Line"] = [
            {**l, "Amount": zero}
            | (
                {"SalesItemLineDetail": {**l["SalesItemLineDetail"], "Qty": zero, "UnitPrice": zero}}
                if "SalesItemLineDetail" in l
                else {}
            )
            for l in current["Line"]
        ]
        voided.update(
            TotalAmt=zero,
            Balance=zero,
            TxnTaxDetail={"TotalTax": zero},
            PrivateNote=f"Voided{' - ' + current['PrivateNote'] if current.get('PrivateNote') else ''}",
            SyncToken=str(int(current["SyncToken"]) + 1),
            MetaData=_meta(current["MetaData"]["CreateTime"]),
        )
        self.s.invoices[voided["Id"]] = voided
        return 200, {"Invoice": self._public(voided), "time": _time()}

    # payments

    def create_payment(self, body: Any) -> HandlerResult:
        body = dict(body or {})
        customer = str((body.get("CustomerRef") or {}).get("value", ""))
        if customer not in self.s.customers:
            return _invalid_ref("Customer", customer, "CustomerRef")
        if "TotalAmt" not in body:
            return _fault(
                "2020",
                "Required param missing, need to supply the required value for the API",
                "Required parameter TotalAmt is missing in the request",
                "TotalAmt",
            )
        if len(str(body.get("PaymentRefNum", ""))) > PAYMENT_REF_MAX:
            return _fault(
                "2050",
                "String length is either shorter or longer than supported by specification",
                f"String length specified does not match the supported length. Min:0 Max:"
                f"{PAYMENT_REF_MAX} supplied length:{len(str(body['PaymentRefNum']))}",
                "PaymentRefNum",
            )
        total = to_decimal(body["TotalAmt"])
        applied = Decimal(0)
        updates: list[tuple[dict[str, Any], Decimal]] = []
        for line in body.get("Line") or []:
            amount = to_decimal(line.get("Amount", 0))
            for linked in line.get("LinkedTxn") or []:
                kind, txn_id = linked.get("TxnType"), str(linked.get("TxnId"))
                table = {"Invoice": self.s.invoices, "CreditMemo": self.s.credit_memos}.get(str(kind))
                target = table.get(txn_id) if table is not None else None
                if target is None:
                    return _invalid_ref(str(kind or "Invoice"), txn_id, "Line.LinkedTxn")
                if target["CustomerRef"]["value"] != customer:
                    return _fault(
                        "6000",
                        "A business validation error has occurred while processing your request",
                        f"Business Validation Error: The {kind} belongs to another customer.",
                    )  # [K]
                if amount > target["Balance"]:
                    what = "invoice's open balance" if kind == "Invoice" else "credit memo's available credit"
                    return _fault(
                        "6000",
                        "A business validation error has occurred while processing your request",
                        f"Business Validation Error: The amount exceeds the {what}.",
                    )  # [K]
                updates.append((target, amount))
                applied += amount if kind == "Invoice" else -amount
        if applied > total:
            return _fault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: The amount applied is more than the payment total.",
            )  # [K]
        if applied < 0:
            return _fault(
                "6000",
                "A business validation error has occurred while processing your request",
                "Business Validation Error: More credit is used than is applied to invoices.",
            )  # [K]
        payment: dict[str, Any] = {
            "Id": self.s.new_id(),
            "SyncToken": "0",
            "domain": "QBO",
            "sparse": False,
            "CustomerRef": {"value": customer, "name": self.s.customers[customer]["DisplayName"]},
            "TotalAmt": total,
            "UnappliedAmt": total - applied,
            "ProcessPayment": False,
            "TxnDate": body.get("TxnDate") or date.today().isoformat(),
            "CurrencyRef": body.get("CurrencyRef") or {"value": "USD"},
            "Line": body.get("Line") or [],
            "MetaData": _meta(),
        }
        for key in ("PaymentRefNum", "PrivateNote", "DepositToAccountRef"):
            if key in body:
                payment[key] = body[key]
        for (
            target,
            amount,
        ) in updates:  # an invoice's Balance falls by what is applied, a memo's by what is used
            target["_paid"] = target.get("_paid", Decimal(0)) + amount
            target["Balance"] = target["Balance"] - amount
            if "RemainingCredit" in target:
                target["RemainingCredit"] = target["Balance"]
            target["LinkedTxn"] = [
                *target.get("LinkedTxn", []),
                {"TxnId": payment["Id"], "TxnType": "Payment"},
            ]
            target["SyncToken"] = str(int(target["SyncToken"]) + 1)
            target.setdefault("MetaData", _meta())["LastUpdatedTime"] = _time()
        self.s.payments[payment["Id"]] = payment
        return 200, {"Payment": payment, "time": _time()}

    def delete_payment(self, body: Any) -> HandlerResult:
        """``POST /payment?operation=delete`` with Id and SyncToken: what it applied is undone (invoice
        Balances rise, credit memos get their credit back); the payment can no longer be read."""
        body = dict(body or {})
        payment = self.s.payments.get(str(body.get("Id", "")))
        if payment is None:
            return _not_found("Payment", str(body.get("Id", "")))
        if str(body.get("SyncToken")) != payment["SyncToken"]:
            return _fault(
                "5010",
                "Stale Object Error",
                f"Stale Object Error : You and another user were working on the same thing. "
                f"SyncToken {body.get('SyncToken')} is not current: {payment['SyncToken']}",
            )  # [K]
        for line in payment.get("Line") or []:
            amount = to_decimal(line.get("Amount", 0))
            for linked in line.get("LinkedTxn") or []:
                table = {"Invoice": self.s.invoices, "CreditMemo": self.s.credit_memos}.get(
                    str(linked.get("TxnType"))
                )
                target = table.get(str(linked.get("TxnId"))) if table is not None else None
                if target is None:
                    continue
                target["_paid"] = target.get("_paid", Decimal(0)) - amount
                target["Balance"] = target["Balance"] + amount
                if "RemainingCredit" in target:
                    target["RemainingCredit"] = target["Balance"]
                target["LinkedTxn"] = [
                    t for t in target.get("LinkedTxn", []) if t.get("TxnId") != payment["Id"]
                ]
                target["SyncToken"] = str(int(target["SyncToken"]) + 1)
                target.setdefault("MetaData", _meta())["LastUpdatedTime"] = _time()
        del self.s.payments[payment["Id"]]
        self.s.deleted[("Payment", payment["Id"])] = _time()
        return 200, {"Payment": {"Id": payment["Id"], "status": "Deleted", "domain": "QBO"}, "time": _time()}

    def cdc(self, entities: str, changed_since: str) -> Callable[[Any], HandlerResult]:
        """``GET /cdc?entities=A,B&changedSince=<ISO time>``: what changed after that time, deleted
        entities as ``{"Id", "status": "Deleted"}``, one QueryResponse per entity."""

        def run(_: Any) -> HandlerResult:
            try:
                after = datetime.fromisoformat(changed_since.replace("Z", "+00:00"))
            except ValueError:
                return _fault("2010", "Invalid date", f"changedSince: {changed_since!r} is not a date")  # [K]
            if after.tzinfo is None:
                after = after.replace(tzinfo=UTC)
            responses = []
            for name in [e.strip() for e in entities.split(",") if e.strip()]:
                table = CDC_TABLES.get(name)
                if table is None:
                    return _fault("4001", "Invalid query", f"Unsupported entity {name}")  # [K]
                rows = [
                    self._public(row)
                    for row in getattr(self.s, table).values()
                    if datetime.fromisoformat(row.get("MetaData", {}).get("LastUpdatedTime", _time())) > after
                ]
                rows += [
                    {
                        "Id": entity_id,
                        "status": "Deleted",
                        "domain": "QBO",
                        "MetaData": {"LastUpdatedTime": at},
                    }
                    for (entity, entity_id), at in self.s.deleted.items()
                    if entity == name and datetime.fromisoformat(at) > after
                ]
                responses.append({name: rows, "startPosition": 1, "maxResults": len(rows)})
            return 200, {"CDCResponse": [{"QueryResponse": responses}], "time": _time()}

        return run


class _QboFlavor:
    def __init__(self, state: QboState) -> None:
        self.s = state

    def unauthorized(self, reason: str) -> Response:
        detail = "Token expired" if reason == "expired" else "Token invalid"
        return json_response(
            401,
            {
                "warnings": None,
                "intuitObject": None,
                "fault": {
                    "error": [
                        {
                            "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                            "detail": detail,
                            "code": "3200",
                            "element": None,
                        }
                    ],
                    "type": "AUTHENTICATION",
                },
                "time": _time(),
            },
            {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'},
        )

    def forbidden(self) -> Response:
        return json_response(
            403,
            {
                "Fault": {
                    "Error": [
                        {
                            "Message": (
                                "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403"
                            ),
                            "code": "3100",
                        }
                    ],
                    "type": "AuthorizationFault",
                },
                "time": _time(),
            },
        )

    def unavailable(self) -> Response:
        return json_response(
            503,
            {
                "Fault": {
                    "Error": [
                        {
                            "Message": "Service Unavailable",
                            "Detail": "The service is temporarily unavailable",
                            "code": "3000",
                        }
                    ],
                    "type": "SystemFault",
                },
                "time": _time(),
            },
        )

    def rate_limited(self, tenant: str, problem: str, retry_after: int | None) -> Response:
        headers = (
            {} if retry_after is None or not self.s.send_retry_after else {"Retry-After": str(retry_after)}
        )
        return json_response(
            429,
            {
                "fault": {
                    "error": [
                        {
                            "message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                            "detail": "The request limit was reached.",
                            "code": "3001",
                        }
                    ],
                    "type": "SERVICE",
                },
                "time": _time(),
            },
            headers,
        )

    def replay_mismatch(self) -> Response:  # QBO replays by id alone; never reached (see create_qbo_app)
        return json_response(400, {})

    def headers(self, tenant: str) -> dict[str, str]:
        return {"intuit_tid": "standin"}


def create_qbo_app(state: QboState | None = None) -> tuple[Starlette, QboState]:
    """The ASGI app and its inspectable state; serve with ``standins.server.serve``."""
    state = state or QboState()
    flavor, handlers = _QboFlavor(state), _Handlers(state)

    async def run(request: Request, handler: Callable[[Any], HandlerResult], *, write: bool) -> Response:
        realm = request.path_params["realm"]

        def precheck() -> Response | None:
            return None if realm == state.realm_id else flavor.forbidden()

        request_id = request.query_params.get("requestid") if write else None
        return await state.core.handle(
            request,
            flavor,
            tenant=realm,
            write=write,
            handler=handler,
            replay_key=f"rid:{request_id}" if request_id else None,
            precheck=precheck,
        )

    def notifying(
        handler: Callable[[Any], HandlerResult], name: str, operation: Callable[[Any], str]
    ) -> Callable[[Any], HandlerResult]:
        """After a committed write, the webhook QBO sends for it (a replayed requestid sends none)."""

        def run_and_notify(body: Any) -> HandlerResult:
            status, payload = handler(body)
            if 200 <= status < 300 and isinstance(payload, dict) and name in payload:
                state.notify(name, str(payload[name]["Id"]), operation(body))
            return status, payload

        return run_and_notify

    def create_or_update(body: Any) -> str:
        return "Update" if isinstance(body, dict) and body.get("Id") else "Create"

    async def query(request: Request) -> Response:
        return await run(request, handlers.query(request.query_params.get("query", "")), write=False)

    async def cdc(request: Request) -> Response:
        listing = handlers.cdc(
            request.query_params.get("entities", ""), request.query_params.get("changedSince", "")
        )
        return await run(request, listing, write=False)

    async def customer(request: Request) -> Response:
        return await run(
            request, notifying(handlers.create_customer, "Customer", lambda _: "Create"), write=True
        )

    async def customer_by_id(request: Request) -> Response:
        return await run(
            request, handlers.get("customers", "Customer", request.path_params["id"]), write=False
        )

    async def invoice(request: Request) -> Response:
        operation = request.query_params.get("operation")
        handler = handlers.post_invoice(operation)
        named = (lambda _: "Void") if operation == "void" else create_or_update
        return await run(request, notifying(handler, "Invoice", named), write=True)

    async def invoice_by_id(request: Request) -> Response:
        return await run(request, handlers.get("invoices", "Invoice", request.path_params["id"]), write=False)

    async def credit_memo(request: Request) -> Response:
        return await run(
            request, notifying(handlers.create_credit_memo, "CreditMemo", lambda _: "Create"), write=True
        )

    async def credit_memo_by_id(request: Request) -> Response:
        return await run(
            request, handlers.get("credit_memos", "CreditMemo", request.path_params["id"]), write=False
        )

    async def payment(request: Request) -> Response:
        if request.query_params.get("operation") == "delete":
            deleting = notifying(
                lambda body: handlers.delete_payment(dict(body or {})), "Payment", lambda _: "Delete"
            )
            return await run(request, deleting, write=True)
        return await run(request, notifying(handlers.create_payment, "Payment", create_or_update), write=True)

    async def payment_by_id(request: Request) -> Response:
        return await run(request, handlers.get("payments", "Payment", request.path_params["id"]), write=False)

    base = "/v3/company/{realm}"
    app = Starlette(
        routes=[
            Route(f"{base}/query", query, methods=["GET"]),
            Route(f"{base}/cdc", cdc, methods=["GET"]),
            Route(f"{base}/customer", customer, methods=["POST"]),
            Route(f"{base}/customer/{{id}}", customer_by_id, methods=["GET"]),
            Route(f"{base}/invoice", invoice, methods=["POST"]),
            Route(f"{base}/invoice/{{id}}", invoice_by_id, methods=["GET"]),
            Route(f"{base}/creditmemo", credit_memo, methods=["POST"]),
            Route(f"{base}/creditmemo/{{id}}", credit_memo_by_id, methods=["GET"]),
            Route(f"{base}/payment", payment, methods=["POST"]),
            Route(f"{base}/payment/{{id}}", payment_by_id, methods=["GET"]),
            Route(TOKEN_PATH, state.oauth.endpoint, methods=["POST"]),
        ]
    )
    return app, state
