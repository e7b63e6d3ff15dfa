"""The neutral e-invoice: EN 16931's semantic model (BT-/BG- terms) as plain dataclasses.

Built once from the invoice rows (``documents.einvoice.build``) and written by either syntax
(``ubl``, ``cii``), so the two can never disagree on an amount. The amounts come from
``billing.totals`` (already at the currency's minor units); the VAT breakdown (BG-23) is regrouped
here per category *and* rate, because EN 16931 keys it so (a zero-rated and an exempt line are two
groups at 0 %). The tax of each group is computed exactly as ``billing.totals`` does (sum of the nets,
times the rate, rounded half-up once), so the breakdown adds up to the invoice's stored tax total
(BR-CO-14); ``check_totals`` asserts it rather than trusting it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from billing.currency import minor_units
from billing.einvoice_rules import MAX_DECIMALS, currency_problem
from billing.money import quantize


class EInvoiceRefused(ValueError):
    """The invoice cannot be written as an EN 16931 document at all (e.g. a 3-decimal currency)."""


@dataclass(frozen=True)
class Address:
    line1: str = ""
    line2: str = ""
    city: str = ""
    postal_code: str = ""
    region: str = ""
    country: str = ""


@dataclass(frozen=True)
class Party:
    name: str
    address: Address
    vat_id: str = ""  # BT-31 / BT-48
    legal_id: str = ""  # BT-30 / BT-47
    legal_form: str = ""  # BT-33
    endpoint_scheme: str = ""  # BT-34 / BT-49 scheme (EAS code)
    endpoint_id: str = ""
    contact_name: str = ""
    contact_phone: str = ""
    contact_email: str = ""


@dataclass(frozen=True)
class Line:
    id: str
    name: str
    description: str
    quantity: Decimal
    unit: str
    unit_price: Decimal
    gross: Decimal
    discount: Decimal
    discount_percent: Decimal
    net: Decimal
    category: str
    rate: Decimal
    note: str = ""  # BT-127: e.g. why a line is zero rated (the breakdown of Z may carry no reason, BR-Z-10)


@dataclass(frozen=True)
class TaxGroup:
    category: str
    rate: Decimal
    taxable: Decimal
    tax: Decimal
    exemption_reason: str = ""


@dataclass(frozen=True)
class EInvoice:
    kind: str  # invoice | credit_note
    number: str
    issue_date: date
    currency: str
    seller: Party
    buyer: Party
    lines: tuple[Line, ...]
    tax_groups: tuple[TaxGroup, ...]
    line_total: Decimal  # BT-106
    tax_total: Decimal  # BT-110
    total: Decimal  # BT-112
    prepaid: Decimal  # BT-113
    due_date: date | None = None
    payment_terms: str = ""  # BT-20
    note: str = ""  # BT-22
    buyer_reference: str = ""  # BT-10
    purchase_order: str = ""  # BT-13
    contract_ref: str = ""  # BT-12
    project_ref: str = ""  # BT-11
    period_start: date | None = None  # BT-73
    period_end: date | None = None  # BT-74
    delivery_date: date | None = None  # BT-72
    preceding_number: str = ""  # BT-25 (credit notes)
    preceding_date: date | None = None  # BT-26
    iban: str = ""  # BT-84
    bic: str = ""  # BT-86
    payment_means: str = "1"  # BT-81: 58 SEPA credit transfer, 30 credit transfer, 1 not defined
    payment_reference: str = ""  # BT-83
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def payable(self) -> Decimal:  # BT-115
        return self.total - self.prepaid

    @property
    def categories(self) -> set[str]:
        return {line.category for line in self.lines}


def amount(value: Decimal, currency: str) -> str:
    """An amount as the XML carries it: the currency's minor units, never more than two decimals."""
    places = minor_units(currency)
    if places > MAX_DECIMALS:
        raise EInvoiceRefused(currency_problem(currency) or currency)
    return f"{quantize(value, currency):f}"


def decimal_text(value: Decimal) -> str:
    """Quantities, prices and rates without exponent or trailing zeros: 10, 0.0125, 19, 7.5."""
    normalized = value.normalize()
    text = f"{normalized:f}"
    return text if text != "-0" else "0"


def tax_groups(lines: Sequence[Line], reasons: dict[str, str], currency: str) -> tuple[TaxGroup, ...]:
    """BG-23, one group per (category, rate), sorted; tax = Σ net × rate / 100, rounded half-up once."""
    sums: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        key = (line.category, line.rate)
        sums[key] = sums.get(key, Decimal(0)) + line.net
    return tuple(
        TaxGroup(
            category=category,
            rate=rate,
            taxable=quantize(taxable, currency),
            tax=quantize(taxable * rate / Decimal(100), currency),
            exemption_reason=reasons.get(category, ""),
        )
        for (category, rate), taxable in sorted(sums.items(), key=lambda kv: (kv[0][0], kv[0][1]))
    )


def check_totals(doc: EInvoice) -> None:
    """BR-CO-10/14/15 hold by construction; a mismatch with the stored invoice is a bug, not data."""
    lines = sum((line.net for line in doc.lines), Decimal(0))
    tax = sum((group.tax for group in doc.tax_groups), Decimal(0))
    if lines != doc.line_total or tax != doc.tax_total or doc.line_total + doc.tax_total != doc.total:
        raise EInvoiceRefused(
            f"{doc.number}: the VAT breakdown ({lines} + {tax}) does not add up to the stored totals "
            f"({doc.line_total} + {doc.tax_total} = {doc.total})"
        )
