"""The NetSuite stand-in's records and their rules: customers, invoices with item lines, customer payments
and credit memos applied to invoices, the currency, item and tax code lists.

Faithful where the connector depends on it: records addressed by internal id or ``eid:<external id>``;
an invoice's ``subtotal``/``taxTotal``/``total``/``amountRemaining`` and status (Open, Paid In Full)
follow from its lines and what is applied to it; an application larger than the invoice's remaining
amount, an unknown entity, item, tax code or currency, a line whose amount is not quantity × rate and a
reused transaction number are refused with ``USER_ERROR``-style details. Messages marked [K] are
plausible, not verified against NetSuite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from accounting.jsonnum import to_decimal
from standins.accounting.common import money

KINDS = ("customer", "invoice", "customerpayment", "creditmemo")
CURRENCIES = {
    "1": ("USD", "US Dollar"),
    "2": ("GBP", "British pound"),
    "3": ("CAD", "Canadian Dollar"),
    "4": ("EUR", "Euro"),
}


class Refused(Exception):
    """A request NetSuite would refuse: HTTP status, ``o:errorCode`` and ``detail``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


def _invalid(field_name: str, value: Any) -> Refused:
    return Refused(
        400, "USER_ERROR", f"Invalid Field Value {value} for the following field: {field_name}"
    )  # [K]


def _id(value: Any) -> str:
    return str(value.get("id", "")) if isinstance(value, dict) else str(value or "")


@dataclass
class Application:
    source_kind: str  # customerpayment | creditmemo
    source_id: str
    invoice_id: str
    amount: Decimal


@dataclass
class Books:
    """Every record of one account, keyed by internal id; ``now`` is the account's clock."""

    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    external: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    applications: list[Application] = field(default_factory=list)
    items: dict[str, str] = field(default_factory=lambda: {"10": "Services"})
    tax_codes: dict[str, Decimal] = field(default_factory=lambda: {"5": Decimal(20), "6": Decimal(19)})
    currencies: dict[str, tuple[str, str]] = field(default_factory=lambda: dict(CURRENCIES))
    next_id: int = 100
    shift: timedelta = timedelta(0)  # tests move the account's clock
    _replace: frozenset[str] = frozenset()

    def now(self) -> datetime:
        return (datetime.now(UTC) + self.shift).replace(microsecond=0, tzinfo=None)

    def new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    # --- addressing -------------------------------------------------------------------------------

    def resolve(self, kind: str, ref: str) -> str | None:
        """An internal id from ``123`` or ``eid:<external id>``; None when absent."""
        if ref.startswith("eid:"):
            return self.external[kind].get(ref[4:])
        return ref if ref in self.records[kind] else None

    def get(self, kind: str, ref: str) -> dict[str, Any]:
        internal = self.resolve(kind, ref)
        if internal is None:
            raise Refused(
                404,
                "NONEXISTENT_ID",
                "The record instance does not exist. Provide a valid record instance ID.",
            )
        return self.records[kind][internal]

    def upsert(
        self, kind: str, external_id: str | None, body: dict[str, Any], replace: frozenset[str] = frozenset()
    ) -> str:
        """Create (or, with a known external id, update) one record; returns its internal id. On an update
        the item lines sent are appended to the old ones (a non-keyed sublist) unless ``replace`` names
        ``item`` (Oracle: "Updating a Sublist", "Replacing a Sublist")."""
        self._replace = replace
        internal = self.external[kind].get(external_id) if external_id else None
        build = {
            "customer": self._customer,
            "invoice": self._invoice,
            "customerpayment": self._payment,
            "creditmemo": self._credit_memo,
        }[kind]
        if internal is not None and kind in ("customerpayment", "creditmemo"):
            self._unapply(kind, internal)
        record = build(body, self.records[kind].get(internal) if internal else None)
        internal = internal or self.new_id()
        record.update({"id": internal, "lastModifiedDate": self.now()})
        record.setdefault("createdDate", record["lastModifiedDate"])
        if external_id:
            record["externalId"] = external_id
            self.external[kind][external_id] = internal
        self.records[kind][internal] = record
        if kind in ("customerpayment", "creditmemo"):
            self._apply(kind, internal, record.pop("_apply"))
        return internal

    def patch(self, kind: str, ref: str, body: dict[str, Any]) -> str:
        record = self.get(kind, ref)
        for name in ("memo", "dueDate", "email", "companyName"):
            if name in body:
                record[name] = body[name]
        record["lastModifiedDate"] = self.now()
        return str(record["id"])

    # --- builders ---------------------------------------------------------------------------------

    def _currency(self, body: dict[str, Any], default: str = "1") -> str:
        currency = _id(body.get("currency")) or default
        if currency not in self.currencies:
            raise _invalid("currency", currency)
        return currency

    def _customer(self, body: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        record = dict(old or {})
        if not body.get("companyName") and not record.get("companyName"):
            raise Refused(400, "USER_ERROR", "Please enter value(s) for: Company Name")  # [K]
        record.update({k: body[k] for k in ("companyName", "email", "isPerson") if k in body})
        record["currency"] = self._currency(body, record.get("currency", "1"))
        record.setdefault("entityId", f"CUST{self.next_id + 1}")
        return record

    def _lines(self, body: dict[str, Any], currency: str) -> list[dict[str, Any]]:
        places = 0 if self.currencies[currency][0] == "JPY" else 2
        lines = []
        for index, raw in enumerate(((body.get("item") or {}).get("items")) or []):
            item = _id(raw.get("item"))
            if item not in self.items:
                raise _invalid("item", item)
            tax_code = _id(raw.get("taxCode"))
            if tax_code and tax_code not in self.tax_codes:
                raise _invalid("taxcode", tax_code)
            quantity, rate = to_decimal(raw.get("quantity", 1)), to_decimal(raw.get("rate", 0))
            amount = money(quantity * rate, places)
            if "amount" in raw and to_decimal(raw["amount"]) != amount:
                raise Refused(
                    400, "USER_ERROR", f"Amount {raw['amount']} on line {index + 1} is not quantity × rate"
                )  # [K]
            computed = money(amount * self.tax_codes.get(tax_code, Decimal(0)) / 100, places)
            tax = to_decimal(raw.get("tax1Amt", computed))
            if abs(tax - computed) > Decimal("0.01"):
                raise _invalid("tax1amt", tax)
            lines.append(
                {
                    "line": index + 1,
                    "item": item,
                    "description": str(raw.get("description", "")),
                    "quantity": quantity,
                    "rate": rate,
                    "amount": amount,
                    "taxCode": tax_code,
                    "taxRate1": self.tax_codes.get(tax_code, Decimal(0)),
                    "tax1Amt": tax,
                }
            )
        if not lines:
            raise Refused(400, "USER_ERROR", "You must enter at least one line item for this transaction.")
        return lines

    def _transaction(self, body: dict[str, Any], old: dict[str, Any] | None, kind: str) -> dict[str, Any]:
        record = dict(old or {})
        entity = _id(body.get("entity")) or record.get("entity", "")
        if entity not in self.records["customer"]:
            raise _invalid("entity", entity)
        currency = self._currency(
            body, record.get("currency") or self.records["customer"][entity]["currency"]
        )
        lines = self._lines(body, currency) if "item" in body or old is None else record["lines"]
        if old is not None and "item" in body and "item" not in self._replace:
            lines = [{**line, "line": n} for n, line in enumerate(record["lines"] + lines, start=1)]
        tran_id = str(body.get("tranId") or record.get("tranId") or f"{kind[:3].upper()}{self.next_id + 1}")
        for other in self.records[kind].values():
            if other["tranId"] == tran_id and other is not old and other.get("id") != record.get("id"):
                raise Refused(400, "USER_ERROR", "This transaction number is already in use.")  # [K]
        subtotal = sum((line["amount"] for line in lines), Decimal(0))
        tax = sum((line["tax1Amt"] for line in lines), Decimal(0))
        record.update(
            {
                "entity": entity,
                "currency": currency,
                "lines": lines,
                "tranId": tran_id,
                "subtotal": subtotal,
                "taxTotal": tax,
                "total": subtotal + tax,
                "memo": str(body.get("memo", record.get("memo", ""))),
            }
        )
        record["tranDate"] = str(body.get("tranDate") or record.get("tranDate") or self.now().date())
        return record

    def _invoice(self, body: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        record = self._transaction(body, old, "invoice")
        record["dueDate"] = str(body.get("dueDate") or record.get("dueDate") or record["tranDate"])
        if old is not None and record["total"] < self.applied_to(str(old["id"])):
            raise Refused(
                400, "USER_ERROR", "The total cannot be less than the amount already applied."
            )  # [K]
        return record

    def _applications(self, body: dict[str, Any], customer: str) -> list[tuple[str, Decimal]]:
        wanted = []
        for raw in ((body.get("apply") or {}).get("items")) or []:
            doc = _id(raw.get("doc"))
            if raw.get("apply") is False:
                continue
            invoice = self.records["invoice"].get(doc)
            if invoice is None or invoice["entity"] != customer:
                raise _invalid("apply.doc", doc)
            amount = to_decimal(raw.get("amount", self.remaining(doc)))
            if amount <= 0 or amount > self.remaining(doc):
                raise Refused(
                    400, "USER_ERROR", f"The amount applied ({amount}) exceeds the amount due."
                )  # [K]
            wanted.append((doc, amount))
        return wanted

    def _payment(self, body: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        record = dict(old or {})
        customer = _id(body.get("customer")) or record.get("customer", "")
        if customer not in self.records["customer"]:
            raise _invalid("customer", customer)
        payment = to_decimal(body.get("payment", record.get("payment", 0)))
        applied = self._applications(body, customer)
        if payment <= 0 or sum((a for _, a in applied), Decimal(0)) > payment:
            raise Refused(400, "USER_ERROR", "The total applied exceeds the payment amount.")  # [K]
        record.update(
            {
                "customer": customer,
                "payment": payment,
                "memo": str(body.get("memo", "")),
                "currency": self._currency(body, self.records["customer"][customer]["currency"]),
                "tranDate": str(body.get("tranDate") or self.now().date()),
                "account": _id(body.get("account")),
                "voided": False,
                "_apply": applied,
            }
        )
        record.setdefault("tranId", f"PYMT{self.next_id + 1}")
        return record

    def _credit_memo(self, body: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        record = self._transaction(body, old, "creditmemo")
        applied = self._applications(body, record["entity"])
        if sum((a for _, a in applied), Decimal(0)) > record["total"]:
            raise Refused(400, "USER_ERROR", "The total applied exceeds the credit memo amount.")  # [K]
        record["_apply"] = applied
        return record

    def transform_to_credit_memo(self, invoice_ref: str, body: dict[str, Any]) -> str:
        """``POST invoice/<id>/!transform/creditMemo``: the invoice's lines, applied to it."""
        invoice = self.get("invoice", invoice_ref)
        copy = {
            "entity": {"id": invoice["entity"]},
            "currency": {"id": invoice["currency"]},
            "memo": body.get("memo", ""),
            "item": {"items": [{k: v for k, v in line.items() if k != "line"} for line in invoice["lines"]]},
        }
        for line in copy["item"]["items"]:
            line["item"] = {"id": line["item"]}
            line["taxCode"] = {"id": line["taxCode"]} if line["taxCode"] else None
        remaining = self.remaining(str(invoice["id"]))
        if remaining > 0:
            copy["apply"] = {"items": [{"doc": {"id": invoice["id"]}, "apply": True, "amount": remaining}]}
        return self.upsert("creditmemo", body.get("externalId"), copy)

    # --- applications -----------------------------------------------------------------------------

    def _apply(self, kind: str, source: str, wanted: list[tuple[str, Decimal]]) -> None:
        for doc, amount in wanted:
            self.applications.append(Application(kind, source, doc, amount))
            self.records["invoice"][doc]["lastModifiedDate"] = self.now()

    def _unapply(self, kind: str, source: str) -> None:
        self.applications = [
            a for a in self.applications if not (a.source_kind == kind and a.source_id == source)
        ]

    def applied_to(self, invoice_id: str) -> Decimal:
        return sum((a.amount for a in self.applications if a.invoice_id == invoice_id), Decimal(0))

    def applied_from(self, kind: str, source: str) -> list[Application]:
        return [a for a in self.applications if a.source_kind == kind and a.source_id == source]

    def remaining(self, invoice_id: str) -> Decimal:
        return self.records["invoice"][invoice_id]["total"] - self.applied_to(invoice_id)

    def void_payment(self, payment_id: str) -> None:
        """The accountant voids a payment in the UI: its applications go, ``voided`` becomes true."""
        record = self.records["customerpayment"][payment_id]
        record["_was"] = self.applied_from("customerpayment", payment_id)
        self._unapply("customerpayment", payment_id)
        record.update({"voided": True, "lastModifiedDate": self.now()})

    def tran_date(self, record: dict[str, Any]) -> date:
        return date.fromisoformat(str(record["tranDate"]))
